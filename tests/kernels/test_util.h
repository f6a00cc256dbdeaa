// Shared helpers of the kernels/ tests: named tolerances, tensor comparison, error-message
// checks.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>

#include "base/error.h"

namespace bevkd::kernels::test {

// float32 results compared with a double reference (sums of up to ~100 products).
constexpr double kF32RelTol = 1e-5;
constexpr double kF32AbsTol = 1e-6;
// float32 gradients that the CUDA twin sums with atomicAdd (in an order that varies between
// runs) compared with the CPU's ordered sums of the same terms.
constexpr double kF32AtomicRelTol = 1e-4;
constexpr double kF32AtomicAbsTol = 1e-5;
// double results compared with a double reference computed another way.
constexpr double kF64Tol = 1e-10;

// Elementwise |a - b| <= atol + rtol·|b| (compared in double, same shape required).
inline ::testing::AssertionResult all_close(const torch::Tensor& a, const torch::Tensor& b, double rtol, double atol) {
  if (a.sizes() != b.sizes())
    return ::testing::AssertionFailure() << "shapes differ: " << a.sizes() << " vs " << b.sizes();
  const torch::Tensor x = a.to(torch::kCPU, torch::kFloat64), y = b.to(torch::kCPU, torch::kFloat64);
  const torch::Tensor excess = (x - y).abs() - (atol + rtol * y.abs());
  if (excess.numel() == 0 || excess.max().item<double>() <= 0) return ::testing::AssertionSuccess();
  const int64_t i = excess.flatten().argmax().item<int64_t>();
  return ::testing::AssertionFailure() << "element " << i << " (flat): " << x.flatten()[i].item<double>() << " vs "
                                       << y.flatten()[i].item<double>() << " (rtol " << rtol << ", atol " << atol
                                       << ")";
}

// Exact equality of values, shape and dtype.
inline ::testing::AssertionResult same(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes())
    return ::testing::AssertionFailure() << "shapes differ: " << a.sizes() << " vs " << b.sizes();
  if (a.scalar_type() != b.scalar_type())
    return ::testing::AssertionFailure() << "dtypes differ: " << a.scalar_type() << " vs " << b.scalar_type();
  const torch::Tensor x = a.cpu(), y = b.cpu();
  if (torch::equal(x, y)) return ::testing::AssertionSuccess();
  const torch::Tensor diff = (x != y).flatten().nonzero();
  const int64_t i = diff[0][0].item<int64_t>();
  return ::testing::AssertionFailure() << diff.size(0) << " elements differ, first at flat index " << i << ": "
                                       << x.flatten()[i].item<double>() << " vs " << y.flatten()[i].item<double>();
}

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

}  // namespace bevkd::kernels::test

// Runs `stmt`, expecting a bevkd::Error whose message contains `needle`.
#define EXPECT_BEVKD_ERROR(stmt, needle)                                                           \
  do {                                                                                             \
    try {                                                                                          \
      stmt;                                                                                        \
      ADD_FAILURE() << "expected a bevkd::Error containing \"" << (needle) << "\", none thrown";   \
    } catch (const ::bevkd::Error& e) {                                                            \
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message: " << e.what(); \
    }                                                                                              \
  } while (0)
