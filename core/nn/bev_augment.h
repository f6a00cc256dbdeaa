// Global BEV augmentation of a LiDAR frame (mmdetection3d GlobalRotScaleTrans + RandomFlip3D;
// BEVDepth's "bda"): rotate about z, scale, then flip, applied consistently to points, boxes
// and velocities. The same transform is what a shard's `view/bda` records (DESIGN.md), so the
// teacher (precompute/) and the student's loader (train/) share this one definition.
//
// As a matrix acting on column vectors (x, y, z) in the ego frame: M = F * S * R with
//   R = rot_z(rotation), S = scale * I, F = diag(flip_x ? -1 : 1, flip_y ? -1 : 1, 1),
// where flip_x mirrors x (x -> -x, mmdet3d's "vertical" flip) and flip_y mirrors y (y -> -y,
// "horizontal"). Boxes (Box convention): centre -> M centre; l, w, h -> scale * (l, w, h);
// yaw -> yaw + rotation, then -yaw under flip_y, pi - yaw under flip_x (wrapped); velocity
// (vx, vy, 0) -> M (vx, vy, 0), i.e. rotated, scaled and mirrored like a direction.
#pragma once

#include <torch/types.h>

#include <array>
#include <string>

#include "base/rng.h"
#include "core/geometry.h"

namespace bevkd::core::nn {

struct BevTransform {
  double rotation = 0;  // rad, counter-clockwise about +z
  double scale = 1;
  bool flip_x = false;  // x -> -x
  bool flip_y = false;  // y -> -y

  bool is_identity() const { return rotation == 0 && scale == 1 && !flip_x && !flip_y; }
  Mat3 matrix() const;  // M above

  // The transform whose matrix() is `m` (e.g. a shard's stored view/bda): the x-y block must be
  // s times a rotation or a reflection, z scaled by the same s > 0, no coupling between z and
  // x-y. The decomposition is canonical, not the drawn one: a reflection comes back as flip_y
  // with some rotation (flip_x = flip_y after a rotation by pi; both flips = a rotation by pi),
  // which moves centres, sizes, yaws and velocities exactly as the transform that produced m.
  // Throws bevkd::Error naming `where` and the matrix when it is not of that form (tolerance
  // 1e-4 relative to s, for float32 storage).
  static BevTransform from_matrix(const Mat3& m, const std::string& where);
  Box apply(const Box& b) const;

  // points: [P, >=3] float32, columns 0..2 = x, y z (m, ego frame); other columns unchanged.
  torch::Tensor apply_points(const torch::Tensor& points) const;
  // boxes: [N, 9] float32 (Box layout); NaN velocities stay NaN.
  torch::Tensor apply_boxes(const torch::Tensor& boxes) const;
};

// Ranges of the random transform (defaults: mmdetection3d's CenterPoint nuScenes pipeline:
// rotation U(-0.3925, 0.3925) rad, scale U(0.95, 1.05), each flip with probability 0.5).
struct BevAugmentConfig {
  std::array<double, 2> rotation_range{-0.3925, 0.3925};
  std::array<double, 2> scale_range{0.95, 1.05};
  double flip_x_prob = 0.5;
  double flip_y_prob = 0.5;

  void validate(const std::string& where) const;
  // Draws rotation, scale, flip_y, flip_x in this order from `rng`.
  BevTransform sample(Rng& rng) const;

  template <class V>
  void fields(V& v) {
    v("rotation_range", rotation_range, "--rotation", "rotation range (rad)");
    v("scale_range", scale_range, "--scale", "scale range");
    v("flip_x_prob", flip_x_prob, "--flip-x", "probability of x -> -x");
    v("flip_y_prob", flip_y_prob, "--flip-y", "probability of y -> -y");
  }
};

}  // namespace bevkd::core::nn
