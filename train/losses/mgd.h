// Masked generative distillation (Yang et al., ECCV 2022; yzd-v/MGD FeatureLoss), spec/losses.md
// §7.3:
//   S' = align(S)                       1x1 conv + bias, only when Cs != C
//   M  = 0 where u > 1 - lambda, else 1 u ~ U(0,1) [N, 1, H, W]: one mask per cell, shared by the
//                                       channels; a fraction lambda of the cells is masked
//   G  = Conv3x3(C, C, bias) . ReLU . Conv3x3(C, C, bias)    (padding 1)
//   L  = alpha * sum_{n,c,h,w} (G(S' * M) - T)^2 / N
// Defaults: alpha 2e-5, lambda 0.65 (detection; segmentation uses 0.75). Upstream draws u with
// torch.rand at every call; here u is an argument (tests and loss-probe inject it) or is drawn by
// MgdDistiller from the trainer's seeded generator.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <optional>

namespace bevkd::train::losses {

struct MgdOptions {
  double alpha = 2e-5;   // alpha_mgd
  double lambda = 0.65;  // lambda_mgd: masked fraction, in [0, 1]
};

// The trainable tensors of MGD. align_w/align_b are undefined when Cs == C.
struct MgdParams {
  torch::Tensor align_w;  // [C, Cs, 1, 1] (iff Cs != C)
  torch::Tensor align_b;  // [C]          (iff Cs != C)
  torch::Tensor gen_w1;   // [C, C, 3, 3]
  torch::Tensor gen_b1;   // [C]
  torch::Tensor gen_w2;   // [C, C, 3, 3]
  torch::Tensor gen_b2;   // [C]
};

// u: [N, 1, H, W] float in [0, 1) -> the {0, 1} mask [N, 1, H, W] in u's dtype (0 where u > 1 - lambda;
// the comparison happens in u's dtype, like upstream's torch.where(mat > 1 - lambda, 0, 1)).
torch::Tensor mgd_mask(const torch::Tensor& u, double lambda);

// s: [N, Cs, H, W] float32/float64 student map (differentiable);
// t: [N, C, H, W] teacher map (constant; cast to s's dtype);
// u: [N, 1, H, W] uniform draws (constant). Returns the weighted scalar loss.
torch::Tensor mgd_loss(const torch::Tensor& s, const torch::Tensor& t, const torch::Tensor& u, const MgdParams& params,
                       const MgdOptions& opts = {});

// Owns MGD's trainable parts: `align` (1x1 conv with bias, only when Cs != C) and the generator
// `gen1`, `gen2` (3x3 convs with bias, padding 1; PyTorch's default initialisation as upstream).
// A student map on another grid is first resized bilinearly (align_corners = false) to the
// teacher's H x W (spec/losses.md §11.3).
class MgdDistillerImpl : public torch::nn::Module {
 public:
  MgdDistillerImpl(int64_t student_channels, int64_t teacher_channels, MgdOptions opts = {});

  // u given: that mask draw. u undefined: u = U(0,1) [N, 1, H, W] drawn from `generator` on the
  // generator's device (float32, like torch.rand) and moved to s's device, so a CPU generator
  // gives the same masks on every device. Neither u nor a generator: bevkd::Error (randomness
  // must come from the trainer's seeded generator, spec/losses.md §11.6).
  torch::Tensor forward(const torch::Tensor& s, const torch::Tensor& t, const torch::Tensor& u = {},
                        std::optional<at::Generator> generator = std::nullopt);

  MgdParams params() const;
  const MgdOptions& options() const { return opts_; }

  torch::nn::Conv2d align{nullptr};  // null when the channel counts agree
  torch::nn::Conv2d gen1{nullptr};
  torch::nn::Conv2d gen2{nullptr};

 private:
  MgdOptions opts_;
};
TORCH_MODULE(MgdDistiller);

}  // namespace bevkd::train::losses
