// Rotated BEV IoU, 3D IoU and BEV generalized IoU between box sets: IoU for NMS and for
// BEVDistill's teacher quality score q = c^γ · IoU(b_gt, b)^(1−γ) (DESIGN.md, shard field
// teacher/quality); GIoU for FD3D's focal-query test and DETR-style matching costs.
//
// Boxes: [N, 7] or [N, 9] float32 or float64 in one frame (ego frame, Box convention:
// x, y, z, l, w, h, yaw[, vx, vy]; z the geometric centre; velocities ignored).
//   BEV IoU = area(A ∩ B) / area(A ∪ B) of the rotated footprints, the intersection found by
//             exact convex polygon clipping (Sutherland–Hodgman), in double precision;
//   3D IoU  = BEV intersection area · z-overlap / union volume;
//   BEV GIoU = IoU − (area(C) − area(A ∪ B)) / area(C), C the convex hull of both footprints'
//             8 corners (the smallest convex shape enclosing both), in [−1, 1].
// Degenerate boxes (l, w or h <= 0) have IoU 0 and (l or w <= 0) GIoU −1 with everything.
// Results have the boxes' dtype and device; none of these ops is differentiable.
#pragma once

#include <torch/types.h>

namespace bevkd::kernels {

// a [N, 7|9], b [M, 7|9] -> [N, M]
torch::Tensor bev_iou(const torch::Tensor& a, const torch::Tensor& b);
torch::Tensor iou_3d(const torch::Tensor& a, const torch::Tensor& b);
torch::Tensor bev_giou(const torch::Tensor& a, const torch::Tensor& b);

// Aligned variants: a [N, 7|9], b [N, 7|9] -> [N], IoU of a[i] with b[i].
torch::Tensor bev_iou_aligned(const torch::Tensor& a, const torch::Tensor& b);
torch::Tensor iou_3d_aligned(const torch::Tensor& a, const torch::Tensor& b);
torch::Tensor bev_giou_aligned(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace bevkd::kernels
