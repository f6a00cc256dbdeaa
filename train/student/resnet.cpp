#include "train/student/resnet.h"

#include <torch/nn/functional/pooling.h>
#include <torch/nn/init.h>

#include "base/error.h"

namespace bevkd::train::student {
namespace {

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padding) {
  torch::nn::Conv2d c(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(padding).bias(false));
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
  return c;
}

torch::nn::BatchNorm2d bn(int64_t c, double eps, double momentum) {
  return torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(c).eps(eps).momentum(momentum));
}

torch::nn::Sequential downsample(int64_t in, int64_t out, int64_t stride, double eps, double momentum) {
  if (stride == 1 && in == out) return nullptr;
  torch::nn::Sequential s;
  s->push_back(conv(in, out, 1, stride, 0));
  s->push_back(bn(out, eps, momentum));
  return s;
}

void set_eval_bn(torch::nn::Module& m) {
  for (auto& child : m.modules(/*include_self=*/false))
    if (child->as<torch::nn::BatchNorm2d>() != nullptr) child->eval();
}

}  // namespace

void ResNetConfig::validate(const std::string& where) const {
  BEVKD_CHECK(depth == 18 || depth == 34 || depth == 50, where, ": depth is ", depth, ", expected 18, 34 or 50");
  BEVKD_CHECK(in_channels > 0, where, ": in_channels must be positive, got ", in_channels);
  BEVKD_CHECK(base_channels > 0, where, ": base_channels must be positive, got ", base_channels);
  BEVKD_CHECK(num_stages >= 1 && num_stages <= 4, where, ": num_stages is ", num_stages, ", expected 1..4");
  BEVKD_CHECK(static_cast<int64_t>(strides.size()) == num_stages, where, ": strides has ", strides.size(),
              " entries, num_stages is ", num_stages);
  for (size_t i = 0; i < strides.size(); ++i)
    BEVKD_CHECK(strides[i] >= 1, where, ": strides[", i, "] must be >= 1, got ", strides[i]);
  BEVKD_CHECK(!out_indices.empty(), where, ": out_indices is empty");
  for (size_t i = 0; i < out_indices.size(); ++i) {
    BEVKD_CHECK(out_indices[i] >= 0 && out_indices[i] < num_stages, where, ": out_indices[", i, "] is ",
                out_indices[i], ", expected a stage in [0, ", num_stages, ")");
    BEVKD_CHECK(i == 0 || out_indices[i] > out_indices[i - 1], where, ": out_indices must be increasing");
  }
  // A stage after the last output would hold parameters that never get a gradient.
  BEVKD_CHECK(out_indices.back() == num_stages - 1, where, ": the last of out_indices is ", out_indices.back(),
              ", expected the last stage ", num_stages - 1, " (build fewer stages instead)");
  BEVKD_CHECK(frozen_stages >= -1 && frozen_stages <= num_stages, where, ": frozen_stages is ", frozen_stages,
              ", expected -1 (none) .. ", num_stages);
  BEVKD_CHECK(bn_eps > 0 && bn_momentum > 0 && bn_momentum <= 1, where, ": bn_eps ", bn_eps, " / bn_momentum ",
              bn_momentum, " out of range");
}

std::vector<int64_t> ResNetConfig::blocks_per_stage() const {
  std::vector<int64_t> all = depth == 18 ? std::vector<int64_t>{2, 2, 2, 2} : std::vector<int64_t>{3, 4, 6, 3};
  all.resize(static_cast<size_t>(num_stages));
  return all;
}

int64_t ResNetConfig::stage_channels(int64_t i) const { return (base_channels << i) * expansion(); }

int64_t ResNetConfig::stage_stride(int64_t i) const {
  int64_t s = stem_pool ? 4 : 2;
  for (int64_t k = 0; k <= i; ++k) s *= strides[static_cast<size_t>(k)];
  return s;
}

std::vector<int64_t> ResNetConfig::out_channels() const {
  std::vector<int64_t> c;
  for (auto i : out_indices) c.push_back(stage_channels(i));
  return c;
}

std::vector<int64_t> ResNetConfig::out_strides() const {
  std::vector<int64_t> s;
  for (auto i : out_indices) s.push_back(stage_stride(i));
  return s;
}

BasicBlockImpl::BasicBlockImpl(int64_t in, int64_t planes, int64_t stride, double eps, double momentum) {
  conv1_ = register_module("conv1", conv(in, planes, 3, stride, 1));
  bn1_ = register_module("bn1", bn(planes, eps, momentum));
  conv2_ = register_module("conv2", conv(planes, planes, 3, 1, 1));
  bn2_ = register_module("bn2", bn(planes, eps, momentum));
  if (auto d = downsample(in, planes, stride, eps, momentum)) downsample_ = register_module("downsample", d);
}

torch::Tensor BasicBlockImpl::forward(const torch::Tensor& x) {
  auto out = torch::relu(bn1_(conv1_(x)));
  out = bn2_(conv2_(out));
  return torch::relu(out + (downsample_ ? downsample_->forward(x) : x));
}

