// FitNet (spec/losses.md §7.1): both forms against loops, a hand-worked case, an all-zero
// sample, gradients and the refused plain + normalize combination.
#include <gtest/gtest.h>

#include <cmath>

#include "tests/support/expect_error.h"
#include "tests/support/grad_check.h"
#include "tests/train/losses/loss_test_util.h"
#include "train/losses/fitnet.h"

namespace bevkd::train::losses {
namespace {

using bevkd::testing::gradient_matches;

using test::kF64;

// r(S) by loops, then either form.
double fitnet_brute(const torch::Tensor& s, const torch::Tensor& t, const torch::Tensor& rw, const torch::Tensor& rb,
                    FitnetForm form, double w, bool normalize) {
  const int64_t N = s.size(0), Cs = s.size(1), H = s.size(2), W = s.size(3), C = t.size(1);
  std::vector<std::vector<double>> r(static_cast<size_t>(N)), tt(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < H * W; ++i) {
        double v = rb[c].item<double>();
        for (int64_t d = 0; d < Cs; ++d) v += rw[c][d][0][0].item<double>() * s[n][d][i / W][i % W].item<double>();
        r[static_cast<size_t>(n)].push_back(v);
        tt[static_cast<size_t>(n)].push_back(t[n][c][i / W][i % W].item<double>());
      }
  double total = 0;
  for (int64_t n = 0; n < N; ++n) {
    double ns = 0, nt = 0;
    for (size_t k = 0; k < r[0].size(); ++k) {
      ns += r[static_cast<size_t>(n)][k] * r[static_cast<size_t>(n)][k];
      nt += tt[static_cast<size_t>(n)][k] * tt[static_cast<size_t>(n)][k];
    }
    ns = normalize ? std::sqrt(ns) : 1;
    nt = normalize ? std::sqrt(nt) : 1;
    for (size_t k = 0; k < r[0].size(); ++k)
      total += std::pow(r[static_cast<size_t>(n)][k] / ns - tt[static_cast<size_t>(n)][k] / nt, 2);
  }
  const double count = form == FitnetForm::kPlain ? static_cast<double>(N * C * H * W) : static_cast<double>(N);
  return w * total / count;
}

TEST(Fitnet, HandWorked) {
  // One sample, one cell, identity regressor: r(S) = (3, 4), T = (0, 2).
  //   mmrazor: |(0.6, 0.8) - (0, 1)|^2 / 1 = 0.36 + 0.04 = 0.4  (x w = 10 -> 4)
  //   plain:   ((3-0)^2 + (4-2)^2) / 2 = 6.5
  const auto s = torch::tensor({3.0, 4.0}, kF64).view({1, 2, 1, 1});
  const auto t = torch::tensor({0.0, 2.0}, kF64).view({1, 2, 1, 1});
  const auto rw = torch::eye(2, kF64).view({2, 2, 1, 1}), rb = torch::zeros({2}, kF64);
  FitnetOptions o;
  o.loss_weight = 10;
  EXPECT_NEAR(fitnet_loss(s, t, rw, rb, o).item<double>(), 4.0, 1e-12);
  o.form = FitnetForm::kPlain;
  o.normalize = false;
  o.loss_weight = 1;
  EXPECT_NEAR(fitnet_loss(s, t, rw, rb, o).item<double>(), 6.5, 1e-12);
}

TEST(Fitnet, BothFormsMatchLoopsAndGradients) {
  torch::manual_seed(1);
  const auto s = torch::randn({3, 2, 3, 4}, kF64), t = torch::randn({3, 5, 3, 4}, kF64);
  const auto rw = torch::randn({5, 2, 1, 1}, kF64), rb = torch::randn({5}, kF64);
  struct V {
    FitnetForm form;
    bool normalize;
  };
  for (V v : {V{FitnetForm::kMmrazor, true}, V{FitnetForm::kMmrazor, false}, V{FitnetForm::kPlain, false}}) {
    FitnetOptions o;
    o.form = v.form;
    o.normalize = v.normalize;
    o.loss_weight = 2.5;
    const double want = fitnet_brute(s, t, rw, rb, v.form, 2.5, v.normalize);
    EXPECT_NEAR(fitnet_loss(s, t, rw, rb, o).item<double>(), want, 1e-12 * want);
    EXPECT_TRUE(
        gradient_matches([&](const torch::Tensor& x) { return fitnet_loss(x, t, rw, rb, o); }, s, 1e-5, 1e-7, 1e-6, 2));
    EXPECT_TRUE(
        gradient_matches([&](const torch::Tensor& w) { return fitnet_loss(s, t, w, rb, o); }, rw, 1e-5, 1e-7, 1e-6, 1));
  }
}

TEST(Fitnet, AllZeroSampleIsFiniteAndPlainRefusesNormalize) {
  auto s = torch::zeros({2, 2, 2, 2}, kF64).requires_grad_(true);
  const auto t = torch::randn({2, 3, 2, 2}, kF64);
  const auto rw = torch::zeros({3, 2, 1, 1}, kF64), rb = torch::zeros({3}, kF64);
  const auto loss = fitnet_loss(s, t, rw, rb);  // r(S) = 0: each sample gives |0 - t_hat|^2 = 1
  EXPECT_NEAR(loss.item<double>(), 1.0, 1e-12);
  loss.backward();
  EXPECT_TRUE(torch::isfinite(s.grad()).all().item<bool>());
  FitnetOptions bad;
  bad.form = FitnetForm::kPlain;
  EXPECT_ERROR_WITH(fitnet_loss(s, t, rw, rb, bad), "normalize = true is not allowed with the plain form");
}

TEST(Fitnet, DistillerOwnsTheRegressor) {
  FitnetDistiller m(2, 5);
  EXPECT_EQ(m->parameters().size(), 2u);
  const auto s = torch::randn({2, 2, 4, 4}), t = torch::randn({2, 5, 4, 4});
  EXPECT_EQ(m->forward(s, t).item<double>(),
            fitnet_loss(s, t, m->regressor->weight, m->regressor->bias).item<double>());
}

}  // namespace
}  // namespace bevkd::train::losses
