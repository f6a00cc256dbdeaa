// Bilinear sampling taps of single-scale deformable attention, shared by the CPU reference
// (kernels/deform_attn.cpp) and the CUDA twin (kernels/cuda/deform_attn.cu), so both devices
// pick the same corners, weights and weight derivatives.
//
// A sampling location (x, y) in [0, 1]² (fraction of the map's width and height) sits at pixel
// coordinates px = x·W − ½, py = y·H − ½ (grid_sample with align_corners=False and g = 2·loc − 1;
// cell (row r, col c) has its centre at px = c, py = r). The four corners around (px, py) are
//   0: (r0, c0)   1: (r0, c0 + 1)   2: (r0 + 1, c0)   3: (r0 + 1, c0 + 1),  r0 = ⌊py⌋, c0 = ⌊px⌋,
// with the bilinear weights of grid_sample; a corner outside the map contributes 0 (zeros
// padding). A point with px <= −1, py <= −1, px >= W or py >= H (or a NaN coordinate) touches no
// cell at all: its sample and all its derivatives are 0.
#pragma once

#include <math.h>

#include <cstdint>

#include "kernels/detail/hd.h"

namespace bevkd::kernels::detail {

// Sizes of one deformable-attention call: value [B, H·W, M, Dh], locations [B, Q, M, K, 2],
// weights [B, Q, M, K], output [B, Q, M·Dh].
struct DeformAttnShape {
  int64_t B, H, W, M, Dh, Q, K;
};

template <typename T>
struct BilinearTaps {
  int64_t cell[4];  // flat cell row·W + col of each corner, or −1 outside the map
  T w[4];           // bilinear weight of each corner
  T dw_dpx[4];      // ∂w/∂px
  T dw_dpy[4];      // ∂w/∂py
};

template <typename T>
BEVKD_HD BilinearTaps<T> bilinear_taps(T loc_x, T loc_y, int64_t H, int64_t W) {
  BilinearTaps<T> t;
  const T px = loc_x * static_cast<T>(W) - T(0.5);
  const T py = loc_y * static_cast<T>(H) - T(0.5);
  if (!(px > T(-1) && py > T(-1) && px < static_cast<T>(W) && py < static_cast<T>(H))) {
    for (int c = 0; c < 4; ++c) {
      t.cell[c] = -1;
      t.w[c] = t.dw_dpx[c] = t.dw_dpy[c] = T(0);
    }
    return t;
  }
  const T fx = floor(px), fy = floor(py);
  const int64_t c0 = static_cast<int64_t>(fx), r0 = static_cast<int64_t>(fy);
  const T lx = px - fx, ly = py - fy, hx = T(1) - lx, hy = T(1) - ly;
  t.w[0] = hy * hx;
  t.w[1] = hy * lx;
  t.w[2] = ly * hx;
  t.w[3] = ly * lx;
  t.dw_dpx[0] = -hy;
  t.dw_dpx[1] = hy;
  t.dw_dpx[2] = -ly;
  t.dw_dpx[3] = ly;
  t.dw_dpy[0] = -hx;
  t.dw_dpy[1] = -lx;
  t.dw_dpy[2] = hx;
  t.dw_dpy[3] = lx;
  for (int c = 0; c < 4; ++c) {
    const int64_t r = r0 + (c >> 1), col = c0 + (c & 1);
    t.cell[c] = (r >= 0 && r < H && col >= 0 && col < W) ? r * W + col : -1;
  }
  return t;
}

// Offset of value[b, cell, m, 0] in the contiguous value tensor [B, H·W, M, Dh].
BEVKD_HD int64_t value_offset(const DeformAttnShape& s, int64_t b, int64_t cell, int64_t m) {
  return ((b * s.H * s.W + cell) * s.M + m) * s.Dh;
}

}  // namespace bevkd::kernels::detail
