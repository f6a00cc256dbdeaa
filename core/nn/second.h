// SECOND's 2D BEV backbone and the SECONDFPN neck (mmdetection3d `SECOND`, `SECONDFPN`), shared by
// the LiDAR teacher (precompute/: PointPillars-CenterPoint) and the camera student's BEV encoder
// (train/student/). Parameter names are mmdetection3d's (`blocks.0.0.weight`, `deblocks.1.0.weight`)
// so that weights map one-to-one.
//
//   SECOND:    blocks.i = Sequential(Conv3x3(stride s_i), BN, ReLU, [Conv3x3, BN, ReLU] x layer_nums[i]);
//              returns one map per stage.
//   SECONDFPN: deblocks.i = Sequential(ConvTranspose(k = s, stride = s) for s >= 2, or Conv(k = 1/s,
//              stride = 1/s) for s <= 1 (use_conv_for_no_stride), BN, ReLU); outputs concatenated
//              over channels: [B, sum(out_channels), H, W].
// Convolutions have no bias and are initialised as mmcv's kaiming_init (normal, fan_out, ReLU).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include <cstdint>
#include <string>
#include <vector>

namespace bevkd::core::nn {

struct SecondConfig {
  std::vector<int64_t> out_channels{64, 128, 256};
  std::vector<int64_t> layer_nums{3, 5, 5};
  std::vector<int64_t> layer_strides{2, 2, 2};
  void validate(const std::string& where) const;
  int64_t total_stride() const;  // product of layer_strides

  template <class V>
  void fields(V& v) {
    v("out_channels", out_channels);
    v("layer_nums", layer_nums);
    v("layer_strides", layer_strides);
  }
};

struct SecondFpnConfig {
  std::vector<int64_t> out_channels{128, 128, 128};
  std::vector<double> upsample_strides{0.5, 1, 2};
  void validate(const std::string& where) const;
  int64_t channels() const;  // sum of out_channels

  template <class V>
  void fields(V& v) {
    v("out_channels", out_channels);
    v("upsample_strides", upsample_strides);
  }
};

// BatchNorm of the blocks (mmdet3d: eps 1e-3, momentum 0.01 for SECOND/SECONDFPN).
struct BnOptions {
  double eps = 1e-3;
  double momentum = 0.01;
};

class SecondBackboneImpl : public torch::nn::Module {
 public:
  SecondBackboneImpl(int64_t in_channels, const SecondConfig& cfg, BnOptions bn = {});
  // x: [B, in_channels, H, W] -> one map per stage, [B, out_channels[i], H / prod(strides[0..i]), ...]
  std::vector<torch::Tensor> forward(torch::Tensor x);

 private:
  torch::nn::ModuleList blocks_{nullptr};
};
TORCH_MODULE(SecondBackbone);

class SecondFpnImpl : public torch::nn::Module {
 public:
  SecondFpnImpl(const std::vector<int64_t>& in_channels, const SecondFpnConfig& cfg, BnOptions bn = {});
  // xs: one map per input level; every deblock must bring its level to the same H x W.
  torch::Tensor forward(const std::vector<torch::Tensor>& xs);

 private:
  torch::nn::ModuleList deblocks_{nullptr};
};
TORCH_MODULE(SecondFpn);

// mmcv kaiming_init defaults (normal, fan_out, ReLU) on a conv's weight.
void kaiming_fan_out_(torch::Tensor& weight);

}  // namespace bevkd::core::nn
