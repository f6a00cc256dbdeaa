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
  std::string detection_config;     // detection config in the devkit's JSON format; "": detection_cvpr_2019
  std::string output_dir;           // "": the results file's directory
  bool plots = true;                // PR-curve PNGs
  bool quiet = false;               // no progress lines, no filter counts
  int threads = 0;                  // 0: all cores

  // Checks that exactly one GT source is given and the paths are set; bevkd::Error otherwise.
  void validate() const;

  template <class V>
  void fields(V& v) {
    v("results", results_path, "results", "results JSON in the nuScenes submission format");
    v("dataroot", dataroot, "--dataroot", "ground truth from a nuScenes dataroot (holds <version>/*.json)");
    v("version", version, "--version", "dataset version directory");
    v("split", split, "--split",
      "split: train, val, test, mini_train, mini_val, train_detect, train_track, or one of "
      "<dataroot>/<version>/splits.json");
    v("scenes", scenes, "--scenes", "evaluate these scenes instead of a split (a custom split)");
    v("shards", shards, "--shards", "ground truth from bevkd shards: their manifest.json or its directory (with --split)");
    v("detection_config", detection_config, "--detection-config",
      "detection config in the devkit's JSON format (default: detection_cvpr_2019)");
    v("output_dir", output_dir, "--output-dir",
      "where metrics_summary.json, metrics_details.json and plots/ go (default: the results file's directory)");
    v("plots", plots, "--plots,!--no-plots", "PR-curve PNGs");
    v("quiet", quiet, "--quiet", "no progress lines or logs, only the summary table");
    v("threads", threads, "--threads", "threads for reading and matching (0: all cores)");
  }
  // The output directory actually used.
  std::string resolved_output_dir() const;
};

// Writes the resolved configuration into the output directory: eval_config.json (this command's
// fields with output_dir resolved and detection_config naming detection_config.json, so that
// `bevkd-eval --config <out>/eval_config.json` repeats the evaluation) and detection_config.json
// (the detection config used, in the devkit's format).
void write_eval_config(const EvalCommandConfig& cfg, const DetectionConfig& det, const std::string& out_dir);

// Runs the evaluation; the summary table goes to `out`, progress and logs to stderr.
EvalResult run_eval_command(const EvalCommandConfig& cfg, std::ostream& out);

}  // namespace bevkd::core::eval
