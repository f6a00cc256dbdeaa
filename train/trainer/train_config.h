// The configuration of `bevkd-train train` and `bevkd-train eval` (configuration as data,
// base/config.h: one field list serves config.json, --config FILE and the flags).
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/nn/lr_schedule.h"
#include "train/data/loader_config.h"
#include "train/student/student_config.h"

namespace bevkd::train::trainer {

// One distillation loss of the run: a registry name (loss_registry.h), its weight (NaN = the
// entry's default) and its parameters. In JSON one object: {"name": "...", "weight": 1.0, <params>}.
struct LossSpec {
  std::string name;
  double weight = std::numeric_limits<double>::quiet_NaN();
  nlohmann::json params = nlohmann::json::object();
};
nlohmann::json to_config_json(const LossSpec& s);
void from_config_json(const nlohmann::json& j, LossSpec& s, const std::string& where);
// "name" or "name:weight" (the --loss flag).
LossSpec parse_loss_flag(const std::string& text);

struct TrainConfig {
  // data
  std::string shards;       // a manifest.json or the directory holding it (bevkd-precompute's --out)
  std::string dataroot;     // the nuScenes-format dataset root the shards' image paths are relative to
  std::string train_split = "train";
  std::string val_split;    // periodic and final evaluation ("" = none)

  // student
  std::string preset = "tiny";
  std::string student_config;           // a JSON file overriding the preset (partial or full)
  student::StudentConfig student;       // the resolved student (config.json holds it; set = used as is)
  std::string init;                     // torchvision ResNet weights for the image backbone (--init)

  data::LoaderConfig loader;            // loader.image is derived from the student (image size, augmentation, mean/std)

  // optimisation
  int64_t epochs = 2;
  core::nn::LrScheduleConfig schedule;  // AdamW's lr and betas over the steps
  double weight_decay = 1e-2;           // AdamW (BEVDepth: 1e-7 with lr 2e-4 x batch/64; here the tiny default)
  double grad_clip = 5.0;               // max gradient norm, 0 = off (BEVDepth: 5)
  bool ema = false;                     // keep an exponential moving average of the weights
  double ema_decay = 0.999;             // BEVDepth's EMA: decay * (1 - exp(-updates / ema_ramp))
  double ema_ramp = 2000;
  std::string precision = "fp32";       // fp32 | bf16 (autocast, CUDA only)
  std::vector<LossSpec> losses;         // distillation losses (loss_registry.h)
  int64_t max_bad_steps = 20;           // non-finite loss / gradient steps skipped before the run stops
  // Micro-batches per optimiser step. The epoch's order is cut into world_size x accumulate
  // contiguous parts; micro-batch k of rank r comes from part r x accumulate + k, so two ranks
  // and one process accumulating two micro-batches see the same data and take the same steps.
  int64_t accumulate = 1;

  // evaluation
  int64_t eval_every = 0;               // steps between evaluations on val_split (0 = at the end only)
  std::string eval_weights = "auto";    // auto (ema if kept) | ema | model

  // runtime
  std::string out_dir;
  std::string device = "cpu";
  int64_t threads = 0;                  // LibTorch intra-op threads, 0 = default
  int64_t checkpoint_every = 0;         // steps; 0 = at epoch ends and the end
  int64_t log_every = 10;
  bool resume = true;
  int64_t stop_after = 0;               // stop (with a checkpoint) after this many steps in total
  bool plots = true;                    // PNG loss curves at the end
  bool quiet = false;
  // data parallel (train/trainer/distributed.h; ranks from torchrun's or Slurm's variables)
  double dist_timeout_s = 300;          // rendezvous and every collective; a dead rank is named within it
  std::string dist_backend = "auto";    // auto (nccl on CUDA with BEVKD_WITH_NCCL, else gloo) | gloo | nccl
  double dist_bucket_mb = 25;           // gradient all-reduce bucket size
  bool dist_overlap = true;             // all-reduce buckets while backward runs

  void validate() const;  // throws bevkd::Error naming the field

