// Finite-difference gradient checks of the LibTorch tests (STYLE.md habit 8: every loss and
// differentiable op is tested against a float64 central difference), header-only.
//
//   EXPECT_TRUE(gradient_matches([&](const torch::Tensor& x) { return my_loss(x, t); }, s));
//
// f maps a float64 tensor shaped like x to a 0-dim tensor. gradient_matches compares autograd's
// gradient of f at x with central differences of step h on every `stride`-th element (all of
// them by default) and fails when the numeric gradient is 0 at every checked element, so that a
// check of a function that ignores its input cannot pass.
#pragma once

#include <gtest/gtest.h>
#include <torch/types.h>

#include <functional>

#include "tests/support/tensor_close.h"

namespace bevkd::testing {

using ScalarFn = std::function<torch::Tensor(const torch::Tensor&)>;

// ∂f/∂x by autograd at x (a detached copy requires grad); zeros where f does not depend on x.
inline torch::Tensor autograd_gradient(const ScalarFn& f, const torch::Tensor& x) {
  const torch::Tensor v = x.detach().clone().requires_grad_(true);
  const torch::Tensor y = f(v);
  if (!y.requires_grad()) return torch::zeros_like(x);
  const auto g = torch::autograd::grad({y}, {v}, /*grad_outputs=*/{}, /*retain_graph=*/false,
                                       /*create_graph=*/false, /*allow_unused=*/true)[0];
  return g.defined() ? g : torch::zeros_like(x);
}

// Central differences (f(x + h e_i) - f(x - h e_i)) / 2h at every `stride`-th element of x
// (float64); the other elements of the result are 0.
inline torch::Tensor numeric_gradient(const ScalarFn& f, const torch::Tensor& x, double h = 1e-6, int64_t stride = 1) {
  torch::NoGradGuard no_grad;
  torch::Tensor g = torch::zeros_like(x);
  torch::Tensor xc = x.detach().clone().contiguous();
  torch::Tensor flat = xc.view({-1}), gf = g.view({-1});
  for (int64_t i = 0; i < flat.numel(); i += stride) {
    const double v = flat[i].item<double>();
    flat[i] = v + h;
    const double fp = f(xc).item<double>();
    flat[i] = v - h;
    const double fm = f(xc).item<double>();
    flat[i] = v;
    gf[i] = (fp - fm) / (2 * h);
  }
  return g;
}

// The analytic gradient of f at x equals the central difference elementwise within
// atol + rtol·|numeric| on the checked elements; x must be float64.
inline ::testing::AssertionResult gradient_matches(const ScalarFn& f, const torch::Tensor& x, double rtol = 1e-6,
                                                   double atol = 1e-8, double h = 1e-6, int64_t stride = 1) {
  if (x.scalar_type() != torch::kFloat64)
    return ::testing::AssertionFailure() << "gradient checks need a float64 input, found " << x.scalar_type();
  const torch::Tensor numeric = numeric_gradient(f, x, h, stride);
  torch::Tensor analytic = autograd_gradient(f, x);
  if (stride > 1) {  // compare the checked elements only
    torch::Tensor mask = torch::zeros({x.numel()}, torch::kBool);
    mask.slice(0, 0, x.numel(), stride).fill_(true);
    analytic = analytic.reshape({-1}).masked_select(mask);
    const torch::Tensor n = numeric.reshape({-1}).masked_select(mask);
    if (n.numel() == 0 || n.abs().max().item<double>() == 0)
      return ::testing::AssertionFailure()
             << "the numeric gradient is 0 at every checked element (a check that cannot fail)";
    return all_close(analytic, n, rtol, atol);
  }
  if (numeric.numel() == 0 || numeric.abs().max().item<double>() == 0)
    return ::testing::AssertionFailure() << "the numeric gradient is 0 everywhere (a check that cannot fail)";
  return all_close(analytic, numeric, rtol, atol);
}

}  // namespace bevkd::testing
