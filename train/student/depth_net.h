// BEVDepth's camera-aware DepthNet (Li et al., AAAI 2023; BEVDepth `layers/backbones/base_lss_fpn.py`),
// with BEVDepth's parameter names:
//
//   reduce_conv  = Sequential(Conv3x3 (bias), BN, ReLU)                  in -> mid
//   bn           = BatchNorm1d(27) over the camera parameters (mlp_input)
//   context_mlp, depth_mlp = Mlp(fc1: 27 -> mid, ReLU, fc2: mid -> mid)
//   context_se,  depth_se  = SELayer(conv_reduce 1x1, ReLU, conv_expand 1x1, sigmoid gate):
//                            x * sigmoid(SE(mlp(camera)))  — the camera awareness
//   context_conv = Conv1x1 (bias)                                        mid -> C (context)
//   depth_conv   = Sequential(BasicBlock x num_blocks, ASPP, Conv3x3 (groups), Conv1x1 (bias) -> D)
//
// ASPP (children aspp1..aspp4 = atrous_conv + bn; global_avg_pool = Sequential(pool, conv, bn, relu);
// conv1, bn1; dropout) as BEVDepth's, dilations configurable (BEVDepth: 1, 6, 12, 18).
//
// Simplifications, said plainly:
//  * BEVDepth's depth_conv has a deformable 3x3 conv (mmcv DCN, groups 4) before the last 1x1;
//    LibTorch has no deformable convolution, so it is a plain grouped 3x3 conv (no bias),
//    `depth_conv.{num_blocks + 1}` with the same weight shape as DCN's.
//  * The camera parameters (camera_mlp_input) hold the ORIGINAL intrinsics K = A^-1 (A K), as
//    BEVDepth feeds its intrin_mats next to the ida matrix.
//  * No `use_da` depth aggregation (BEVDepth's optional extra), no stereo.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>
#include <vector>

namespace bevkd::train::student {

struct DepthNetConfig {
  int64_t mid_channels = 512;       // BEVDepth depth_net_conf mid_channels
  int64_t context_channels = 80;    // BEVDepth output_channels (the lift-splat feature width)
  int64_t num_blocks = 3;           // BasicBlocks at the start of depth_conv (BEVDepth: 3)
  std::vector<int64_t> aspp_dilations{1, 6, 12, 18};  // first is the 1x1 branch's (must be 1)
  double aspp_dropout = 0.5;
  int64_t dcn_groups = 4;           // groups of the 3x3 conv standing in for BEVDepth's DCN
  double bn_eps = 1e-5, bn_momentum = 0.1;

  void validate(const std::string& where) const;

  template <class V>
  void fields(V& v) {
    v("mid_channels", mid_channels);
    v("context_channels", context_channels);
    v("num_blocks", num_blocks);
    v("aspp_dilations", aspp_dilations);
    v("aspp_dropout", aspp_dropout);
    v("dcn_groups", dcn_groups);
    v("bn_eps", bn_eps);
    v("bn_momentum", bn_momentum);
  }
};

// The 27 camera parameters of BEVDepth's mlp_input, per camera:
//   K: fx, fy, cx, cy (original pixels; K = A^-1 · intrinsics)                      4
//   A: a00, a01, a02, a10, a11, a12 (img_aug, original -> augmented pixels)           6
//   bda: b00, b01, b10, b11, b22                                                      5
//   cam2ego rows 0..2, row-major (R | t)                                             12
// intrinsics [B, N, 3, 3] (= A K), img_aug [B, N, 3, 3], cam2ego [B, N, 4, 4], bda [B, 3, 3], float32.
// Returns [B, N, 27] float32 on the intrinsics' device.
inline constexpr int64_t kCameraParams = 27;
torch::Tensor camera_mlp_input(const torch::Tensor& intrinsics, const torch::Tensor& img_aug,
                               const torch::Tensor& cam2ego, const torch::Tensor& bda);

// BEVDepth's _ASPPModule: children atrous_conv, bn.
class AsppBranchImpl : public torch::nn::Module {
 public:
  AsppBranchImpl(int64_t in, int64_t out, int64_t kernel, int64_t dilation, double eps, double momentum);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d atrous_conv_{nullptr};
  torch::nn::BatchNorm2d bn_{nullptr};
};
TORCH_MODULE(AsppBranch);

class AsppImpl : public torch::nn::Module {
 public:
  AsppImpl(int64_t in, int64_t mid, const std::vector<int64_t>& dilations, double dropout, double eps, double momentum);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  std::vector<AsppBranch> branches_;  // aspp1 ..
  torch::nn::Sequential global_avg_pool_{nullptr};  // children 1 (conv), 2 (bn), as BEVDepth's
  torch::nn::Conv2d conv1_{nullptr};
  torch::nn::BatchNorm2d bn1_{nullptr};
  torch::nn::Dropout dropout_{nullptr};
};
TORCH_MODULE(Aspp);

// BEVDepth's Mlp: fc1, ReLU, fc2 (dropout 0).
class CameraMlpImpl : public torch::nn::Module {
 public:
  CameraMlpImpl(int64_t in, int64_t hidden, int64_t out);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(CameraMlp);

// BEVDepth's SELayer: x * sigmoid(conv_expand(relu(conv_reduce(x_se)))).
class SeLayerImpl : public torch::nn::Module {
 public:
  explicit SeLayerImpl(int64_t channels);
  // x [M, C, h, w]; x_se [M, C, 1, 1]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& x_se);

 private:
  torch::nn::Conv2d conv_reduce_{nullptr}, conv_expand_{nullptr};
};
TORCH_MODULE(SeLayer);

struct DepthNetOutput {
  torch::Tensor depth_logits;  // [M, D, h, w] float32 (M = B·N cameras), before the softmax over bins
  torch::Tensor context;       // [M, C, h, w] float32
};

class DepthNetImpl : public torch::nn::Module {
 public:
  DepthNetImpl(int64_t in_channels, int64_t depth_bins, const DepthNetConfig& cfg);
  // x: [M, in_channels, h, w] image features at the depth stride; camera: [M, 27] (camera_mlp_input
  // flattened over B and N).
  DepthNetOutput forward(const torch::Tensor& x, const torch::Tensor& camera);

 private:
  int64_t depth_bins_;
  torch::nn::Sequential reduce_conv_{nullptr};
  torch::nn::Conv2d context_conv_{nullptr};
  torch::nn::BatchNorm1d bn_{nullptr};
  CameraMlp depth_mlp_{nullptr}, context_mlp_{nullptr};
  SeLayer depth_se_{nullptr}, context_se_{nullptr};
  torch::nn::Sequential depth_conv_{nullptr};
};
TORCH_MODULE(DepthNet);

}  // namespace bevkd::train::student
