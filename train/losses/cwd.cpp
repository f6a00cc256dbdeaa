#include "train/losses/cwd.h"

#include "base/error.h"
#include "train/losses/loss_util.h"

namespace bevkd::train::losses {

torch::Tensor cwd_loss(const torch::Tensor& s, const torch::Tensor& t, const CwdOptions& opts) {
  const char* loss = opts.form == CwdForm::kKl ? "cwd_kl" : "cwd_ce_focaldistiller";
  check_float_tensor(s, loss, "s", 4, "[N,C,H,W]");
  BEVKD_CHECK(t.defined() && t.sizes() == s.sizes() && torch::isFloatingType(t.scalar_type()), loss, ": input t has shape ",
              shape_str(t), ", expected [N,C,H,W]=", shape_str(s));
  BEVKD_CHECK(opts.tau > 0, loss, ": tau ", opts.tau, ", expected > 0");
  const int64_t N = s.size(0), C = s.size(1), HW = s.size(2) * s.size(3);
  if (N * C == 0 || HW == 0) return connected_zero(s);
  const auto tt = t.detach().to(s.device(), s.scalar_type()).reshape({N * C, HW}) / opts.tau;
  const auto log_ps = torch::log_softmax(s.reshape({N * C, HW}) / opts.tau, 1);
  const auto pt = torch::softmax(tt, 1);
  const auto inner = opts.form == CwdForm::kKl ? pt * (torch::log_softmax(tt, 1) - log_ps) : -pt * log_ps;
  return inner.sum() * (opts.tau * opts.tau) * opts.loss_weight / static_cast<double>(N * C);
}

CwdDistillerImpl::CwdDistillerImpl(int64_t student_channels, int64_t teacher_channels, CwdOptions opts)
    : opts_(opts) {
  BEVKD_CHECK(student_channels > 0 && teacher_channels > 0, "cwd: channels ", student_channels, " -> ",
              teacher_channels, ", expected positive");
  if (student_channels != teacher_channels) {
    align = register_module(
        "align", torch::nn::Conv2d(torch::nn::Conv2dOptions(student_channels, teacher_channels, 1).bias(true)));
  }
}

torch::Tensor CwdDistillerImpl::forward(const torch::Tensor& s, const torch::Tensor& t) {
  BEVKD_CHECK(s.dim() == 4 && t.dim() == 4, "cwd: maps have shapes ", shape_str(s), " and ", shape_str(t),
              ", expected [N,C,H,W]");
  auto x = resize_to(s, t.size(2), t.size(3));
  if (align) x = align(x);
  return cwd_loss(x, t, opts_);
}

}  // namespace bevkd::train::losses
