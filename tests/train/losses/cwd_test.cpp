// CWD (spec/losses.md §7.2): a hand-worked case, brute-force loops for both forms, the softmax
// over cells per channel (invariances), the CE - KL = teacher entropy identity, gradients.
#include <gtest/gtest.h>

#include <cmath>

#include "tests/support/expect_error.h"
#include "tests/support/grad_check.h"
#include "tests/train/losses/loss_test_util.h"
#include "train/losses/cwd.h"

namespace bevkd::train::losses {
namespace {

using bevkd::testing::gradient_matches;

using test::kF64;

double cwd_brute(const torch::Tensor& s, const torch::Tensor& t, double tau, double w, bool kl) {
  const int64_t N = s.size(0), C = s.size(1), H = s.size(2), W = s.size(3);
  const auto S = s.to(torch::kFloat64).contiguous(), T = t.to(torch::kFloat64).contiguous();
  auto sa = S.accessor<double, 4>();
  auto ta = T.accessor<double, 4>();
  double total = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      double zs = 0, zt = 0;
      for (int64_t i = 0; i < H * W; ++i) {
        zs += std::exp(sa[n][c][i / W][i % W] / tau);
        zt += std::exp(ta[n][c][i / W][i % W] / tau);
      }
      for (int64_t i = 0; i < H * W; ++i) {
        const double pt = std::exp(ta[n][c][i / W][i % W] / tau) / zt;
        const double log_ps = sa[n][c][i / W][i % W] / tau - std::log(zs);
        total += kl ? pt * (std::log(pt) - log_ps) : -pt * log_ps;
      }
    }
  return w * tau * tau * total / static_cast<double>(N * C);
}

TEST(Cwd, HandWorked) {
  // One channel, two cells: p_T = softmax(ln 3, 0) = (3/4, 1/4), p_S = (1/2, 1/2).
  //   KL = 3/4 ln(3/2) + 1/4 ln(1/2) = 0.130812035   CE = ln 2 = 0.693147181
  const auto s = torch::zeros({1, 1, 1, 2}, kF64);
  const auto t = torch::tensor({std::log(3.0), 0.0}, kF64).view({1, 1, 1, 2});
  EXPECT_NEAR(cwd_loss(s, t).item<double>(), 0.75 * std::log(1.5) + 0.25 * std::log(0.5), 1e-12);
  CwdOptions ce;
  ce.form = CwdForm::kCrossEntropy;
  EXPECT_NEAR(cwd_loss(s, t, ce).item<double>(), std::log(2.0), 1e-12);
}

TEST(Cwd, BothFormsMatchBruteForceLoops) {
  torch::manual_seed(1);
  const auto s = torch::randn({3, 4, 5, 6}, kF64) * 2, t = torch::randn({3, 4, 5, 6}, kF64) * 2;
  for (double tau : {1.0, 4.0})
    for (CwdForm form : {CwdForm::kKl, CwdForm::kCrossEntropy}) {
      CwdOptions o;
      o.tau = tau;
      o.loss_weight = 3.0;
      o.form = form;
      const double want = cwd_brute(s, t, tau, 3.0, form == CwdForm::kKl);
      EXPECT_NEAR(cwd_loss(s, t, o).item<double>(), want, 1e-12 * std::abs(want));
      EXPECT_NEAR(cwd_loss(s.to(torch::kFloat32), t.to(torch::kFloat32), o).item<double>(), want,
                  1e-5 * std::abs(want));
    }
}

TEST(Cwd, SoftmaxRunsOverTheCellsOfEachChannel) {
  torch::manual_seed(2);
  const auto s = torch::randn({2, 3, 4, 4}, kF64), t = torch::randn({2, 3, 4, 4}, kF64);
  const double base = cwd_loss(s, t).item<double>();
  // A constant added to one (sample, channel) leaves its distribution over cells unchanged ...
  const auto per_channel = torch::randn({2, 3, 1, 1}, kF64) * 5;
  EXPECT_NEAR(cwd_loss(s + per_channel, t).item<double>(), base, 1e-12);
  EXPECT_NEAR(cwd_loss(s, t + per_channel).item<double>(), base, 1e-12);
  // ... a constant per cell shared by the channels does not (it would, were the softmax over C).
  const auto per_cell = torch::randn({2, 1, 4, 4}, kF64) * 5;
  EXPECT_GT(std::abs(cwd_loss(s + per_cell, t).item<double>() - base), 1e-3);
  // Permuting the cells of both maps the same way changes nothing.
  const auto perm = torch::randperm(16, torch::kLong);
  auto p = [&](const torch::Tensor& x) { return x.reshape({2, 3, 16}).index_select(2, perm).reshape({2, 3, 4, 4}); };
  EXPECT_NEAR(cwd_loss(p(s), p(t)).item<double>(), base, 1e-12);
  // Identical maps: KL is 0, CE is the teacher entropy.
  EXPECT_NEAR(cwd_loss(t, t).item<double>(), 0.0, 1e-12);
}

TEST(Cwd, CrossEntropyExceedsKlByTheTeacherEntropyWithTheSameGradient) {
  torch::manual_seed(3);
  const auto s = torch::randn({2, 2, 3, 3}, kF64), t = torch::randn({2, 2, 3, 3}, kF64);
  CwdOptions kl, ce;
  kl.tau = ce.tau = 2.0;
  kl.loss_weight = ce.loss_weight = 0.5;
  ce.form = CwdForm::kCrossEntropy;
  const auto pt = torch::softmax(t.reshape({4, 9}) / 2.0, 1);
  const double entropy = -(pt * pt.log()).sum().item<double>() * 4.0 * 0.5 / 4.0;  // w tau^2 H / (N C)
  EXPECT_NEAR(cwd_loss(s, t, ce).item<double>() - cwd_loss(s, t, kl).item<double>(), entropy, 1e-12);
  auto a = s.clone().requires_grad_(true), b = s.clone().requires_grad_(true);
  cwd_loss(a, t, kl).backward();
  cwd_loss(b, t, ce).backward();
  EXPECT_TRUE(torch::allclose(a.grad(), b.grad(), 1e-12, 1e-14));
  EXPECT_TRUE(gradient_matches([&](const torch::Tensor& x) { return cwd_loss(x, t, kl); }, s, 1e-5, 1e-7, 1e-6, 3));
}

TEST(Cwd, DistillerAlignsChannelsAndResizesTheGrid) {
  torch::manual_seed(4);
  CwdDistiller same(4, 4), diff(3, 4);
  EXPECT_TRUE(same->parameters().empty());
  ASSERT_TRUE(diff->align);
  const auto t = torch::randn({2, 4, 6, 6});
  const auto s3 = torch::randn({2, 3, 3, 3});
  const auto up = torch::nn::functional::interpolate(s3, torch::nn::functional::InterpolateFuncOptions()
                                                             .size(std::vector<int64_t>{6, 6})
                                                             .mode(torch::kBilinear)
                                                             .align_corners(false));
  EXPECT_NEAR(diff->forward(s3, t).item<double>(), cwd_loss(diff->align(up), t).item<double>(), 1e-6);
  EXPECT_ERROR_WITH(cwd_loss(torch::zeros({2, 4, 6, 6}), torch::zeros({2, 4, 6, 5})),
                    "cwd_kl: input t has shape [2,4,6,5], expected [N,C,H,W]=[2,4,6,6]");
}

}  // namespace
}  // namespace bevkd::train::losses
