#include "train/losses/mgd.h"

#include <torch/nn/functional/conv.h>

#include "base/error.h"
#include "train/losses/loss_util.h"

namespace bevkd::train::losses {

namespace F = torch::nn::functional;

torch::Tensor mgd_mask(const torch::Tensor& u, double lambda) {
  return torch::where(u > 1.0 - lambda, torch::zeros({}, u.options()), torch::ones({}, u.options()));
}

namespace {

void check_param(const torch::Tensor& p, const char* name, std::initializer_list<int64_t> shape) {
  BEVKD_CHECK(p.defined() && p.sizes() == c10::IntArrayRef(shape), "mgd: input ", name, " has shape ", shape_str(p),
              ", expected ", c10::IntArrayRef(shape));
}

}  // namespace

torch::Tensor mgd_loss(const torch::Tensor& s, const torch::Tensor& t, const torch::Tensor& u, const MgdParams& params,
                       const MgdOptions& opts) {
  check_float_tensor(s, "mgd", "s", 4, "[N,Cs,H,W]");
  const int64_t N = s.size(0), Cs = s.size(1), H = s.size(2), W = s.size(3);
  BEVKD_CHECK(t.defined() && t.dim() == 4 && t.size(0) == N && t.size(2) == H && t.size(3) == W &&
                  torch::isFloatingType(t.scalar_type()),
              "mgd: input t has shape ", shape_str(t), ", expected [N,C,H,W] with N,H,W = ", N, ",", H, ",", W);
  const int64_t C = t.size(1);
  BEVKD_CHECK(u.defined() && u.sizes() == c10::IntArrayRef({N, 1, H, W}) && torch::isFloatingType(u.scalar_type()),
              "mgd: input u has shape ", shape_str(u), ", expected [N,1,H,W]=[", N, ",1,", H, ",", W, "]");
  BEVKD_CHECK(opts.lambda >= 0 && opts.lambda <= 1, "mgd: lambda_mgd ", opts.lambda, ", expected in [0, 1]");
  if (Cs != C) {
    check_param(params.align_w, "align_w", {C, Cs, 1, 1});
    check_param(params.align_b, "align_b", {C});
  } else {
    BEVKD_CHECK(!params.align_w.defined() && !params.align_b.defined(), "mgd: input align_w/align_b given but Cs = C = ",
                C, " (the adaptor exists only when the channel counts differ)");
  }
  check_param(params.gen_w1, "gen_w1", {C, C, 3, 3});
  check_param(params.gen_b1, "gen_b1", {C});
  check_param(params.gen_w2, "gen_w2", {C, C, 3, 3});
  check_param(params.gen_b2, "gen_b2", {C});
  if (N == 0) return connected_zero(s);

  const auto dt = s.scalar_type();
  auto x = s;
  if (Cs != C) x = F::conv2d(x, params.align_w.to(dt), F::Conv2dFuncOptions().bias(params.align_b.to(dt)));
  const auto mask = mgd_mask(u.detach(), opts.lambda).to(s.device(), dt);
  auto g = F::conv2d(x * mask, params.gen_w1.to(dt), F::Conv2dFuncOptions().bias(params.gen_b1.to(dt)).padding(1));
  g = torch::relu(g);
  g = F::conv2d(g, params.gen_w2.to(dt), F::Conv2dFuncOptions().bias(params.gen_b2.to(dt)).padding(1));
  const auto tt = t.detach().to(s.device(), dt);
  return (g - tt).square().sum() / static_cast<double>(N) * opts.alpha;
}

MgdDistillerImpl::MgdDistillerImpl(int64_t student_channels, int64_t teacher_channels, MgdOptions opts)
    : opts_(opts) {
  BEVKD_CHECK(student_channels > 0 && teacher_channels > 0, "mgd: channels ", student_channels, " -> ",
              teacher_channels, ", expected positive");
  if (student_channels != teacher_channels) {
    align = register_module(
        "align", torch::nn::Conv2d(torch::nn::Conv2dOptions(student_channels, teacher_channels, 1).bias(true)));
  }
  gen1 = register_module(
      "gen1", torch::nn::Conv2d(torch::nn::Conv2dOptions(teacher_channels, teacher_channels, 3).padding(1).bias(true)));
  gen2 = register_module(
      "gen2", torch::nn::Conv2d(torch::nn::Conv2dOptions(teacher_channels, teacher_channels, 3).padding(1).bias(true)));
}

MgdParams MgdDistillerImpl::params() const {
  MgdParams p;
  if (align) {
    p.align_w = align->weight;
    p.align_b = align->bias;
  }
  p.gen_w1 = gen1->weight;
  p.gen_b1 = gen1->bias;
  p.gen_w2 = gen2->weight;
  p.gen_b2 = gen2->bias;
  return p;
}

torch::Tensor MgdDistillerImpl::forward(const torch::Tensor& s, const torch::Tensor& t, const torch::Tensor& u,
                                        std::optional<at::Generator> generator) {
  BEVKD_CHECK(s.dim() == 4 && t.dim() == 4, "mgd: maps have shapes ", shape_str(s), " and ", shape_str(t),
              ", expected [N,C,H,W]");
  const auto x = resize_to(s, t.size(2), t.size(3));
  torch::Tensor draw = u;
  if (!draw.defined()) {
    BEVKD_CHECK(generator.has_value(), "mgd: neither a mask draw u nor a random generator was given");
    draw = torch::rand({x.size(0), 1, x.size(2), x.size(3)}, *generator,
                       torch::TensorOptions().dtype(torch::kFloat32).device(generator->device()))
               .to(x.device());
  }
  return mgd_loss(x, t, draw, params(), opts_);
}

}  // namespace bevkd::train::losses
