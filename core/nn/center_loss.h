// CenterPoint's losses (mmdetection3d CenterHead.loss with the nuScenes config), pure functions
// of tensors:
//   per task t:  L_hm(t)  = GaussianFocalLoss(clip_sigmoid(heatmap logits), heat-map target)
//                           / max(#cells with target == 1, 1)
//                L_box(t) = sum_{b,m,c} w_c * mask[b,m] * notnan * |pred[b, ind[b,m], c] - target[b,m,c]|
//                           / (#objects + 1e-4)
//   total = sum_t  heatmap_weight * L_hm(t) + bbox_weight * L_box(t)     (weights 1 and 0.25)
#pragma once

#include <torch/torch.h>

#include <vector>

#include "core/nn/center_head.h"
#include "core/nn/center_targets.h"

namespace bevkd::core::nn {

// mmdet3d clip_sigmoid: clamp(sigmoid(x), eps, 1 - eps). x: any shape, float32.
torch::Tensor clip_sigmoid(const torch::Tensor& x, double eps = 1e-4);

// mmdet's gaussian_focal_loss (CornerNet's variant of the focal loss for Gaussian targets):
//   pos = -log(p + 1e-12) * (1 - p)^alpha * [t == 1]
//   neg = -log(1 - p + 1e-12) * p^alpha * (1 - t)^gamma
//   loss = sum(pos + neg) / avg_factor
// pred: probabilities (after clip_sigmoid); target: same shape, in [0, 1]. Returns a scalar.
torch::Tensor gaussian_focal_loss(const torch::Tensor& pred, const torch::Tensor& target, double avg_factor,
                                  double alpha = 2.0, double gamma = 4.0);

// mmdet's weighted L1Loss with reduction 'mean' and avg_factor: sum(|pred - target| * weight) /
// avg_factor. Entries whose weight is 0 contribute 0 even if target is NaN (they are selected
// out, not multiplied, so a NaN target never reaches the gradient). Shapes equal. Scalar.
torch::Tensor weighted_l1_loss(const torch::Tensor& pred, const torch::Tensor& target, const torch::Tensor& weight,
                               double avg_factor);

// Gathers a [B, C, H, W] map at flat cell indices [B, M] (row * W + col) -> [B, M, C].
torch::Tensor gather_cells(const torch::Tensor& map, const torch::Tensor& index);

// The 10 regression channels of a task's prediction in target order:
// [B, 10 (or 8 without velocity), H, W] = cat(reg, height, dim, rot, vel).
torch::Tensor regression_map(const TaskPrediction& p);

struct CenterLossConfig {
  // Per regression channel (dx, dy, z, log l, log w, log h, sin, cos, vx, vy); mmdet3d nuScenes:
  // 1 everywhere except 0.2 for the velocity.
  std::vector<double> code_weights{1, 1, 1, 1, 1, 1, 1, 1, 0.2, 0.2};
  double heatmap_weight = 1.0;
  double bbox_weight = 0.25;
  void validate(const std::string& where = "center loss") const;

  template <class V>
  void fields(V& v) {
    v("code_weights", code_weights);
    v("heatmap_weight", heatmap_weight);
    v("bbox_weight", bbox_weight);
  }
};

struct CenterLoss {
  torch::Tensor total;                  // scalar, differentiable
  std::vector<torch::Tensor> heatmap;   // per task, unweighted
  std::vector<torch::Tensor> bbox;      // per task, unweighted
};

// preds and targets: one per task, same order and batch. Without velocity in the prediction the
// last two code weights are ignored.
CenterLoss center_head_loss(const std::vector<TaskPrediction>& preds, const std::vector<TaskTargets>& targets,
                            const CenterLossConfig& cfg);

}  // namespace bevkd::core::nn
