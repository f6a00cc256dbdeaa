#include "train/student/depth_net.h"

#include <torch/linalg.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/pooling.h>

#include "base/error.h"
#include "train/student/resnet.h"

namespace bevkd::train::student {

void DepthNetConfig::validate(const std::string& where) const {
  BEVKD_CHECK(mid_channels > 0, where, ": mid_channels must be positive, got ", mid_channels);
  BEVKD_CHECK(context_channels > 0, where, ": context_channels must be positive, got ", context_channels);
  BEVKD_CHECK(num_blocks >= 0, where, ": num_blocks must be >= 0, got ", num_blocks);
  BEVKD_CHECK(!aspp_dilations.empty() && aspp_dilations[0] == 1, where,
              ": aspp_dilations must start with 1 (the 1x1 branch), got ",
              aspp_dilations.empty() ? std::string("[]") : std::to_string(aspp_dilations[0]));
  for (size_t i = 1; i < aspp_dilations.size(); ++i)
    BEVKD_CHECK(aspp_dilations[i] >= 1, where, ": aspp_dilations[", i, "] must be >= 1, got ", aspp_dilations[i]);
  BEVKD_CHECK(aspp_dropout >= 0 && aspp_dropout < 1, where, ": aspp_dropout must be in [0, 1), got ", aspp_dropout);
  BEVKD_CHECK(dcn_groups >= 1 && mid_channels % dcn_groups == 0, where, ": dcn_groups (", dcn_groups,
              ") must divide mid_channels (", mid_channels, ")");
  BEVKD_CHECK(bn_eps > 0 && bn_momentum > 0 && bn_momentum <= 1, where, ": bn_eps / bn_momentum out of range");
}

torch::Tensor camera_mlp_input(const torch::Tensor& intrinsics, const torch::Tensor& img_aug,
                               const torch::Tensor& cam2ego, const torch::Tensor& bda) {
  BEVKD_CHECK(intrinsics.dim() == 4 && intrinsics.size(2) == 3 && intrinsics.size(3) == 3,
              "camera_mlp_input: intrinsics must be [B, N, 3, 3], got ", intrinsics.sizes());
  const int64_t B = intrinsics.size(0), N = intrinsics.size(1);
  BEVKD_CHECK(img_aug.sizes() == intrinsics.sizes(), "camera_mlp_input: img_aug must be [", B, ", ", N,
              ", 3, 3], got ", img_aug.sizes());
  BEVKD_CHECK(cam2ego.dim() == 4 && cam2ego.size(0) == B && cam2ego.size(1) == N && cam2ego.size(2) == 4 &&
                  cam2ego.size(3) == 4,
              "camera_mlp_input: cam2ego must be [", B, ", ", N, ", 4, 4], got ", cam2ego.sizes());
  BEVKD_CHECK(bda.dim() == 3 && bda.size(0) == B && bda.size(1) == 3 && bda.size(2) == 3,
              "camera_mlp_input: bda must be [", B, ", 3, 3], got ", bda.sizes());
  torch::NoGradGuard no_grad;
  const auto A = img_aug.to(torch::kFloat64);
  const auto K = torch::linalg::solve(A, intrinsics.to(torch::kFloat64), /*left=*/true);  // A^-1 (A K)
  auto at = [](const torch::Tensor& m, int64_t i, int64_t j) { return m.select(-2, i).select(-1, j); };
  const auto b = bda.to(torch::kFloat64).unsqueeze(1).expand({B, N, 3, 3});
  std::vector<torch::Tensor> cols = {at(K, 0, 0), at(K, 1, 1), at(K, 0, 2), at(K, 1, 2),
                                     at(A, 0, 0), at(A, 0, 1), at(A, 0, 2), at(A, 1, 0), at(A, 1, 1), at(A, 1, 2),
                                     at(b, 0, 0), at(b, 0, 1), at(b, 1, 0), at(b, 1, 1), at(b, 2, 2)};
  auto params = torch::stack(cols, -1);                                                  // [B, N, 15]
  auto c2e = cam2ego.to(torch::kFloat64).slice(2, 0, 3).reshape({B, N, 12});             // [B, N, 12]
  return torch::cat({params, c2e}, -1).to(torch::kFloat32);
}

AsppBranchImpl::AsppBranchImpl(int64_t in, int64_t out, int64_t kernel, int64_t dilation, double eps,
                               double momentum) {
  const int64_t pad = kernel == 1 ? 0 : dilation;
  atrous_conv_ = register_module(
      "atrous_conv",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).padding(pad).dilation(dilation).bias(false)));
  bn_ = register_module("bn", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(out).eps(eps).momentum(momentum)));
}

torch::Tensor AsppBranchImpl::forward(const torch::Tensor& x) { return torch::relu(bn_(atrous_conv_(x))); }

