// CenterPoint losses: hand-worked values, NaN masking and finite-difference gradients.
#include <gtest/gtest.h>

#include <cmath>

#include "tests/support/expect_error.h"
#include "base/error.h"
#include "core/nn/center_loss.h"

namespace bevkd::core::nn {
namespace {

constexpr double kTol = 1e-6;

TEST(CenterLoss, GaussianFocalLossHandWorked) {
  // pred 0.9 at a centre (t = 1): -log(0.9) * 0.1^2           = 0.00105360516
  // pred 0.2 at t = 0.5:          -log(0.8) * 0.2^2 * 0.5^4     = 0.00055785887
  // pred 0.5 at t = 0:            -log(0.5) * 0.5^2 * 1         = 0.17328679514
  const auto pred = torch::tensor({0.9f, 0.2f, 0.5f});
  const auto target = torch::tensor({1.0f, 0.5f, 0.0f});
  const double expected = 0.00105360516 + 0.00055785887 + 0.17328679514;
  EXPECT_NEAR(gaussian_focal_loss(pred, target, 1.0).item<double>(), expected, kTol);
  EXPECT_NEAR(gaussian_focal_loss(pred, target, 2.0).item<double>(), expected / 2, kTol);
}

TEST(CenterLoss, ClipSigmoidClamps) {
  const auto p = clip_sigmoid(torch::tensor({-100.0f, 0.0f, 100.0f}));
  EXPECT_NEAR(p[0].item<double>(), 1e-4, 1e-9);
  EXPECT_NEAR(p[1].item<double>(), 0.5, 1e-9);
  EXPECT_NEAR(p[2].item<double>(), 1 - 1e-4, 1e-7);
}

TEST(CenterLoss, FocalLossGradientMatchesFiniteDifferences) {
  torch::manual_seed(3);
  auto logits = (torch::randn({2, 3, 4, 5}, torch::kFloat64) * 1.5).requires_grad_(true);
  auto target = torch::rand({2, 3, 4, 5}, torch::kFloat64) * 0.9;
  target.index_put_({0, 1, 2, 3}, 1.0);
  target.index_put_({1, 2, 0, 0}, 1.0);
  auto f = [&](const torch::Tensor& x) { return gaussian_focal_loss(clip_sigmoid(x), target, 2.0); };
  f(logits).backward();
  const auto grad = logits.grad().clone();
  const double h = 1e-6;
  auto flat = logits.detach().clone().reshape({-1});
  for (int64_t i = 0; i < flat.size(0); i += 7) {
    auto xp = flat.clone(), xm = flat.clone();
    xp[i] += h;
    xm[i] -= h;
    const double fd = (f(xp.view_as(logits)).item<double>() - f(xm.view_as(logits)).item<double>()) / (2 * h);
    EXPECT_NEAR(grad.reshape({-1})[i].item<double>(), fd, 1e-6) << "element " << i;
  }
}

TEST(CenterLoss, WeightedL1IgnoresNanTargetsWhereWeightIsZero) {
  auto pred = torch::tensor({1.0f, 2.0f, 3.0f}).requires_grad_(true);
  const auto target = torch::tensor({0.5f, std::nanf(""), 5.0f});
  const auto weight = torch::tensor({1.0f, 0.0f, 0.2f});
  auto loss = weighted_l1_loss(pred, target, weight, 2.0);
  // (0.5 * 1 + 2 * 0.2) / 2 = 0.45
  EXPECT_NEAR(loss.item<double>(), 0.45, kTol);
  loss.backward();
  EXPECT_TRUE(torch::isfinite(pred.grad()).all().item<bool>());
  EXPECT_NEAR(pred.grad()[0].item<double>(), 0.5, kTol);
  EXPECT_NEAR(pred.grad()[1].item<double>(), 0.0, kTol);
  EXPECT_NEAR(pred.grad()[2].item<double>(), -0.1, kTol);
}

TEST(CenterLoss, HeadLossHandWorked) {
  // One task, one class, B = 1, a 2x2 grid, one object at cell (row 1, col 0) -> index 2.
  TaskPrediction p;
  p.heatmap = torch::zeros({1, 1, 2, 2});  // sigmoid 0.5 everywhere
  p.reg = torch::full({1, 2, 2, 2}, 0.5f);
  p.height = torch::full({1, 1, 2, 2}, 1.0f);
  p.dim = torch::zeros({1, 3, 2, 2});
  p.rot = torch::zeros({1, 2, 2, 2});
  p.vel = torch::zeros({1, 2, 2, 2});
  TaskTargets t;
  t.heatmap = torch::tensor({1.0f, 0.5f, 0.0f, 0.25f}).view({1, 1, 2, 2});
  t.box = torch::zeros({1, 3, 10});
  t.box[0][0] = torch::tensor({0.25f, 0.75f, 2.0f, 1.0f, 0.5f, 0.0f, 1.0f, 0.0f, NAN, NAN});
  t.index = torch::tensor({2, 0, 0}, torch::kInt64).view({1, 3});
  t.mask = torch::tensor({1, 0, 0}, torch::kUInt8).view({1, 3});
  CenterLossConfig cfg;
  const auto loss = center_head_loss({p}, {t}, cfg);
  // Heat map at p = 0.5: pos: -log(0.5) * 0.25 = 0.1732868; negs: -log(0.5) * 0.25 * (1 - t)^4
  // for t = 0.5, 0, 0.25: 0.1732868 * (0.0625 + 1 + 0.31640625); num_pos = 1.
  const double hm = 0.17328679514 * (1 + 0.0625 + 1 + 0.31640625);
  EXPECT_NEAR(loss.heatmap[0].item<double>(), hm, 1e-5);
  // Box: |0.5-0.25| + |0.5-0.75| + |1-2| + |0-1| + |0-0.5| + |0-0| + |0-1| + |0-0| = 4, the NaN
  // velocities masked out, divided by (1 + 1e-4).
  EXPECT_NEAR(loss.bbox[0].item<double>(), 4.0 / 1.0001, 1e-5);
  EXPECT_NEAR(loss.total.item<double>(), hm + 0.25 * 4.0 / 1.0001, 1e-5);
}

TEST(CenterLoss, EmptyTargetsGiveFiniteLoss) {
  TaskPrediction p;
  p.heatmap = torch::randn({2, 3, 4, 4}).requires_grad_(true);
  p.reg = torch::randn({2, 2, 4, 4}).requires_grad_(true);
  p.height = torch::randn({2, 1, 4, 4});
  p.dim = torch::randn({2, 3, 4, 4});
  p.rot = torch::randn({2, 2, 4, 4});
  p.vel = torch::randn({2, 2, 4, 4});
  TaskTargets t;
  t.heatmap = torch::zeros({2, 3, 4, 4});
  t.box = torch::zeros({2, 5, 10});
  t.index = torch::zeros({2, 5}, torch::kInt64);
  t.mask = torch::zeros({2, 5}, torch::kUInt8);
  const auto loss = center_head_loss({p}, {t}, CenterLossConfig{});
  EXPECT_TRUE(std::isfinite(loss.total.item<double>()));
  EXPECT_EQ(loss.bbox[0].item<double>(), 0.0);
  loss.total.backward();
  EXPECT_TRUE(torch::isfinite(p.heatmap.grad()).all().item<bool>());
}

TEST(CenterLoss, ShapeMismatchIsNamed) {
  try {
    gaussian_focal_loss(torch::zeros({2, 3}), torch::zeros({3, 2}), 1.0);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("pred has shape [2, 3], target has shape [3, 2]"), std::string::npos)
        << e.what();
  }
  CenterLossConfig bad;
  bad.code_weights = {1, 1};
  EXPECT_ERROR_WITH(bad.validate(), "code_weights has 2 entries, expected 10");
}

}  // namespace
}  // namespace bevkd::core::nn
