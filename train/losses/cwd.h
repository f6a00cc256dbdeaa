// Channel-wise distillation (Shu et al., ICCV 2021), spec/losses.md §7.2. Each channel of each
// sample is turned into a distribution over its H*W cells (softmax over cells, NOT over channels):
//   p_T = softmax_{HW}(T / tau), log p_S = log_softmax_{HW}(S / tau)     per (n, c)
//   KL form (TorchDistiller CriterionCWD(norm_type='channel', divergence='kl'), mmrazor
//   ChannelWiseDivergence):  L = w * tau^2 * sum_{n,c,hw} p_T (log p_T - log p_S) / (N * C)
//   CE form (FocalDistiller's variant, the teacher entropy dropped):
//                            L = w * tau^2 * sum_{n,c,hw} -p_T log p_S / (N * C)
// Both have the same gradient; the CE value is larger by the teacher entropy. log p_T is computed
// with log_softmax (TorchDistiller takes log(softmax), equal up to rounding but -inf where the
// softmax underflows). C is the channel count of the compared maps (after any adaptor).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace bevkd::train::losses {

enum class CwdForm { kKl, kCrossEntropy };

struct CwdOptions {
  double tau = 1.0;          // temperature
  double loss_weight = 1.0;  // w
  CwdForm form = CwdForm::kKl;
};

// s: [N, C, H, W] float32/float64 student map (differentiable);
// t: [N, C, H, W] teacher map (any float dtype, constant; cast to s's dtype). Returns a scalar.
torch::Tensor cwd_loss(const torch::Tensor& s, const torch::Tensor& t, const CwdOptions& opts = {});

// CWD with the one adaptor rule of spec/losses.md §11.3: a 1x1 conv (bias) student -> teacher
// channels when they differ (none otherwise), and a bilinear resize (align_corners = false) of the
// student map onto the teacher's H x W when the grids differ.
class CwdDistillerImpl : public torch::nn::Module {
 public:
  CwdDistillerImpl(int64_t student_channels, int64_t teacher_channels, CwdOptions opts = {});
  torch::Tensor forward(const torch::Tensor& s, const torch::Tensor& t);
  const CwdOptions& options() const { return opts_; }
  torch::nn::Conv2d align{nullptr};  // null when the channel counts agree

 private:
  CwdOptions opts_;
};
TORCH_MODULE(CwdDistiller);

}  // namespace bevkd::train::losses