  template <class V>
  void fields(V& v) {
    v.group("data", [&] {
      v("shards", shards, "--shards", "manifest.json (or its directory) of the teacher shards");
      v("dataroot", dataroot, "--dataroot", "dataset root the shards' image paths are relative to");
      v("train_split", train_split, "--train-split", "split to train on");
      v("val_split", val_split, "--val-split", "split to evaluate on ('' = none)");
    });
    v.group("student", [&] {
      v("preset", preset, "--preset", "student preset: tiny, bevdepth-r50");
      v("student_config", student_config, "--student-config", "JSON file overriding the preset");
      v.nested("model", student);
      v("init", init, "--init", "torchvision ResNet weights (scripts/convert_torchvision_weights.py output)");
    });
    v.nested("loader", loader, "");
    v.group("optimisation", [&] {
      v("epochs", epochs, "--epochs", "training epochs");
      v.nested("schedule", schedule, "");
      v("weight_decay", weight_decay, "--weight-decay", "AdamW weight decay");
      v("grad_clip", grad_clip, "--grad-clip", "max gradient norm (0 = off)");
      v("ema", ema, "--ema,!--no-ema", "keep an EMA of the weights");
      v("ema_decay", ema_decay, "--ema-decay", "EMA decay (before the ramp)");
      v("ema_ramp", ema_ramp, "--ema-ramp", "EMA ramp: decay * (1 - exp(-updates / ramp))");
      v("precision", precision, "--precision", "fp32 | bf16 (CUDA autocast)");
      v("losses", losses);
      v("max_bad_steps", max_bad_steps, "--max-bad-steps", "non-finite steps skipped before stopping");
      v("accumulate", accumulate, "--accumulate", "micro-batches per step (each from its own part of the epoch)");
    });
    v.group("evaluation", [&] {
      v("eval_every", eval_every, "--eval-every", "steps between evaluations (0 = at the end)");
      v("eval_weights", eval_weights, "--eval-weights", "auto | ema | model");
    });
    v.group("runtime", [&] {
      v("out_dir", out_dir, "--out", "output directory");
      v("device", device, "--device", "cpu, cuda, cuda:N");
      v("threads", threads, "--threads", "LibTorch intra-op threads (0 = default)");
      v("checkpoint_every", checkpoint_every, "--checkpoint-every", "steps between checkpoints (0 = epoch ends)");
      v("log_every", log_every, "--log-every", "steps between progress lines");
      v("resume", resume, "--resume,!--no-resume", "continue from <out>/checkpoint-latest.ckpt if it exists");
      v("stop_after", stop_after, "--stop-after", "stop after this many steps in total (0 = run to the end)");
      v("plots", plots, "--plots,!--no-plots", "PNG loss curves");
      v("quiet", quiet, "--quiet", "no progress lines");
      v("dist_timeout_s", dist_timeout_s, "--dist-timeout", "seconds: rendezvous and collective timeout");
      v("dist_backend", dist_backend, "--dist-backend", "auto | gloo | nccl");
      v("dist_bucket_mb", dist_bucket_mb, "--dist-bucket-mb", "gradient all-reduce bucket size (MB)");
      v("dist_overlap", dist_overlap, "--dist-overlap,!--no-dist-overlap", "all-reduce while backward runs");
    });
  }
};

// `bevkd-train eval`: a checkpoint on a split of shards.
struct EvalConfig {
  std::string checkpoint;  // student.ckpt / checkpoint-latest.ckpt of a run
  std::string shards;
  std::string dataroot;
  std::string split = "val";
  std::string out_dir;     // default: <checkpoint dir>/eval/<split>
  std::string weights = "auto";  // auto | ema | model
  int64_t batch_size = 4;
  int threads = 2;         // loader threads
  std::string device = "cpu";
  bool plots = true;
  bool quiet = false;

  void validate() const;
  template <class V>
  void fields(V& v) {
    v("checkpoint", checkpoint, "--checkpoint", "a bevkd-train checkpoint");
    v("shards", shards, "--shards", "manifest.json (or its directory)");
    v("dataroot", dataroot, "--dataroot", "dataset root of the images");
    v("split", split, "--split", "split to evaluate");
    v("out_dir", out_dir, "--out", "output directory (default <checkpoint dir>/eval/<split>)");
    v("weights", weights, "--weights", "auto (ema if the checkpoint has it) | ema | model");
    v("batch_size", batch_size, "--batch-size", "samples per forward pass");
    v("threads", threads, "--loader-threads", "loader threads");
    v("device", device, "--device", "cpu, cuda, cuda:N");
    v("plots", plots, "--plots,!--no-plots", "PR-curve PNGs");
    v("quiet", quiet, "--quiet", "no progress line");
  }
};

// The student configuration a TrainConfig trains: cfg.student when it holds a grid (a saved
// config.json), else the preset overridden by student_config. Grid not yet aligned.
student::StudentConfig resolve_student(const TrainConfig& cfg);

// The loader's image settings of a student (size, augmentation ranges, normalisation; the
// student's resize range is BEVDepth's factor on a reference_width-wide image).
data::ImageAugConfig loader_image_config(const student::StudentConfig& s);
// The loader settings a student dictates, set in `c`: loader_image_config(s), the depth stride and
// the depth range of its bins (training, evaluation and the benchmark use this one function).
void follow_student(data::LoaderConfig& c, const student::StudentConfig& s);

}  // namespace bevkd::train::trainer
