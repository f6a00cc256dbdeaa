// LiDAR point -> camera pixel projection shared by the CPU and CUDA implementations of
// depth_projection.h (double arithmetic, identical rounding on both devices).
#pragma once

#include <math.h>
#include <stdint.h>

#include "kernels/detail/box_math.h"
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
  int32_t image_w, image_h;    // image the intrinsics map to (pixels)
  int32_t stride;              // output cell = stride x stride pixels
  int32_t out_w, out_h;        // ceil(image / stride)
  float min_depth, max_depth;  // kept: min_depth <= depth < max_depth (m, camera z)
};

// Projects ego-frame point p into camera c. True when it lands inside the image at a depth in
// range; then (u, v) are full-resolution pixel coordinates (u along the image's columns),
// depth the camera-frame z in metres, and cell the index row · out_w + col of the stride grid.
BEVKD_HD bool project_to_camera(const Camera& c, const ProjectionParams& p, double px, double py, double pz, float* u,
                                float* v, float* depth, int32_t* cell) {
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

// The outputs of cell `c` (flat over [Ncam, out_h, out_w]) whose reduction ended with `key`
// (not kNoDepthKey): recomputes the winner's projection, writes depth[c], uvd[3c..3c+2],
// valid[c], and box_id[c] = the first of the G boxes (stride S floats) containing the point,
// leaving box_id[c] untouched when none does. False when the recomputation disagrees (a bug).
BEVKD_HD bool resolve_depth_cell(const float* points, int64_t num_features, const Camera* cams,
                                 const ProjectionParams& p, uint64_t key, const float* boxes, int64_t G, int64_t S,
                                 int64_t c, float* depth, int32_t* box_id, float* uvd, bool* valid) {
  const int64_t per_cam = static_cast<int64_t>(p.out_h) * p.out_w;
  const float* q = points + static_cast<int64_t>(depth_key_point(key)) * num_features;
  float u, v, d;
  int32_t cell;
  if (!project_to_camera(cams[c / per_cam], p, q[0], q[1], q[2], &u, &v, &d, &cell) || cell != c % per_cam)
    return false;
  depth[c] = d;
  uvd[3 * c] = u;
  uvd[3 * c + 1] = v;
  uvd[3 * c + 2] = d;
  valid[c] = true;
  for (int64_t g = 0; g < G; ++g)
    if (point_in_box(q[0], q[1], q[2], boxes + g * S)) {
      box_id[c] = static_cast<int32_t>(g);
      break;
    }
  return true;
}

}  // namespace bevkd::kernels::detail