BottleneckImpl::BottleneckImpl(int64_t in, int64_t planes, int64_t stride, double eps, double momentum) {
  conv1_ = register_module("conv1", conv(in, planes, 1, 1, 0));
  bn1_ = register_module("bn1", bn(planes, eps, momentum));
  conv2_ = register_module("conv2", conv(planes, planes, 3, stride, 1));
  bn2_ = register_module("bn2", bn(planes, eps, momentum));
  conv3_ = register_module("conv3", conv(planes, planes * 4, 1, 1, 0));
  bn3_ = register_module("bn3", bn(planes * 4, eps, momentum));
  if (auto d = downsample(in, planes * 4, stride, eps, momentum)) downsample_ = register_module("downsample", d);
}

torch::Tensor BottleneckImpl::forward(const torch::Tensor& x) {
  auto out = torch::relu(bn1_(conv1_(x)));
  out = torch::relu(bn2_(conv2_(out)));
  out = bn3_(conv3_(out));
  return torch::relu(out + (downsample_ ? downsample_->forward(x) : x));
}

ResNetImpl::ResNetImpl(ResNetConfig cfg) : cfg_(std::move(cfg)) {
  cfg_.validate("ResNet");
  const double eps = cfg_.bn_eps, mom = cfg_.bn_momentum;
  conv1_ = register_module("conv1", conv(cfg_.in_channels, cfg_.base_channels, 7, 2, 3));
  bn1_ = register_module("bn1", bn(cfg_.base_channels, eps, mom));
  int64_t in = cfg_.base_channels;
  const auto blocks = cfg_.blocks_per_stage();
  for (int64_t s = 0; s < cfg_.num_stages; ++s) {
    const int64_t planes = cfg_.base_channels << s;
    torch::nn::Sequential layer;
    for (int64_t b = 0; b < blocks[static_cast<size_t>(s)]; ++b) {
      const int64_t stride = b == 0 ? cfg_.strides[static_cast<size_t>(s)] : 1;
      if (cfg_.bottleneck()) {
        layer->push_back(Bottleneck(in, planes, stride, eps, mom));
        in = planes * 4;
      } else {
        layer->push_back(BasicBlock(in, planes, stride, eps, mom));
        in = planes;
      }
    }
    layers_.push_back(register_module("layer" + std::to_string(s + 1), layer));
  }

  // Frozen parts never get gradients.
  auto freeze = [](torch::nn::Module& m) {
    for (auto& p : m.parameters()) p.set_requires_grad(false);
  };
  if (cfg_.frozen_stages >= 0) {
    freeze(*conv1_);
    freeze(*bn1_);
  }
  for (int64_t s = 0; s < cfg_.frozen_stages; ++s) freeze(*layers_[static_cast<size_t>(s)]);
  if (cfg_.frozen_bn)
    for (auto& m : modules(/*include_self=*/false))
      if (m->as<torch::nn::BatchNorm2d>() != nullptr) freeze(*m);
  train(true);
}

void ResNetImpl::train(bool on) {
  torch::nn::Module::train(on);
  if (!on) return;
  if (cfg_.frozen_stages >= 0) bn1_->eval();
  for (int64_t s = 0; s < cfg_.frozen_stages; ++s) layers_[static_cast<size_t>(s)]->eval();
  if (cfg_.frozen_bn) set_eval_bn(*this);
}

std::vector<torch::Tensor> ResNetImpl::forward(torch::Tensor x) {
  BEVKD_CHECK(x.dim() == 4 && x.size(1) == cfg_.in_channels, describe(), ": expected input [B, ", cfg_.in_channels,
              ", H, W], got ", x.sizes());
  x = torch::relu(bn1_(conv1_(x)));
  if (cfg_.stem_pool)
    x = torch::nn::functional::max_pool2d(x, torch::nn::functional::MaxPool2dFuncOptions(3).stride(2).padding(1));
  std::vector<torch::Tensor> outs;
  size_t next = 0;
  for (int64_t s = 0; s < cfg_.num_stages && next < cfg_.out_indices.size(); ++s) {
    x = layers_[static_cast<size_t>(s)]->forward(x);
    if (cfg_.out_indices[next] == s) {
      outs.push_back(x);
      ++next;
    }
  }
  return outs;
}

std::string ResNetImpl::describe() const {
  std::string s = "ResNet-" + std::to_string(cfg_.depth);
  std::string extra;
  if (cfg_.base_channels != 64) extra += "base " + std::to_string(cfg_.base_channels);
  if (cfg_.num_stages != 4) extra += (extra.empty() ? "" : ", ") + std::to_string(cfg_.num_stages) + " stages";
  if (cfg_.in_channels != 3) extra += (extra.empty() ? "" : ", ") + std::to_string(cfg_.in_channels) + " input channels";
  return extra.empty() ? s : s + " (" + extra + ")";
}

}  // namespace bevkd::train::student
