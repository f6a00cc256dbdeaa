#!/usr/bin/env python3
"""Enforces DESIGN.md's dependency direction on #include lines.

Usage: check_includes.py <source-root>          exit 1 and list every violation
       check_includes.py --self-test             proves the checker catches violations

Each top-level folder may include headers of the folders listed in ALLOWED (plus itself and
the standard library). External headers are classified by their first path component:
LibTorch (torch/, ATen/, c10/, caffe2/) and CUDA (cuda*.h, cub/, thrust/) are allowed only
where DESIGN.md says so.
"""
import os
import re
import sys
import tempfile

PROJECT = ["base", "schemas", "storage", "kernels", "core", "precompute", "train"]
TORCH = "<LibTorch>"
CUDA = "<CUDA>"

# folder -> what it may include besides itself (DESIGN.md "Layout and dependency direction";
# base/ is the standard-library-only layer that every folder may use).
ALLOWED = {
    "base": set(),
    "schemas": {"base"},
    "storage": {"base", "schemas"},
    "kernels": {"base", TORCH, CUDA},
    # core/ may also read shards (storage/ is LibTorch-free and uses nothing of core): the
    # evaluation takes its GT from shards as well as from the nuScenes tables.
    "core": {"base", "schemas", "storage", "kernels", TORCH},
    "precompute": {"base", "schemas", "core", "kernels", "storage", TORCH},
    "train": {"base", "schemas", "core", "kernels", "storage", TORCH},
}
SOURCE_EXT = (".h", ".hpp", ".cpp", ".cc", ".cu", ".cuh")
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def classify(path):
    first = path.split("/", 1)[0]
    if first == "bevkd" and "/" in path:
        first = path.split("/", 2)[1]
    if first in PROJECT and "/" in path:
        return first
    if first in ("torch", "ATen", "c10", "caffe2"):
        return TORCH
    if first in ("cub", "thrust") or re.match(r"^(cuda|cuda_runtime|cuda_fp16|cublas|curand|nvrtc)\w*\.h$", path):
        return CUDA
    return None


def violations(root):
    found = []
    for folder in PROJECT:
        top = os.path.join(root, folder)
        if not os.path.isdir(top):
            continue
        for dirpath, _, files in os.walk(top):
            for name in sorted(files):
                if not name.endswith(SOURCE_EXT):
                    continue
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8", errors="replace") as f:
                    for lineno, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        target = classify(m.group(2))
                        if target is None or target == folder or target in ALLOWED[folder]:
                            continue
                        rel = os.path.relpath(path, root)
                        found.append(f"{rel}:{lineno}: {folder}/ may not include {m.group(2)} "
                                     f"({target}); allowed: {sorted(ALLOWED[folder]) or 'nothing'}")
    return found


def self_test():
    cases = {
        "storage/a.h": ("#include <torch/torch.h>\n", True),
        "storage/b.cpp": ('#include "core/geometry.h"\n', True),
        "precompute/c.cpp": ('#include "train/student.h"\n', True),
        "train/d.cpp": ('#include "precompute/teacher.h"\n', True),
        "kernels/e.cpp": ('#include "core/geometry.h"\n', True),
        "core/f.cpp": ('#include "precompute/teacher.h"\n', True),
        "base/g.h": ("#include <ATen/ATen.h>\n", True),
        "core/ok.cpp": ('#include "kernels/nms.h"\n#include <torch/torch.h>\n#include <vector>\n', False),
        "storage/ok.cpp": ('#include "schemas/schema.h"\n#include <hdf5.h>\n', False),
        "train/ok.cpp": ('#include "storage/shard_stream.h"\n#include "core/geometry.h"\n', False),
    }
    with tempfile.TemporaryDirectory() as root:
        for rel, (text, _) in cases.items():
            os.makedirs(os.path.join(root, os.path.dirname(rel)), exist_ok=True)
            with open(os.path.join(root, rel), "w") as f:
                f.write(text)
        found = violations(root)
    ok = True
    for rel, (_, bad) in cases.items():
        hit = any(v.startswith(rel + ":") for v in found)
        if hit != bad:
            print(f"self-test: {rel}: expected {'a violation' if bad else 'no violation'}, got {found}")
            ok = False
    print("self-test passed" if ok else "self-test FAILED")
    return 0 if ok else 1


def main():
    if len(sys.argv) == 2 and sys.argv[1] == "--self-test":
        return self_test()
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    found = violations(sys.argv[1])
    for v in found:
        print(v)
    print(f"{len(found)} include(s) against DESIGN.md's dependency direction")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
