// bevkd-eval: the official nuScenes detection metrics (mAP, mATE ... mAAE, NDS) of a results
// JSON, with a per-class table, metrics JSON files and PR-curve plots. See core/eval/eval_command.h.
// Options are EvalCommandConfig's field list: `--config FILE` (e.g. a previous run's
// eval_config.json) first, flags override it.
#include <CLI/CLI.hpp>

#include <iostream>

#include "base/config_cli.h"
#include "base/error.h"
#include "core/eval/eval_command.h"

int main(int argc, char** argv) {
  return bevkd::run_main("bevkd-eval", [&] {
    bevkd::core::eval::EvalCommandConfig cfg;
    CLI::App app{"nuScenes detection evaluation (detection_cvpr_2019) of a results JSON"};
    bevkd::config::bind(&app, cfg);
    bevkd::config::preload(&app, cfg, argc, argv);
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    const auto r = bevkd::core::eval::run_eval_command(cfg, std::cout);
    return r.unreadable_gt.empty() ? 0 : 2;  // 2: damaged GT shards were left out
  });
}
