// bevkd-eval: the official nuScenes detection metrics (mAP, mATE ... mAAE, NDS) of a results
// JSON, with a per-class table, metrics JSON files and PR-curve plots. See core/eval/eval_command.h.
#include <CLI/CLI.hpp>

#include <iostream>

#include "base/error.h"
#include "core/eval/eval_command.h"

int main(int argc, char** argv) {
  return bevkd::run_main("bevkd-eval", [&] {
    bevkd::core::eval::EvalCommandConfig cfg;
    CLI::App app{"nuScenes detection evaluation (detection_cvpr_2019) of a results JSON"};
    app.add_option("results", cfg.results_path, "results JSON in the nuScenes submission format")->required();
    app.add_option("--dataroot", cfg.dataroot, "ground truth from a nuScenes dataroot (holds <version>/*.json)");
    app.add_option("--shards", cfg.shards,
                   "ground truth from bevkd shards: their manifest.json or its directory (with --split)");
    app.add_option("--version", cfg.version, "dataset version directory")->capture_default_str();
    app.add_option("--split", cfg.split,
                   "split: train, val, test, mini_train, mini_val, train_detect, train_track, or one of "
                   "<dataroot>/<version>/splits.json")
        ->capture_default_str();
    app.add_option("--scenes", cfg.scenes, "evaluate these scenes instead of a split (a custom split)")->delimiter(',');
    app.add_option("--config", cfg.config_path, "detection config in the devkit's JSON format (default: detection_cvpr_2019)");
    app.add_option("--output-dir", cfg.output_dir, "where metrics_summary.json, metrics_details.json and plots/ go "
                                                    "(default: the results file's directory)");
    bool no_plots = false;
    app.add_flag("--no-plots", no_plots, "skip the PR-curve PNGs");
    app.add_flag("--quiet", cfg.quiet, "no progress lines or logs, only the summary table");
    app.add_option("--threads", cfg.threads, "threads for reading and matching (0: all cores)")->capture_default_str();
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    cfg.plots = !no_plots;
    const auto r = bevkd::core::eval::run_eval_command(cfg, std::cout);
    return r.unreadable_gt.empty() ? 0 : 2;  // 2: damaged GT shards were left out
  });
}
