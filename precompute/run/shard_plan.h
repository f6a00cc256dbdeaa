// The shard plan of a precompute run and its split across workers.
//
// Plan: for each split in the configured order, the split's samples in SAMPLE TABLE order
// (NuScenes::split_samples / samples_of_scenes), cut into consecutive shards of
// samples_per_shard samples (the last one shorter): <split>/shard-00000.h5, shard-00001.h5, ...
// Shards are numbered globally in that order (train's first, then val's); shard g is written by
// worker g mod num_workers. The plan depends only on the tables and the output configuration,
// so every worker, every rerun and `bevkd-precompute merge` compute the same plan, and the
// output of N workers is the output of one.
//
// The worker index and count come from --worker-index / --num-workers, or from a scheduler's
// array-job environment:
//   SLURM   SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT
//   SGE     SGE_TASK_ID - SGE_TASK_FIRST, count (SGE_TASK_LAST - SGE_TASK_FIRST) / SGE_TASK_STEPSIZE + 1
//   Kubernetes indexed Job   JOB_COMPLETION_INDEX (the count from --num-workers)
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/nuscenes/tables.h"
#include "precompute/run/run_config.h"

namespace bevkd::precompute {

struct PlannedShard {
  int64_t id = 0;                      // global index in the plan
  std::string split;
  int64_t index_in_split = 0;
  std::string path;                    // relative to the output directory: "<split>/shard-00000.h5"
  std::vector<std::uint32_t> samples;  // sample table indices, table order
  std::vector<std::string> tokens;     // their sample tokens
};

struct ShardPlan {
  std::vector<PlannedShard> shards;
  std::vector<std::string> splits;
  int64_t num_samples() const;
  // The shard ids worker `index` of `count` writes, ascending.
  std::vector<int64_t> worker_shards(int index, int count) const;
  // {"splits": [...], "shards": [{"id", "split", "path", "num_samples", "first_token"}]} — written
  // to <out>/shard_plan.json for people and for `merge`.
  nlohmann::json to_json() const;
};

// Throws bevkd::Error naming the split when it has no samples, or naming the scenes not found.
ShardPlan plan_shards(const core::nusc::NuScenes& db, const RunConfig& cfg);

// "<split>/shard-00042.h5"
std::string shard_relative_path(const std::string& split, int64_t index_in_split);

struct WorkerAssignment {
  int index = 0;
  int count = 1;
  std::string source = "default";  // "command line", "SLURM array", ...
};

// Resolves the worker from the command line (cli_index / cli_count: std::nullopt when not
// given) and the environment (`getenv`, injectable for tests). The command line wins; an
// environment index without a count needs --num-workers. Throws bevkd::Error naming the
// variables for malformed or inconsistent values.
WorkerAssignment resolve_worker(std::optional<int> cli_index, std::optional<int> cli_count,
                                const std::function<const char*(const char*)>& getenv);

}  // namespace bevkd::precompute
