// ResNet-18/34/50 with torchvision's parameter names, for the camera student's image backbone and
// (without the stem's max pool, other widths and strides) its BEV trunk, as BEVDepth uses
// mmdetection's ResNet for both.
//
// Names and shapes are torchvision's `torchvision.models.resnet{18,34,50}` state-dict keys, the
// classifier excluded (no `fc`, no average pool), so a user's torchvision weights load one to one
// (torchvision_init.h):
//
//   conv1.weight [base, in, 7, 7]              stem conv, stride 2, padding 3, no bias
//   bn1.{weight,bias,running_mean,running_var,num_batches_tracked}
//   (3x3 max pool, stride 2, padding 1, when stem_pool)
//   layer{s}.{b}.conv1 / bn1 / conv2 / bn2 [/ conv3 / bn3]   block b of stage s (1-based stages)
//   layer{s}.0.downsample.0 (1x1 conv, the stage stride) / downsample.1 (BN)  where the shape changes
//
// BasicBlock (18, 34): conv1 3x3 (stride) -> bn1 -> relu -> conv2 3x3 -> bn2, + identity, relu.
// Bottleneck (50; torchvision's "ResNet v1.5", stride on the 3x3):
//   conv1 1x1 -> bn1 -> relu -> conv2 3x3 (stride) -> bn2 -> relu -> conv3 1x1 (x4) -> bn3, + identity, relu.
// mmdetection's ResNet (style 'pytorch') has the same names and layout, so BEVDepth's BEV trunk
// (`ResNet(in_channels=80, depth=18, num_stages=3, strides=(1,2,2), base_channels=160)`) is this
// class with stem_pool = false.
//
// Initialisation as torchvision: convolutions kaiming normal (fan_out, ReLU), BN weight 1, bias 0.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>
#include <vector>

namespace bevkd::train::student {

struct ResNetConfig {
  int64_t depth = 50;           // 18 or 34 (BasicBlock), 50 (Bottleneck)
  int64_t in_channels = 3;      // input channels (3 for images; the context channels for a BEV trunk)
  int64_t base_channels = 64;   // stem output and stage-1 width; torchvision: 64 (weights load only then)
  int64_t num_stages = 4;       // stages built: layer1 .. layer{num_stages} (1..4)
  std::vector<int64_t> strides{1, 2, 2, 2};     // stride of each built stage (torchvision: 1, 2, 2, 2)
  std::vector<int64_t> out_indices{0, 1, 2, 3};  // 0-based stages whose outputs forward() returns, increasing
  bool stem_pool = true;        // the 3x3 / 2 max pool after the stem (torchvision); false for a BEV trunk
  // Frozen batch norm: every BN layer normalises with its running statistics, also in training
  // mode (the statistics are never updated), and its weight and bias get no gradient (torchvision's
  // FrozenBatchNorm2d). For fine-tuning pretrained weights at small batch sizes.
  bool frozen_bn = false;
  // mmdetection's frozen_stages: -1 none; 0 the stem (conv1, bn1); k >= 1 the stem and layer1..k —
  // no gradients, BN in eval mode.
  int64_t frozen_stages = -1;
  double bn_eps = 1e-5;         // torchvision / mmdetection BatchNorm2d defaults
  double bn_momentum = 0.1;

  // Throws bevkd::Error naming the field (prefixed with `where`).
  void validate(const std::string& where) const;
  bool bottleneck() const { return depth == 50; }
  int64_t expansion() const { return bottleneck() ? 4 : 1; }
  std::vector<int64_t> blocks_per_stage() const;  // 18: 2,2,2,2; 34 and 50: 3,4,6,3 (the built stages)
  int64_t stage_channels(int64_t i) const;        // output channels of stage i: base * 2^i * expansion
  // Stride of stage i's output relative to the input: 2 (stem conv) x 2 (pool, if any) x strides[0..i].
  int64_t stage_stride(int64_t i) const;
  std::vector<int64_t> out_channels() const;      // stage_channels of out_indices
  std::vector<int64_t> out_strides() const;       // stage_stride of out_indices

  template <class V>
  void fields(V& v) {
    v("depth", depth);
    v("in_channels", in_channels);
    v("base_channels", base_channels);
    v("num_stages", num_stages);
    v("strides", strides);
    v("out_indices", out_indices);
    v("stem_pool", stem_pool);
    v("frozen_bn", frozen_bn);
    v("frozen_stages", frozen_stages);
    v("bn_eps", bn_eps);
    v("bn_momentum", bn_momentum);
  }
};

// torchvision BasicBlock: children conv1, bn1, conv2, bn2[, downsample].
class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(int64_t in, int64_t planes, int64_t stride, double bn_eps, double bn_momentum);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr};
  torch::nn::Sequential downsample_{nullptr};
};
TORCH_MODULE(BasicBlock);

// torchvision Bottleneck: children conv1, bn1, conv2, bn2, conv3, bn3[, downsample]; out = 4 planes.
class BottleneckImpl : public torch::nn::Module {
 public:
  BottleneckImpl(int64_t in, int64_t planes, int64_t stride, double bn_eps, double bn_momentum);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr}, bn2_{nullptr}, bn3_{nullptr};
  torch::nn::Sequential downsample_{nullptr};
};
TORCH_MODULE(Bottleneck);

class ResNetImpl : public torch::nn::Module {
 public:
  explicit ResNetImpl(ResNetConfig cfg);
  // x: [B, in_channels, H, W] float32 -> one map per out_indices entry,
  // [B, stage_channels(i), ceil(H / stage_stride(i)), ...] (exactly H / stride when divisible).
  std::vector<torch::Tensor> forward(torch::Tensor x);
  // Training mode, then frozen stages (and all BN layers under frozen_bn) back to eval mode.
  void train(bool on = true) override;
  const ResNetConfig& config() const { return cfg_; }
  // "ResNet-50" or "ResNet-18 (base 32, 3 stages)" for messages.
  std::string describe() const;

 private:
  ResNetConfig cfg_;
  torch::nn::Conv2d conv1_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr};
  std::vector<torch::nn::Sequential> layers_;  // layer1 .. layer{num_stages}
};
TORCH_MODULE(ResNet);

}  // namespace bevkd::train::student
