#include "core/nn/center_loss.h"

#include "base/error.h"

namespace bevkd::core::nn {

torch::Tensor clip_sigmoid(const torch::Tensor& x, double eps) { return torch::clamp(x.sigmoid(), eps, 1.0 - eps); }

torch::Tensor gaussian_focal_loss(const torch::Tensor& pred, const torch::Tensor& target, double avg_factor,
                                  double alpha, double gamma) {
  BEVKD_CHECK(pred.sizes() == target.sizes(), "gaussian_focal_loss: pred has shape ", pred.sizes(),
              ", target has shape ", target.sizes());
  BEVKD_CHECK(avg_factor > 0, "gaussian_focal_loss: avg_factor must be positive, got ", avg_factor);
  constexpr double kEps = 1e-12;  // mmdet's eps inside the logs
  const auto pos_weights = target.eq(1).to(pred.scalar_type());
  const auto neg_weights = (1 - target).pow(gamma);
  const auto pos_loss = -(pred + kEps).log() * (1 - pred).pow(alpha) * pos_weights;
  const auto neg_loss = -(1 - pred + kEps).log() * pred.pow(alpha) * neg_weights;
  return (pos_loss + neg_loss).sum() / avg_factor;
}

torch::Tensor weighted_l1_loss(const torch::Tensor& pred, const torch::Tensor& target, const torch::Tensor& weight,
                               double avg_factor) {
  BEVKD_CHECK(pred.sizes() == target.sizes() && pred.sizes() == weight.sizes(), "weighted_l1_loss: pred ",
              pred.sizes(), ", target ", target.sizes(), " and weight ", weight.sizes(), " must have one shape");
  BEVKD_CHECK(avg_factor > 0, "weighted_l1_loss: avg_factor must be positive, got ", avg_factor);
  const auto keep = weight.ne(0);
  // torch::where keeps NaN targets out of both the value and the gradient of the masked entries.
  const auto diff = torch::where(keep, (pred - torch::where(keep, target, pred.detach())).abs() * weight,
                                 torch::zeros_like(pred));
  return diff.sum() / avg_factor;
}

torch::Tensor gather_cells(const torch::Tensor& map, const torch::Tensor& index) {
  BEVKD_ASSERT(map.dim() == 4 && index.dim() == 2 && map.size(0) == index.size(0));
  const auto B = map.size(0), C = map.size(1);
  const auto flat = map.reshape({B, C, -1}).permute({0, 2, 1});  // [B, H*W, C]
  return flat.gather(1, index.unsqueeze(2).expand({B, index.size(1), C}));
}

torch::Tensor regression_map(const TaskPrediction& p) {
  std::vector<torch::Tensor> parts{p.reg, p.height, p.dim, p.rot};
  if (p.vel.defined()) parts.push_back(p.vel);
  return torch::cat(parts, 1);
}

void CenterLossConfig::validate(const std::string& where) const {
  BEVKD_CHECK(code_weights.size() == 10, where, ": code_weights has ", code_weights.size(),
              " entries, expected 10 (dx, dy, z, log l, log w, log h, sin, cos, vx, vy)");
  for (double w : code_weights) BEVKD_CHECK(w >= 0, where, ": code weight ", w, " is negative");
  BEVKD_CHECK(heatmap_weight >= 0 && bbox_weight >= 0, where, ": loss weights must be >= 0");
}

CenterLoss center_head_loss(const std::vector<TaskPrediction>& preds, const std::vector<TaskTargets>& targets,
                            const CenterLossConfig& cfg) {
  cfg.validate();
  BEVKD_CHECK(preds.size() == targets.size(), "center_head_loss: ", preds.size(), " task predictions but ",
              targets.size(), " task targets");
  CenterLoss out;
  for (size_t t = 0; t < preds.size(); ++t) {
    const auto& p = preds[t];
    const auto& tg = targets[t];
    const auto device = p.heatmap.device();
    const auto hm_target = tg.heatmap.to(device);
    BEVKD_CHECK(p.heatmap.sizes() == hm_target.sizes(), "center_head_loss: task ", t, " heat map has shape ",
                p.heatmap.sizes(), ", its target ", hm_target.sizes());
    // num_pos counts cells whose target is exactly 1 (CenterHead.loss).
    const double num_pos = hm_target.eq(1).sum().item<double>();
    out.heatmap.push_back(gaussian_focal_loss(clip_sigmoid(p.heatmap), hm_target, std::max(num_pos, 1.0)));

    const auto reg = regression_map(p);
    const auto C = reg.size(1);
    const auto pred = gather_cells(reg, tg.index.to(device));                    // [B, M, C]
    const auto target = tg.box.to(device).narrow(2, 0, C);                        // [B, M, C]
    const auto mask = tg.mask.to(device).to(torch::kFloat32).unsqueeze(2).expand_as(target);
    const auto notnan = (~torch::isnan(target)).to(torch::kFloat32);
    std::vector<float> cw(cfg.code_weights.begin(), cfg.code_weights.begin() + C);
    const auto code = torch::tensor(cw, torch::TensorOptions().dtype(torch::kFloat32)).to(device);
    const auto weight = mask * notnan * code;
    const double num = tg.mask.to(torch::kFloat32).sum().item<double>();
    out.bbox.push_back(weighted_l1_loss(pred, target, weight, num + 1e-4));
  }
  out.total = torch::zeros({}, preds.at(0).heatmap.options());
  for (size_t t = 0; t < preds.size(); ++t)
    out.total = out.total + cfg.heatmap_weight * out.heatmap[t] + cfg.bbox_weight * out.bbox[t];
  return out;
}

}  // namespace bevkd::core::nn
