// Tensor comparisons of the LibTorch tests, with named tolerances (after faiss' kF32MaxRelErr).
#pragma once

#include <gtest/gtest.h>
#include <torch/types.h>

#include <cstdint>

namespace bevkd::testing {

// float32 results compared with a double reference (sums of up to ~100 products).
constexpr double kF32RelTol = 1e-5;
constexpr double kF32AbsTol = 1e-6;
// double results compared with a double reference computed another way.
constexpr double kF64Tol = 1e-10;

// Options of a float64 tensor (the tests' reference computations).
inline const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

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
  if (x.numel() == 0 || x.equal(y)) return ::testing::AssertionSuccess();
  const torch::Tensor diff = (x != y).flatten().nonzero();
  const int64_t i = diff[0][0].item<int64_t>();
  return ::testing::AssertionFailure() << diff.size(0) << " elements differ, first at flat index " << i << ": "
                                       << x.flatten()[i].item<double>() << " vs " << y.flatten()[i].item<double>();
}

}  // namespace bevkd::testing
