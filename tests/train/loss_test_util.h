// Helpers for the distillation-loss tests: a central finite-difference gradient check in float64
// and an independent bilinear sampler (explicit loops, align_corners = false, zeros padding).
#pragma once

#include <gtest/gtest.h>
#include <torch/types.h>

#include <cmath>
#include <functional>
#include <vector>

namespace bevkd::train::losses::testing {

// Compares autograd's gradient of the scalar f(x) with central differences (step h) on every
// `stride`-th element of x (float64). Tolerance: |g - fd| <= atol + rtol * |fd|.
inline void expect_gradient_matches_fd(const std::function<torch::Tensor(const torch::Tensor&)>& f,
                                       const torch::Tensor& x0, int64_t stride = 1, double h = 1e-6,
                                       double atol = 1e-7, double rtol = 1e-5) {
  ASSERT_EQ(x0.scalar_type(), torch::kFloat64);
  auto x = x0.detach().clone().requires_grad_(true);
  auto y = f(x);
  y.backward();
  ASSERT_TRUE(x.grad().defined()) << "no gradient reached the input";
  const auto grad = x.grad().reshape({-1});
  const auto flat = x0.detach().reshape({-1});
  int64_t checked = 0;
  for (int64_t i = 0; i < flat.size(0); i += stride) {
    auto xp = flat.clone(), xm = flat.clone();
    xp[i] += h;
    xm[i] -= h;
    torch::NoGradGuard ng;
    const double fd =
        (f(xp.view_as(x0)).item<double>() - f(xm.view_as(x0)).item<double>()) / (2 * h);
    const double g = grad[i].item<double>();
    EXPECT_NEAR(g, fd, atol + rtol * std::abs(fd)) << "element " << i;
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

// map [C, H, W] (float64, contiguous), (gx, gy) normalised in [-1, 1]: torch's grid_sample with
// bilinear interpolation, zeros padding and align_corners = false, written out.
inline std::vector<double> bilinear_sample(const torch::Tensor& map, double gx, double gy) {
  const int64_t C = map.size(0), H = map.size(1), W = map.size(2);
  const auto a = map.accessor<double, 3>();
  const double px = ((gx + 1) * W - 1) / 2, py = ((gy + 1) * H - 1) / 2;
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

}  // namespace bevkd::train::losses::testing
