// Rotated BEV IoU and 3D IoU between box sets, for NMS and for BEVDistill's teacher quality
// score q = c^γ · IoU(b_gt, b)^(1−γ) (DESIGN.md, shard field teacher/quality).
//
// Boxes: [N, 7] or [N, 9] float32 or float64 in one frame (ego frame, Box convention:
// x, y, z, l, w, h, yaw[, vx, vy]; z the geometric centre; velocities ignored).
//   BEV IoU = area(A ∩ B) / area(A ∪ B) of the rotated footprints, the intersection found by
//             exact convex polygon clipping (Sutherland–Hodgman), in double precision;
//   3D IoU  = BEV intersection area · z-overlap / union volume.
// Degenerate boxes (l, w or h <= 0) have IoU 0 with everything. Results have the boxes' dtype
// and device.
#pragma once

#include <torch/types.h>

namespace bevkd::kernels {

// a [N, 7|9], b [M, 7|9] -> [N, M]
torch::Tensor bev_iou(const torch::Tensor& a, const torch::Tensor& b);
torch::Tensor iou_3d(const torch::Tensor& a, const torch::Tensor& b);

// Aligned variants: a [N, 7|9], b [N, 7|9] -> [N], IoU of a[i] with b[i].
torch::Tensor bev_iou_aligned(const torch::Tensor& a, const torch::Tensor& b);
torch::Tensor iou_3d_aligned(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace bevkd::kernels
