// manifest.json: the index of a precomputed dataset — which shards exist (path relative to the
// manifest, split, sample count, size, XXH64 of the file), and what they share: the schema
// version, the BEV grid, views, teacher taps, cameras, the teacher's identity, the producer and
// the full resolved producing configuration.
//
//   {
//     "format": "bevkd.manifest", "format_version": 1,
//     "schema": "bevkd.shard", "schema_version": "1.0",
//     "bev_grid": {"range": [...], "cell_size": [0.8, 0.8], "shape": [128, 128]},
//     "num_views": 1, "taps": [{"name": "neck", "channels": 384, "dtype": "float16"}],
//     "fd3d_points": 0, "camera_names": [...], "teacher": {...}, "producer": {...}, "config": {...},
//     "splits": {"train": 1200},
//     "shards": [{"path": "train/shard-00000.h5", "split": "train", "num_samples": 300,
//                 "bytes": 1234567, "xxh64": "0123456789abcdef"}, ...],
//     "skipped_samples": [{"sample_token": "...", "split": "train", "shard": "train/shard-00000.h5",
//                          "reason": "missing files", "files": ["/data/samples/LIDAR_TOP/..."]}]
//   }
//
// skipped_samples lists samples the producer left out on purpose (e.g. bevkd-precompute
// --skip-missing-files); it is optional when reading (older manifests have none).
//
// Only shards that close() renamed into place are ever added, so a manifest never lists a
// ".partial" file. save() replaces the file atomically. Workers that split a split between
// them each save a partial manifest; merge() joins them, refusing disagreements.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "storage/shard_meta.h"
#include "storage/shard_reader.h"
#include "storage/shard_writer.h"

namespace bevkd::storage {

struct ManifestShard {
  std::string path;          // relative to the manifest's directory, '/'-separated
  std::string split;
  std::int64_t num_samples = 0;
  std::uint64_t bytes = 0;   // file size
  std::uint64_t xxh64 = 0;   // XXH64 of the whole file
};

// A sample the producer planned for a shard but left out, and why.
struct SkippedSample {
  std::string sample_token;
  std::string split;
  std::string shard;                // the shard it would have been in, relative path
  std::string reason;               // e.g. "missing files"
  std::vector<std::string> files;   // the files concerned, if any
  bool operator==(const SkippedSample& o) const {
    return sample_token == o.sample_token && split == o.split && shard == o.shard && reason == o.reason &&
           files == o.files;
  }
};

class Manifest {
 public:
  static constexpr const char* kFileName = "manifest.json";

  Manifest() = default;
  // An empty manifest for shards written with `meta` (its identity_json()).
  explicit Manifest(const ShardMeta& meta);

  // Reads and validates; throws bevkd::Error naming the file and the bad entry. dir() becomes
  // the file's directory.
  static Manifest load(const std::string& path);
  // The manifest a command's --shards names: a path ending in .json itself, anything else
  // <path>/manifest.json (an existing directory without one is refused naming the directory).
  static std::string file_of(const std::string& shards);
  // Writes atomically (temporary file, fsync, rename).
  void save(const std::string& path) const;

  // Adds a shard closed by ShardWriter; its path is stored relative to `root` (the directory
  // the manifest will live in) and must lie inside it. Throws on a duplicate path.
  void add(const ShardInfo& info, const std::string& root);
  void add(ManifestShard shard);

  // Joins partial manifests (source name, manifest) — e.g. one per worker — into one. Schema
  // version, grid, views, taps, cameras, teacher, producer and config must agree; a shard
  // listed twice is refused naming both sources. Shards keep the order of the parts.
  static Manifest merge(const std::vector<std::pair<std::string, Manifest>>& parts);

  const std::vector<ManifestShard>& shards() const { return shards_; }
  // Skipped samples (see the file comment); merge() concatenates them in part order.
  void add_skipped(SkippedSample s) { skipped_.push_back(std::move(s)); }
  const std::vector<SkippedSample>& skipped() const { return skipped_; }
  std::vector<std::string> splits() const;  // in first-appearance order
  // Samples over all shards, or of one split.
  std::int64_t num_samples(std::string_view split = {}) const;

  const nlohmann::json& identity() const { return identity_; }
  SchemaVersion schema_version() const { return schema_version_; }
  // The shards' schema version (default: this build's); set for shards written as an older minor.
  void set_schema_version(SchemaVersion v) { schema_version_ = v; }
  BevGrid grid() const;
  std::int64_t num_views() const;
  std::vector<TapSpec> taps() const;

  // Directory the shard paths are relative to (set by load(); "." by default).
  const std::string& dir() const { return dir_; }
  void set_dir(std::string dir) { dir_ = std::move(dir); }
  std::string shard_path(const ManifestShard& s) const;
  // How to open a listed shard: its size from the manifest, checked before HDF5 opens it, and
  // with `check_hash` its XXH64 too (one read of the whole file; see ShardReader).
  OpenOptions open_options(const ManifestShard& s, bool check_hash) const;

  // Throws bevkd::Error naming `where` and the first differing key unless a shard's header
  // agrees with this manifest (identity and sample count of `entry`).
  void check_shard(const ShardHeader& h, const ManifestShard& entry, std::string_view where) const;

  nlohmann::json to_json() const;
  static Manifest from_json(const nlohmann::json& j, std::string_view source);

 private:
  SchemaVersion schema_version_ = Schema::current().version();
  nlohmann::json identity_ = nlohmann::json::object();
  std::vector<ManifestShard> shards_;
  std::vector<SkippedSample> skipped_;
  std::string dir_ = ".";
};

// "manifest.worker-003-of-008.json": the partial manifest of one worker.
std::string worker_manifest_name(int worker_index, int num_workers);

}  // namespace bevkd::storage
