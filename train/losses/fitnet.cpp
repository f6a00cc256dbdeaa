#include "train/losses/fitnet.h"

#include <torch/nn/functional/conv.h>

#include "base/error.h"
#include "train/losses/loss_util.h"

namespace bevkd::train::losses {

namespace F = torch::nn::functional;

torch::Tensor fitnet_loss(const torch::Tensor& s, const torch::Tensor& t, const torch::Tensor& regressor_w,
                          const torch::Tensor& regressor_b, const FitnetOptions& opts) {
  check_float_tensor(s, "fitnet", "s", 4, "[N,Cs,H,W]");
  const int64_t N = s.size(0), Cs = s.size(1), H = s.size(2), W = s.size(3);
  BEVKD_CHECK(t.defined() && t.dim() == 4 && t.size(0) == N && t.size(2) == H && t.size(3) == W &&
                  torch::isFloatingType(t.scalar_type()),
              "fitnet: input t has shape ", shape_str(t), ", expected [N,C,H,W] with N,H,W = ", N, ",", H, ",", W);
  const int64_t C = t.size(1);
  BEVKD_CHECK(regressor_w.defined() && regressor_w.sizes() == c10::IntArrayRef({C, Cs, 1, 1}),
              "fitnet: input regressor_w has shape ", shape_str(regressor_w), ", expected [C,Cs,1,1]=[", C, ",", Cs,
              ",1,1]");
  BEVKD_CHECK(regressor_b.defined() && regressor_b.sizes() == c10::IntArrayRef({C}), "fitnet: input regressor_b has shape ",
              shape_str(regressor_b), ", expected [C]=[", C, "]");
  BEVKD_CHECK(!(opts.form == FitnetForm::kPlain && opts.normalize), "fitnet: normalize = true is not allowed with ",
              "the plain form (it must be false)");
  if (N == 0) return connected_zero(s);

  const auto dt = s.scalar_type();
  const auto r = F::conv2d(s, regressor_w.to(dt), F::Conv2dFuncOptions().bias(regressor_b.to(dt)));
  const auto tt = t.detach().to(s.device(), dt);
  if (opts.form == FitnetForm::kPlain) return (r - tt).square().mean() * opts.loss_weight;

  auto sf = r.reshape({N, -1});
  auto tf = tt.reshape({N, -1});
  if (opts.normalize) {
    sf = sf / sf.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12);
    tf = tf / tf.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12);
  }
  return (sf - tf).square().sum() / static_cast<double>(N) * opts.loss_weight;
}

FitnetDistillerImpl::FitnetDistillerImpl(int64_t student_channels, int64_t teacher_channels, FitnetOptions opts)
    : opts_(opts) {
  BEVKD_CHECK(student_channels > 0 && teacher_channels > 0, "fitnet: channels ", student_channels, " -> ",
              teacher_channels, ", expected positive");
  regressor = register_module(
      "regressor", torch::nn::Conv2d(torch::nn::Conv2dOptions(student_channels, teacher_channels, 1).bias(true)));
}

torch::Tensor FitnetDistillerImpl::forward(const torch::Tensor& s, const torch::Tensor& t) {
  BEVKD_CHECK(s.dim() == 4 && t.dim() == 4, "fitnet: maps have shapes ", shape_str(s), " and ", shape_str(t),
              ", expected [N,C,H,W]");
  return fitnet_loss(resize_to(s, t.size(2), t.size(3)), t, regressor->weight, regressor->bias, opts_);
}

}  // namespace bevkd::train::losses
