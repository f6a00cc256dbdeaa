// Point -> cell arithmetic shared by the CPU and CUDA implementations of voxelize.h and
// bev_pool.h. Float32, as mmcv's hard voxelization and BEVPoolv2 compute it.
#pragma once

#include <math.h>
#include <stdint.h>

#include "kernels/detail/hd.h"

namespace bevkd::kernels::detail {

// A regular 3D grid: cell k along axis a covers [lo_a + k·size_a, lo_a + (k+1)·size_a).
struct Grid3 {
  float lo[3];    // x_min, y_min, z_min (m)
  float size[3];  // cell size (m)
  int32_t n[3];   // cells along x, y, z
};

// floor((p - lo) / size) on each axis; false when outside [0, n) on any axis (NaN included).
BEVKD_HD bool grid_cell(const Grid3& g, float x, float y, float z, int32_t* cx, int32_t* cy, int32_t* cz) {
  const float fx = floorf((x - g.lo[0]) / g.size[0]);
  const float fy = floorf((y - g.lo[1]) / g.size[1]);
  const float fz = floorf((z - g.lo[2]) / g.size[2]);
  if (!(fx >= 0.0f && fx < static_cast<float>(g.n[0]))) return false;
  if (!(fy >= 0.0f && fy < static_cast<float>(g.n[1]))) return false;
  if (!(fz >= 0.0f && fz < static_cast<float>(g.n[2]))) return false;
  *cx = static_cast<int32_t>(fx);
  *cy = static_cast<int32_t>(fy);
  *cz = static_cast<int32_t>(fz);
  return true;
}

// Linear cell id, z-major then y then x (matches coords (z, y, x)); n[0]·n[1]·n[2] must fit.
BEVKD_HD int64_t grid_linear(const Grid3& g, int32_t cx, int32_t cy, int32_t cz) {
  return (static_cast<int64_t>(cz) * g.n[1] + cy) * g.n[0] + cx;
}

}  // namespace bevkd::kernels::detail
