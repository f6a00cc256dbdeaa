// ShardWriter: writes one shard (schemas/SHARD_FORMAT.md) by appending samples one at a time.
//
//   ShardMeta meta = ...;                              // grid, views, taps, teacher, config, ...
//   ShardWriter w(out + "/train/shard-00003.h5", meta);  // WriterOptions: zstd level, shuffle
//   for (...) w.append(std::move(sample));             // validated, compressed on TBB threads
//   ShardInfo info = w.close();                        // renamed into place; for the manifest
//
// Streaming: a sample's fixed fields are compressed as soon as it is appended and written as
// one chunk per sample (or per sample and view) with HDF5 direct chunk I/O; ragged rows are
// buffered only until a chunk of chunk_rows rows is full. At most `max_pending_samples` samples
// are held in memory at a time, so a shard is never buffered whole.
//
// Crash safety: the file is written as "<path>.partial" and renamed to `path` only by close(),
// after it is flushed and fsync'ed; a rerun opening the same path replaces a stale .partial.
// A killed writer leaves only the .partial file, which no manifest lists and every reader
// refuses with a message saying what it is.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "storage/array.h"
#include "storage/codec.h"
#include "storage/shard_layout.h"
#include "storage/shard_meta.h"

namespace bevkd::storage {

struct WriterOptions {
  CodecOptions codec;               // zstd level, byte shuffle, zstd frame checksum
  int max_pending_samples = 3;      // appended samples whose chunks may still be compressing
  bool check_finite = true;         // refuse NaN/inf in float fields
  // The created_utc attribute: "" = the time the shard is opened; any other value is written
  // as given. With a fixed value the same samples give a byte-identical file (HDF5 object
  // modification times are never recorded), which makes reruns and resumed runs reproducible.
  std::string created_utc;
  // The schema version to write: the current one by default. An older minor version of this
  // major (writable_schema_versions()) writes exactly what that version's writer wrote — its
  // datasets (1.0: no teacher/class_probs, the optional fd3d group) and its HDF5 layout (before
  // 1.2: dense link and attribute storage, variable-length string attributes) — so that tests
  // and tools can make shards of every version this build must read.
  SchemaVersion schema_version = Schema::current().version();
};

// The schema versions ShardWriter can write (every minor version of the current major), oldest first.
const std::vector<SchemaVersion>& writable_schema_versions();

// Where a writer's time went (seconds, summed over threads), for pipeline timings.
struct WriterStats {
  double encode_s = 0;    // shuffle + zstd of chunks (TBB tasks)
  double checksum_s = 0;  // XXH64 and finiteness checks of fields (TBB tasks)
  double write_s = 0;     // HDF5 chunk writes, index datasets, flush, fsync and rename
};

// What close() reports: the manifest entry of the shard.
struct ShardInfo {
  std::string path;               // final path of the shard
  std::string split;
  std::int64_t num_samples = 0;
  std::uint64_t bytes = 0;        // file size
  std::uint64_t xxh64 = 0;        // XXH64 of the whole file
  std::uint64_t raw_bytes = 0;    // decoded bytes of every field of every sample
};

// The temporary name a shard is written under.
std::string partial_path(const std::string& shard_path);
inline constexpr const char* kPartialSuffix = ".partial";

class ShardWriter {
 public:
  // Creates "<path>.partial" (replacing a stale one), the parent directories, every dataset of
  // the layout `meta` implies, and the file attributes. Throws bevkd::Error naming the path.
  ShardWriter(std::string path, ShardMeta meta, WriterOptions opts = {});
  // Without close(): abandons the shard (waits for pending work, deletes the .partial file).
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // Appends the next sample. It must hold exactly the layout's fields (see storage/array.h for
  // the per-sample shapes: fixed fields without N, ragged fields as [rows, ...] + segments).
  // Throws bevkd::Error naming the shard, the sample index and the field for an unknown or
  // missing field, a wrong dtype, a shape that contradicts the schema's symbolic dimensions,
  // inconsistent ragged segments, or (with check_finite) NaN/inf values. After an error the
  // writer refuses further appends; its destructor removes the .partial file.
  void append(Sample&& sample);
  void append(const Sample& sample);  // copies

  // Finishes every chunk, writes offsets, checksums and num_samples, closes, fsyncs and renames
  // the file to its final path, then hashes it. A shard with zero samples is valid.
  ShardInfo close();
  // Stops and removes the .partial file (also what the destructor does without close()).
  void abandon();

  std::int64_t num_samples() const;  // appended so far
  WriterStats stats() const;         // so far (thread-safe)
  const std::string& path() const;
  const ShardMeta& meta() const;
  const ShardLayout& layout() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace bevkd::storage
