#!/usr/bin/env python3
"""Proves a binary links no code of a forbidden namespace (DESIGN.md: bevkd-train never links
precompute/, so the teacher can never be loaded by a training run).

    check_links.py BINARY NAMESPACE             exit 0 iff no symbol of BINARY is in NAMESPACE
    check_links.py --expect-found BINARY NS     exit 0 iff some symbol is (the self-test: the same
                                                check run on bevkd-precompute must find its own code)

Symbols are read with `nm -C` (defined and undefined, demangled); a symbol is in NAMESPACE when its
demangled name contains "NAMESPACE::" (e.g. "bevkd::precompute::").
"""
import subprocess
import sys


def symbols_in(binary, namespace):
    out = subprocess.run(["nm", "-C", binary], check=True, capture_output=True, text=True).stdout
    needle = namespace.rstrip(":") + "::"
    return [line.split(" ", 2)[-1] for line in out.splitlines() if needle in line]


def main(argv):
    expect_found = "--expect-found" in argv
    args = [a for a in argv if a != "--expect-found"]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    binary, namespace = args
    found = symbols_in(binary, namespace)
    if expect_found:
        if not found:
            print(f"self-test failed: {binary} has no symbol of {namespace}; the check could not see a link", file=sys.stderr)
            return 1
        print(f"self-test: {binary} holds {len(found)} symbols of {namespace}, e.g. {found[0]}")
        return 0
    if found:
        print(f"{binary} links {len(found)} symbols of {namespace}, e.g.:", file=sys.stderr)
        for s in found[:10]:
            print("  " + s, file=sys.stderr)
        return 1
    print(f"{binary}: no symbol of {namespace}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
