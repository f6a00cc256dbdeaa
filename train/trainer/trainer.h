// `bevkd-train train`: the camera student trained from teacher shards (the teacher is never
// loaded). Phases: setup (resolve the student against the shards' grid, the losses against the
// shards' fields, the loader) -> resume_or_start -> train_steps -> finish (final checkpoint,
// evaluation, plots). Outputs under out_dir:
//   config.json               the resolved configuration (pass it back with --config to reproduce)
//   checkpoint-latest.ckpt    every checkpoint_every steps / epoch end / stop (core/nn checkpoint, kind "student")
//   student.ckpt              the finished run
//   metrics.jsonl             one record per logged interval, bad step and evaluation
//   plots/loss.png            loss curves (and plots/lr.png)
//   eval/<split>/step-<N>/    results_nusc.json, metrics_summary.json, ... of each evaluation
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>

#include "train/data/batch.h"
#include "train/data/loader_config.h"
#include "train/trainer/train_config.h"

namespace bevkd::train::trainer {

inline constexpr const char* kStudentCheckpointKind = "student";

struct TrainResult {
  int64_t steps_done = 0;
  int64_t total_steps = 0;
  bool finished = false;
  int64_t bad_steps = 0;
  double last_loss = 0;        // mean total loss of the last logged interval
  std::string checkpoint;      // student.ckpt when finished, else checkpoint-latest.ckpt
  std::optional<double> map;   // the last evaluation
  std::optional<double> nds;
  std::string metrics_json;
  double wall_s = 0;
  int rank = 0;                // this process's rank (data parallel); rank 0 reports
};

// Extension points for tools that run the same training step with another teacher source
// (bench/offline_online_bench.cpp runs the teacher in-process): never set by bevkd-train.
struct TrainHooks {
  // false: the loader reads no teacher dataset; on_batch must fill Batch::teacher_stored.
  bool loader_reads_teacher = true;
  // After set-up: the teacher fields the losses need (the loader settings they requested).
  std::function<void(const data::LoaderConfig& requested)> on_setup;
  // Each host batch before it moves to the device (inside the step's timing).
  std::function<void(data::Batch& host)> on_batch;
};

TrainResult train_student(const TrainConfig& cfg, std::ostream& log, const TrainHooks& hooks = {});

struct StudentEvalResult {
  double map = 0;
  double nds = 0;
  std::string weights;        // "model" or "ema"
  std::string results_path;
  std::string metrics_path;
  std::string table;
  int64_t samples = 0;
};

// `bevkd-train eval`: the checkpoint's student (its resolved config from the checkpoint's meta) on
// a split of shards: decode -> results JSON -> the official metrics against the shards' GT.
StudentEvalResult evaluate_checkpoint(const EvalConfig& cfg, std::ostream& log);

// Loss curves of a metrics log as PNGs (plots/loss.png, plots/lr.png under out_dir); returns the
// written paths.
std::vector<std::string> plot_metrics(const std::string& metrics_jsonl, const std::string& out_dir);
// Several runs on one PNG: each run's total loss and its detection heat-map loss, by step.
void plot_compare(const std::vector<std::string>& metrics_jsonl, const std::vector<std::string>& labels,
                  const std::string& out_png);

}  // namespace bevkd::train::trainer
