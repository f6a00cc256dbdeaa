#!/usr/bin/env python3
"""Reads a shard written by bevkd with stock Python tools and compares every dataset with the
values the C++ test wrote beside it (index.json + .npy files), in two independent ways:

1. through HDF5's own filter pipeline: h5py (Debian's python3-h5py, with python3-hdf5plugin
   imported) reads each dataset; HDF5 applies the declared filters itself — the shuffle filter
   and zstd (32015) from the plugin found on HDF5_PLUGIN_PATH;
2. without HDF5's pipeline or any bevkd code: every raw chunk is fetched with
   read_direct_chunk, decompressed with python3-zstandard and un-shuffled with numpy
   following HDF5's filter mask, then placed by its chunk offset.

Usage: h5py_interop.py <shard.h5> <dir with index.json and .npy files>
Prints "interop OK: <n> datasets" and exits 0, or lists every mismatch and exits 1.
"""
import json
import os
import sys

import hdf5plugin  # noqa: F401  (Debian's build registers no zstd filter; the plugin path does)
import h5py
import numpy as np
import zstandard

ZSTD, SHUFFLE = 32015, 2


def decode_by_hand(dset):
    """The dataset decoded chunk by chunk with zstandard + numpy, bypassing HDF5's filters."""
    plist = dset.id.get_create_plist()
    pipeline = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    chunk = dset.chunks
    itemsize = dset.dtype.itemsize
    out = np.zeros(dset.shape, dtype=dset.dtype)
    for k in range(dset.id.get_num_chunks()):
        info = dset.id.get_chunk_info(k)
        mask, raw = dset.id.read_direct_chunk(info.chunk_offset)
        data = bytes(raw)
        for bit, fid in reversed(list(enumerate(pipeline))):
            if mask & (1 << bit):
                continue  # filter skipped for this chunk
            if fid == ZSTD:
                data = zstandard.ZstdDecompressor().decompress(data)
            elif fid == SHUFFLE:
                planes = np.frombuffer(data, np.uint8).reshape(itemsize, -1)
                data = planes.T.tobytes()
            else:
                raise ValueError(f"unexpected filter {fid}")
        block = np.frombuffer(data, dtype=dset.dtype).reshape(chunk)
        sel = tuple(slice(o, min(o + c, s)) for o, c, s in zip(info.chunk_offset, chunk, dset.shape))
        out[sel] = block[tuple(slice(0, s.stop - s.start) for s in sel)]
    return out, pipeline


def compare(name, got, want, problems, how):
    if got.dtype != want.dtype or got.shape != want.shape:
        problems.append(f"{name} ({how}): {got.dtype}{got.shape}, expected {want.dtype}{want.shape}")
    elif not np.array_equal(got, want):
        bad = np.argwhere(got != want)
        problems.append(f"{name} ({how}): {len(bad)} values differ, first at {tuple(bad[0])}")


def main(shard, expected_dir):
    with open(os.path.join(expected_dir, "index.json")) as f:
        index = json.load(f)
    problems = []
    with h5py.File(shard, "r") as h5:
        # Schema 1.2 stores fixed-length UTF-8 string attributes: h5py gives bytes.
        def text(v):
            return v.decode("utf-8") if isinstance(v, bytes) else str(v)
        if text(h5.attrs["schema_name"]) != "bevkd.shard" or text(h5.attrs["schema_version"]) != index["schema_version"]:
            problems.append(f"attributes: {dict(h5.attrs)}")
        if json.loads(text(h5.attrs["config"])) != index["config"]:
            problems.append(f"config attribute: {h5.attrs['config']!r}")
        names = []
        h5.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        missing = sorted(set(index["datasets"]) - set(names))
        if missing:
            problems.append(f"datasets missing from the file: {missing}")
        for name, npy in index["datasets"].items():
            want = np.load(os.path.join(expected_dir, npy))
            dset = h5[name]
            compare(name, dset[...], want, problems, "h5py + HDF5 filter pipeline")
            if name in index["shuffled"]:
                by_hand, pipeline = decode_by_hand(dset)
                compare(name, by_hand, want, problems, "raw chunks + zstandard + numpy")
                expected = ([SHUFFLE] if index["shuffled"][name] else []) + [ZSTD]
                if pipeline != expected:
                    problems.append(f"{name}: filter pipeline {pipeline}, expected {expected}")
        if h5["teacher/features/neck"].dtype != np.float16:
            problems.append("teacher/features/neck is not read as numpy float16")
    for p in problems:
        print("MISMATCH", p)
    if problems:
        return 1
    print(f"interop OK: {len(index['datasets'])} datasets")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
