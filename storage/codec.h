// The chunk codec of the shard format: HDF5's byte shuffle (filter 2) followed by zstd (the
// registered HDF5 filter 32015, cd_values[0] = level), applied by bevkd outside HDF5 so that
// compression runs on TBB threads and decompression outside HDF5's global lock. The bytes are
// exactly what HDF5's own pipeline produces and consumes, so stock readers (h5py + hdf5plugin,
// h5dump with the zstd plugin) decode bevkd shards.
//
// Filter masks follow HDF5: bit k set = filter k of the dataset's pipeline was skipped for this
// chunk. Pipelines are [shuffle, zstd] or [zstd] (one-byte elements); both filters are declared
// optional, so a chunk that zstd does not shrink is stored raw with its zstd bit set.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bevkd::storage {

inline constexpr int kShuffleFilterId = 2;     // H5Z_FILTER_SHUFFLE
inline constexpr int kZstdFilterId = 32015;    // registered HDF5 filter id of Zstandard

struct CodecOptions {
  int level = 3;               // zstd level (1..19; negative = fast modes)
  // Byte shuffle before zstd for elements wider than one byte. Off by default: on ReLU'd float16
  // teacher features it saves 1.5-4% of the bytes but slows decoding by about 20%
  // (bench/shard_stream_bench.cpp, README "Shard store").
  bool shuffle = false;
  bool frame_checksum = true;  // zstd's own frame checksum: corruption fails the decode itself
};

// One chunk as stored: the bytes and the HDF5 filter mask.
struct EncodedChunk {
  std::vector<std::byte> bytes;
  std::uint32_t filter_mask = 0;
};

// Encodes `nbytes` raw bytes of elements of `itemsize` bytes for a dataset whose pipeline has
// the shuffle filter iff `shuffle`. Reuses out->bytes' capacity. Thread-safe (thread-local
// contexts).
void encode_chunk(const std::byte* raw, std::size_t nbytes, std::size_t itemsize, bool shuffle,
                  const CodecOptions& opts, EncodedChunk* out);

// Decodes a stored chunk into exactly `nbytes` bytes at `dst`. Throws bevkd::Error with what
// went wrong (zstd's message, wrong decoded size) — callers prefix shard, dataset and sample.
void decode_chunk(const std::byte* stored, std::size_t stored_bytes, std::uint32_t filter_mask, bool shuffle,
                  std::size_t itemsize, std::byte* dst, std::size_t nbytes);

// HDF5's shuffle: byte j of element i goes to position j * n + i (n = nbytes / itemsize); a
// remainder of nbytes % itemsize bytes is copied unchanged at the end.
void byte_shuffle(const std::byte* src, std::byte* dst, std::size_t nbytes, std::size_t itemsize);
void byte_unshuffle(const std::byte* src, std::byte* dst, std::size_t nbytes, std::size_t itemsize);

// Single-threaded zstd decompression of one frame into exactly `capacity` bytes (no shuffle):
// the reference rate the streaming benchmark compares against. Returns the decoded size.
std::size_t zstd_decompress(const std::byte* src, std::size_t n, std::byte* dst, std::size_t capacity);

// XXH64 with seed 0 (the schema's checksum), of a buffer or of a whole file (streamed).
std::uint64_t xxh64(const void* data, std::size_t n);
std::uint64_t xxh64_file(const std::string& path);
// 16 lower-case hex digits, and back (throws bevkd::Error naming `where`).
std::string hex64(std::uint64_t v);
std::uint64_t parse_hex64(std::string_view s, std::string_view where);

}  // namespace bevkd::storage
