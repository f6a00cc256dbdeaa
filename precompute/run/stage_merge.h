// Stage "merge": joins the workers' manifests into <out>/manifest.json.
//
// Each worker of a run saves <out>/manifest.worker-III-of-NNN.json after every shard it
// finishes (stage_write.h); <out>/shard_plan.json lists every planned shard. The merged manifest
// is written (atomically) only when the worker manifests together list every planned shard:
// shards and skipped samples in plan order, so N workers give the manifest of one. A run merges
// when it finishes and finds the others done; `bevkd-precompute merge` does it explicitly and
// reports missing workers and shards.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace bevkd::precompute {

struct MergeReport {
  int num_workers = 0;
  std::vector<int> missing_workers;          // worker indices without a manifest
  std::vector<std::string> missing_shards;   // planned shards no worker manifest lists
  std::vector<int> incomplete_workers;       // workers whose manifest lacks some of their shards
  std::string manifest_path;                 // written manifest, "" if incomplete
  bool complete() const { return missing_shards.empty(); }
  // "merged 4 worker manifests: 12 shards, 2400 samples -> out/manifest.json" or the missing parts.
  std::string describe() const;
};

// Merges the manifests of `num_workers` workers (std::nullopt: the count of the worker manifests
// present; refused when manifests of several counts are present). Writes manifest.json when
// complete and `write` is true. Throws bevkd::Error naming the file when shard_plan.json or a
// worker manifest is unreadable, or when manifests disagree (Manifest::merge).
MergeReport merge_worker_manifests(const std::string& out_dir, std::optional<int> num_workers, bool write = true);

}  // namespace bevkd::precompute
