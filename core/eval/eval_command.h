// What bevkd-eval does, behind its thin main (STYLE.md "Mains are thin"): load the ground
// truth, read and validate the results file, evaluate, print the devkit's summary and write
// metrics_summary.json, metrics_details.json, PR-curve PNGs and the resolved configuration
// (eval_config.json) into the output directory.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "core/eval/evaluate.h"

namespace bevkd::core::eval {

struct EvalCommandConfig {
  std::string results_path;  // the results JSON (submission format)
  // Ground truth: a nuScenes dataroot with a version and a split (or a scene list) ...
  std::string dataroot;
  std::string version = "v1.0-trainval";
  std::string split = "val";
  std::vector<std::string> scenes;  // instead of split: these scenes (a custom split)
  // ... or bevkd shards: a manifest.json (or its directory) with `split` (the GT stored in them).
  std::string shards;
  std::string config_path;          // detection config in the devkit's JSON format; "": detection_cvpr_2019
  std::string output_dir;           // "": the results file's directory
  bool plots = true;                // PR-curve PNGs
  bool quiet = false;               // no progress lines, no filter counts
  int threads = 0;                  // 0: all cores

  // Checks that exactly one GT source is given and the paths are set; bevkd::Error otherwise.
  void validate() const;
  // The output directory actually used.
  std::string resolved_output_dir() const;
};

// The resolved configuration (command settings and the detection config) as JSON.
std::string eval_command_json(const EvalCommandConfig& cfg, const DetectionConfig& det);

// Runs the evaluation; the summary table goes to `out`, progress and logs to stderr.
EvalResult run_eval_command(const EvalCommandConfig& cfg, std::ostream& out);

}  // namespace bevkd::core::eval
