#include "core/eval/eval_command.h"

#include <chrono>
#include <iostream>

#include "base/config.h"
#include "base/error.h"
#include "base/fs.h"
#include "core/eval/gt_nuscenes.h"
#include "core/eval/gt_shards.h"
#include "core/eval/report.h"
#include "core/eval/results_io.h"
#include "core/nuscenes/tables.h"

namespace bevkd::core::eval {

void EvalCommandConfig::validate() const {
  BEVKD_CHECK(!results_path.empty(), "no results file given");
  BEVKD_CHECK(!dataroot.empty() || !shards.empty(),
              "no ground truth given (--dataroot with --version and --split or --scenes, or --shards with --split)");
  BEVKD_CHECK(dataroot.empty() || shards.empty(), "give one ground truth source, --dataroot or --shards, not both");
  BEVKD_CHECK(shards.empty() || scenes.empty(), "--scenes needs --dataroot; with --shards use --split");
  BEVKD_CHECK(!version.empty(), "--version is empty");
  BEVKD_CHECK(scenes.empty() || !split.empty(), "--split is empty");
}

std::string EvalCommandConfig::resolved_output_dir() const {
  if (!output_dir.empty()) return output_dir;
  const auto slash = results_path.find_last_of('/');
  return slash == std::string::npos ? std::string(".") : results_path.substr(0, slash == 0 ? 1 : slash);
}

void write_eval_config(const EvalCommandConfig& cfg, const DetectionConfig& det, const std::string& out_dir) {
  make_dirs(out_dir);
  const std::string det_path = out_dir + "/detection_config.json";
  write_file_atomic(det_path, detection_config_json(det));
  EvalCommandConfig resolved = cfg;
  resolved.output_dir = out_dir;
  resolved.detection_config = det_path;
  write_file_atomic(out_dir + "/eval_config.json", config::to_json(resolved).dump(2) + "\n");
}

EvalResult run_eval_command(const EvalCommandConfig& cfg, std::ostream& out) {
  cfg.validate();
  const DetectionConfig det =
      cfg.detection_config.empty() ? DetectionConfig::cvpr_2019() : load_detection_config(cfg.detection_config);
  const std::string out_dir = cfg.resolved_output_dir();
  write_eval_config(cfg, det, out_dir);
  if (!cfg.quiet) std::cerr << "bevkd-eval configuration (" << out_dir << "/eval_config.json):\n"
                            << config::to_json(cfg).dump(2) << "\n";

  const auto t0 = std::chrono::steady_clock::now();
  const GroundTruth gt = [&] {
    if (!cfg.shards.empty()) return shard_ground_truth(cfg.shards, cfg.split);
    nusc::LoadOptions lo;
    lo.show_progress = !cfg.quiet;
    const nusc::NuScenes db = nusc::NuScenes::load(cfg.dataroot, cfg.version, lo);
    return cfg.scenes.empty() ? nuscenes_ground_truth(db, cfg.split) : nuscenes_ground_truth_of_scenes(db, cfg.scenes);
  }();
  // Damaged shards are named even with --quiet: the metrics then cover part of the split.
  for (const std::string& u : gt.unreadable) std::cerr << "bevkd-eval: CORRUPT ground truth left out: " << u << "\n";
  if (!cfg.quiet)
    std::cerr << "Ground truth: " << gt.description << ", " << gt.boxes.num_samples() << " samples, "
              << gt.boxes.total_boxes() << " boxes of the 10 classes\n";

  ResultsReadOptions ro;
  ro.max_boxes_per_sample = det.max_boxes_per_sample;
  ro.threads = cfg.threads;
  ro.show_progress = !cfg.quiet;
  const Results res = load_results(cfg.results_path, ro);
  if (!cfg.quiet)
    std::cerr << "Results: " << res.boxes.num_samples() << " samples, " << res.boxes.total_boxes() << " boxes\n";

  EvalOptions eo;
  eo.predictions_name = cfg.results_path;
  eo.num_threads = cfg.threads;
  eo.show_progress = !cfg.quiet;
  eo.log = cfg.quiet ? nullptr : &std::cerr;
  EvalResult r = evaluate(gt, res.boxes, det, res.meta, eo);
  r.unreadable_gt = gt.unreadable;
  write_eval_outputs(out_dir, r, cfg.plots);
  out << format_summary(r.metrics);
  if (!gt.unreadable.empty())
    out << "WARNING: " << gt.unreadable.size() << " damaged ground-truth shard(s) or sample(s) were left out; these "
        << "metrics cover " << gt.boxes.num_samples() << " readable samples only (see the CORRUPT lines)\n";
  if (!cfg.quiet)
    std::cerr << "Wrote " << out_dir << "/metrics_summary.json, metrics_details.json" << (cfg.plots ? ", plots/" : "")
              << " (" << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s in all)\n";
  return r;
}

}  // namespace bevkd::core::eval
