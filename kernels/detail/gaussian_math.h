// CenterPoint Gaussian targets, spec/losses.md §2 (mmdet3d core/utils/gaussian.py and
// CenterHead.get_targets_single), shared by the CPU and CUDA implementations of gaussian.h.
//
// Upstream evaluates the radius on float32 tensors with Python-float scalars; every scalar
// below is the float32 rounding of the double Python computes, and every operation keeps
// upstream's association, so that int() truncation flips exactly where upstream's does.
#pragma once

#include <float.h>
#include <math.h>
#include <stdint.h>

#include "kernels/detail/hd.h"

namespace bevkd::kernels::detail {

// Scalars of gaussian_radius for one min_overlap o, each float(<the Python double>).
struct GaussianRadiusConsts {
  float one_minus_o;  // (1 - o)
  float one_plus_o;   // (1 + o)
  float neg_two_o;    // (-2 * o)       in b3 = -2 * o * (h + w)
  float o_minus_one;  // (o - 1)        in c3 = (o - 1) * w * h
  float four_a3;      // (4 * (4 * o))  in 4 * a3 * c3
};

inline GaussianRadiusConsts make_radius_consts(double min_overlap) {
  return {static_cast<float>(1.0 - min_overlap), static_cast<float>(1.0 + min_overlap),
          static_cast<float>(-2.0 * min_overlap), static_cast<float>(min_overlap - 1.0),
          static_cast<float>(4.0 * (4.0 * min_overlap))};
}

// gaussian_radius((height, width), min_overlap): the CornerNet formula with all three roots
// divided by 2 (not by 2a) — the quirk upstream keeps. Float32 throughout.
BEVKD_HD float gaussian_radius_f32(float height, float width, const GaussianRadiusConsts& k) {
  const float b1 = height + width;
  const float c1 = width * height * k.one_minus_o / k.one_plus_o;
  const float sq1 = sqrtf(b1 * b1 - 4.0f * c1);
  const float r1 = (b1 + sq1) / 2.0f;

  const float b2 = 2.0f * (height + width);
  const float c2 = k.one_minus_o * width * height;
  const float sq2 = sqrtf(b2 * b2 - 16.0f * c2);
  const float r2 = (b2 + sq2) / 2.0f;

  const float b3 = k.neg_two_o * (height + width);
  const float c3 = k.o_minus_one * width * height;
  const float sq3 = sqrtf(b3 * b3 - k.four_a3 * c3);
  const float r3 = (b3 + sq3) / 2.0f;

  float r = r1 < r2 ? r1 : r2;
  return r < r3 ? r : r3;
}

// One entry of gaussian_2d((2r+1, 2r+1), sigma = (2r+1)/6) at offset (dx, dy) from the centre:
// exp(-(dx² + dy²) / (2σ²)) in float64, entries below eps_f64 · max (max = 1 at the centre)
// set to 0, then cast to float32.
BEVKD_HD float gaussian_kernel_value(int dx, int dy, int radius) {
  const double sigma = static_cast<double>(2 * radius + 1) / 6.0;
  const double v = exp(-static_cast<double>(dx * dx + dy * dy) / (2.0 * sigma * sigma));
  return v < DBL_EPSILON ? 0.0f : static_cast<float>(v);
}

// Where and how large one box is drawn (CenterHead.get_targets_single).
struct GaussianGrid {
  float x_min, y_min;      // pc_range[0], pc_range[1] (m, ego frame)
  float voxel_x, voxel_y;  // voxel size (m)
  float out_size_factor;   // feature stride in voxels
  int32_t width, height;   // feature map W (x) and H (y)
  int32_t min_radius;
  GaussianRadiusConsts consts;
};

// The radius upstream draws box b = (x, y, z, l, w, h, yaw, ...) with: max(min_radius, int(r)),
// r = gaussian_radius((length, width)), or -1 when upstream skips the box for its size (width
// or length not positive in cells). Sizes follow mmdet3d v0.17: "width" = w / voxel_x / osf,
// "length" = l / voxel_y / osf. The centre plays no part: off-grid boxes get a radius too.
template <typename T>
BEVKD_HD int32_t gaussian_box_radius(const T* b, const GaussianGrid& g) {
  const float width = static_cast<float>(b[4]) / g.voxel_x / g.out_size_factor;
  const float length = static_cast<float>(b[3]) / g.voxel_y / g.out_size_factor;
  if (!(width > 0.0f && length > 0.0f)) return -1;
  const float r = gaussian_radius_f32(length, width, g.consts);
  const int32_t ri = r < 1e6f ? static_cast<int32_t>(r) : 1000000;  // int(radius); r >= 0 here
  return ri > g.min_radius ? ri : g.min_radius;
}

// For box b: the truncated centre cell and the radius (gaussian_box_radius), or false when
// upstream skips the box (non-positive size in cells, or the truncated centre outside
// [0, W) x [0, H)).
template <typename T>
BEVKD_HD bool gaussian_box_setup(const T* b, const GaussianGrid& g, int32_t* cx, int32_t* cy, int32_t* radius) {
  const int32_t r = gaussian_box_radius(b, g);
  if (r < 0) return false;
  const float coor_x = (static_cast<float>(b[0]) - g.x_min) / g.voxel_x / g.out_size_factor;
  const float coor_y = (static_cast<float>(b[1]) - g.y_min) / g.voxel_y / g.out_size_factor;
  // center.to(torch.int32) truncates toward zero: -0.06 -> column 0. The tests below are
  // trunc(c) in [0, W) written on the float, so that no out-of-range value is converted.
  if (!(coor_x > -1.0f && coor_x < static_cast<float>(g.width))) return false;
  if (!(coor_y > -1.0f && coor_y < static_cast<float>(g.height))) return false;
  *cx = static_cast<int32_t>(coor_x);
  *cy = static_cast<int32_t>(coor_y);
  *radius = r;
  return true;
}

}  // namespace bevkd::kernels::detail
