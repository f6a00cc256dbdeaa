// DETR-style set prediction loss for the query decoder (query_decoder.h): per layer, a Hungarian
// matching of queries to GT boxes on a detached cost (core/nn/hungarian.h), then a sigmoid focal
// classification loss over every query and class and an L1 loss on the matched box codes.
//
// Cost of query q against GT g (mmdetection's FocalLossCost + BBoxL1Cost, as Deformable DETR /
// BEVFormer use them), with p = σ(logit_q):
//   cls_weight · [α (1 − p_c)^γ (−log(p_c + ε)) − (1 − α) p_c^γ (−log(1 − p_c + ε))],  c = label_g
//   + box_weight · Σ_{d < cost_dims} |code_q,d − code_g,d|
// Loss of one layer (N_gt = the batch's GT count, at least 1):
//   cls = cls_weight · Σ_{b,q,c} FocalLoss(logit, onehot) / N_gt      (α = 0.25, γ = 2)
//   box = box_weight · Σ_{matched (q, g), d} cw_d |code_q,d − code_g,d| / N_gt
//         (cw = 1 on the first 8 dims, 0.2 on the velocity; a NaN target velocity is not trained)
// FD3D's distillation head uses cls_weight α = 2.0 and box_weight β = 0.25 (spec/losses.md §6).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace bevkd::core::nn {

struct QueryLossConfig {
  double cls_weight = 2.0;
  double box_weight = 0.25;
  double focal_alpha = 0.25;
  double focal_gamma = 2.0;
  double velocity_weight = 0.2;  // cw of code dims 8, 9
  int64_t cost_dims = 8;         // code dims in the L1 cost (no velocity)
  bool with_velocity = true;     // train code dims 8, 9

  void validate(const std::string& where = "query loss") const;
  template <class V>
  void fields(V& v) {
    v("cls_weight", cls_weight);
    v("box_weight", box_weight);
    v("focal_alpha", focal_alpha);
    v("focal_gamma", focal_gamma);
    v("velocity_weight", velocity_weight);
    v("cost_dims", cost_dims);
    v("with_velocity", with_velocity);
  }
};

// One sample's matching: query[i] ↔ gt[i] (CPU int64, sorted by query).
struct QueryMatch {
  torch::Tensor query;
  torch::Tensor gt;
};

// The cost matrix of one sample, [N, G] float64 (detached): logits [N, C], codes [N, 10],
// gt_codes [G, 10], gt_labels [G] int64.
torch::Tensor query_match_cost(const torch::Tensor& logits, const torch::Tensor& codes, const torch::Tensor& gt_codes,
                               const torch::Tensor& gt_labels, const QueryLossConfig& cfg);

// Hungarian matching per sample. logits [B, N, C], codes [B, N, 10]; gt_codes[b] [G_b, 10] (G_b may
// be 0), gt_labels[b] [G_b] int64.
std::vector<QueryMatch> match_queries(const torch::Tensor& logits, const torch::Tensor& codes,
                                      const std::vector<torch::Tensor>& gt_codes,
                                      const std::vector<torch::Tensor>& gt_labels, const QueryLossConfig& cfg);

struct QueryLayerLoss {
  torch::Tensor cls;  // 0-dim (∂ logits)
  torch::Tensor box;  // 0-dim (∂ codes)
  std::vector<QueryMatch> match;
};

// One layer's loss with its own matching.
QueryLayerLoss query_layer_loss(const torch::Tensor& logits, const torch::Tensor& codes,
                                const std::vector<torch::Tensor>& gt_codes,
                                const std::vector<torch::Tensor>& gt_labels, const QueryLossConfig& cfg);

// Decoded detections of one sample's queries: the top `max_det` (query, class) pairs by σ(logit)
// (DETR3D's NMS-free coder). logits [N, C], codes [N, 10]. Returns indices into the queries,
// labels and scores (CPU).
struct QueryTopK {
  torch::Tensor query;   // [K] int64
  torch::Tensor label;   // [K] int64
  torch::Tensor score;   // [K] float32
};
QueryTopK query_topk(const torch::Tensor& logits, int64_t max_det);

}  // namespace bevkd::core::nn
