// The teacher boxes stored in shards as a nuScenes results JSON (core/eval), so that the stored
// teacher can be scored against the stored GT without the tables:
//
//   bevkd-precompute export-results --shards OUT --split mini_val -o teacher_results.json
//   bevkd-eval --shards OUT --split mini_val --results teacher_results.json
//
// Per sample of the split (manifest shard order, sample order): view 0's teacher/boxes
// (key-frame ego frame) moved to the global frame through ego2global, teacher/scores,
// teacher/labels mapped through the shard's class_names, and mmdetection3d's default attribute
// of the class (the teacher predicts none); at most `max_boxes_per_sample` boxes by score.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bevkd::precompute {

struct ExportResultsOptions {
  std::string shards;           // a manifest.json or the directory holding it
  std::string split;
  std::string out;              // the results JSON to write (atomically)
  int max_boxes_per_sample = 500;

  template <class V>
  void fields(V& v) {
    v("shards", shards, "--shards", "manifest.json or the directory holding it");
    v("split", split, "--split", "split to export");
    v("out", out, "-o,--out", "results JSON to write");
    v("max_boxes_per_sample", max_boxes_per_sample, "--max-boxes", "boxes per sample at most (by score)");
  }
};

struct ExportResultsSummary {
  int64_t samples = 0;
  int64_t boxes = 0;
  // Damaged shards (or samples) that could not be read, each naming the file, left out of the
  // results; the other shards are exported (bevkd-precompute exits 2 when this is not empty).
  std::vector<std::string> unreadable;
};

// Throws bevkd::Error naming the manifest or shard when the split has no readable sample or a
// class name is not a detection class.
ExportResultsSummary export_teacher_results(const ExportResultsOptions& opts);

}  // namespace bevkd::precompute
