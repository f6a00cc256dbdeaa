// Non-maximum suppression for CenterPoint decoding: rotated NMS on BEV footprints (mmdet3d
// nms_bev) and circle NMS on centre distances (CenterPoint's circle_nms).
//
// Both are greedy: boxes are ranked by score, descending, ties broken by the lower index (so
// the result is deterministic and identical on CPU and CUDA); a box is kept unless a kept box
// ranked above it in the same group suppresses it. Groups (class or CenterPoint task ids) give
// the "batched" form: boxes never suppress boxes of another group. Scores must not be NaN.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace bevkd::kernels {

struct NmsOptions {
  int64_t pre_max_size = 0;   // per group: only the pre_max_size best-scored boxes take part (<= 0: all)
  int64_t post_max_size = 0;  // per group: keep at most this many (<= 0: all)
};

// boxes:  [N, 7|9] float32/float64 (ego frame, Box: x, y, z, l, w, h, yaw[, vx, vy]);
// scores: [N] float32/float64; groups: undefined (one group) or [N] integer; all on one device.
// A box is suppressed by a kept box whose rotated BEV IoU with it is > iou_threshold.
// Returns the kept indices into boxes, [K] int64, best score first, on the boxes' device.
torch::Tensor nms_bev(const torch::Tensor& boxes, const torch::Tensor& scores, double iou_threshold,
                      const NmsOptions& opts = {}, const torch::Tensor& groups = {});

// boxes: [N, >= 2] float32/float64, x and y (m) in the first two columns (boxes or centres);
// scores, groups as above. A box is suppressed by a kept box whose squared centre distance to
// it is <= the threshold (m², what CenterPoint's test_cfg calls min_radius, per task).
// dist2_thresholds: one value for every group, or one per group id (groups then must lie in
// [0, dist2_thresholds.size())). Returns kept indices as nms_bev does.
torch::Tensor circle_nms(const torch::Tensor& boxes, const torch::Tensor& scores,
                         const std::vector<double>& dist2_thresholds, const NmsOptions& opts = {},
                         const torch::Tensor& groups = {});

}  // namespace bevkd::kernels
