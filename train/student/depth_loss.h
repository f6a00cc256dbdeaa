// BEVDepth's depth loss (Li et al., BEVDepth, AAAI 2023; BEVDepth's get_depth_loss): binary cross
// entropy between the depth net's per-bin probabilities and the one-hot bin of the min-pooled LiDAR
// depth, over the cells that hold a point in range:
//
//   fg(b, n, i, j)   = the cell's depth d > 0 lies in [bins.min, bins.max)
//   y(b, n, k, i, j) = 1 if k == floor((d - min) / step) else 0        (DepthBins::index_of)
//   loss = weight * sum_{fg cells, k} BCE(p[b, n, k, i, j], y) / max(1, #fg cells)
//   BCE(p, y) = -(y * max(log p, -100) + (1 - y) * max(log(1 - p), -100))   (torch's clamp)
//
// BEVDepth computes it in float32 outside autocast; so does this function.
#pragma once

#include <torch/types.h>

#include "train/student/frustum.h"

namespace bevkd::train::student {

struct DepthLoss {
  torch::Tensor total;       // scalar: weight * mean BCE per foreground cell (differentiable)
  int64_t foreground_cells = 0;
};

// depth: [B, N, D, h, w] float32 probabilities (softmax over D, StudentOutput::depth);
// target: [B, N, h, w] float32 metres, 0 = no point (DepthTargets::depth), same h, w.
// Throws bevkd::Error naming both shapes when they disagree or D != bins.count().
DepthLoss depth_loss(const torch::Tensor& depth, const torch::Tensor& target, const DepthBins& bins, double weight);

}  // namespace bevkd::train::student
