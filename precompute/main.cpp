// bevkd-precompute: stage one of bevkd (DESIGN.md). Subcommands:
//   fit-teacher   train the built-in LiDAR teacher on a nuScenes-format split and evaluate it
//   eval-teacher  evaluate a teacher (built-in checkpoint or TorchScript module) on a split
//   run           the teacher over splits into shards (run_pipeline.h); resumable, split across workers
//   merge         join the workers' manifests into manifest.json, reporting what is missing
//   export-results  the stored teacher boxes of a split as a nuScenes results JSON
// Thin main: CLI11 parses into the typed config, the resolved config is printed, run() works.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <vector>

#include "base/error.h"
#include "precompute/export_results.h"
#include "precompute/fit_teacher.h"
#include "precompute/run_pipeline.h"
#include "precompute/shard_plan.h"
#include "precompute/stage_merge.h"
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

struct RunArgs {
  bevkd::precompute::RunConfig cfg;
  std::vector<double> grid_range;
  int worker_index = -1;
  int num_workers = 0;
};

void add_run(CLI::App& app, RunArgs& a) {
  auto& c = a.cfg;
  auto* s = app.add_subcommand("run", "Run the teacher over splits and write shards (resumable; splits across workers)");
  add_teacher_options(s, c.teacher, a.grid_range);
  s->add_option("--dataroot", c.dataroot, "nuScenes-format dataset root")->required();
  s->add_option("--version", c.version)->capture_default_str();
  s->add_option("--split", c.splits, "split(s) to precompute, e.g. --split mini_train --split mini_val")
      ->delimiter(',');
  s->add_option("--scenes", c.scenes, "scene names instead of --split (comma-separated)")->delimiter(',');
  s->add_option("--scenes-split", c.scenes_split, "split name the shards of --scenes are stored under")
      ->capture_default_str();
  s->add_option("--sweeps", c.nsweeps, "LiDAR sweeps per key frame, key frame included")->capture_default_str();
  s->add_flag("--skip-missing-files", c.skip_missing_files,
              "skip samples whose LiDAR or camera files are missing (recorded in the manifest) instead of failing");
  s->add_flag("--drop-nonfinite-points", c.drop_nonfinite_points,
              "drop LiDAR points with NaN/Inf values (counted in the run report) instead of refusing the file");
  s->add_option("--out", c.out_dir, "output directory (shards, manifests, reports)")->required();
  s->add_option("--samples-per-shard", c.samples_per_shard)->capture_default_str();
  s->add_option("--feature-dtype", c.feature_dtype, "float16 | int8 (per-channel scale)")->capture_default_str();
  s->add_option("--compression-level", c.compression_level, "zstd level")->capture_default_str();
  s->add_flag("!--no-shuffle", c.shuffle, "no byte shuffle before zstd");
  s->add_option("--views", c.views, "stored BEV views (view 0 = identity)")->capture_default_str();
  s->add_option("--view-rotation", c.view_augment.rotation_range, "views >= 1: rotation range (rad)")
      ->expected(2)
      ->capture_default_str();
  s->add_option("--view-scale", c.view_augment.scale_range, "views >= 1: scale range")
      ->expected(2)
      ->capture_default_str();
  s->add_option("--view-flip-x", c.view_augment.flip_x_prob, "views >= 1: probability of x -> -x")->capture_default_str();
  s->add_option("--view-flip-y", c.view_augment.flip_y_prob, "views >= 1: probability of y -> -y")->capture_default_str();
  s->add_option("--fg-min-radius", c.fg_min_radius, "foreground mask: minimum Gaussian radius (cells)")
      ->capture_default_str();
  s->add_option("--fg-min-overlap", c.fg_min_overlap, "foreground mask: gaussian_radius min_overlap")
      ->capture_default_str();
  s->add_option("--quality-gamma", c.quality_gamma, "q = c^gamma * IoU^(1 - gamma)")->capture_default_str();
  s->add_option("--depth-stride", c.depth_stride, "depth targets: nearest point per stride x stride pixels")
      ->capture_default_str();
  s->add_option("--depth-min", c.depth_min, "depth targets: minimum depth (m)")->capture_default_str();
  s->add_option("--depth-max", c.depth_max, "depth targets: maximum depth (m, exclusive)")->capture_default_str();
  s->add_flag("!--depth-all-sweeps", c.depth_key_frame_only, "depth targets from every sweep, not the key frame only");
  s->add_option("--batch-size", c.batch_size, "samples per teacher call")->capture_default_str();
  s->add_option("--seed", c.seed, "seed of the view augmentation")->capture_default_str();
  s->add_option("--threads", c.threads, "TBB and LibTorch threads (0 = all cores)")->capture_default_str();
  s->add_option("--num-workers", a.num_workers, "workers sharing the run (default: from the scheduler, else 1)");
  s->add_option("--worker-index", a.worker_index,
                "this worker, 0..N-1 (default: SLURM_ARRAY_TASK_ID, SGE_TASK_ID or JOB_COMPLETION_INDEX)");
  s->add_option("--max-batches-in-flight", c.max_batches_in_flight, "pipeline depth (1 = no overlap)")
      ->capture_default_str();
  s->add_option("--created-utc", c.created_utc,
                "created_utc attribute of the shards (default: $SOURCE_DATE_EPOCH, else the output directory's "
                "first run)");
  s->add_flag("--quiet", c.quiet, "no progress line");
}

