#include "core/nn/center_decode.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "core/nn/center_loss.h"
#include "kernels/nms.h"

namespace bevkd::core::nn {

NmsKind nms_kind_from_string(const std::string& s) {
  if (s == "none") return NmsKind::kNone;
  if (s == "rotate") return NmsKind::kRotate;
  if (s == "circle") return NmsKind::kCircle;
  BEVKD_FAIL("nms type '", s, "' is unknown, expected one of none, rotate, circle");
}

std::string to_string(NmsKind k) {
  switch (k) {
    case NmsKind::kNone: return "none";
    case NmsKind::kRotate: return "rotate";
    case NmsKind::kCircle: return "circle";
  }
  return "?";
}

nlohmann::json to_config_json(NmsKind k) { return to_string(k); }

void from_config_json(const nlohmann::json& j, NmsKind& k, const std::string& where) {
  BEVKD_CHECK(j.is_string(), where, ": expected one of \"none\", \"rotate\", \"circle\", found ", j.dump());
  try {
    k = nms_kind_from_string(j.get<std::string>());
  } catch (const Error& e) {
    BEVKD_FAIL(where, ": ", e.what());
  }
}

void DecodeConfig::validate(const std::string& where) const {
  validate_tasks(tasks, num_classes, where);
  BEVKD_CHECK(grid.H > 0 && grid.W > 0 && grid.dx > 0 && grid.dy > 0, where, ": the output grid is empty (",
              grid.describe(), ")");
  BEVKD_CHECK(max_num > 0, where, ": max_num must be positive, got ", max_num);
  BEVKD_CHECK(std::isfinite(score_threshold) && score_threshold >= 0 && score_threshold < 1, where,
              ": score_threshold must be in [0, 1), got ", score_threshold);
  for (int i = 0; i < 3; ++i)
    BEVKD_CHECK(post_center_range[i] < post_center_range[i + 3], where, ": post_center_range axis ", i, " has min ",
                post_center_range[i], " >= max ", post_center_range[i + 3]);
  BEVKD_CHECK(nms_iou_threshold >= 0 && nms_iou_threshold <= 1, where, ": nms_iou_threshold must be in [0, 1], got ",
              nms_iou_threshold);
  BEVKD_CHECK(pre_max_size > 0 && post_max_size > 0 && max_per_sample > 0, where,
              ": pre_max_size, post_max_size and max_per_sample must be positive");
  if (nms == NmsKind::kCircle)
    BEVKD_CHECK(circle_nms_radius.size() == tasks.size(), where, ": circle_nms_radius has ",
                circle_nms_radius.size(), " entries for ", tasks.size(), " tasks");
}

TopK topk_heatmap(const torch::Tensor& heat, int64_t k) {
  BEVKD_ASSERT(heat.dim() == 4);
  const auto B = heat.size(0), C = heat.size(1), HW = heat.size(2) * heat.size(3);
  const int64_t k1 = std::min(k, HW);
  // Best k1 cells of every class, then the best k over all classes (mmdet3d _topk).
  auto [cls_scores, cls_index] = torch::topk(heat.reshape({B, C, HW}), k1);  // [B, C, k1]
  const int64_t k2 = std::min(k, C * k1);
  auto [scores, flat] = torch::topk(cls_scores.reshape({B, C * k1}), k2);    // [B, k2]
  TopK out;
  out.scores = scores;
  out.cls = torch::div(flat, k1, "floor");
  out.index = cls_index.reshape({B, C * k1}).gather(1, flat);
  return out;
}

torch::Tensor decode_boxes_at(const TaskPrediction& p, const torch::Tensor& index, const BevGrid& grid) {
  const auto W = p.heatmap.size(3);
  const auto reg = gather_cells(p.reg, index);                   // [B, K, 2]
  const auto hei = gather_cells(p.height, index);                // [B, K, 1]
  const auto dim = gather_cells(p.dim, index).exp();             // [B, K, 3]
  const auto rot = gather_cells(p.rot, index);                   // [B, K, 2]
  const auto col = torch::remainder(index, W).to(torch::kFloat32);
  const auto row = torch::div(index, W, "floor").to(torch::kFloat32);
  const auto x = (col + reg.select(2, 0)) * static_cast<float>(grid.dx) + static_cast<float>(grid.range[0]);
  const auto y = (row + reg.select(2, 1)) * static_cast<float>(grid.dy) + static_cast<float>(grid.range[1]);
  auto yaw = torch::atan2(rot.select(2, 0), rot.select(2, 1));
  // atan2 returns [-pi, pi]; bevkd wraps to [-pi, pi).
  yaw = torch::where(yaw >= static_cast<float>(M_PI), yaw - static_cast<float>(2 * M_PI), yaw);
  const auto vel = p.vel.defined() ? gather_cells(p.vel, index) : torch::zeros_like(reg);
  return torch::stack({x, y, hei.select(2, 0), dim.select(2, 0), dim.select(2, 1), dim.select(2, 2), yaw,
                       vel.select(2, 0), vel.select(2, 1)},
                      2);
}

std::vector<Detections> decode_center_head(const std::vector<TaskPrediction>& preds, const DecodeConfig& cfg) {
  cfg.validate();
  BEVKD_CHECK(preds.size() == cfg.tasks.size(), "decode: ", preds.size(), " task predictions for ", cfg.tasks.size(),
              " tasks");
  torch::NoGradGuard no_grad;
  const int64_t B = preds.at(0).heatmap.size(0);
  std::vector<std::vector<Detections>> per_task(B);
  for (size_t t = 0; t < preds.size(); ++t) {
    const auto& p = preds[t];
    BEVKD_CHECK(p.heatmap.size(1) == static_cast<int64_t>(cfg.tasks[t].size()) && p.heatmap.size(2) == cfg.grid.H &&
                    p.heatmap.size(3) == cfg.grid.W,
                "decode: task ", t, " heat map has shape ", p.heatmap.sizes(), ", expected [B, ", cfg.tasks[t].size(),
                ", ", cfg.grid.H, ", ", cfg.grid.W, "] for ", cfg.grid.describe());
    const auto top = topk_heatmap(p.heatmap.to(torch::kFloat32).sigmoid(), cfg.max_num);
    const auto boxes = decode_boxes_at(p, top.index, cfg.grid).to(torch::kCPU).contiguous();
    const auto scores = top.scores.to(torch::kCPU).contiguous();
    const auto cls = top.cls.to(torch::kCPU);
    const auto cells = top.index.to(torch::kCPU);
    auto label_map = torch::tensor(std::vector<int64_t>(cfg.tasks[t].begin(), cfg.tasks[t].end()), torch::kInt64);
    const auto& r = cfg.post_center_range;
    for (int64_t b = 0; b < B; ++b) {
      const auto bx = boxes[b];
      auto keep = scores[b].gt(cfg.score_threshold);
      for (int a = 0; a < 3; ++a)
        keep = keep & bx.select(1, a).ge(static_cast<float>(r[a])) & bx.select(1, a).le(static_cast<float>(r[a + 3]));
      const auto idx = keep.nonzero().squeeze(1);
      Detections d;
      d.boxes = bx.index_select(0, idx);
      d.scores = scores[b].index_select(0, idx);
      d.labels = label_map.index_select(0, cls[b].index_select(0, idx));
      d.cells = cells[b].index_select(0, idx);
      torch::Tensor selected;
      const torch::Tensor groups = cfg.nms_per_class ? d.labels : torch::Tensor();
      switch (cfg.nms) {
        case NmsKind::kNone:
          selected = torch::arange(std::min<int64_t>(d.size(), cfg.post_max_size), torch::kInt64);
          break;
        case NmsKind::kRotate: {
          kernels::NmsOptions o;
          o.pre_max_size = cfg.pre_max_size;
          o.post_max_size = cfg.post_max_size;
          selected = kernels::nms_bev(d.boxes, d.scores, cfg.nms_iou_threshold, o, groups);
          break;
        }
        case NmsKind::kCircle: {
          // CenterPoint's circle_nms keeps the post_max_size best survivors; no pre-selection.
          kernels::NmsOptions o;
          o.post_max_size = cfg.post_max_size;
          selected = kernels::circle_nms(d.boxes, d.scores, {cfg.circle_nms_radius[t]}, o, groups);
          break;
        }
      }
      d.boxes = d.boxes.index_select(0, selected);
      d.scores = d.scores.index_select(0, selected);
      d.labels = d.labels.index_select(0, selected);
      d.cells = d.cells.index_select(0, selected);
      per_task[b].push_back(std::move(d));
    }
  }
  std::vector<Detections> out(B);
  for (int64_t b = 0; b < B; ++b) {
    std::vector<torch::Tensor> bx, sc, lb, ce;
    for (const auto& d : per_task[b]) {
      bx.push_back(d.boxes);
      sc.push_back(d.scores);
      lb.push_back(d.labels);
      ce.push_back(d.cells);
    }
    Detections& o = out[b];
    o.boxes = torch::cat(bx, 0);
    o.scores = torch::cat(sc, 0);
    o.labels = torch::cat(lb, 0);
    o.cells = torch::cat(ce, 0);
    // Sort by score (stable, so ties keep task order) and cap at max_per_sample.
    const auto order = std::get<1>(o.scores.sort(/*stable=*/true, 0, /*descending=*/true));
    const auto n = std::min<int64_t>(order.size(0), cfg.max_per_sample);
    const auto sel = order.narrow(0, 0, n);
    o.boxes = o.boxes.index_select(0, sel);
    o.scores = o.scores.index_select(0, sel);
    o.labels = o.labels.index_select(0, sel);
    o.cells = o.cells.index_select(0, sel);
  }
  return out;
}

}  // namespace bevkd::core::nn
