// FD3D's distillation head (spec/losses.md §6, the paper's eq. 1–2): N learned queries decoded
// over the stored teacher BEV map by the single-level deformable-attention decoder of
// core/nn/query_decoder.h, trained with Hungarian matching against GT (focal classification,
// weight α = 2.0, + L1 box code, weight β = 0.25, every decoder layer supervised). It sees only
// the teacher's features and GT, never the student. Its focal queries — matched queries of the
// last layer whose confidence max_c σ(logit) exceeds ρ_c and whose rotated BEV GIoU with their
// GT exceeds ρ_b — give SMGD its instance mask (their predicted boxes) and QFD its sampling
// positions (the last layer's deformable-attention points, in metres).
#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "base/bev_grid.h"
#include "core/nn/query_decoder.h"
#include "core/nn/query_loss.h"

namespace bevkd::train::losses {

struct Fd3dHeadOptions {
  core::nn::QueryDecoderConfig decoder;  // in_channels = the teacher tap's channels
  core::nn::QueryLossConfig loss;        // cls_weight α = 2.0, box_weight β = 0.25
  double rho_c = 0.3;                    // focal query: confidence > rho_c
  double rho_b = 0.3;                    //              and GIoU with its matched GT > rho_b

  void validate(const std::string& where = "fd3d head") const;
};

class Fd3dHeadImpl : public torch::nn::Module {
 public:
  // grid: the teacher map's grid (the boxes' and positions' metres).
  Fd3dHeadImpl(Fd3dHeadOptions opts, BevGrid grid);
  // teacher [B, C, H, W] float32 (constant: detached here).
  core::nn::QueryDecoderOutput forward(const torch::Tensor& teacher);
  const Fd3dHeadOptions& options() const { return opts_; }
  const BevGrid& grid() const { return grid_; }

 private:
  Fd3dHeadOptions opts_;
  BevGrid grid_;
  core::nn::QueryDecoder decoder_{nullptr};
};
TORCH_MODULE(Fd3dHead);

// The focal queries of a batch (per sample b), and the counts a user checks the head by.
struct Fd3dFocalQueries {
  std::vector<torch::Tensor> boxes;      // [F_b, 9] float32 (the grid's frame, Box): the queries' predicted boxes
  std::vector<torch::Tensor> positions;  // [F_b, M, K, 2] float32 (x, y) metres: their sampling points
  int64_t count = 0;                     // Σ_b F_b
  int64_t gt_total = 0;                  // GT boxes in the batch
  int64_t gt_covered = 0;                // GT boxes matched to a focal query
  int64_t samples_with_gt = 0;
};

struct Fd3dHeadStep {
  torch::Tensor loss;  // L_dh: Σ over layers of (cls + box), 0-dim, gradient into the head only
  torch::Tensor cls, box;  // their sums over layers (detached), for logging
  Fd3dFocalQueries focal;
  core::nn::QueryDecoderOutput out;  // the head's outputs (its detections, for evaluation)
};

// One forward of the head with its loss and focal queries. gt_boxes[b] [G_b, 9] float32 (the
// grid's frame, Box; NaN velocity = unknown), gt_labels[b] [G_b] int64. G_b may be 0.
Fd3dHeadStep fd3d_head_step(Fd3dHead& head, const torch::Tensor& teacher, const std::vector<torch::Tensor>& gt_boxes,
                            const std::vector<torch::Tensor>& gt_labels);

// The focal queries of a decoder output given its last layer's matching (exposed for tests).
Fd3dFocalQueries fd3d_focal_queries(const core::nn::QueryDecoderOutput& out, const std::vector<core::nn::QueryMatch>& match,
                                    const std::vector<torch::Tensor>& gt_boxes, const BevGrid& grid, double rho_c,
                                    double rho_b);

}  // namespace bevkd::train::losses