struct MergeArgs {
  std::string out;
  int num_workers = 0;
};

void add_merge(CLI::App& app, MergeArgs& a) {
  auto* s = app.add_subcommand("merge", "Join the worker manifests of a run into manifest.json");
  s->add_option("--out", a.out, "the run's output directory")->required();
  s->add_option("--num-workers", a.num_workers, "worker count of the run (default: from the manifests present)");
}

void add_export(CLI::App& app, bevkd::precompute::ExportResultsOptions& o) {
  auto* s = app.add_subcommand("export-results", "Write the stored teacher boxes of a split as a results JSON");
  s->add_option("--shards", o.shards, "manifest.json or the directory holding it")->required();
  s->add_option("--split", o.split)->required();
  s->add_option("-o,--out", o.out, "results JSON to write")->required();
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
    RunArgs run;
    add_run(app, run);
    MergeArgs merge;
    add_merge(app, merge);
    bevkd::precompute::ExportResultsOptions exp;
    add_export(app, exp);
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
    if (app.got_subcommand("run")) {
      auto& c = run.cfg;
      std::copy(run.grid_range.begin(), run.grid_range.end(), c.teacher.grid_range.begin());
      const auto w = bevkd::precompute::resolve_worker(
          run.worker_index >= 0 ? std::optional<int>(run.worker_index) : std::nullopt,
          run.num_workers > 0 ? std::optional<int>(run.num_workers) : std::nullopt,
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
      const auto r = bevkd::precompute::run_precompute(c, std::cerr);
      std::cout << "run: worker " << c.worker_index << "/" << c.num_workers << ": " << r.samples_written
                << " samples in " << r.shards_written << " shard(s) written, " << r.shards_kept << " kept, "
                << r.samples_skipped << " skipped; " << r.wall_s << " s"
                << (r.wall_s > 0 ? bevkd::cat(" (", r.samples_written / r.wall_s, " samples/s)") : "") << "\n"
                << r.timing_table() << "run: report " << r.report_path << "\nrun: " << r.merge.describe() << "\n";
      if (r.nonfinite_points_dropped > 0)
        std::cout << "run: " << r.nonfinite_points_dropped << " LiDAR points with NaN/Inf values were dropped\n";
      if (r.saturated_values > 0)
        std::cout << "run: warning: " << r.saturated_values << " values exceeded float16's range and were saturated\n";
      return 0;
    }
    if (app.got_subcommand("merge")) {
      const auto r = bevkd::precompute::merge_worker_manifests(
          merge.out, merge.num_workers > 0 ? std::optional<int>(merge.num_workers) : std::nullopt);
      std::cout << "merge: " << r.describe() << "\n";
      return r.complete() ? 0 : 3;
    }
    if (app.got_subcommand("export-results")) {
      const auto r = bevkd::precompute::export_teacher_results(exp);
      for (const auto& u : r.unreadable) std::cerr << "export-results: CORRUPT, left out: " << u << "\n";
      std::cout << "export-results: " << r.boxes << " teacher boxes of " << r.samples << " samples -> " << exp.out
                << "\n";
      return r.unreadable.empty() ? 0 : 2;  // 2: damaged shards were left out
    }
    return 1;
  });
}
