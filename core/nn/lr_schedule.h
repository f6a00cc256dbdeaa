// Learning-rate schedules of both trainers (fit-teacher, bevkd-train), as a function of the step:
//
//   onecycle  torch's OneCycleLR with cosine annealing both ways (mmdetection3d's cyclic schedule:
//             target_ratio (10, 1e-4), step_ratio_up 0.4): lr goes lr/div_factor -> lr over the
//             first warmup_fraction of the steps, then lr -> lr/final_div_factor; AdamW's beta1 is
//             cycled inversely, max_momentum -> base_momentum -> max_momentum.
//   cosine    linear warm-up lr/div_factor -> lr over warmup_fraction of the steps, then cosine
//             annealing lr -> lr/final_div_factor; beta1 constant.
//   constant  lr at every step (after the same linear warm-up); beta1 constant.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

namespace torch::optim {
class Optimizer;
}

namespace bevkd::core::nn {

struct LrScheduleConfig {
  std::string kind = "onecycle";  // onecycle | cosine | constant
  double lr = 2e-3;               // peak learning rate
  double warmup_fraction = 0.4;   // onecycle: share of the steps going up; cosine/constant: linear warm-up share
  double div_factor = 10;         // start lr = lr / div_factor
  double final_div_factor = 1e4;  // final lr = lr / final_div_factor (onecycle, cosine)
  double base_momentum = 0.85;    // onecycle: lowest beta1 (at the peak lr)
  double max_momentum = 0.95;     // onecycle: beta1 at the start and the end
  double beta1 = 0.9;             // cosine, constant: AdamW's beta1
  double beta2 = 0.999;

  // Throws bevkd::Error naming the field (prefixed with `where`).
  void validate(const std::string& where) const;

  template <class V>
  void fields(V& v) {
    v("kind", kind, "--schedule", "learning-rate schedule: onecycle | cosine | constant");
    v("lr", lr, "--lr", "peak learning rate");
    v("warmup_fraction", warmup_fraction, "--warmup-fraction", "share of the steps warming up");
    v("div_factor", div_factor, "--div-factor", "start lr = lr / div_factor");
    v("final_div_factor", final_div_factor, "--final-div-factor", "final lr = lr / final_div_factor");
    v("base_momentum", base_momentum);
    v("max_momentum", max_momentum);
    v("beta1", beta1);
    v("beta2", beta2);
  }
};

struct LrPoint {
  double lr = 0;
  double beta1 = 0.9;
  double beta2 = 0.999;
};

// The learning rate and betas of `step` (0-based) in a run of `total` steps.
LrPoint lr_at(const LrScheduleConfig& cfg, int64_t step, int64_t total);

// Sets lr and betas of every parameter group of an Adam or AdamW optimizer (lr only for others),
// scaled by `scale` (a group's own factor, e.g. a loss module's learning-rate multiplier).
void apply_lr(torch::optim::Optimizer& opt, const LrPoint& p, double scale = 1.0);

// The gradient norm over `params` (L2 over all of them, in float64) and, when it is finite and
// above max_norm > 0, every gradient scaled by max_norm / (norm + 1e-6) (torch's
// clip_grad_norm_). A non-finite norm is returned without touching the gradients, so a caller can
// skip the step.
double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

}  // namespace bevkd::core::nn
