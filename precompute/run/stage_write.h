// Stage "write" of the run pipeline (serial, in sample order): appends each record to the
// worker's current shard through storage::ShardWriter (written as <shard>.partial, chunks
// compressed on TBB threads, renamed into place only when complete) and, after every shard,
// replaces the worker's manifest (<out>/manifest.worker-III-of-NNN.json, atomically) — so a
// kill at any point leaves finished shards listed or at least valid, and nothing else.
// Skipped samples are recorded in the worker manifest with the shard and the missing files.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "precompute/run/run_batch.h"
#include "precompute/run/shard_plan.h"
#include "storage/manifest.h"
#include "storage/shard_writer.h"

namespace bevkd::precompute {

struct WriteParams {
  std::string out_dir;
  storage::ShardMeta meta;          // shared by every shard; split is set per shard
  storage::WriterOptions writer;
  int worker_index = 0;
  int num_workers = 1;
};

class WriteStage {
 public:
  explicit WriteStage(WriteParams p);
  ~WriteStage();

  // A shard found complete and valid on disk (resume): listed without rewriting.
  void add_existing(const PlannedShard& shard, const storage::ManifestShard& entry,
                    std::vector<storage::SkippedSample> skipped);
  // Saves the worker manifest (also when this worker has nothing left to write).
  void save_manifest() const;

  void begin_shard(const PlannedShard& shard);
  // Appends s.record, or records s as skipped. Throws bevkd::Error from the writer.
  void write(SampleWork& s);
  // Closes the current shard (fsync, rename), lists it and saves the worker manifest.
  void end_shard();

  int64_t samples_written() const { return samples_written_; }
  int64_t samples_skipped() const { return samples_skipped_; }
  int64_t shards_written() const { return shards_written_; }
  // Writer time of every shard so far (closed and current).
  storage::WriterStats stats() const;
  // The worker manifest as saved: shards and skipped samples in plan order.
  storage::Manifest manifest() const;
  std::string manifest_path() const;
  // Every skipped sample so far (plan order).
  std::vector<storage::SkippedSample> skipped() const;

 private:
  WriteParams p_;
  std::map<int64_t, storage::ManifestShard> shards_;                 // plan id -> entry
  std::map<int64_t, std::vector<storage::SkippedSample>> skipped_;  // plan id -> skipped samples
  const PlannedShard* current_ = nullptr;
  std::unique_ptr<storage::ShardWriter> writer_;
  storage::WriterStats closed_stats_;
  int64_t samples_written_ = 0, samples_skipped_ = 0, shards_written_ = 0;
};

}  // namespace bevkd::precompute
