#include "core/nn/query_loss.h"

#include <torch/torch.h>

#include <algorithm>

#include "base/error.h"
#include "core/nn/hungarian.h"
#include "core/nn/query_decoder.h"

namespace bevkd::core::nn {

void QueryLossConfig::validate(const std::string& where) const {
  BEVKD_CHECK(cls_weight >= 0 && box_weight >= 0, where, ": cls_weight ", cls_weight, " and box_weight ", box_weight,
              " must be >= 0");
  BEVKD_CHECK(focal_alpha >= 0 && focal_alpha <= 1, where, ": focal_alpha ", focal_alpha, " must be in [0, 1]");
  BEVKD_CHECK(focal_gamma >= 0, where, ": focal_gamma ", focal_gamma, " must be >= 0");
  BEVKD_CHECK(cost_dims >= 1 && cost_dims <= kQueryCodeSize, where, ": cost_dims ", cost_dims, " must be in [1, ",
              kQueryCodeSize, "]");
}

torch::Tensor query_match_cost(const torch::Tensor& logits, const torch::Tensor& codes, const torch::Tensor& gt_codes,
                               const torch::Tensor& gt_labels, const QueryLossConfig& cfg) {
  const torch::NoGradGuard g;
  const auto p = torch::sigmoid(logits.detach().to(torch::kFloat64));
  constexpr double eps = 1e-12;
  const double a = cfg.focal_alpha, gm = cfg.focal_gamma;
  const auto neg = -(1 - p + eps).log() * (1 - a) * p.pow(gm);
  const auto pos = -(p + eps).log() * a * (1 - p).pow(gm);
  const auto lab = gt_labels.to(logits.device()).to(torch::kInt64);
  const auto cls = (pos - neg).index_select(1, lab);  // [N, G]
  const auto d = cfg.cost_dims;
  const auto l1 = torch::cdist(codes.detach().to(torch::kFloat64).narrow(1, 0, d),
                               gt_codes.to(codes.device()).to(torch::kFloat64).narrow(1, 0, d), 1.0);
  return (cfg.cls_weight * cls + cfg.box_weight * l1).cpu().contiguous();
}

std::vector<QueryMatch> match_queries(const torch::Tensor& logits, const torch::Tensor& codes,
                                      const std::vector<torch::Tensor>& gt_codes,
                                      const std::vector<torch::Tensor>& gt_labels, const QueryLossConfig& cfg) {
  const int64_t B = logits.size(0), N = logits.size(1);
  BEVKD_CHECK(static_cast<int64_t>(gt_codes.size()) == B && static_cast<int64_t>(gt_labels.size()) == B,
              "query matching: ", gt_codes.size(), " / ", gt_labels.size(), " samples of GT for a batch of ", B);
  std::vector<QueryMatch> out;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t G = gt_codes[static_cast<size_t>(b)].size(0);
    QueryMatch m;
    if (G == 0) {
      m.query = m.gt = torch::zeros({0}, torch::kInt64);
      out.push_back(m);
      continue;
    }
    const auto cost = query_match_cost(logits[b], codes[b], gt_codes[static_cast<size_t>(b)],
                                       gt_labels[static_cast<size_t>(b)], cfg);
    const auto a = linear_sum_assignment(cost.data_ptr<double>(), N, G, "query matching cost, sample " + std::to_string(b));
    m.query = torch::tensor(a.rows, torch::kInt64);
    m.gt = torch::tensor(a.cols, torch::kInt64);
    out.push_back(m);
  }
  return out;
}

QueryLayerLoss query_layer_loss(const torch::Tensor& logits, const torch::Tensor& codes,
                                const std::vector<torch::Tensor>& gt_codes,
                                const std::vector<torch::Tensor>& gt_labels, const QueryLossConfig& cfg) {
  cfg.validate();
  const int64_t B = logits.size(0), C = logits.size(2);
  QueryLayerLoss out;
  out.match = match_queries(logits, codes, gt_codes, gt_labels, cfg);
  int64_t num_gt = 0;
  auto target = torch::zeros_like(logits);
  std::vector<torch::Tensor> pred, tgt;
  for (int64_t b = 0; b < B; ++b) {
    const auto& m = out.match[static_cast<size_t>(b)];
    num_gt += gt_codes[static_cast<size_t>(b)].size(0);
    if (m.query.numel() == 0) continue;
    const auto q = m.query.to(logits.device()), g = m.gt.to(logits.device());
    const auto lab = gt_labels[static_cast<size_t>(b)].to(logits.device()).to(torch::kInt64).index_select(0, g);
    BEVKD_CHECK((lab >= 0).all().item<bool>() && (lab < C).all().item<bool>(), "query loss: sample ", b,
                " has a GT label outside [0, ", C, ")");
    target[b].index_put_({q, lab}, 1.0);
    pred.push_back(codes[b].index_select(0, q));
    tgt.push_back(gt_codes[static_cast<size_t>(b)].to(codes.options()).index_select(0, g));
  }
  const double norm = static_cast<double>(std::max<int64_t>(num_gt, 1));
  // Sigmoid focal loss (torchvision's sigmoid_focal_loss), summed.
  const auto p = torch::sigmoid(logits);
  const auto ce = torch::binary_cross_entropy_with_logits(logits, target, {}, {}, at::Reduction::None);
  const auto pt = p * target + (1 - p) * (1 - target);
  const auto at = cfg.focal_alpha * target + (1 - cfg.focal_alpha) * (1 - target);
  out.cls = cfg.cls_weight * (at * (1 - pt).pow(cfg.focal_gamma) * ce).sum() / norm;
  if (pred.empty()) {
    out.box = (codes * 0).sum();  // keeps the graph; 0
    return out;
  }
  const auto P = torch::cat(pred), T = torch::cat(tgt);
  auto cw = torch::ones({kQueryCodeSize}, codes.options());
  cw.narrow(0, 8, 2).fill_(cfg.with_velocity ? cfg.velocity_weight : 0.0);
  auto w = cw.unsqueeze(0).expand_as(T) * torch::isfinite(T).to(codes.scalar_type());
  const auto diff = torch::where(w > 0, (P - torch::nan_to_num(T)).abs(), torch::zeros_like(P));
  out.box = cfg.box_weight * (w * diff).sum() / norm;
  return out;
}

QueryTopK query_topk(const torch::Tensor& logits, int64_t max_det) {
  const torch::NoGradGuard g;
  const auto s = torch::sigmoid(logits.detach().to(torch::kFloat32)).cpu().reshape(-1);
  const int64_t C = logits.size(1);
  const int64_t k = std::min<int64_t>(max_det, s.numel());
  const auto top = s.topk(k);
  QueryTopK out;
  out.score = std::get<0>(top);
  const auto idx = std::get<1>(top);
  out.query = idx.div(C, "floor");
  out.label = idx.remainder(C);
  return out;
}

}  // namespace bevkd::core::nn
