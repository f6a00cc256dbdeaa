#!/usr/bin/env python3
"""Converts torchvision ResNet weights into the file bevkd-train's `--init` reads.

`torch.save(model.state_dict())` (and torchvision's downloaded `resnet50-*.pth`) pickles a
`collections.OrderedDict` with a `_metadata` attribute; LibTorch 1.13's unpickler
(torch::pickle_load) cannot read that. This script writes the same tensors as a plain
`dict` {str: Tensor} with torch.save's zip format, which LibTorch reads
(train/student/torchvision_init.h).

Usage:
  convert_torchvision_weights.py IN OUT [--key state_dict] [--strip-prefix module.]

IN may be a state dict or a training checkpoint holding one under `state_dict` or `model`
(or under --key). --strip-prefix keeps only the keys starting with the prefix and removes it
(e.g. `module.` from DataParallel, `backbone.` from a detector). Tensors are written contiguous
and detached, in their own storage; dtypes are kept (the loader converts floating values to
float32). Prints one summary line. Needs only PyTorch (no torchvision).
"""
import argparse
import collections.abc
import sys

import torch


def find_state_dict(obj, key):
    """The {name: Tensor} mapping inside `obj`."""
    if key is not None:
        if not isinstance(obj, collections.abc.Mapping) or key not in obj:
            sys.exit(f"error: the file has no entry '{key}'")
        return obj[key]
    if isinstance(obj, collections.abc.Mapping):
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
        for k in ("state_dict", "model"):
            if k in obj and isinstance(obj[k], collections.abc.Mapping):
                return obj[k]
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    sys.exit("error: no state dict found (expected a dict of tensors, or one under 'state_dict' / 'model'; "
             "name it with --key)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--key", help="entry of IN holding the state dict")
    ap.add_argument("--strip-prefix", default="", help="keep only keys with this prefix, removing it")
    args = ap.parse_args()

    obj = torch.load(args.input, map_location="cpu")
    state = find_state_dict(obj, args.key)
    out = {}
    for name, value in state.items():
        if not isinstance(name, str):
            sys.exit(f"error: key {name!r} is not a string")
        if not isinstance(value, torch.Tensor):
            sys.exit(f"error: entry {name} is a {type(value).__name__}, expected a tensor")
        if args.strip_prefix:
            if not name.startswith(args.strip_prefix):
                continue
            name = name[len(args.strip_prefix):]
        out[name] = value.detach().contiguous().clone()
    if not out:
        sys.exit("error: no tensors to write" + (f" with prefix '{args.strip_prefix}'" if args.strip_prefix else ""))
    torch.save(dict(out), args.output)  # a plain dict; zip format (PyTorch >= 1.6)
    count = sum(t.numel() for t in out.values())
    print(f"wrote {args.output}: {len(out)} tensors, {count} values")


if __name__ == "__main__":
    main()
