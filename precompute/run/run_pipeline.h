// `bevkd-precompute run`: the teacher over one or more splits into shard format v1 (DESIGN.md).
//
//   plan (shard_plan.h) ──► resume check ──► TBB pipeline, batches of one shard at a time:
//     read (parallel) ─► voxelize (parallel) ─► infer (serial, batched) ─► post-process (parallel)
//       ─► write (serial, in order; compression on the shard writer's TBB tasks)
//   ──► worker manifest after every shard ──► manifest.json when every worker is done (stage_merge.h)
//
// Outputs in cfg.out_dir:
//   precompute_config.json         the output configuration + teacher identity (checked on reruns)
//   shard_plan.json                every planned shard (split, path, samples)
//   <split>/shard-00000.h5 ...     the shards (written as .partial, renamed when complete)
//   manifest.worker-III-of-NNN.json  this worker's shards and skipped samples
//   manifest.json                  all shards, once every worker has finished
//   reports/run-worker-III-of-NNN.json  timings, counts, skipped samples, runtime config
//
// Resume: shards of this worker that exist complete, with this configuration and the planned
// samples are kept; others (and .partial leftovers) are written again. A rerun into a directory
// written with another output configuration or teacher is refused, naming the first differing
// key. Determinism: the same inputs, teacher, configuration, created_utc and --threads give
// byte-identical shards, whatever the worker split, pipeline depth or interruptions. (LibTorch's
// convolutions split their reductions by the intra-op thread count, so features computed with
// another --threads differ in the last bits: give every worker the same --threads.)
#pragma once

#include <array>
#include <cstdint>
#include <iosfwd>
#include <string>

#include <nlohmann/json.hpp>

#include "precompute/run/run_batch.h"
#include "precompute/run/run_config.h"
#include "precompute/run/stage_merge.h"

namespace bevkd::precompute {

struct RunResult {
  int64_t planned_samples = 0;     // samples of this worker's shards
  int64_t samples_written = 0;     // by this invocation
  int64_t samples_skipped = 0;     // in this worker's shards (missing files), incl. kept shards
  int64_t shards_written = 0;
  int64_t shards_kept = 0;         // found complete and valid (resume)
  int64_t saturated_values = 0;    // float16 saturations
  int64_t nonfinite_points_dropped = 0;  // NaN/Inf LiDAR points dropped (--drop-nonfinite-points)
  double wall_s = 0;               // the pipeline's wall time
  std::array<double, StageClock::kNumStages> stage_s{};  // see run_pipeline.cpp: per-stage seconds
  std::string worker_manifest;
  std::string report_path;
  MergeReport merge;

  // The stage table printed at the end (and its JSON in the report).
  std::string timing_table() const;
  nlohmann::json timings_json() const;
};

// Runs the worker cfg.worker_index of cfg.num_workers. Progress and notes go to `log`.
// Throws bevkd::Error (bad configuration, a refused rerun, a missing file without
// skip_missing_files, a teacher or writer error); the shards finished before stay valid.
RunResult run_precompute(const RunConfig& cfg, std::ostream& log);

}  // namespace bevkd::precompute
