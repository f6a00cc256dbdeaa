// bevkd-precompute: stage one of bevkd (DESIGN.md). Subcommands:
//   fit-teacher     train the built-in LiDAR teacher on a nuScenes-format split and evaluate it
//   eval-teacher    evaluate a teacher (built-in checkpoint or TorchScript module) on a split
//   run             the teacher over splits into shards (run/run_pipeline.h); resumable, split across workers
//   merge           join the workers' manifests into manifest.json, reporting what is missing
//   export-results  the stored teacher boxes of a split as a nuScenes results JSON
// Thin main: every subcommand's options are its config struct's field list (base/config_cli.h):
// `--config FILE` (JSON, e.g. a run's saved resolved configuration) first, then flags; the resolved
// configuration is printed, then run.
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>

#include "base/cpu_runtime.h"
#include "base/config_cli.h"
#include "base/error.h"
#include "precompute/fit/fit_teacher.h"
#include "precompute/fit/teacher_eval.h"
#include "precompute/run/export_results.h"
#include "precompute/run/run_pipeline.h"
#include "precompute/run/shard_plan.h"
#include "precompute/run/stage_merge.h"
#include "precompute/teacher/teacher_factory.h"

namespace {

using namespace bevkd;
using namespace bevkd::precompute;

struct EvalTeacherArgs {
  TeacherSpec teacher;
  TeacherEvalOptions eval;
  template <class V>
  void fields(V& v) {
    v.nested("teacher", teacher, "");
    v.nested("eval", eval, "");
  }
};

struct MergeArgs {
  std::string out;
  int num_workers = 0;
  template <class V>
  void fields(V& v) {
    v("out", out, "--out", "the run's output directory");
    v("num_workers", num_workers, "--num-workers", "worker count of the run (default: from the manifests present)");
  }
};

int fit(const FitTeacherConfig& c) {
  c.validate();
  if (!c.quiet) std::cerr << "fit-teacher config:\n" << config::to_json(c).dump(2) << "\n";
  const auto r = fit_teacher(c);
  std::cout << "fit-teacher: " << r.steps_done << "/" << r.total_steps << " steps in " << r.wall_s << " s, "
            << "checkpoint " << r.checkpoint << "\n";
  if (r.map && r.nds)
    std::cout << "fit-teacher: " << c.val_split << " mAP " << *r.map << "  NDS " << *r.nds << "  (metrics "
              << r.metrics_json << ")\n";
  return 0;
}

int eval_teacher(const EvalTeacherArgs& a) {
  BEVKD_CHECK(!a.eval.dataroot.empty() && !a.eval.out_dir.empty(), "eval-teacher: --dataroot and --out are required");
  auto teacher = open_teacher(a.teacher);
  const auto id = teacher->identity();
  if (!a.eval.quiet)
    std::cerr << "eval-teacher config:\n" << config::to_json(a).dump(2) << "\neval-teacher: " << id.kind << " teacher "
              << id.preset << " (" << id.checkpoint << ", " << id.checkpoint_hash << "), grid "
              << teacher->grid().describe() << "\n";
  const auto r = evaluate_teacher(*teacher, a.eval);
  std::cout << "eval-teacher: " << a.eval.split << " mAP " << r.map << "  NDS " << r.nds << "  (metrics "
            << r.metrics_path << ")\n";
  return 0;
}

int run(RunConfig c) {
  const auto w = resolve_worker(c.worker_index >= 0 ? std::optional<int>(c.worker_index) : std::nullopt,
                                c.num_workers > 0 ? std::optional<int>(c.num_workers) : std::nullopt,
                                [](const char* name) { return std::getenv(name); });
  c.worker_index = w.index;
  c.num_workers = w.count;
  c.worker_source = w.source;
  // Input paths are part of the output configuration: make them absolute, so that a rerun or
  // another worker started from another directory with relative paths is not refused.
  for (std::string* p : {&c.dataroot, &c.teacher.checkpoint, &c.teacher.torchscript})
    if (!p->empty()) *p = std::filesystem::weakly_canonical(*p).string();
  // Testing hook (the kill-and-resume tests): SIGKILL this process after that many samples.
  if (const char* kill = std::getenv("BEVKD_PRECOMPUTE_KILL_AFTER_SAMPLES"); kill != nullptr && *kill != '\0') {
    const long long n = std::atoll(kill);
    c.after_sample = [n](int64_t done) {
      if (done >= n) std::raise(SIGKILL);
    };
  }
  c.validate();
  std::cerr << "run config (" << c.output_hash() << "):\n" << c.to_json().dump(2) << "\n";
  const auto r = run_precompute(c, std::cerr);
  std::cout << "run: worker " << c.worker_index << "/" << c.num_workers << ": " << r.samples_written
            << " samples in " << r.shards_written << " shard(s) written, " << r.shards_kept << " kept, "
            << r.samples_skipped << " skipped; " << r.wall_s << " s"
            << (r.wall_s > 0 ? cat(" (", r.samples_written / r.wall_s, " samples/s)") : "") << "\n"
            << r.timing_table() << "run: report " << r.report_path << "\nrun: " << r.merge.describe() << "\n";
  if (r.nonfinite_points_dropped > 0)
    std::cout << "run: " << r.nonfinite_points_dropped << " LiDAR points with NaN/Inf values were dropped\n";
  if (r.saturated_values > 0)
    std::cout << "run: warning: " << r.saturated_values << " values exceeded float16's range and were saturated\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bevkd::tune_cpu_runtime();
  return run_main("bevkd-precompute", [&]() -> int {
    CLI::App app{"bevkd-precompute: the LiDAR teacher and the precompute stage of bevkd"};
    app.require_subcommand(1);

    FitTeacherConfig fit_cfg;
    auto* fit_cmd = app.add_subcommand("fit-teacher", "Train the built-in PointPillars-CenterPoint teacher and evaluate it");
    config::bind(fit_cmd, fit_cfg);

    EvalTeacherArgs eval_cfg;
    auto* eval_cmd = app.add_subcommand("eval-teacher", "Evaluate a teacher on a split with the official nuScenes metrics");
    config::bind(eval_cmd, eval_cfg);

    RunConfig run_cfg;
    run_cfg.worker_index = -1;  // from the scheduler unless given
    run_cfg.num_workers = 0;
    auto* run_cmd = app.add_subcommand("run", "Run the teacher over splits and write shards (resumable; splits across workers)");
    config::bind(run_cmd, run_cfg);

    MergeArgs merge_cfg;
    auto* merge_cmd = app.add_subcommand("merge", "Join the worker manifests of a run into manifest.json");
    config::bind(merge_cmd, merge_cfg);

    ExportResultsOptions export_cfg;
    auto* export_cmd = app.add_subcommand("export-results", "Write the stored teacher boxes of a split as a results JSON");
    config::bind(export_cmd, export_cfg);

    config::preload(fit_cmd, fit_cfg, argc, argv);
    config::preload(eval_cmd, eval_cfg, argc, argv);
    config::preload(run_cmd, run_cfg, argc, argv);
    config::preload(merge_cmd, merge_cfg, argc, argv);
    config::preload(export_cmd, export_cfg, argc, argv);
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      return app.exit(e);
    }
    if (fit_cmd->parsed()) return fit(fit_cfg);
    if (eval_cmd->parsed()) return eval_teacher(eval_cfg);
    if (run_cmd->parsed()) return run(run_cfg);
    if (merge_cmd->parsed()) {
      BEVKD_CHECK(!merge_cfg.out.empty(), "merge: --out is required");
      const auto r = merge_worker_manifests(
          merge_cfg.out, merge_cfg.num_workers > 0 ? std::optional<int>(merge_cfg.num_workers) : std::nullopt);
      std::cout << "merge: " << r.describe() << "\n";
      return r.complete() ? 0 : 3;
    }
    if (export_cmd->parsed()) {
      BEVKD_CHECK(!export_cfg.shards.empty() && !export_cfg.split.empty() && !export_cfg.out.empty(),
                  "export-results: --shards, --split and --out are required");
      const auto r = export_teacher_results(export_cfg);
      for (const auto& u : r.unreadable) std::cerr << "export-results: CORRUPT, left out: " << u << "\n";
      std::cout << "export-results: " << r.boxes << " teacher boxes of " << r.samples << " samples -> "
                << export_cfg.out << "\n";
      return r.unreadable.empty() ? 0 : 2;  // 2: damaged shards were left out
    }
    return 1;
  });
}
