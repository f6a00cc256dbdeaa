// `bevkd-train fd3d-head`: FD3D's distillation head (train/losses/fd3d_head.h) trained alone on
// the stored teacher features and GT of a split (no image is read, no student is built), then
// checked on another split: its own detections (top queries, NMS-free) scored with the official
// metrics (core/eval) next to the stored teacher boxes of the same samples, and its focal queries
// counted (per sample with GT, share of GT boxes matched to a focal query). The checkpoint it
// writes warm-starts the head of the `fd3d` loss (parameter head_init), which keeps training it
// alongside the student. Resumable: a run killed mid-way continues from its last checkpoint.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

#include "core/nn/lr_schedule.h"

namespace bevkd::train::trainer {

struct Fd3dHeadRunConfig {
  std::string shards;
  std::string dataroot;
  std::string train_split = "train";
  std::string val_split = "val";
  std::string out_dir;
  std::string tap = "neck";
  std::string device = "cpu";
  int64_t steps = 2000;
  int64_t batch_size = 4;
  int threads = 2;  // loader threads
  int64_t log_every = 50;
  int64_t checkpoint_every = 250;
  int64_t max_det = 300;  // detections per sample in the evaluation
  uint64_t seed = 0;
  // AdamW's learning rate over the steps (core/nn/lr_schedule.h): linear warm-up over the first
  // 4 % from lr / 100, then cosine annealing to lr / 1e4.
  core::nn::LrScheduleConfig schedule = default_schedule();
  double weight_decay = 1e-4;
  double grad_clip = 35;
  // The head (spec/losses.md §6 defaults).
  int64_t num_queries = 300;
  int64_t embed_dims = 256;
  int64_t num_layers = 3;
  int64_t heads = 8;
  int64_t points = 4;
  double alpha = 2.0;  // focal classification weight
  double beta = 0.25;  // L1 box weight
  double rho_c = 0.3;
  double rho_b = 0.3;
  bool quiet = false;

  static core::nn::LrScheduleConfig default_schedule() {
    core::nn::LrScheduleConfig s;
    s.kind = "cosine";
    s.lr = 2e-4;
    s.warmup_fraction = 0.04;
    s.div_factor = 100;
    return s;
  }

  void validate() const;
  template <class V>
  void fields(V& v) {
    v("shards", shards, "--shards", "manifest.json (or its directory)");
    v("dataroot", dataroot, "--dataroot", "dataset root (GT is read from the shards; no image is read)");
    v("train_split", train_split, "--train-split", "split the head trains on");
    v("val_split", val_split, "--val-split", "split it is evaluated on");
    v("out_dir", out_dir, "--out", "output directory (checkpoint, metrics.jsonl, report.json, eval/)");
    v("tap", tap, "--tap", "teacher feature tap the head reads");
    v("device", device, "--device", "cpu, cuda, cuda:N");
    v("steps", steps, "--steps", "training steps");
    v("batch_size", batch_size, "--batch-size", "samples per step");
    v("threads", threads, "--loader-threads", "loader threads");
    v("log_every", log_every, "--log-every", "steps between progress lines / metrics records");
    v("checkpoint_every", checkpoint_every, "--checkpoint-every", "steps between checkpoints");
    v("max_det", max_det, "--max-det", "detections per sample in the evaluation");
    v("seed", seed, "--seed", "epoch order, views and initialisation");
    v.nested("schedule", schedule, "");
    v("weight_decay", weight_decay, "--weight-decay", "AdamW weight decay");
    v("grad_clip", grad_clip, "--grad-clip", "gradient-norm clip (0: none)");
    v("num_queries", num_queries, "--num-queries", "N learned queries");
    v("embed_dims", embed_dims, "--embed-dims", "query width D");
    v("num_layers", num_layers, "--num-layers", "decoder layers");
    v("heads", heads, "--heads", "deformable-attention heads M");
    v("points", points, "--points", "sampling points per head K");
    v("alpha", alpha, "--alpha", "focal classification loss weight");
    v("beta", beta, "--beta", "L1 box loss weight");
    v("rho_c", rho_c, "--rho-c", "focal query: confidence threshold");
    v("rho_b", rho_b, "--rho-b", "focal query: GIoU-with-GT threshold");
    v("quiet", quiet, "--quiet", "no progress lines");
  }
};

struct Fd3dHeadRunResult {
  int64_t steps_done = 0;
  std::string checkpoint;
  std::string report;  // report.json
  double head_map = 0, head_nds = 0;
  double teacher_map = 0, teacher_nds = 0;
  double focal_per_gt_sample = 0;  // mean focal queries per evaluated sample with GT
  double gt_covered = 0;           // share of GT boxes matched to a focal query
  int64_t samples = 0;
};

Fd3dHeadRunResult run_fd3d_head(const Fd3dHeadRunConfig& cfg, std::ostream& log);

// The checkpoint kind it writes (module "fd3d_head"; meta: the head's decoder and loss options,
// its grid and tap, the step).
inline constexpr const char* kFd3dHeadCheckpointKind = "bevkd-fd3d-head";

}  // namespace bevkd::train::trainer
