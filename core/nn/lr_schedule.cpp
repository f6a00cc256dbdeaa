#include "core/nn/lr_schedule.h"

#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/optimizer.h>

#include <cmath>

#include "base/error.h"
#include "base/math.h"

namespace bevkd::core::nn {

namespace {
double cosine(double from, double to, double u) { return to + (from - to) * 0.5 * (1 + std::cos(kPi * u)); }
}  // namespace

void LrScheduleConfig::validate(const std::string& where) const {
  BEVKD_CHECK(kind == "onecycle" || kind == "cosine" || kind == "constant", where, ": schedule kind is '", kind,
              "', expected onecycle, cosine or constant");
  BEVKD_CHECK(std::isfinite(lr) && lr > 0, where, ": lr must be positive, got ", lr);
  BEVKD_CHECK(warmup_fraction >= 0 && warmup_fraction < 1, where, ": warmup_fraction must be in [0, 1), got ",
              warmup_fraction);
  BEVKD_CHECK(div_factor >= 1 && final_div_factor >= 1, where,
              ": div_factor and final_div_factor must be >= 1, got ", div_factor, " and ", final_div_factor);
  BEVKD_CHECK(base_momentum > 0 && base_momentum <= max_momentum && max_momentum < 1, where,
              ": momenta must satisfy 0 < base_momentum <= max_momentum < 1, got ", base_momentum, " and ",
              max_momentum);
  BEVKD_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, where, ": beta1 and beta2 must be in [0, 1)");
}

LrPoint lr_at(const LrScheduleConfig& cfg, int64_t step, int64_t total) {
  const double t = total <= 1 ? 1.0 : static_cast<double>(step) / static_cast<double>(total - 1);
  const double peak = cfg.lr, start = cfg.lr / cfg.div_factor, end = cfg.lr / cfg.final_div_factor;
  const double w = cfg.warmup_fraction;
  const double u = w >= 1 ? 1.0 : (t - w) / (1 - w);  // progress after the warm-up
  if (cfg.kind == "onecycle") {
    if (w > 0 && t < w)
      return {cosine(start, peak, t / w), cosine(cfg.max_momentum, cfg.base_momentum, t / w), cfg.beta2};
    return {cosine(peak, end, u), cosine(cfg.base_momentum, cfg.max_momentum, u), cfg.beta2};
  }
  if (w > 0 && t < w) return {start + (peak - start) * t / w, cfg.beta1, cfg.beta2};
  if (cfg.kind == "constant") return {peak, cfg.beta1, cfg.beta2};
  return {cosine(peak, end, u), cfg.beta1, cfg.beta2};
}

void apply_lr(torch::optim::Optimizer& opt, const LrPoint& p, double scale) {
  for (auto& group : opt.param_groups()) {
    auto& o = group.options();
    if (auto* a = dynamic_cast<torch::optim::AdamWOptions*>(&o)) {
      a->lr(p.lr * scale);
      a->betas({p.beta1, p.beta2});
    } else if (auto* b = dynamic_cast<torch::optim::AdamOptions*>(&o)) {
      b->lr(p.lr * scale);
      b->betas({p.beta1, p.beta2});
    } else {
      o.set_lr(p.lr * scale);
    }
  }
}

double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  torch::Tensor sq;  // one device synchronisation, not one per parameter
  for (const auto& p : params) {
    const auto& g = p.grad();
    if (!g.defined()) continue;
    const auto s = g.to(torch::kFloat64).pow(2).sum();
    sq = sq.defined() ? sq + s : s;
  }
  const double norm = sq.defined() ? std::sqrt(sq.item<double>()) : 0.0;
  if (!std::isfinite(norm) || max_norm <= 0 || norm <= max_norm) return norm;
  const double coef = max_norm / (norm + 1e-6);
  for (const auto& p : params) {
    auto g = p.grad();
    if (g.defined()) g.mul_(coef);
  }
  return norm;
}

}  // namespace bevkd::core::nn
