// Helpers of the loss tests: kF64 (tests/support), and an independent bilinear sampler (TiG-BEV
// key points, FD3D's QFD): torch's
// grid_sample with bilinear interpolation, zeros padding and align_corners = false, written out
// as loops, so that the losses' own grid_sample calls are checked against something else.
#pragma once

#include <torch/types.h>

#include <cmath>
#include <vector>

#include "tests/support/tensor_close.h"

namespace bevkd::train::losses::test {

using bevkd::testing::kF64;

// map [C, H, W] (float64), (gx, gy) normalised in [-1, 1] (x selects the W axis): the C values
// at pixel ((gx + 1) W - 1) / 2, ((gy + 1) H - 1) / 2; corners outside the map read 0.
inline std::vector<double> bilinear_sample(const torch::Tensor& map, double gx, double gy) {
  const torch::Tensor m = map.to(torch::kFloat64).contiguous();
  const int64_t C = m.size(0), H = m.size(1), W = m.size(2);
  const auto a = m.accessor<double, 3>();
  const double px = ((gx + 1) * static_cast<double>(W) - 1) / 2, py = ((gy + 1) * static_cast<double>(H) - 1) / 2;
  const double x0 = std::floor(px), y0 = std::floor(py);
  const double fx = px - x0, fy = py - y0;
  std::vector<double> out(static_cast<size_t>(C), 0.0);
  for (int dy = 0; dy < 2; ++dy)
    for (int dx = 0; dx < 2; ++dx) {
      const auto xi = static_cast<int64_t>(x0) + dx, yi = static_cast<int64_t>(y0) + dy;
      if (xi < 0 || xi >= W || yi < 0 || yi >= H) continue;
      const double wgt = (dx ? fx : 1 - fx) * (dy ? fy : 1 - fy);
      for (int64_t c = 0; c < C; ++c) out[static_cast<size_t>(c)] += wgt * a[c][yi][xi];
    }
  return out;
}

}  // namespace bevkd::train::losses::test
