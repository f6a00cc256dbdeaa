#include "core/nn/center_targets.h"

#include <cmath>

#include "base/error.h"
#include "kernels/gaussian.h"

namespace bevkd::core::nn {

void HeadGeometry::validate(const std::string& where) const {
  BEVKD_CHECK(grid.valid(), where, ": no output grid given");
  BEVKD_CHECK(out_size_factor >= 1, where, ": out_size_factor must be >= 1, got ", out_size_factor);
}

void CenterTargetConfig::validate(const std::string& where) const {
  geometry.validate(where);
  BEVKD_CHECK(gaussian_overlap > 0 && gaussian_overlap < 1, where, ": gaussian_overlap must be in (0, 1), got ",
              gaussian_overlap);
  BEVKD_CHECK(min_radius >= 0, where, ": min_radius must be >= 0, got ", min_radius);
  BEVKD_CHECK(max_objs > 0, where, ": max_objs must be positive, got ", max_objs);
  validate_tasks(tasks, num_classes, where);
}

std::vector<TaskTargets> center_targets(const std::vector<torch::Tensor>& gt_boxes,
                                        const std::vector<torch::Tensor>& gt_labels, const CenterTargetConfig& cfg) {
  cfg.validate();
  BEVKD_CHECK(gt_boxes.size() == gt_labels.size() && !gt_boxes.empty(), "center targets: ", gt_boxes.size(),
              " box sets and ", gt_labels.size(), " label sets, expected one per sample (B >= 1)");
  const auto& g = cfg.geometry;
  const BevGrid& grid = g.grid;
  const int64_t B = static_cast<int64_t>(gt_boxes.size()), H = grid.H, W = grid.W, M = cfg.max_objs;

  kernels::GaussianOptions gopt;
  gopt.grid = grid;
  gopt.out_size_factor = g.out_size_factor;
  gopt.min_overlap = cfg.gaussian_overlap;
  gopt.min_radius = cfg.min_radius;

  // Upstream's float32 arithmetic: coor = (x - x_min) / voxel / out_size_factor.
  const float x_min = static_cast<float>(grid.x_min()), y_min = static_cast<float>(grid.y_min());
  const float vx = static_cast<float>(grid.dx / static_cast<double>(g.out_size_factor)),
              vy = static_cast<float>(grid.dy / static_cast<double>(g.out_size_factor));
  const float osf = static_cast<float>(g.out_size_factor);

  std::vector<TaskTargets> out(cfg.tasks.size());
  for (size_t t = 0; t < cfg.tasks.size(); ++t) {
    const auto K = static_cast<int64_t>(cfg.tasks[t].size());
    out[t].heatmap = torch::zeros({B, K, H, W}, torch::kFloat32);
    out[t].box = torch::zeros({B, M, 10}, torch::kFloat32);
    out[t].index = torch::zeros({B, M}, torch::kInt64);
    out[t].mask = torch::zeros({B, M}, torch::kUInt8);
    out[t].source = torch::full({B, M}, -1, torch::kInt64);
  }
  for (int64_t b = 0; b < B; ++b) {
    const auto boxes = gt_boxes[b].to(torch::kCPU).to(torch::kFloat32).contiguous();
    const auto labels = gt_labels[b].to(torch::kCPU).to(torch::kInt64).contiguous();
    BEVKD_CHECK(boxes.dim() == 2 && boxes.size(1) == 9, "center targets: sample ", b, " boxes have shape ",
                boxes.sizes(), ", expected [N, 9]");
    BEVKD_CHECK(labels.dim() == 1 && labels.size(0) == boxes.size(0), "center targets: sample ", b, " has ",
                boxes.size(0), " boxes and labels of shape ", labels.sizes());
    const auto ba = boxes.accessor<float, 2>();
    const auto la = labels.accessor<int64_t, 1>();
    for (size_t t = 0; t < cfg.tasks.size(); ++t) {
      const auto& task = cfg.tasks[t];
      // The task's objects in GT order (upstream groups them class by class within the task:
      // task_masks iterates the task's class names). Slot k = the k-th object of that order.
      std::vector<int64_t> members, local;
      for (size_t k = 0; k < task.size(); ++k)
        for (int64_t i = 0; i < boxes.size(0); ++i)
          if (la[i] == task[k]) {
            members.push_back(i);
            local.push_back(static_cast<int64_t>(k));
          }
      if (members.empty()) continue;
      // Upstream loops over num_objs = min(N, max_objs): later objects get neither a slot nor a
      // Gaussian.
      const int64_t n = std::min<int64_t>(static_cast<int64_t>(members.size()), M);
      members.resize(static_cast<size_t>(n));
      local.resize(static_cast<size_t>(n));
      const auto sel = torch::tensor(members, torch::kInt64);
      out[t].heatmap[b].copy_(kernels::gaussian_heatmaps(boxes.index_select(0, sel), torch::tensor(local, torch::kInt64),
                                                         static_cast<int64_t>(task.size()), gopt));
      auto box_a = out[t].box.accessor<float, 3>();
      auto ind_a = out[t].index.accessor<int64_t, 2>();
      auto mask_a = out[t].mask.accessor<uint8_t, 2>();
      auto src_a = out[t].source.accessor<int64_t, 2>();
      for (int64_t k = 0; k < n; ++k) {
        const auto i = members[static_cast<size_t>(k)];
        const float x = ba[i][0], y = ba[i][1], z = ba[i][2], l = ba[i][3], w = ba[i][4], h = ba[i][5],
                    yaw = ba[i][6], bvx = ba[i][7], bvy = ba[i][8];
        // Upstream's skip rules (same as kernels::gaussian_heatmaps): positive size in cells,
        // centre cell inside the map.
        if (!(w / vx / osf > 0 && l / vy / osf > 0)) continue;
        const float cx = (x - x_min) / vx / osf;
        const float cy = (y - y_min) / vy / osf;
        if (!std::isfinite(cx) || !std::isfinite(cy)) continue;
        const auto ix = static_cast<int64_t>(static_cast<int32_t>(cx));  // truncation toward zero
        const auto iy = static_cast<int64_t>(static_cast<int32_t>(cy));
        if (ix < 0 || ix >= W || iy < 0 || iy >= H) continue;
        ind_a[b][k] = iy * W + ix;
        mask_a[b][k] = 1;
        src_a[b][k] = i;
        const float v[10] = {cx - static_cast<float>(ix), cy - static_cast<float>(iy), z, std::log(l), std::log(w),
                             std::log(h), std::sin(yaw), std::cos(yaw), bvx, bvy};
        for (int c = 0; c < 10; ++c) box_a[b][k][c] = v[c];
      }
    }
  }
  return out;
}

}  // namespace bevkd::core::nn
