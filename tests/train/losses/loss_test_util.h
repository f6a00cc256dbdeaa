// Helpers of the loss tests: central finite differences in float64, tensor comparison, and the
// bevkd::Error message check. (Candidates for the shared tests/support/ library.)
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <string>

#include "base/error.h"

namespace bevkd::train::losses::test {

// Central difference of f at every element of x (float64), step h.
inline torch::Tensor numeric_grad(const std::function<double(const torch::Tensor&)>& f, const torch::Tensor& x,
                                  double h = 1e-6) {
  torch::Tensor g = torch::zeros_like(x);
  auto gf = g.view({-1});
  for (int64_t i = 0; i < x.numel(); ++i) {
    torch::Tensor plus = x.detach().clone(), minus = x.detach().clone();
    plus.view({-1})[i] += h;
    minus.view({-1})[i] -= h;
    gf[i] = (f(plus) - f(minus)) / (2 * h);
  }
  return g;
}

// Gradient of f (a 0-dim tensor function) at x by autograd.
inline torch::Tensor autograd_grad(const std::function<torch::Tensor(const torch::Tensor&)>& f,
                                   const torch::Tensor& x) {
  const torch::Tensor v = x.detach().clone().requires_grad_(true);
  f(v).backward();
  return v.grad().defined() ? v.grad() : torch::zeros_like(x);
}

// Elementwise |a − b| <= atol + rtol·|b| (in double, same shape).
inline ::testing::AssertionResult all_close(const torch::Tensor& a, const torch::Tensor& b, double rtol, double atol) {
  if (a.sizes() != b.sizes())
    return ::testing::AssertionFailure() << "shapes differ: " << a.sizes() << " vs " << b.sizes();
  const torch::Tensor x = a.detach().to(torch::kCPU, torch::kFloat64), y = b.detach().to(torch::kCPU, torch::kFloat64);
  const torch::Tensor excess = (x - y).abs() - (atol + rtol * y.abs());
  if (excess.numel() == 0 || excess.max().item<double>() <= 0) return ::testing::AssertionSuccess();
  const int64_t i = excess.flatten().argmax().item<int64_t>();
  return ::testing::AssertionFailure() << "element " << i << " (flat): " << x.flatten()[i].item<double>() << " vs "
                                       << y.flatten()[i].item<double>() << " (rtol " << rtol << ", atol " << atol
                                       << ")";
}

// The analytic gradient of f at x equals the central difference (float64 inputs).
inline ::testing::AssertionResult gradient_matches(const std::function<torch::Tensor(const torch::Tensor&)>& f,
                                                   const torch::Tensor& x, double rtol = 1e-6, double atol = 1e-8) {
  const torch::Tensor analytic = autograd_grad(f, x);
  const torch::Tensor numeric = numeric_grad([&](const torch::Tensor& v) { return f(v).item<double>(); }, x);
  if (numeric.abs().max().item<double>() == 0)
    return ::testing::AssertionFailure() << "the numeric gradient is 0 everywhere (a test that cannot fail)";
  return all_close(analytic, numeric, rtol, atol);
}

}  // namespace bevkd::train::losses::test

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
