// ShardReader: opens one shard, validates it against the schema before anything is read, and
// decodes samples or selected fields of samples into plain buffers.
//
//   ShardReader r("out/train/shard-00003.h5");        // throws bevkd::Error if not valid
//   Sample s = r.read(17, {"gt/*", "teacher/features/neck"});
//   const Array& neck = s.get("teacher/features/neck");   // float16 [V, C, H, W]
//
// Validation at open: schema name and version (another major is refused; a newer minor is
// accepted and its unknown datasets ignored), every attribute of the schema with its type, the
// BEV grid, then every dataset the attributes imply: presence, dtype, shape against the
// symbolic dimensions, chunk shape and filter pipeline; ragged offsets (monotone, ending at the
// flat dataset's length) and the checksum table. An unknown dataset in a shard of this or an
// older minor version is an error. Every earlier minor version reads with its own datasets; a
// field a shard's version does not have (teacher/class_probs in a 1.0 shard) is refused by name
// when asked for, naming the version that writes it.
//
// Damaged files (schemas/SHARD_FORMAT.md "Integrity"): a damaged shard gives a bevkd::Error
// naming it and never crashes the process. With the manifest's size and XXH64 in OpenOptions the
// file is checked before HDF5 sees it; HDF5 then checks every metadata byte of a 1.2 shard
// against its own checksums. Groups are listed in HDF5's native order (h5::list_datasets). The
// variable-length string attributes of a 1.0/1.1 shard live in HDF5's global heap, which has no
// checksum and can crash libhdf5 1.10: they are read in a forked child process unless the
// file's hash was checked first (once per process and unchanged file: a reopen reuses the texts).
//
// Reading: each chunk is fetched raw under HDF5's lock (H5Dread_chunk) and decompressed outside
// it, so several threads decode in parallel. All const methods are thread-safe. Ragged chunks
// hold many samples; a small per-thread cache of decoded ragged chunks makes neighbouring
// samples cheap.
#pragma once

#include <cstdint>
#include <memory>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "storage/array.h"
#include "storage/shard_layout.h"
#include "storage/shard_meta.h"

namespace bevkd::storage {

struct ReadOptions {
  bool verify = false;   // compare every decoded field with its stored XXH64 (throws on mismatch)
  int view = -1;         // >= 0: only this view of per-view fields (features, heatmap, fg_mask,
                         // view/bda, teacher/det and fd3d rows); -1: all views
};

// The per-sample shape of a field: fixed [V, C, H, W]; ragged [rows, ...] + segment lengths.
struct FieldShape {
  DType dtype = DType::kFloat32;
  std::size_t itemsize = 0;
  std::vector<std::int64_t> shape;
  std::vector<std::int64_t> segments;
  std::size_t nbytes() const { return static_cast<std::size_t>(shape_numel(shape)) * itemsize; }
};

// One problem found by verify_sample().
struct SampleProblem {
  std::int64_t sample = 0;
  std::string field;
  std::string message;  // complete, names the shard, dataset and sample
};

// Bytes of one dataset: as stored (compressed) and decoded.
struct DatasetStats {
  std::uint64_t stored_bytes = 0;
  std::uint64_t raw_bytes = 0;
  std::vector<std::int64_t> shape;  // full dataset shape
  std::string filters;              // "shuffle+zstd(3)"
};

// How a shard is opened: what the manifest says about the file, checked before HDF5 opens it.
struct OpenOptions {
  std::uint64_t expected_bytes = 0;             // file size from the manifest; 0 = unknown
  std::optional<std::uint64_t> expected_xxh64;  // XXH64 of the whole file from the manifest
  bool check_hash = false;                      // hash the whole file (one read of it) and compare
  // The caller has just compared the whole file's size and XXH64 with the manifest itself
  // (bevkd-inspect verify does): the file is exactly what the writer wrote.
  bool hash_verified_by_caller = false;
  // Read a 1.0/1.1 shard's variable-length string attributes in a forked child process unless
  // the whole file's hash was checked (see above). Off only for benchmarks and tests.
  bool legacy_attributes_in_child = true;
  double legacy_attribute_timeout_s = 10.0;  // the child is killed after this (HDF5 may loop)
};

class ShardReader {
 public:
  // Opens and validates; throws bevkd::Error naming the file and what is wrong (for a
  // ".partial" file: that it is an unfinished shard left by a stopped writer; for a damaged
  // file: that it is corrupt, with HDF5's or the checksum's words).
  explicit ShardReader(const std::string& path, const OpenOptions& opts = {});
  ~ShardReader();
  ShardReader(const ShardReader&) = delete;
  ShardReader& operator=(const ShardReader&) = delete;

  const std::string& path() const;
  std::int64_t num_samples() const;
  const ShardHeader& header() const;
  const ShardLayout& layout() const;
  // Datasets of a newer minor version that this build does not know (ignored).
  const std::vector<std::string>& ignored_datasets() const;
  // Whether the whole file matched the manifest's XXH64 before it was opened.
  bool file_hash_checked() const;
  // Whether the shard's string attributes are fixed-length, in the checksummed object header
  // (schema 1.2 on); false for a 1.0/1.1 shard, whose attributes a shard-only verify cannot check.
  bool attributes_checksummed() const;

  // Field indices for selectors ("gt/*", exact names, "*"; empty = all), see ShardLayout::select.
  std::vector<int> select(const std::vector<std::string>& selectors) const;

  // Reads the selected fields of sample i. Throws bevkd::Error naming the shard, dataset and
  // sample when a chunk is missing, cannot be decoded, or (opts.verify) fails its checksum.
  Sample read(std::int64_t i, const std::vector<std::string>& selectors = {}, const ReadOptions& opts = {}) const;
  // The same with names as views (e.g. the schemas/shard_names.h constants).
  Sample read(std::int64_t i, std::initializer_list<std::string_view> selectors, const ReadOptions& opts = {}) const {
    return read(i, std::vector<std::string>(selectors.begin(), selectors.end()), opts);
  }
  Sample read_fields(std::int64_t i, const std::vector<int>& fields, const ReadOptions& opts = {}) const;
  Array read_field(std::int64_t i, std::string_view field, const ReadOptions& opts = {}) const;

  // Shape and size of sample i's field, e.g. to allocate caller memory (a pinned buffer, a
  // tensor) before read_field_into.
  FieldShape field_shape(std::int64_t i, std::string_view field, int view = -1) const;
  // Decodes sample i's field into caller memory of at least field_shape(...).nbytes() bytes
  // (contiguous, row-major). Returns the shape written.
  FieldShape read_field_into(std::int64_t i, std::string_view field, void* dst, std::size_t capacity,
                             const ReadOptions& opts = {}) const;

  // Stored XXH64 of sample i's field (all views).
  std::uint64_t stored_checksum(std::int64_t i, std::string_view field) const;
  // Decodes and checksums every field of sample i; never throws for data errors, returns them.
  std::vector<SampleProblem> verify_sample(std::int64_t i) const;

  DatasetStats dataset_stats(std::string_view field) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// ".partial" files under `dir` (recursively): shards whose writer was stopped before close().
std::vector<std::string> find_partial_shards(const std::string& dir);

}  // namespace bevkd::storage
