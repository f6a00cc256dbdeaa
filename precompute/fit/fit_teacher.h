// `bevkd-precompute fit-teacher`: trains the built-in PointPillars-CenterPoint on a
// nuScenes-format split and evaluates it on another with the official detection metrics, on the
// trainer kit of core/nn (LR schedule, gradient clipping, checkpoints, metrics log, GT rule).
//
//   setup     resolve the model config, write <out>/config.json (the resolved configuration:
//             `--config <out>/config.json` reproduces the run), open the frames, build model + AdamW
//   resume    an existing checkpoint-latest.ckpt is picked up (unless resume = false) after checking
//             that it was made with the same data, model, optimisation and seed; metrics.jsonl is
//             cut back to its step
//   train     batches prepared one ahead on TBB threads: frame -> training GT (core/nn/gt_filter.h)
//             -> global BEV augmentation of points and boxes (core/nn/bev_augment.h) -> point
//             shuffle -> GT range filter -> pillars + CenterPoint targets; AdamW with the schedule,
//             gradient clipping, a progress line, metrics.jsonl, checkpoint-latest.ckpt every
//             checkpoint_every steps and at each epoch end (atomic)
//   finish    teacher.ckpt (final) and the evaluation of val_split: eval/<split>/metrics_summary.json
//
// Randomness: every draw derives from (seed, epoch, position) through base/rng.h — shuffling,
// augmentation, point order — so a run is deterministic and a resumed run continues exactly.
// A non-finite input (a LiDAR point, a target) is reported naming the sample and its file; a
// non-finite loss with finite inputs is reported with its step and a hint to lower the lr.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/nn/bev_augment.h"
#include "core/nn/lr_schedule.h"
#include "precompute/teacher/teacher_config.h"

namespace bevkd::precompute {

struct FitTeacherConfig {
  // data
  std::string dataroot;
  std::string version = "v1.0-mini";
  std::string train_split = "mini_train";
  int64_t num_sweeps = 10;
  // model: a preset, a JSON model config file replacing it, or (in a saved resolved configuration)
  // the full model config itself
  std::string preset = "tiny";
  std::string model_config;
  TeacherModelConfig model;  // used when its pillar grid is set (a resolved configuration)
  // optimisation
  int64_t epochs = 20;
  int64_t batch_size = 4;
  core::nn::LrScheduleConfig schedule;  // onecycle, lr 2e-3 (mmdetection3d's cyclic schedule)
  double weight_decay = 0.01;
  double grad_clip = 35;         // max L2 norm of all gradients; 0 = off
  bool augment = true;
  core::nn::BevAugmentConfig augmentation;
  bool shuffle_points = true;
  uint64_t seed = 0;
  // evaluation
  std::string val_split = "mini_val";  // empty: no final evaluation
  int64_t eval_batch_size = 4;
  // runtime (never changes the result)
  std::string out_dir;
  int64_t num_workers = 2;       // TBB threads loading frames
  int64_t threads = 0;           // LibTorch intra-op threads; 0 = LibTorch's default
  std::string device = "cpu";
  int64_t checkpoint_every = 0;  // steps; 0 = at epoch ends only
  int64_t log_every = 10;        // steps between progress lines / metrics records
  bool resume = true;
  int64_t stop_after = 0;        // stop (with a checkpoint) after this many total steps; 0 = run to the end
  bool quiet = false;

  void validate() const;
  // The model configuration this run trains (model, else model_config, else the preset).
  TeacherModelConfig resolved_model() const;

  template <class V>
  void fields(V& v) {
    v.group("data", [&] {
      v("dataroot", dataroot, "--dataroot", "nuScenes-format dataset root (e.g. written by bevkd-synth)");
      v("version", version, "--version", "dataset version folder");
      v("train_split", train_split, "--train-split", "split to train on");
      v("num_sweeps", num_sweeps, "--sweeps", "LiDAR sweeps per key frame, key frame included");
    });
    v.group("model", [&] {
      v("preset", preset, "--preset", "model preset: tiny, nuscenes-pillar02");
      v("model_config", model_config, "--model-config", "JSON model config replacing the preset (see README)");
      v.nested("model", model);
    });
    v.group("optimisation", [&] {
      v("epochs", epochs, "--epochs", "training epochs");
      v("batch_size", batch_size, "--batch-size", "samples per step");
      v.nested("schedule", schedule, "");
      v("weight_decay", weight_decay, "--weight-decay", "AdamW weight decay");
      v("grad_clip", grad_clip, "--grad-clip", "max gradient norm, 0 = off");
      v("augment", augment, "--augment,!--no-augment", "global rotation/scale/flip augmentation");
      v.nested("augmentation", augmentation);
      v("shuffle_points", shuffle_points, "--shuffle-points,!--no-shuffle-points", "shuffle the points of a cloud");
      v("seed", seed, "--seed", "seed of every random choice");
    });
    v.group("evaluation", [&] {
      v("val_split", val_split, "--val-split", "split to evaluate on at the end ('' = none)");
      v("eval_batch_size", eval_batch_size, "--eval-batch-size", "samples per teacher call in the evaluation");
    });
    v.group("runtime", [&] {
      v("out_dir", out_dir, "--out", "output directory (checkpoints, metrics.jsonl, eval/)");
      v("num_workers", num_workers, "--workers", "data-loading threads");
      v("threads", threads, "--threads", "LibTorch intra-op threads (0 = default)");
      v("device", device, "--device", "cpu, cuda, cuda:N");
      v("checkpoint_every", checkpoint_every, "--checkpoint-every", "steps between checkpoints (0 = epoch ends)");
      v("log_every", log_every, "--log-every", "steps between progress lines");
      v("resume", resume, "--resume,!--no-resume", "continue from <out>/checkpoint-latest.ckpt if it exists");
      v("stop_after", stop_after, "--stop-after", "stop after this many steps in total (0 = run to the end)");
      v("quiet", quiet, "--quiet", "no progress lines");
    });
  }
};

struct FitTeacherResult {
  int64_t steps_done = 0;
  int64_t total_steps = 0;
  bool finished = false;          // all epochs done (not stopped early)
  double last_loss = 0;           // mean loss over the last logged interval
  std::string checkpoint;         // teacher.ckpt when finished, else checkpoint-latest.ckpt
  std::optional<double> map;      // final evaluation, when it ran
  std::optional<double> nds;
  std::string metrics_json;       // path of the evaluation's metrics summary
  double wall_s = 0;
};

FitTeacherResult fit_teacher(const FitTeacherConfig& cfg);

}  // namespace bevkd::precompute
