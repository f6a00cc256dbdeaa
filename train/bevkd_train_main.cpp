// bevkd-train: stage two of bevkd (DESIGN.md). Subcommands:
//   train        train a camera student from teacher shards (the teacher is never loaded)
//   eval         evaluate a bevkd-train checkpoint on a split of shards (official nuScenes metrics)
//   plot         loss curves (PNG) of a run's metrics.jsonl
//   losses       list the distillation losses of the registry
//   loss-probe   evaluate one distillation loss on .npy tensors (spec/loss_probe.md)
//   check-views  do the shards' teacher boxes sit on the loader's transformed GT, view by view?
//
// Thin main: each subcommand is one add_<name>() that binds its config struct (configuration as
// data: --config FILE, flags override) and returns the function that runs it; main() parses, runs
// the chosen one and maps failures to exit codes. A subcommand's own contract may fix its exit
// codes (loss-probe: 0 / 1 / 2, so a CLI parse error of loss-probe is exit 2).
#include <CLI/CLI.hpp>

#include <cmath>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "base/config_cli.h"
#include "base/cpu_runtime.h"
#include "base/error.h"
#include "train/data/view_check.h"
#include "train/probe/probe.h"
#include "train/trainer/fd3d_head_run.h"
#include "train/trainer/loss_registry.h"
#include "train/trainer/trainer.h"

