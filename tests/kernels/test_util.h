// Helpers of the kernels/ tests: random boxes; named tolerances, tensor comparison and the
// error matcher come from tests/support/.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "tests/support/expect_error.h"
#include "tests/support/tensor_close.h"

namespace bevkd::kernels::test {

using bevkd::testing::all_close;
using bevkd::testing::kF32AbsTol;
using bevkd::testing::kF32RelTol;
using bevkd::testing::kF64Tol;
using bevkd::testing::same;
// float32 gradients that a CUDA twin sums with atomicAdd (in an order that varies between
// runs) compared with the CPU's ordered sums of the same terms.
constexpr double kF32AtomicRelTol = 1e-4;
constexpr double kF32AtomicAbsTol = 1e-5;

// n boxes [n, 9] (x, y, z, l, w, h, yaw, vx, vy): centres uniform in [-spread, spread]²,
// z in [-0.5, 0.5], l in [0.5, max_length], w in [0.4, 2.5], h in [0.5, 2], any yaw.
inline torch::Tensor random_boxes(int64_t n, double spread, double max_length, uint64_t seed,
                                  torch::Dtype dtype = torch::kFloat64) {
  torch::manual_seed(seed);
  torch::Tensor b = torch::zeros({n, 9}, dtype);
  b.select(1, 0).uniform_(-spread, spread);
  b.select(1, 1).uniform_(-spread, spread);
  b.select(1, 2).uniform_(-0.5, 0.5);
  b.select(1, 3).uniform_(0.5, max_length);
  b.select(1, 4).uniform_(0.4, 2.5);
  b.select(1, 5).uniform_(0.5, 2.0);
  b.select(1, 6).uniform_(-M_PI, M_PI);
  b.select(1, 7).normal_();
  b.select(1, 8).normal_();
  return b;
}

// A point of the plane, for the independent (brute-force) references of the box kernels.
struct Pt {
  double x, y;
};
inline double cross(Pt o, Pt a, Pt b) { return (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x); }

// The BEV corners of a box b = (x, y, z, l, w, h, yaw, ...), counter-clockwise.
inline std::vector<Pt> box_corners_ccw(const double* b) {
  const double c = std::cos(b[6]), s = std::sin(b[6]);
  std::vector<Pt> out;
  for (const auto& [u, v] : {std::pair{0.5, 0.5}, {-0.5, 0.5}, {-0.5, -0.5}, {0.5, -0.5}}) {
    const double lx = u * b[3], ly = v * b[4];
    out.push_back({b[0] + c * lx - s * ly, b[1] + s * lx + c * ly});
  }
  return out;
}

}  // namespace bevkd::kernels::test
