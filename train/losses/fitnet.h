// FitNets (Romero et al., ICLR 2015) hint loss, spec/losses.md §7.1, in two forms:
//   mmrazor (losses/l2_loss.py L2Loss with normalize=True, used by configs/distill/mmcls/fitnets):
//     s_hat = r(S) / ||r(S)||, t_hat = T / ||T||   (each sample flattened to one vector)
//     L = w * sum (s_hat - t_hat)^2 / N            (N = batch size; the config uses w = 10)
//     with normalize = false the raw r(S) and T are compared.
//   plain (the usual BEV-KD table implementation of the paper's 1/2 ||T - r(S)||^2):
//     L = w * mean_{n,c,h,w} (r(S) - T)^2
// r is a 1x1 conv with bias (student -> teacher channels). mmrazor divides by the bare norm; bevkd
// clamps it at 1e-12 so that an all-zero sample gives 0 instead of NaN (identical otherwise).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace bevkd::train::losses {

enum class FitnetForm { kMmrazor, kPlain };

struct FitnetOptions {
  FitnetForm form = FitnetForm::kMmrazor;
  double loss_weight = 1.0;  // w (mmrazor's fitnets config: 10)
  bool normalize = true;     // mmrazor form only; must be false for the plain form
};

// s: [N, Cs, H, W] float32/float64 student map (differentiable); t: [N, C, H, W] teacher map
// (constant, cast to s's dtype); regressor_w [C, Cs, 1, 1], regressor_b [C]. Returns a scalar.
torch::Tensor fitnet_loss(const torch::Tensor& s, const torch::Tensor& t, const torch::Tensor& regressor_w,
                          const torch::Tensor& regressor_b, const FitnetOptions& opts = {});

// Owns the regressor r (1x1 conv with bias, always present). A student map on another grid is
// first resized bilinearly to the teacher's H x W (spec/losses.md §11.3).
class FitnetDistillerImpl : public torch::nn::Module {
 public:
  FitnetDistillerImpl(int64_t student_channels, int64_t teacher_channels, FitnetOptions opts = {});
  torch::Tensor forward(const torch::Tensor& s, const torch::Tensor& t);
  const FitnetOptions& options() const { return opts_; }
  torch::nn::Conv2d regressor{nullptr};

 private:
  FitnetOptions opts_;
};
TORCH_MODULE(FitnetDistiller);

}  // namespace bevkd::train::losses