namespace {

namespace tr = bevkd::train::trainer;

struct Subcommand {
  CLI::App* app = nullptr;
  std::function<int()> run;
  int parse_error_code = 1;                  // exit code for a command-line error of this subcommand
  std::function<void(int, char**)> preload;  // --config FILE before the flags
};

Subcommand add_train(CLI::App& app) {
  auto cfg = std::make_shared<tr::TrainConfig>();
  auto loss_flags = std::make_shared<std::vector<std::string>>();
  Subcommand s;
  s.app = app.add_subcommand("train", "Train a camera student from teacher shards");
  bevkd::config::bind(s.app, *cfg);
  s.app->add_option("--loss", *loss_flags, "distillation loss NAME or NAME:WEIGHT (repeatable; see `losses`)");
  s.preload = [cfg, sub = s.app](int argc, char** argv) { bevkd::config::preload(sub, *cfg, argc, argv); };
  s.run = [cfg, loss_flags] {
    for (const auto& f : *loss_flags) {
      auto spec = tr::parse_loss_flag(f);
      bool found = false;
      for (auto& l : cfg->losses)
        if (l.name == spec.name) {
          if (!std::isnan(spec.weight)) l.weight = spec.weight;
          found = true;
        }
      if (!found) cfg->losses.push_back(spec);
    }
    const auto r = tr::train_student(*cfg, std::cerr);
    if (r.rank != 0) return 0;  // data parallel: rank 0 reports
    std::cout << "bevkd-train: " << r.steps_done << "/" << r.total_steps << " steps in " << r.wall_s << " s"
              << (r.bad_steps ? ", " + std::to_string(r.bad_steps) + " bad steps skipped" : std::string()) << ", "
              << r.checkpoint << "\n";
    if (r.map)
      std::cout << "bevkd-train: " << cfg->val_split << " mAP " << *r.map << "  NDS " << *r.nds << "  (metrics "
                << r.metrics_json << ")\n";
    return 0;
  };
  return s;
}

Subcommand add_eval(CLI::App& app) {
  auto cfg = std::make_shared<tr::EvalConfig>();
  Subcommand s;
  s.app = app.add_subcommand("eval", "Evaluate a bevkd-train checkpoint on a split of shards");
  bevkd::config::bind(s.app, *cfg);
  s.preload = [cfg, sub = s.app](int argc, char** argv) { bevkd::config::preload(sub, *cfg, argc, argv); };
  s.run = [cfg] {
    const auto r = tr::evaluate_checkpoint(*cfg, std::cerr);
    std::cout << "bevkd-train eval: " << cfg->split << " (" << r.samples << " samples, " << r.weights
              << " weights) mAP " << r.map << "  NDS " << r.nds << "  (results " << r.results_path << ", metrics "
              << r.metrics_path << ")\n";
    return 0;
  };
  return s;
}

Subcommand add_fd3d_head(CLI::App& app) {
  auto cfg = std::make_shared<tr::Fd3dHeadRunConfig>();
  Subcommand s;
  s.app = app.add_subcommand("fd3d-head",
                             "Train FD3D's distillation head alone on the teacher features of a split and check it on "
                             "another (its mAP next to the teacher's, its focal queries); its checkpoint warm-starts "
                             "the fd3d loss (head_init)");
  bevkd::config::bind(s.app, *cfg);
  s.preload = [cfg, sub = s.app](int argc, char** argv) { bevkd::config::preload(sub, *cfg, argc, argv); };
  s.run = [cfg] {
    const auto r = tr::run_fd3d_head(*cfg, std::cerr);
    std::cout << "bevkd-train fd3d-head: " << r.steps_done << " steps, " << cfg->val_split << " (" << r.samples
              << " samples): head mAP " << r.head_map << " NDS " << r.head_nds << ", teacher mAP " << r.teacher_map
              << " NDS " << r.teacher_nds << " (head/teacher mAP "
              << (r.teacher_map > 0 ? r.head_map / r.teacher_map : 0.0) << "); focal queries per sample with GT "
              << r.focal_per_gt_sample << ", GT covered by a focal query " << 100 * r.gt_covered << "%  (report "
              << r.report << ", checkpoint " << r.checkpoint << ")\n";
    return 0;
  };
  return s;
}

Subcommand add_plot(CLI::App& app) {
  auto metrics = std::make_shared<std::vector<std::string>>();
  auto labels = std::make_shared<std::vector<std::string>>();
  auto out = std::make_shared<std::string>();
  Subcommand s;
  s.app = app.add_subcommand("plot", "Loss curves (PNG) of a run's metrics.jsonl, or of several runs compared");
  s.app->add_option("--metrics", *metrics, "metrics.jsonl of a run (several: one comparison plot)")->required();
  s.app->add_option("--label", *labels, "a label per --metrics (comparison; default: the run directory's name)");
  s.app->add_option("--out", *out, "directory for loss.png and lr.png (default: <run>/plots); comparison: the PNG path");
  s.run = [metrics, labels, out] {
    if (metrics->size() == 1) {
      const auto& m = metrics->front();
      const std::string dir = out->empty() ? std::filesystem::path(m).parent_path().string() + "/plots" : *out;
      for (const auto& p : tr::plot_metrics(m, dir)) std::cout << p << "\n";
      return 0;
    }
    BEVKD_CHECK(labels->empty() || labels->size() == metrics->size(), "bevkd-train plot: ", labels->size(),
                " --label for ", metrics->size(), " --metrics");
    BEVKD_CHECK(!out->empty(), "bevkd-train plot: comparing runs needs --out FILE.png");
    std::vector<std::string> names = *labels;
    if (names.empty())
      for (const auto& m : *metrics) names.push_back(std::filesystem::path(m).parent_path().filename().string());
    tr::plot_compare(*metrics, names, *out);
    std::cout << *out << "\n";
    return 0;
  };
  return s;
}

Subcommand add_losses(CLI::App& app) {
  auto as_json = std::make_shared<bool>(false);
  Subcommand s;
  s.app = app.add_subcommand("losses", "List the distillation losses bevkd-train can train with");
  s.app->add_flag("--json", *as_json, "as JSON (name, description, weight, params, shard fields, probe entries)");
  s.run = [as_json] {
    if (*as_json) {
      std::cout << tr::loss_registry_json().dump(2) << "\n";
      return 0;
    }
    for (const auto& e : tr::loss_registry())
      std::cout << e.name << "  (weight " << e.default_weight << ", params " << e.default_params.dump() << ")\n    "
                << e.description << "\n";
    return 0;
  };
  return s;
}

Subcommand add_loss_probe(CLI::App& app) {
  auto opts = std::make_shared<bevkd::train::probe::LossProbeOptions>();
  Subcommand s;
  s.app = app.add_subcommand("loss-probe", "Evaluate one distillation loss on .npy tensors (spec/loss_probe.md)");
  s.app->add_option("--loss", opts->loss, "loss name (see --list)");
  s.app->add_option("--case", opts->case_dir, "case directory: <input>.npy files and an optional params.json");
  s.app->add_option("--out", opts->out_dir, "directory for values.json, gradients and debug arrays (created)");
  s.app->add_flag("--grad", opts->grad, "write grad_*.npy (float64) for each gradient the loss lists; needs --out");
  s.app->add_flag("--list", opts->list, "list the losses with their inputs and parameters");
  s.app->add_flag("--json", opts->json, "with --list: as JSON");
  s.run = [opts] {
    if (opts->list) opts->trainer_losses = tr::loss_registry_json();
    return bevkd::train::probe::run_loss_probe(*opts, std::cout, std::cerr);
  };
  s.parse_error_code = 2;
  return s;
}

Subcommand add_check_views(CLI::App& app) {
  auto cfg = std::make_shared<bevkd::train::data::ViewCheckConfig>();
  Subcommand s;
  s.app = app.add_subcommand("check-views",
                             "Match the shards' teacher boxes to the GT after each stored view's bda (exit 3 on FAIL)");
  bevkd::config::bind(s.app, *cfg);
  s.preload = [cfg, sub = s.app](int argc, char** argv) { bevkd::config::preload(sub, *cfg, argc, argv); };
  s.run = [cfg] {
    const auto r = bevkd::train::data::check_view_alignment(*cfg);
    bevkd::train::data::print_view_check(r, *cfg, std::cout);
    return r.passed ? 0 : 3;
  };
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  bevkd::tune_cpu_runtime();
  CLI::App app{"bevkd-train: stage two of bevkd (camera student, distillation losses)"};
  app.require_subcommand(1);
  std::vector<Subcommand> subcommands;
  subcommands.push_back(add_train(app));
  subcommands.push_back(add_eval(app));
  subcommands.push_back(add_fd3d_head(app));
  subcommands.push_back(add_plot(app));
  subcommands.push_back(add_losses(app));
  subcommands.push_back(add_loss_probe(app));
  subcommands.push_back(add_check_views(app));
  const int pre = bevkd::run_main("bevkd-train", [&] {
    for (const Subcommand& s : subcommands)
      if (s.preload) s.preload(argc, argv);
    return 0;
  });
  if (pre != 0) return pre;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);  // --help
    for (const Subcommand& s : subcommands)
      if (s.app->parsed()) {
        std::cerr << s.app->get_name() << ": " << e.what() << "\n";
        return s.parse_error_code;
      }
    return app.exit(e);
  }
  for (const Subcommand& s : subcommands)
    if (s.app->parsed()) return bevkd::run_main("bevkd-train", s.run);
  return 1;
}
