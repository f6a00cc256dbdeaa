// bevkd-precompute: stage one of bevkd (DESIGN.md). Subcommands:
//   fit-teacher   train the built-in LiDAR teacher on a nuScenes-format split and evaluate it
//   eval-teacher  evaluate a teacher (built-in checkpoint or TorchScript module) on a split
// Thin main: CLI11 parses into the typed config, the resolved config is printed, run() works.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <iostream>
#include <vector>

#include "base/error.h"
#include "precompute/fit_teacher.h"
#include "precompute/teacher.h"
#include "precompute/teacher_eval.h"
#include "precompute/teacher_config.h"

namespace {

void add_fit_teacher(CLI::App& app, bevkd::precompute::FitTeacherConfig& c) {
  auto* s = app.add_subcommand("fit-teacher", "Train the built-in PointPillars-CenterPoint teacher and evaluate it");
  s->add_option("--dataroot", c.dataroot, "nuScenes-format dataset root (e.g. written by bevkd-synth)")->required();
  s->add_option("--version", c.version, "dataset version folder")->capture_default_str();
  s->add_option("--train-split", c.train_split, "split to train on")->capture_default_str();
  s->add_option("--val-split", c.val_split, "split to evaluate on at the end ('' = none)")->capture_default_str();
  s->add_option("--sweeps", c.num_sweeps, "LiDAR sweeps per key frame, key frame included")->capture_default_str();
  std::string presets;
  for (const auto& n : bevkd::precompute::teacher_preset_names()) presets += (presets.empty() ? "" : ", ") + n;
  s->add_option("--preset", c.preset, "model preset: " + presets)->capture_default_str();
  s->add_option("--model-config", c.model_config, "JSON model config replacing the preset (see README)");
  s->add_option("--out", c.out_dir, "output directory (checkpoints, metrics.jsonl, eval/)")->required();
  s->add_option("--epochs", c.epochs)->capture_default_str();
  s->add_option("--batch-size", c.batch_size)->capture_default_str();
  s->add_option("--lr", c.lr, "peak learning rate")->capture_default_str();
  s->add_option("--weight-decay", c.weight_decay)->capture_default_str();
  s->add_option("--schedule", c.schedule, "onecycle | cosine")->capture_default_str();
  s->add_option("--warmup-fraction", c.warmup_fraction)->capture_default_str();
  s->add_option("--grad-clip", c.grad_clip, "max gradient norm, 0 = off")->capture_default_str();
  s->add_flag("!--no-augment", c.augment, "disable global rotation/scale/flip augmentation");
  s->add_option("--seed", c.seed)->capture_default_str();
  s->add_option("--workers", c.num_workers, "data-loading threads")->capture_default_str();
  s->add_option("--threads", c.threads, "LibTorch intra-op threads (0 = default)")->capture_default_str();
  s->add_option("--device", c.device, "cpu, cuda, cuda:N")->capture_default_str();
  s->add_option("--checkpoint-every", c.checkpoint_every, "steps between checkpoints (0 = epoch ends)")
      ->capture_default_str();
  s->add_option("--log-every", c.log_every, "steps between progress lines")->capture_default_str();
  s->add_flag("!--no-resume", c.resume, "start over even if <out>/checkpoint-latest.ckpt exists");
  s->add_option("--stop-after", c.stop_after, "stop after this many steps in total (0 = run to the end)")
      ->capture_default_str();
  s->add_option("--eval-batch-size", c.eval_batch_size)->capture_default_str();
  s->add_flag("--quiet", c.quiet, "no progress lines");
}

// The options that choose a teacher (shared by every subcommand that runs one).
void add_teacher_options(CLI::App* s, bevkd::precompute::TeacherSpec& t, std::vector<double>& grid_range) {
  grid_range.assign(t.grid_range.begin(), t.grid_range.end());
  s->add_option("--checkpoint", t.checkpoint, "built-in teacher checkpoint (fit-teacher's teacher.ckpt)");
  s->add_option("--preset", t.preset, "preset the checkpoint must match (default: its stored config)");
  s->add_option("--teacher", t.torchscript, "TorchScript teacher following the contract in README.md");
  s->add_option("--grid-range", grid_range, "TorchScript: output grid x_min y_min z_min x_max y_max z_max (m)")
      ->expected(6)
      ->capture_default_str();
  s->add_option("--grid-cell", t.grid_cell, "TorchScript: output cell size (m)")->capture_default_str();
  s->add_option("--tasks", t.tasks, "TorchScript: NMS groups, nuscenes | single")->capture_default_str();
  s->add_option("--device", t.device, "cpu, cuda, cuda:N")->capture_default_str();
}

struct EvalTeacherArgs {
  bevkd::precompute::TeacherSpec teacher;
  std::vector<double> grid_range;
  bevkd::precompute::TeacherEvalOptions eval;
};

void add_eval_teacher(CLI::App& app, EvalTeacherArgs& a) {
  auto* s = app.add_subcommand("eval-teacher", "Evaluate a teacher on a split with the official nuScenes metrics");
  add_teacher_options(s, a.teacher, a.grid_range);
  s->add_option("--dataroot", a.eval.dataroot, "nuScenes-format dataset root")->required();
  s->add_option("--version", a.eval.version)->capture_default_str();
  s->add_option("--split", a.eval.split)->capture_default_str();
  s->add_option("--sweeps", a.eval.num_sweeps, "LiDAR sweeps per key frame, key frame included")->capture_default_str();
  s->add_option("--batch-size", a.eval.batch_size)->capture_default_str();
  s->add_option("--out", a.eval.out_dir, "output directory (results_nusc.json, metrics_summary.json, plots/)")
      ->required();
  s->add_flag("--quiet", a.eval.quiet, "no progress line or table");
}

}  // namespace

int main(int argc, char** argv) {
  return bevkd::run_main("bevkd-precompute", [&]() -> int {
    CLI::App app{"bevkd-precompute: the LiDAR teacher and the precompute stage of bevkd"};
    app.require_subcommand(1);
    bevkd::precompute::FitTeacherConfig fit;
    add_fit_teacher(app, fit);
    EvalTeacherArgs ev;
    add_eval_teacher(app, ev);
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    if (app.got_subcommand("fit-teacher")) {
      if (!fit.quiet) std::cerr << "fit-teacher config:\n" << fit.to_json() << "\n";
      const auto r = bevkd::precompute::fit_teacher(fit);
      std::cout << "fit-teacher: " << r.steps_done << "/" << r.total_steps << " steps in " << r.wall_s << " s, "
                << "checkpoint " << r.checkpoint << "\n";
      if (r.map && r.nds)
        std::cout << "fit-teacher: " << fit.val_split << " mAP " << *r.map << "  NDS " << *r.nds << "  (metrics "
                  << r.metrics_json << ")\n";
      return 0;
    }
    if (app.got_subcommand("eval-teacher")) {
      std::copy(ev.grid_range.begin(), ev.grid_range.end(), ev.teacher.grid_range.begin());
      auto teacher = bevkd::precompute::open_teacher(ev.teacher);
      const auto id = teacher->identity();
      if (!ev.eval.quiet)
        std::cerr << "eval-teacher: " << id.kind << " teacher " << id.preset << " (" << id.checkpoint << ", "
                  << id.checkpoint_hash << "), grid " << teacher->grid().describe() << "\n";
      const auto r = bevkd::precompute::evaluate_teacher(*teacher, ev.eval);
      std::cout << "eval-teacher: " << ev.eval.split << " mAP " << r.map << "  NDS " << r.nds << "  (metrics "
                << r.metrics_path << ")\n";
      return 0;
    }
    return 1;
  });
}
