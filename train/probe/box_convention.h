// The one place where loss-probe's box convention meets bevkd's.
//
// Case directories hold boxes as the reference code does (spec/loss_probe.md, spec §1):
// mmdet3d v0.17 LiDAR boxes (x, y, z, dx, dy, dz, yaw', vx, vy) with z at the gravity centre,
// dims (dx, dy, dz) = (w, l, h) for nuScenes-style boxes, and corners rotated by -yaw'. The
// trainer's boxes are DESIGN.md's Box (x, y, z, l, w, h, yaw, vx, vy): geometric centre, l along
// the heading, yaw counter-clockwise from +x. Both describe the same rectangle when
//   l = dy,  w = dx,  h = dz,  z unchanged (gravity centre = geometric centre),
//   yaw = -yaw' - pi/2 (wrapped to [-pi, pi)),  velocity unchanged.
// (A v0.17 box's local x axis, of extent dx, is rotated to the direction -yaw' = yaw + pi/2:
// across the heading, so dx is the width.)
#pragma once

#include <torch/types.h>

#include <array>

namespace bevkd::train::probe {

// boxes: [K, 9] float32 or float64, mmdet3d v0.17 (x, y, z, dx, dy, dz, yaw', vx, vy), z at the
// gravity centre (m, m/s, rad; ego/LiDAR frame). Returns [K, 9] of the same dtype in DESIGN.md's
// Box convention (computed in float64, then cast back). Throws bevkd::Error for another shape.
torch::Tensor v017_boxes_to_bevkd(const torch::Tensor& boxes);

// BEVDistill's regression code (spec §3.2) in the reference's layout,
//   v0.17: (x, y, log w, log l, z, log h, sin yaw', cos yaw', vx, vy),
// to bevkd's layout (losses/bevdistill.h: bevdistill_box_code),
//   bevkd: (x, y, log l, log w, z, log h, sin yaw, cos yaw, vx, vy),
// with sin yaw = -cos yaw' and cos yaw = -sin yaw'. A signed permutation of the last axis
// (its own inverse), differentiable: code [..., 10] -> [..., 10]. Every L1 term of the
// reference maps to one bevkd term of equal size; code weights move with their entries
// (v017_code_weights_to_bevkd).
torch::Tensor v017_box_code_to_bevkd(const torch::Tensor& code);
// The same permutation of 10 per-entry weights (signs do not apply to weights).
std::array<double, 10> v017_code_weights_to_bevkd(const std::array<double, 10>& w);

}  // namespace bevkd::train::probe
