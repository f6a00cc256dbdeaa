// `bevkd-precompute fit-teacher`: trains the built-in PointPillars-CenterPoint on a
// nuScenes-format split and evaluates it on another with the official detection metrics.
//
//   * data: key frames with N sweeps (lidar_frames.h), GT with >= 1 LiDAR/radar point; global BEV
//     augmentation (rotation, scale, flips; core/bev_augment.h) of points and boxes together,
//     point shuffling; GT outside the point-cloud range dropped. Frames are loaded, augmented,
//     pillarised and given their CenterPoint targets on TBB worker threads, one batch ahead.
//   * optimisation: AdamW, one-cycle (cosine up then down, beta1 cycled inversely, as
//     mmdetection3d's cyclic schedule) or linear-warm-up cosine LR, gradient clipping at 35.
//   * randomness: every draw derives from (seed, epoch, position) — shuffling, augmentation,
//     point order — so a run is deterministic and a resumed run continues exactly.
//   * outputs in out_dir: config.json (resolved fit + model config), metrics.jsonl (one JSON
//     object per logged step and per evaluation), checkpoint-latest.ckpt (every
//     checkpoint_every steps and at each epoch end, atomic), teacher.ckpt (final),
//     eval/<split>/metrics_summary.json and results_nusc.json.
//   * resume: an existing checkpoint-latest.ckpt is picked up (unless resume=false), after
//     checking that it was made with the same model and schedule; metrics.jsonl is cut back to
//     the checkpoint's step.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/bev_augment.h"

namespace bevkd::precompute {

struct FitTeacherConfig {
  // data
  std::string dataroot;
  std::string version = "v1.0-mini";
  std::string train_split = "mini_train";
  std::string val_split = "mini_val";   // empty: no final evaluation
  int64_t num_sweeps = 10;
  // model: a preset, optionally replaced by a JSON model config file (teacher_config.h)
  std::string preset = "tiny";
  std::string model_config;
  // optimisation
  int64_t epochs = 20;
  int64_t batch_size = 4;
  double lr = 2e-3;              // peak learning rate
  double weight_decay = 0.01;
  std::string schedule = "onecycle";  // "onecycle" | "cosine"
  double warmup_fraction = 0.4;  // onecycle: share of steps going up; cosine: linear warm-up share
  double div_factor = 10;        // onecycle start lr = lr / div_factor
  double final_div_factor = 1e4; // final lr = lr / final_div_factor
  double grad_clip = 35;         // max L2 norm of all gradients; 0 = off
  bool augment = true;
  core::BevAugmentConfig augmentation;
  bool shuffle_points = true;
  // runtime
  std::string out_dir;
  uint64_t seed = 0;
  int64_t num_workers = 2;       // TBB threads loading frames
  int64_t threads = 0;           // LibTorch intra-op threads; 0 = LibTorch's default
  std::string device = "cpu";
  int64_t checkpoint_every = 0;  // steps; 0 = at epoch ends only
  int64_t log_every = 10;        // steps between progress lines / metrics records
  bool resume = true;
  int64_t stop_after = 0;        // stop (with a checkpoint) after this many total steps; 0 = run to the end
  int64_t eval_batch_size = 4;
  bool quiet = false;

  void validate() const;
  std::string to_json() const;
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

// The learning rate and AdamW beta1 of `step` (0-based) in a run of `total` steps.
struct LrPoint {
  double lr;
  double beta1;
};
LrPoint lr_at(const FitTeacherConfig& cfg, int64_t step, int64_t total);

}  // namespace bevkd::precompute
