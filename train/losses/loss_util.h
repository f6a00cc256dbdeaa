// Small helpers shared by the distillation losses of train/losses/: argument checks whose
// messages name the loss, the input and the expected shape; the zero a loss returns when it has
// nothing to compare (no boxes, no foreground); the BEV footprint of a box; the bilinear resize
// of a student map onto the teacher's grid (DESIGN.md "Stage two": dense losses resample the
// student map to the teacher grid, bilinear, align_corners = false).
#pragma once

#include <torch/types.h>

#include <string>

namespace bevkd::train::losses {

// "[2,64,100,100]"
std::string shape_str(const torch::Tensor& t);

// Throws bevkd::Error unless `t` is defined, has rank `rank` and a float32/float64 dtype:
//   "<loss>: input <name> has shape [..], expected <layout>" / "... dtype Half, expected float32 or float64".
void check_float_tensor(const torch::Tensor& t, const char* loss, const char* name, int64_t rank, const char* layout);

// Throws unless `t` is defined with rank `rank` and an integer dtype.
void check_int_tensor(const torch::Tensor& t, const char* loss, const char* name, int64_t rank, const char* layout);

// A scalar 0 of x's dtype and device that is connected to x's graph (x.sum() * 0), so that a loss
// with nothing to compare still back-propagates (zero gradients) when summed with others.
torch::Tensor connected_zero(const torch::Tensor& x);

// BEV footprint of boxes in DESIGN.md's Box convention, in the corner order of mmdet3d v0.17's
// LiDARInstance3DBoxes.corners[:, [0, 2, 4, 6], :2]:
//   boxes [K, >= 7] float32/float64 (x, y, z, l, w, h, yaw, ...; ego frame, metres, yaw CCW from +x)
//   returns [K, 4, 2] float32 (x, y) in metres: p0, p1, p2, p3.
// mmdet3d stores the same rectangle as dims (dx, dy) = (w, l) and yaw_m = -yaw - pi/2; its local
// corners (-dx/2, -dy/2), (-dx/2, +dy/2), (+dx/2, -dy/2), (+dx/2, +dy/2) are rotated by -yaw_m.
// In DESIGN terms, with heading h = (cos yaw, sin yaw) and left normal n = (-sin yaw, cos yaw):
//   p0 = c - (w/2) n + (l/2) h,  p1 = c - (w/2) n - (l/2) h,  p2 = c + (w/2) n + (l/2) h,  p3 = c + (w/2) n - (l/2) h
// so p1 - p0 = -l h and p2 - p0 = w n are edges and p3 is opposite p0.
// `extra_width` (m) enlarges the box on every side first (mmdet3d enlarged_box: l and w grow by
// 2 * extra_width). Computed in float32, as upstream does on its float32 box tensors.
torch::Tensor box_bev_corners(const torch::Tensor& boxes, double extra_width = 0.0);

// Bilinear resize (align_corners = false) of a [N, C, h, w] map to [N, C, H, W]; the map itself
// when the size already matches.
torch::Tensor resize_to(const torch::Tensor& map, int64_t H, int64_t W);

}  // namespace bevkd::train::losses
