// Evaluation of a teacher on a nuScenes-format split with the official detection metrics
// (core/eval): runs the teacher over every key frame, writes the results JSON (global frame) and
// the metrics summary, and returns mAP and NDS.
#pragma once

#include <cstdint>
#include <string>

#include "precompute/teacher/teacher.h"

namespace bevkd::precompute {

struct TeacherEvalOptions {
  std::string dataroot;
  std::string version = "v1.0-mini";
  std::string split = "mini_val";
  int64_t num_sweeps = 10;
  int64_t batch_size = 4;
  std::string out_dir;  // results_nusc.json and metrics_summary.json go here
  bool quiet = false;

  template <class V>
  void fields(V& v) {
    v("dataroot", dataroot, "--dataroot", "nuScenes-format dataset root");
    v("version", version, "--version", "dataset version folder");
    v("split", split, "--split", "split to evaluate on");
    v("num_sweeps", num_sweeps, "--sweeps", "LiDAR sweeps per key frame, key frame included");
    v("batch_size", batch_size, "--batch-size", "samples per teacher call");
    v("out_dir", out_dir, "--out", "output directory (results_nusc.json, metrics_summary.json, plots/)");
    v("quiet", quiet, "--quiet", "no progress line or table");
  }
};

struct TeacherEvalResult {
  double map = 0;
  double nds = 0;
  std::string metrics_path;
  std::string results_path;
  std::string table;  // the per-class table as printed
};

TeacherEvalResult evaluate_teacher(Teacher& teacher, const TeacherEvalOptions& opts);

}  // namespace bevkd::precompute