AsppImpl::AsppImpl(int64_t in, int64_t mid, const std::vector<int64_t>& dilations, double dropout, double eps,
                   double momentum) {
  for (size_t i = 0; i < dilations.size(); ++i)
    branches_.push_back(register_module("aspp" + std::to_string(i + 1),
                                        AsppBranch(in, mid, i == 0 ? 1 : 3, dilations[i], eps, momentum)));
  global_avg_pool_ = register_module("global_avg_pool", torch::nn::Sequential());
  global_avg_pool_->push_back(torch::nn::AdaptiveAvgPool2d(torch::nn::AdaptiveAvgPool2dOptions({1, 1})));
  global_avg_pool_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, mid, 1).bias(false)));
  global_avg_pool_->push_back(torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(mid).eps(eps).momentum(momentum)));
  global_avg_pool_->push_back(torch::nn::ReLU());
  const auto n = static_cast<int64_t>(dilations.size()) + 1;
  conv1_ = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(mid * n, mid, 1).bias(false)));
  bn1_ = register_module("bn1", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(mid).eps(eps).momentum(momentum)));
  dropout_ = register_module("dropout", torch::nn::Dropout(dropout));
  // BEVDepth's ASPP._init_weight: kaiming normal (fan_in, ReLU gain) on every conv.
  torch::NoGradGuard no_grad;
  for (auto& m : modules(/*include_self=*/false))
    if (auto* c = m->as<torch::nn::Conv2d>()) torch::nn::init::kaiming_normal_(c->weight);
}

torch::Tensor AsppImpl::forward(const torch::Tensor& x) {
  std::vector<torch::Tensor> parts;
  for (auto& b : branches_) parts.push_back(b->forward(x));
  // BEVDepth interpolates the pooled 1x1 map bilinearly (align_corners) to h x w: a broadcast.
  parts.push_back(global_avg_pool_->forward(x).expand({x.size(0), -1, x.size(2), x.size(3)}));
  return dropout_(torch::relu(bn1_(conv1_(torch::cat(parts, 1)))));
}

CameraMlpImpl::CameraMlpImpl(int64_t in, int64_t hidden, int64_t out) {
  fc1_ = register_module("fc1", torch::nn::Linear(in, hidden));
  fc2_ = register_module("fc2", torch::nn::Linear(hidden, out));
}

torch::Tensor CameraMlpImpl::forward(const torch::Tensor& x) { return fc2_(torch::relu(fc1_(x))); }

SeLayerImpl::SeLayerImpl(int64_t c) {
  conv_reduce_ = register_module("conv_reduce", torch::nn::Conv2d(torch::nn::Conv2dOptions(c, c, 1).bias(true)));
  conv_expand_ = register_module("conv_expand", torch::nn::Conv2d(torch::nn::Conv2dOptions(c, c, 1).bias(true)));
}

torch::Tensor SeLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& x_se) {
  return x * torch::sigmoid(conv_expand_(torch::relu(conv_reduce_(x_se))));
}

DepthNetImpl::DepthNetImpl(int64_t in_channels, int64_t depth_bins, const DepthNetConfig& cfg)
    : depth_bins_(depth_bins) {
  cfg.validate("depth net");
  BEVKD_CHECK(in_channels > 0 && depth_bins > 0, "depth net: in_channels (", in_channels, ") and depth bins (",
              depth_bins, ") must be positive");
  const int64_t mid = cfg.mid_channels;
  const double eps = cfg.bn_eps, mom = cfg.bn_momentum;
  reduce_conv_ = register_module("reduce_conv", torch::nn::Sequential());
  reduce_conv_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, mid, 3).padding(1).bias(true)));
  reduce_conv_->push_back(torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(mid).eps(eps).momentum(mom)));
  reduce_conv_->push_back(torch::nn::ReLU());
  context_conv_ = register_module("context_conv",
                                  torch::nn::Conv2d(torch::nn::Conv2dOptions(mid, cfg.context_channels, 1).bias(true)));
  bn_ = register_module("bn", torch::nn::BatchNorm1d(torch::nn::BatchNorm1dOptions(kCameraParams)));
  depth_mlp_ = register_module("depth_mlp", CameraMlp(kCameraParams, mid, mid));
  depth_se_ = register_module("depth_se", SeLayer(mid));
  context_mlp_ = register_module("context_mlp", CameraMlp(kCameraParams, mid, mid));
  context_se_ = register_module("context_se", SeLayer(mid));
  depth_conv_ = register_module("depth_conv", torch::nn::Sequential());
  for (int64_t i = 0; i < cfg.num_blocks; ++i) depth_conv_->push_back(BasicBlock(mid, mid, 1, eps, mom));
  depth_conv_->push_back(Aspp(mid, mid, cfg.aspp_dilations, cfg.aspp_dropout, eps, mom));
  depth_conv_->push_back(
      torch::nn::Conv2d(torch::nn::Conv2dOptions(mid, mid, 3).padding(1).groups(cfg.dcn_groups).bias(false)));
  depth_conv_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(mid, depth_bins, 1).bias(true)));
}

DepthNetOutput DepthNetImpl::forward(const torch::Tensor& x, const torch::Tensor& camera) {
  BEVKD_CHECK(camera.dim() == 2 && camera.size(0) == x.size(0) && camera.size(1) == kCameraParams,
              "depth net: camera parameters must be [", x.size(0), ", ", kCameraParams, "], got ", camera.sizes());
  const auto mlp_input = bn_(camera);
  const auto feat = reduce_conv_->forward(x);
  DepthNetOutput out;
  out.context = context_conv_(context_se_(feat, context_mlp_(mlp_input).unsqueeze(-1).unsqueeze(-1)));
  out.depth_logits = depth_conv_->forward(depth_se_(feat, depth_mlp_(mlp_input).unsqueeze(-1).unsqueeze(-1)));
  return out;
}

}  // namespace bevkd::train::student
