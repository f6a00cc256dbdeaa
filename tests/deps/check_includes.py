#!/usr/bin/env python3
"""Enforces DESIGN.md's dependency direction on #include lines.

Usage: check_includes.py <source-root>          exit 1 and list every violation
       check_includes.py --self-test             proves the checker catches violations

Each unit (a top-level folder, or one of core/'s libraries: core, core/eval, core/nn,
core/synth) may include headers of the units listed in ALLOWED (plus itself and the standard
library). External headers are classified by their first path component:
LibTorch (torch/, ATen/, c10/, caffe2/) and CUDA (cuda*.h, cub/, thrust/) are allowed only
where DESIGN.md says so.
"""
import os
import re
import sys
import tempfile

PROJECT = ["base", "schemas", "storage", "kernels", "core", "precompute", "train"]
CORE_UNITS = ("eval", "nn", "synth")  # core/<unit>/ is its own library; the rest of core/ is "core"
TORCH = "<LibTorch>"
CUDA = "<CUDA>"

# folder -> what it may include besides itself (DESIGN.md "Layout and dependency direction";
# base/ is the standard-library-only layer that every folder may use).
ALLOWED = {
    "base": set(),
    "schemas": {"base"},
    "storage": {"base", "schemas"},
    "kernels": {"base", TORCH, CUDA},
    "core": {"base"},
    "core/synth": {"base", "core"},
    # the metrics take GT from shards as well as from the tables: the only core part that reads storage
    "core/eval": {"base", "schemas", "core", "storage"},
    "core/nn": {"base", "core", "core/eval", "kernels", TORCH},
    "precompute": {"base", "schemas", "core", "core/eval", "core/nn", "kernels", "storage", TORCH},
    "train": {"base", "schemas", "core", "core/eval", "core/nn", "kernels", "storage", TORCH},
}
SOURCE_EXT = (".h", ".hpp", ".cpp", ".cc", ".cu", ".cuh")
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def unit_of(path):
    """The unit of a project path ("core/nn/x.h" -> "core/nn", "core/geometry.h" -> "core")."""
    parts = path.split("/")
    if parts[0] == "core" and len(parts) > 2 and parts[1] in CORE_UNITS:
        return "core/" + parts[1]
    return parts[0]


def classify(path):
    if path.startswith("bevkd/"):
        path = path[len("bevkd/"):]
    first = path.split("/", 1)[0]
    if first in PROJECT and "/" in path:
        return unit_of(path)
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
                        rel = os.path.relpath(path, root)
                        unit = unit_of(rel)
                        if target is None or target == unit or target in ALLOWED[unit]:
                            continue
                        found.append(f"{rel}:{lineno}: {unit}/ may not include {m.group(2)} "
                                     f"({target}); allowed: {sorted(ALLOWED[unit]) or 'nothing'}")
    return found


def self_test():
    cases = {
        "storage/a.h": ("#include <torch/torch.h>\n", True),
        "storage/b.cpp": ('#include "core/geometry.h"\n', True),
        "precompute/c.cpp": ('#include "train/student.h"\n', True),
        "train/d.cpp": ('#include "precompute/teacher.h"\n', True),
        "kernels/e.cpp": ('#include "core/geometry.h"\n', True),
        "core/f.cpp": ('#include "precompute/teacher.h"\n', True),
        "core/geometry2.cpp": ('#include "core/nn/center_head.h"\n', True),
        "core/nuscenes/t.cpp": ("#include <torch/torch.h>\n", True),
        "core/eval/m.cpp": ("#include <torch/torch.h>\n", True),
        "core/nn/s.cpp": ('#include "storage/shard_reader.h"\n', True),
        "core/synth/w.cpp": ('#include "core/eval/evaluate.h"\n', True),
        "train/p.cpp": ('#include "precompute/teacher/teacher.h"\n', True),
        "core/nn/ok.cpp": ('#include "core/eval/results_io.h"\n#include "core/geometry.h"\n#include <torch/types.h>\n', False),
        "core/eval/ok.cpp": ('#include "storage/shard_reader.h"\n#include "core/nuscenes/tables.h"\n', False),
        "base/g.h": ("#include <ATen/ATen.h>\n", True),
        "core/ok.cpp": ('#include "base/error.h"\n#include <vector>\n', False),
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
