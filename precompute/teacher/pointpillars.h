// The built-in LiDAR teacher: PointPillars (Lang et al., CVPR 2019) feeding CenterPoint's head,
// as mmdetection3d's centerpoint_02pillar_second_secfpn_nus builds it:
//
//   points [P, 5] --pillarize (kernels/)--> pillars [V, M, 5]
//     --PillarFeatureNet--> [V, C] --scatter (kernels/)--> [B, C, H_p, W_p]
//     --SECOND--> stages --SECONDFPN--> `neck` [B, C_neck, H, W]
//     --CenterHead--> `head_shared` [B, C_s, H, W] + per-task heat maps and regressions.
//
// Submodule and parameter names are mmdetection3d's state-dict keys (`pts_voxel_encoder.
// pfn_layers.0.linear.weight`, `pts_backbone.blocks.0.0.weight`, `pts_neck.deblocks.1.0.weight`,
// `pts_bbox_head.shared_conv.conv.weight`, ...).
#pragma once

#include <torch/torch.h>

#include <vector>

#include "core/nn/center_head.h"
#include "core/nn/second.h"
#include "precompute/teacher/teacher_config.h"

namespace bevkd::precompute {

// The pillars of a batch (mmdet3d's hard voxelisation output, batch-concatenated; kernels/voxelize.h).
struct PillarBatch {
  torch::Tensor points;      // [V, M, 5] float32 points of each pillar (x, y, z, intensity, time_lag),
                             // zero beyond num_points
  torch::Tensor num_points;  // [V] int32, 1..M
  torch::Tensor coords;      // [V, 4] int32 (batch, z = 0, row <-> y, column <-> x) on the pillar grid
  int64_t batch_size = 0;
};

// Pillarises every cloud (ego frame, [P_b, 5] float32) with the config's pillar grid,
// max_points_per_pillar and max pillars (train or test); deterministic.
PillarBatch pillarize_batch(const std::vector<torch::Tensor>& points, const PillarConfig& cfg, bool training);

// mmdet3d PFNLayer: Linear(bias=False) -> BN1d over the (pillar, point) grid -> ReLU -> max over
// points; a non-last layer concatenates each point's feature with the pillar max (units = out/2).
class PfnLayerImpl : public torch::nn::Module {
 public:
  PfnLayerImpl(int64_t in, int64_t out, bool last, double bn_eps, double bn_momentum);
  torch::Tensor forward(const torch::Tensor& x);  // [V, M, in] -> [V, 1, out] (last) or [V, M, out]

 private:
  bool last_;
  torch::nn::Linear linear_{nullptr};
  torch::nn::BatchNorm1d norm_{nullptr};
};
TORCH_MODULE(PfnLayer);

// mmdet3d PillarFeatureNet (legacy=False, with_cluster_center, with_voxel_center, no distance).
class PillarFeatureNetImpl : public torch::nn::Module {
 public:
  explicit PillarFeatureNetImpl(const PillarConfig& cfg);
  // The decorated point features [V, M, decorated_dims] (zero for padding points): x, y, z,
  // intensity, time_lag, offset from the pillar's point mean (3), offset from the pillar's
  // centre (x, y[, z]).
  torch::Tensor decorate(const PillarBatch& pillars) const;
  torch::Tensor forward(const PillarBatch& pillars);  // [V, pfn_channels.back()]

 private:
  PillarConfig cfg_;
  torch::nn::ModuleList pfn_layers_{nullptr};
};
TORCH_MODULE(PillarFeatureNet);

struct PointPillarsOutput {
  torch::Tensor neck;                          // [B, C_neck, H, W]: the `neck` tap
  core::nn::CenterHeadOutput head;      // `head_shared` tap + per-task predictions
};

class PointPillarsCenterPointImpl : public torch::nn::Module {
 public:
  explicit PointPillarsCenterPointImpl(TeacherModelConfig cfg);
  // points[b]: [P_b, 5] float32 on any device (ego frame). Pillarises on the CPU with the
  // train or test pillar limit depending on is_training(), then runs on the module's device.
  PointPillarsOutput forward(const std::vector<torch::Tensor>& points);
  PointPillarsOutput forward_pillars(const PillarBatch& pillars);
  const TeacherModelConfig& config() const { return cfg_; }

 private:
  TeacherModelConfig cfg_;
  PillarFeatureNet pts_voxel_encoder_{nullptr};
  core::nn::SecondBackbone pts_backbone_{nullptr};
  core::nn::SecondFpn pts_neck_{nullptr};
  core::nn::CenterHead pts_bbox_head_{nullptr};
};
TORCH_MODULE(PointPillarsCenterPoint);

}  // namespace bevkd::precompute
