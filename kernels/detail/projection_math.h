// LiDAR point -> camera pixel projection shared by the CPU and CUDA implementations of
// depth_projection.h (double arithmetic, identical rounding on both devices).
#pragma once

#include <math.h>
#include <stdint.h>

#include "kernels/detail/hd.h"

namespace bevkd::kernels::detail {

// One camera: cam2ego = [R | t] (camera frame -> ego frame; camera frame x right, y down,
// z forward) and the 3x3 intrinsics K, both row-major.
struct Camera {
  double R[9];
  double t[3];
  double K[9];
};

struct ProjectionParams {
  int32_t image_w, image_h;   // image the intrinsics map to (pixels)
  int32_t stride;             // output cell = stride x stride pixels
  int32_t out_w, out_h;       // ceil(image / stride)
  float min_depth, max_depth; // kept: min_depth <= depth < max_depth (m, camera z)
};

// Projects ego-frame point p into camera c. True when it lands inside the image at a depth in
// range; then (u, v) are full-resolution pixel coordinates (u along the image's columns),
// depth the camera-frame z in metres, and cell the index row · out_w + col of the stride grid.
BEVKD_HD bool project_to_camera(const Camera& c, const ProjectionParams& p, double px, double py, double pz,
                                float* u, float* v, float* depth, int32_t* cell) {
  const double dx = px - c.t[0], dy = py - c.t[1], dz = pz - c.t[2];
  // ego -> camera: R^T (p - t)
  const double xc = c.R[0] * dx + c.R[3] * dy + c.R[6] * dz;
  const double yc = c.R[1] * dx + c.R[4] * dy + c.R[7] * dz;
  const double zc = c.R[2] * dx + c.R[5] * dy + c.R[8] * dz;
  const float d = static_cast<float>(zc);
  if (!(d >= p.min_depth && d < p.max_depth)) return false;
  const double hu = c.K[0] * xc + c.K[1] * yc + c.K[2] * zc;
  const double hv = c.K[3] * xc + c.K[4] * yc + c.K[5] * zc;
  const double hw = c.K[6] * xc + c.K[7] * yc + c.K[8] * zc;
  if (!(hw > 0.0)) return false;
  const double uu = hu / hw, vv = hv / hw;
  if (!(uu >= 0.0 && uu < p.image_w && vv >= 0.0 && vv < p.image_h)) return false;
  const int32_t col = static_cast<int32_t>(floor(uu / p.stride));
  const int32_t row = static_cast<int32_t>(floor(vv / p.stride));
  *u = static_cast<float>(uu);
  *v = static_cast<float>(vv);
  *depth = d;
  *cell = row * p.out_w + col;
  return true;
}

// The reduction key of a candidate: nearest depth first, then the lower point index. Depth is
// positive (min_depth > 0), so its float bits order like its value.
BEVKD_HD uint64_t depth_key(float depth, uint32_t point_index) {
  union {
    float f;
    uint32_t u;
  } bits;
  bits.f = depth;
  return (static_cast<uint64_t>(bits.u) << 32) | point_index;
}

BEVKD_HD uint32_t depth_key_point(uint64_t key) { return static_cast<uint32_t>(key & 0xffffffffu); }

constexpr uint64_t kNoDepthKey = ~static_cast<uint64_t>(0);

}  // namespace bevkd::kernels::detail
