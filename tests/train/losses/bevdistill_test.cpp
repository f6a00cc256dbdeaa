// train/losses: hand-worked values, brute-force references, float64 finite-difference gradients,
// the edge cases spec/losses.md names (empty samples, Σfg = 0, non-finite teacher rows,
// rectangular matching) and invariances.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

#include "core/nn/hungarian.h"
#include "tests/support/expect_error.h"
#include "tests/support/grad_check.h"
#include "tests/support/tensor_close.h"
#include "tests/train/losses/loss_test_util.h"
#include "train/losses/bevdistill.h"
#include "train/losses/focaldistiller.h"
#include "train/losses/gaussian_fg.h"

namespace bevkd::train::losses {
namespace {

using bevkd::testing::all_close;
using bevkd::testing::gradient_matches;

using test::kF64;

// exp(-d² / (2σ²)) for radius 1 (σ = 0.5): offsets (1,0) and (1,1).
constexpr double kE2 = 0.1353352832366127;
constexpr double kE4 = 0.01831563888873418;

// 8 x 8 cells of 1 m over [-4, 4]²: voxel 0.5 m, stride 2.
kernels::GaussianOptions small_geometry(int64_t min_radius = 1) {
  kernels::GaussianOptions g;
  g.grid = BevGrid::make({-4, -4, -5, 4, 4, 3}, 1.0);
  g.out_size_factor = 2;
  g.min_radius = min_radius;
  return g;
}

// A DESIGN.md Box small enough that int(gaussian_radius) = 0: min_radius decides.
torch::Tensor tiny_box(double x, double y) { return torch::tensor({{x, y, 0.0, 0.3, 0.2, 1.5, 0.4, 0.0, 0.0}}); }

// ---- §2 -----------------------------------------------------------------------------------------

TEST(GaussianFgMap, HandWorkedSingleBox) {
  const FgMap m = gaussian_fg_map(tiny_box(0.5, -1.5).to(torch::kFloat32), small_geometry());
  ASSERT_EQ(m.map.sizes(), (std::vector<int64_t>{8, 8}));
  EXPECT_EQ(m.map.scalar_type(), torch::kFloat32);
  // coor = (4.5, 2.5) -> column 4, row 2 (row <-> y).
  EXPECT_EQ(m.map[2][4].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(m.map[2][5].item<float>(), static_cast<float>(kE2));
  EXPECT_FLOAT_EQ(m.map[1][4].item<float>(), static_cast<float>(kE2));
  EXPECT_FLOAT_EQ(m.map[3][3].item<float>(), static_cast<float>(kE4));
  EXPECT_NEAR(m.map.sum().item<double>(), 1 + 4 * kE2 + 4 * kE4, 1e-6);
  EXPECT_TRUE(torch::equal(m.radius, torch::tensor({int64_t{1}})));
}

TEST(GaussianFgMap, TruncatesTowardZeroAndKeepsRadiiOfSkippedBoxes) {
  // x = -4.06: coor_x = -0.06 -> column 0 (trunc, not floor). x = -5: off the map, not drawn.
  torch::Tensor boxes = torch::cat({tiny_box(-4.06, 0.5), tiny_box(-5.0, 0.5), tiny_box(0.5, 0.5)});
  boxes[2][4] = 0.0;  // w = 0: skipped for its size, radius -1
  const FgMap m = gaussian_fg_map(boxes, small_geometry(2));
  EXPECT_EQ(m.map[4][0].item<float>(), 1.0f);
  EXPECT_EQ(m.map[4][4].item<float>(), 0.0f);
  EXPECT_TRUE(torch::equal(m.radius, torch::tensor({int64_t{2}, int64_t{2}, int64_t{-1}})));
  EXPECT_EQ(m.radius.scalar_type(), torch::kInt64);
}

TEST(GaussianFgMap, OverlapsMergeByMaxAndDtypesAgree) {
  const torch::Tensor one = tiny_box(0.5, 0.5);
  const torch::Tensor two = torch::cat({one, tiny_box(1.5, 0.5)});
  const FgMap a = gaussian_fg_map(one, small_geometry());
  const FgMap b = gaussian_fg_map(two, small_geometry());
  EXPECT_EQ(b.map[4][4].item<float>(), 1.0f);  // max(1, e^-2), not 1 + e^-2
  EXPECT_EQ(b.map[4][5].item<float>(), 1.0f);
  EXPECT_TRUE(torch::equal(torch::max(a.map, b.map), b.map));
  // float64 boxes go through the float32 steps upstream uses: the same map.
  EXPECT_TRUE(torch::equal(gaussian_fg_map(two.to(torch::kFloat64), small_geometry()).map, b.map));
  // No boxes: zero map, no radii; a batch with an empty sample.
  const FgMap e = gaussian_fg_map(torch::zeros({0, 9}), small_geometry());
  EXPECT_EQ(e.map.sum().item<float>(), 0.0f);
  EXPECT_EQ(e.radius.numel(), 0);
  const torch::Tensor batch = gaussian_fg_maps({two, torch::zeros({0, 9})}, small_geometry());
  EXPECT_EQ(batch.sizes(), (std::vector<int64_t>{2, 8, 8}));
  EXPECT_TRUE(torch::equal(batch[0], b.map));
  EXPECT_EQ(batch[1].sum().item<float>(), 0.0f);
  EXPECT_ERROR_WITH(
      gaussian_fg_map(torch::zeros({2, 5}), small_geometry()),
      "gaussian_fg_map: boxes must be [K, 9] (or [K, 7]) float (x, y, z, l, w, h, yaw, vx, vy), found [2, 5]");
}

// ---- §3.1 -----------------------------------------------------------------------------------------

TEST(BevDistillDense, HandWorkedChannelsSummed) {
  // B=1, C=2, 1x2 map; T = 0; fg = (0.5, 1):
  // Σ = (1²·0.5 + 2²·1) + (3²·0.5 + 4²·1) = 25, Σfg = 1.5 (no factor C).
  const torch::Tensor s = torch::tensor({1.0, 2.0, 3.0, 4.0}, kF64).view({1, 2, 1, 2});
  const torch::Tensor fg = torch::tensor({0.5, 1.0}, kF64).view({1, 1, 2});
  EXPECT_DOUBLE_EQ(bevdistill_dense_unweighted(s, torch::zeros_like(s), fg).item<double>(), 25.0 / 1.5);
  EXPECT_DOUBLE_EQ(bevdistill_dense(s, torch::zeros_like(s), fg).item<double>(), 0.01 * 25.0 / 1.5);
}

TEST(BevDistillDense, PerSampleBroadcastAndEmptySamples) {
  torch::manual_seed(1);
  // B = 2 != C = 3: the per-sample broadcast (upstream's (1,B,H,W) broadcast would fail here).
  const torch::Tensor s = torch::randn({2, 3, 4, 5}, kF64), t = torch::randn({2, 3, 4, 5}, kF64);
  torch::Tensor fg = torch::rand({2, 4, 5}, kF64);
  fg[1].zero_();  // sample 1 has no boxes: adds nothing
  const double both = bevdistill_dense_unweighted(s, t, fg).item<double>();
  const double first =
      bevdistill_dense_unweighted(s.slice(0, 0, 1), t.slice(0, 0, 1), fg.slice(0, 0, 1)).item<double>();
  EXPECT_NEAR(both, first, 1e-13 * first);
  // A loop over samples, cells and channels.
  double num = 0, den = 0;
  for (int b = 0; b < 2; ++b)
    for (int h = 0; h < 4; ++h)
      for (int w = 0; w < 5; ++w) {
        const double f = fg[b][h][w].item<double>();
        den += f;
        for (int c = 0; c < 3; ++c) num += std::pow(s[b][c][h][w].item<double>() - t[b][c][h][w].item<double>(), 2) * f;
      }
  EXPECT_NEAR(both, num / den, 1e-12 * both);
  // No foreground anywhere: 0 (not 0/0), a zero gradient, and backward still works.
  torch::Tensor sr = s.clone().requires_grad_(true);
  const torch::Tensor zero = bevdistill_dense(sr, t, torch::zeros({2, 4, 5}, kF64));
  EXPECT_EQ(zero.item<double>(), 0.0);
  zero.backward();
  EXPECT_EQ(sr.grad().abs().sum().item<double>(), 0.0);
}

TEST(BevDistillDense, FiniteDifferenceGradientAndConstantTeacher) {
  torch::manual_seed(2);
  const torch::Tensor s = torch::randn({2, 3, 3, 4}, kF64);
  torch::Tensor t = torch::randn({2, 3, 3, 4}, kF64).requires_grad_(true);
  const torch::Tensor fg = torch::rand({2, 3, 4}, kF64);
  auto f = [&](const torch::Tensor& x) { return bevdistill_dense(x, t, fg); };
  EXPECT_TRUE(gradient_matches(f, s, 1e-7, 1e-10));
  bevdistill_dense(s.clone().requires_grad_(true), t, fg).backward();
  EXPECT_FALSE(t.grad().defined());
  // float32 agrees with float64.
  EXPECT_NEAR(bevdistill_dense(s.to(torch::kFloat32), t.detach().to(torch::kFloat32), fg).item<double>(),
              bevdistill_dense(s, t, fg).item<double>(), 1e-6);
}

// ---- §3.2 -----------------------------------------------------------------------------------------

BoxDistillTeacher make_teacher(const torch::Tensor& code, const torch::Tensor& probs) {
  return BoxDistillTeacher{code, probs, bevdistill_max_prob_score(probs)};
}

TEST(BevDistillBox, HandWorkedClassCostIsASumOverClasses) {
  // One teacher box (code 0, probs (0.9, 0.1), s = 0.9), two queries. Query 0 is closer in x
  // (|Δx| = 1 vs 15) but has the wrong class logits. Costs (cls + 0.25·L1):
  //   summed class cost:   q0 = 5.4972 + 0.25,  q1 = 0.6972 + 3.75  -> q1 matched
  //   (averaged, mmdet's CrossEntropyLossCost, would pick q0: 2.9986 vs 4.0986)
  const torch::Tensor code = torch::zeros({1, 10}, kF64);
  const torch::Tensor probs = torch::tensor({{0.9, 0.1}}, kF64);
  torch::Tensor preds = torch::zeros({1, 1, 2, 10}, kF64);
  preds[0][0][0][0] = 1.0;
  preds[0][0][1][0] = 15.0;
  preds[0][0][1][8] = 0.5;  // velocity: in the loss (weight 0.2), not in the cost
  const torch::Tensor logits = torch::tensor({{-3.0, 3.0}, {3.0, -3.0}}, kF64).view({1, 1, 2, 2});
  const BoxDistillResult r = bevdistill_box_distill(logits, preds, {make_teacher(code, probs)});
  ASSERT_EQ(r.matches[0][0].rows, (std::vector<int64_t>{1}));
  EXPECT_EQ(r.matches[0][0].cols, (std::vector<int64_t>{0}));
  // 0.25 · s²·(1·15 + 0.2·0.5) / s = 0.25 · 0.9 · 15.1
  EXPECT_NEAR(r.total.item<double>(), 0.25 * 0.9 * 15.1, 1e-12);
  ASSERT_EQ(r.layer.size(), 1u);
}

TEST(BevDistillBox, MatchingIsOptimalAndLossMatchesLoops) {
  torch::manual_seed(5);
  const int64_t Q = 4, K = 3, C = 3;
  const torch::Tensor logits = torch::randn({1, 1, Q, C}, kF64);
  const torch::Tensor preds = torch::randn({1, 1, Q, 10}, kF64);
  const torch::Tensor code = torch::randn({K, 10}, kF64), probs = torch::rand({K, C}, kF64);
  const BoxDistillResult r = bevdistill_box_distill(logits, preds, {make_teacher(code, probs)});
  // The cost, by loops.
  auto softplus = [](double x) { return std::log1p(std::exp(x)); };
  std::vector<double> cost(Q * K);
  for (int q = 0; q < Q; ++q)
    for (int k = 0; k < K; ++k) {
      double c = 0;
      for (int j = 0; j < C; ++j) {
        const double x = logits[0][0][q][j].item<double>(), t = probs[k][j].item<double>();
        c += softplus(-x) * t + softplus(x) * (1 - t);
      }
      for (int d = 0; d < 8; ++d) c += 0.25 * std::abs(preds[0][0][q][d].item<double>() - code[k][d].item<double>());
      cost[q * K + k] = c;
    }
  // Brute force over every injection of the 3 teacher boxes into the 4 queries.
  double best = 1e300;
  for (int a = 0; a < Q; ++a)
    for (int b = 0; b < Q; ++b)
      for (int c = 0; c < Q; ++c)
        if (a != b && b != c && a != c) best = std::min(best, cost[a * K + 0] + cost[b * K + 1] + cost[c * K + 2]);
  const auto& m = r.matches[0][0];
  ASSERT_EQ(m.rows.size(), 3u);
  double got = 0, num = 0, den = 0;
  const std::array<double, 10> cw{1, 1, 1, 1, 1, 1, 1, 1, 0.2, 0.2};
  for (size_t i = 0; i < m.rows.size(); ++i) {
    got += cost[m.rows[i] * K + m.cols[i]];
    const double s = probs[m.cols[i]].max().item<double>();
    den += s;
    for (int d = 0; d < 10; ++d)
      num += s * s * cw[d] * std::abs(preds[0][0][m.rows[i]][d].item<double>() - code[m.cols[i]][d].item<double>());
  }
  EXPECT_NEAR(got, best, 1e-5);  // the cost is float32, as upstream
  EXPECT_NEAR(r.total.item<double>(), 0.25 * num / den, 1e-12);
}

TEST(BevDistillBox, EmptySamplesBatchNormaliserAndLayers) {
  torch::manual_seed(6);
  const torch::Tensor code0 = torch::randn({1, 10}, kF64), code1 = torch::randn({1, 10}, kF64);
  const torch::Tensor p0 = torch::tensor({{0.7, 0.2}}, kF64), p1 = torch::tensor({{0.1, 0.4}}, kF64);
  // Q = 1: each box matched to the single query. Σ over the batch, normaliser Σs = 0.7 + 0.4.
  torch::Tensor preds = torch::randn({2, 2, 1, 10}, kF64);
  const torch::Tensor logits = torch::randn({2, 2, 1, 2}, kF64);
  const BoxDistillResult r = bevdistill_box_distill(logits, preds, {make_teacher(code0, p0), make_teacher(code1, p1)});
  const std::array<double, 10> cw{1, 1, 1, 1, 1, 1, 1, 1, 0.2, 0.2};
  double total = 0;
  for (int l = 0; l < 2; ++l) {
    double num = 0;
    for (int d = 0; d < 10; ++d) {
      num += 0.49 * cw[d] * std::abs(preds[l][0][0][d].item<double>() - code0[0][d].item<double>());
      num += 0.16 * cw[d] * std::abs(preds[l][1][0][d].item<double>() - code1[0][d].item<double>());
    }
    EXPECT_NEAR(r.layer[l].item<double>(), 0.25 * num / 1.1, 1e-12) << l;
    total += 0.25 * num / 1.1;
  }
  EXPECT_NEAR(r.total.item<double>(), total, 1e-12);  // layers summed

  // A sample without teacher boxes adds nothing: same as the batch without it.
  const BoxDistillTeacher none{torch::zeros({0, 10}, kF64), torch::zeros({0, 2}, kF64), torch::zeros({0}, kF64)};
  const BoxDistillResult with_empty = bevdistill_box_distill(logits, preds, {make_teacher(code0, p0), none});
  const BoxDistillResult alone =
      bevdistill_box_distill(logits.slice(1, 0, 1), preds.slice(1, 0, 1), {make_teacher(code0, p0)});
  EXPECT_NEAR(with_empty.total.item<double>(), alone.total.item<double>(), 1e-14);
  EXPECT_TRUE(with_empty.matches[0][1].rows.empty());

  // Nothing matched anywhere: exactly 0, not NaN, and a backward pass with a zero gradient.
  torch::Tensor pr = preds.clone().requires_grad_(true);
  const BoxDistillResult empty = bevdistill_box_distill(logits, pr, {none, none});
  EXPECT_EQ(empty.total.item<double>(), 0.0);
  empty.total.backward();
  EXPECT_EQ(pr.grad().abs().sum().item<double>(), 0.0);
  // Q = 0 queries.
  EXPECT_EQ(bevdistill_box_distill(torch::zeros({1, 1, 0, 2}, kF64), torch::zeros({1, 1, 0, 10}, kF64),
                                   {make_teacher(code0, p0)})
                .total.item<double>(),
            0.0);
}

TEST(BevDistillBox, RectangularNonFiniteRowsAndScoreSource) {
  torch::manual_seed(7);
  // K = 4 > Q = 2: two boxes matched; one teacher row has a non-finite code (size 0 -> log 0):
  // dropped before matching, never matched, not in the normaliser.
  torch::Tensor code = torch::randn({4, 10}, kF64);
  code[2][2] = -std::numeric_limits<double>::infinity();
  const torch::Tensor probs = torch::rand({4, 3}, kF64);
  const torch::Tensor logits = torch::randn({1, 1, 2, 3}, kF64), preds = torch::randn({1, 1, 2, 10}, kF64);
  const BoxDistillResult r = bevdistill_box_distill(logits, preds, {make_teacher(code, probs)});
  const auto& m = r.matches[0][0];
  ASSERT_EQ(m.rows.size(), 2u);
  EXPECT_EQ(std::count(m.cols.begin(), m.cols.end(), 2), 0);
  const torch::Tensor keep = torch::tensor({int64_t{0}, int64_t{1}, int64_t{3}});
  const BoxDistillResult without =
      bevdistill_box_distill(logits, preds, {make_teacher(code.index_select(0, keep), probs.index_select(0, keep))});
  EXPECT_NEAR(r.total.item<double>(), without.total.item<double>(), 1e-14);
  EXPECT_TRUE(std::isfinite(r.total.item<double>()));

  // The instance score is a parameter (the paper's q goes here): doubling every s doubles the
  // loss (weight s², normaliser Σs) and leaves the matching alone.
  BoxDistillTeacher t = make_teacher(code, probs);
  t.score = t.score * 2;
  const BoxDistillResult doubled = bevdistill_box_distill(logits, preds, {t});
  EXPECT_NEAR(doubled.total.item<double>(), 2 * r.total.item<double>(), 1e-12);
  EXPECT_EQ(doubled.matches[0][0].cols, m.cols);

  // A non-finite student prediction cannot be matched: an error naming layer and sample.
  torch::Tensor bad = preds.clone();
  bad[0][0][1][0] = std::nan("");
  EXPECT_ERROR_WITH(bevdistill_box_distill(logits, bad, {make_teacher(code, probs)}),
                    "bevdistill_box_distill: layer 0 sample 0 matching cost: entry [1, ");
}

TEST(BevDistillBox, FiniteDifferenceGradientWithTheMatchingFixed) {
  torch::manual_seed(8);
  const torch::Tensor logits = torch::randn({2, 2, 5, 3}, kF64);
  const torch::Tensor preds = torch::randn({2, 2, 5, 10}, kF64);
  const std::vector<BoxDistillTeacher> teacher{make_teacher(torch::randn({3, 10}, kF64), torch::rand({3, 3}, kF64)),
                                               make_teacher(torch::randn({6, 10}, kF64), torch::rand({6, 3}, kF64))};
  auto f = [&](const torch::Tensor& x) { return bevdistill_box_distill(logits, x, teacher).total; };
  EXPECT_TRUE(gradient_matches(f, preds, 1e-6, 1e-9));
  // The logits get no gradient (matching cost only).
  torch::Tensor lr = logits.clone().requires_grad_(true);
  bevdistill_box_distill(lr, preds.clone().requires_grad_(true), teacher).total.backward();
  EXPECT_FALSE(lr.grad().defined());
  // float32 agrees with float64.
  EXPECT_NEAR(
      bevdistill_box_distill(logits.to(torch::kFloat32), preds.to(torch::kFloat32), teacher).total.item<double>(),
      f(preds).item<double>(), 1e-5 * f(preds).item<double>());
}

TEST(BevDistillBox, BoxCodeOfDesignBoxes) {
  // A car heading +y: l = 4 along y, w = 2. bevkd code (x, y, log l, log w, z, log h, sin, cos, vx, vy).
  const torch::Tensor box = torch::tensor({{1.0, -2.0, 0.5, 4.0, 2.0, 1.5, M_PI / 2, 3.0, -1.0}}, kF64);
  const torch::Tensor c = bevdistill_box_code(box);
  const torch::Tensor want = torch::tensor(
      {{1.0, -2.0, std::log(4.0), std::log(2.0), 0.5, std::log(1.5), 1.0, std::cos(M_PI / 2), 3.0, -1.0}}, kF64);
  EXPECT_TRUE(all_close(c, want, 0, 1e-15));
}

// ---- §3.3 -----------------------------------------------------------------------------------------

TEST(BevDistillInfoNce, SamplesBilinearlyWithZerosPadding) {
  // 2x2 map [[1, 2], [3, 4]] (row <-> y). Pixel = ((g + 1)·W − 1)/2 with align_corners=False.
  const torch::Tensor bev = torch::tensor({1.0, 2.0, 3.0, 4.0}, kF64).view({1, 1, 2, 2});
  const torch::Tensor pts = torch::tensor({0.0, 0.0, -0.5, -0.5, 0.5, -0.5, 1.0, 1.0}, kF64).view({1, 1, 4, 2});
  const torch::Tensor s = bevdistill_sample_points(bev, pts);
  ASSERT_EQ(s.sizes(), (std::vector<int64_t>{4, 1}));
  EXPECT_DOUBLE_EQ(s[0][0].item<double>(), 2.5);  // centre: mean of the four
  EXPECT_DOUBLE_EQ(s[1][0].item<double>(), 1.0);  // (x, y) = pixel (0, 0)
  EXPECT_DOUBLE_EQ(s[2][0].item<double>(), 2.0);  // x selects the W axis: pixel (col 1, row 0)
  EXPECT_DOUBLE_EQ(s[3][0].item<double>(), 1.0);  // pixel (1.5, 1.5): 1/4 of cell (1, 1), rest padding
  // Rows in (b, l, q) order for points [L=2, B=2, Q=3, 2].
  torch::manual_seed(9);
  const torch::Tensor map = torch::randn({2, 3, 4, 5}, kF64), p = torch::rand({2, 2, 3, 2}, kF64) * 2 - 1;
  const torch::Tensor rows = bevdistill_sample_points(map, p);
  ASSERT_EQ(rows.sizes(), (std::vector<int64_t>{12, 3}));
  const torch::Tensor one =
      bevdistill_sample_points(map.slice(0, 1, 2), p.slice(1, 1, 2).slice(0, 0, 1).slice(2, 2, 3));
  EXPECT_TRUE(all_close(rows[1 * 6 + 0 * 3 + 2], one[0], 0, 1e-15));  // b = 1, l = 0, q = 2
}

TEST(BevDistillInfoNce, LossMatchesLoopsAndModuleMatchesComposition) {
  torch::manual_seed(10);
  const torch::Tensor et = torch::nn::functional::normalize(torch::randn({5, 4}, kF64)),
                      es = torch::nn::functional::normalize(torch::randn({5, 4}, kF64));
  double want = 0;
  for (int i = 0; i < 5; ++i) {
    double lse = 0;
    for (int j = 0; j < 5; ++j) lse += std::exp((et[i] * es[j]).sum().item<double>() / 0.07);
    want += std::log(lse) - (et[i] * es[i]).sum().item<double>() / 0.07;
  }
  EXPECT_NEAR(infonce_loss(et, es).item<double>(), want / 5, 1e-12);
  EXPECT_EQ(infonce_loss(et.slice(0, 0, 1), es.slice(0, 0, 1)).item<double>(), 0.0);  // one sample: log 1
  EXPECT_EQ(infonce_loss(et.slice(0, 0, 0), es.slice(0, 0, 0)).item<double>(), 0.0);

  InfoNceOptions o;
  o.student_channels = 3;
  o.teacher_channels = 2;  // the teacher map may have other channels
  o.mid_channels = 6;
  BevDistillInfoNce m(o);
  m->to(torch::kFloat64);
  const torch::Tensor s = torch::randn({2, 3, 4, 5}, kF64), t = torch::randn({2, 2, 6, 6}, kF64);
  const torch::Tensor p = torch::rand({2, 2, 3, 2}, kF64) * 2 - 1;
  auto head = [](ProjectionHead& h, const torch::Tensor& x) {
    torch::Tensor y = torch::matmul(x, h->proj->weight.t()) + h->proj->bias;
    y = torch::matmul(y, h->enc1->weight.t()) + h->enc1->bias;
    const torch::Tensor mean = y.mean(0), var = y.var(0, /*unbiased=*/false);  // BN1d train: batch statistics
    y = (y - mean) / torch::sqrt(var + 1e-5) * h->bn->weight + h->bn->bias;
    y = torch::matmul(torch::relu(y), h->enc2->weight.t()) + h->enc2->bias;
    return y / y.norm(2, 1, true).clamp_min(1e-12);
  };
  const torch::Tensor want_loss =
      infonce_loss(head(m->pts, bevdistill_sample_points(t, p)), head(m->img, bevdistill_sample_points(s, p)), 0.07);
  EXPECT_NEAR(m->forward(s, t, p).item<double>(), want_loss.item<double>(), 1e-12);
}

TEST(BevDistillInfoNce, GradientsInvarianceAndEdgeCases) {
  torch::manual_seed(11);
  InfoNceOptions o;
  o.student_channels = o.teacher_channels = 3;
  o.mid_channels = 4;
  BevDistillInfoNce m(o);
  m->to(torch::kFloat64);
  const torch::Tensor s = torch::randn({2, 3, 3, 4}, kF64);
  torch::Tensor t = torch::randn({2, 3, 3, 4}, kF64).requires_grad_(true);
  const torch::Tensor p = torch::rand({2, 2, 3, 2}, kF64) * 2.2 - 1.1;
  auto f = [&](const torch::Tensor& x) { return m->forward(x, t, p); };
  EXPECT_TRUE(gradient_matches(f, s, 1e-6, 1e-8));  // entries ~1e-3: central-difference noise ~2e-9
  // Both heads are trained; the teacher map is constant.
  m->zero_grad();
  m->forward(s, t, p).backward();
  EXPECT_GT(m->pts->proj->weight.grad().abs().sum().item<double>(), 0.0);
  EXPECT_GT(m->img->enc2->weight.grad().abs().sum().item<double>(), 0.0);
  EXPECT_FALSE(t.grad().defined());
  // Re-ordering the queries (the same permutation for every layer and sample) permutes the
  // samples, and CE averaged over rows with matching targets does not change.
  const torch::Tensor perm = torch::tensor({int64_t{2}, int64_t{0}, int64_t{1}});
  EXPECT_NEAR(m->forward(s, t, p.index_select(2, perm)).item<double>(), m->forward(s, t, p).item<double>(), 1e-12);
  // One sample in all: 0 (nothing to contrast).
  EXPECT_EQ(
      m->forward(s.slice(0, 0, 1), t.slice(0, 0, 1), p.slice(0, 0, 1).slice(1, 0, 1).slice(2, 0, 1)).item<double>(),
      0.0);
}

// ---- §6 HeatmapDistiller -----------------------------------------------------------------------

TEST(FocalDistillerHeatmap, LegacyNearestIndices) {
  auto cols = [](int64_t in, int64_t out) {
    const torch::Tensor m = torch::arange(in, torch::kFloat64).view({1, 1, 1, in});
    const torch::Tensor r = legacy_nearest_resize(m, 1, out).view({-1});
    std::vector<int64_t> v;
    for (int64_t i = 0; i < out; ++i) v.push_back(static_cast<int64_t>(r[i].item<double>()));
    return v;
  };
  EXPECT_EQ(cols(5, 3), (std::vector<int64_t>{0, 1, 3}));              // floor(i·5/3)
  EXPECT_EQ(cols(3, 6), (std::vector<int64_t>{0, 0, 1, 1, 2, 2}));     // 2x: i >> 1
  EXPECT_EQ(cols(4, 7), (std::vector<int64_t>{0, 0, 1, 1, 2, 2, 3}));  // floor(i·4/7)
  EXPECT_EQ(cols(4, 4), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(cols(200, 3), (std::vector<int64_t>{0, 66, 133}));
}

TEST(FocalDistillerHeatmap, HandWorkedEffectiveWeightIsMaskSquared) {
  // One cell: S = 2, T = 1, M = 0.5: (2·0.5 − 1·0.5)² / 0.5 = 0.5, × 0.1.
  const torch::Tensor s = torch::tensor({2.0, 0.0}, kF64).view({1, 1, 1, 2});
  const torch::Tensor t = torch::tensor({1.0, 7.0}, kF64).view({1, 1, 1, 2});
  const torch::Tensor m = torch::tensor({0.5, 0.0}, kF64).view({1, 1, 1, 2});
  EXPECT_DOUBLE_EQ(focaldistiller_bev_l2_heatmap(s, t, m).item<double>(), 0.05);
  // No mask anywhere: 0, not NaN.
  EXPECT_EQ(focaldistiller_bev_l2_heatmap(s, t, torch::zeros_like(m)).item<double>(), 0.0);
}

TEST(FocalDistillerHeatmap, FiniteDifferenceGradientAndMaskFromBoxes) {
  torch::manual_seed(12);
  const torch::Tensor s = torch::randn({2, 3, 4, 4}, kF64), t = torch::randn({2, 3, 4, 4}, kF64);
  const torch::Tensor m = torch::rand({2, 1, 4, 4}, kF64);
  auto f = [&](const torch::Tensor& x) { return focaldistiller_bev_l2_heatmap(x, t, m); };
  EXPECT_TRUE(gradient_matches(f, s, 1e-7, 1e-10));
  // The mask from boxes: drawn on the heat-map grid (8 x 8 here), then nearest-resized to 5 x 5;
  // a sample without boxes has an all-zero mask.
  const std::vector<torch::Tensor> boxes{tiny_box(0.5, -1.5), torch::zeros({0, 9})};
  const torch::Tensor mask = focaldistiller_heat_mask(boxes, small_geometry(2), 5, 5);
  ASSERT_EQ(mask.sizes(), (std::vector<int64_t>{2, 1, 5, 5}));
  const torch::Tensor drawn = gaussian_fg_maps(boxes, small_geometry(2));
  const std::vector<int64_t> idx{0, 1, 3, 4, 6};  // floor(i·8/5)
  for (int r = 0; r < 5; ++r)
    for (int c = 0; c < 5; ++c) EXPECT_EQ(mask[0][0][r][c].item<float>(), drawn[0][idx[r]][idx[c]].item<float>());
  EXPECT_EQ(mask[1].sum().item<float>(), 0.0f);
}

// §11.8: a CenterHead student's top-K cells as queries, worked by hand on a 4 x 4 grid of 2 m
// with two tasks ([0], [1, 2]).
TEST(CenterHeadQueries, TopCellsBestTaskBoxesLogitsAndPointsByHand) {
  const BevGrid grid = BevGrid::make({-4, -4, -5, 4, 4, 3}, 2.0);
  auto fill = [](std::vector<double> v) {  // channel values broadcast over the 4 x 4 map
    const auto n = static_cast<int64_t>(v.size());
    return torch::tensor(v, torch::kFloat64).view({1, n, 1, 1}).expand({1, n, 4, 4}).clone().requires_grad_(true);
  };
  core::nn::TaskPrediction t0, t1;
  t0.heatmap = torch::full({1, 1, 4, 4}, -5.0, torch::kFloat64);
  t0.heatmap[0][0][1][2] = 3.0;  // class 0 at row 1, col 2
  t1.heatmap = torch::full({1, 2, 4, 4}, -5.0, torch::kFloat64);
  t1.heatmap[0][0][1][2] = 1.0;  // class 1 at the same cell, weaker
  t1.heatmap[0][1][3][0] = 2.0;  // class 2 at row 3, col 0
  t0.reg = fill({0.25, 0.5});
  t0.height = fill({0.7});
  t0.dim = fill({1.0, 0.5, 0.2});
  t0.rot = fill({0.6, 0.8});
  t0.vel = fill({1.0, -1.0});
  t1.reg = fill({0.1, 0.9});
  t1.height = fill({-0.3});
  t1.dim = fill({2.0, 1.0, 0.4});
  t1.rot = fill({-1.0, 0.0});
  t1.vel = fill({0.0, 2.0});
  const auto q = centerhead_queries({t0, t1}, {{0}, {1, 2}}, grid, 2, 3);
  ASSERT_EQ(q.bbox_preds.sizes(), (std::vector<int64_t>{1, 1, 2, 10}));
  EXPECT_TRUE(torch::equal(q.cells, torch::tensor({{6, 12}}, torch::kInt64)));
  // Cell (1, 2), best class 0 -> task 0: x = -4 + (2 + 0.25)·2, y = -4 + (1 + 0.5)·2.
  EXPECT_TRUE(all_close(q.bbox_preds[0][0][0],
                        torch::tensor({0.5, -1.0, 1.0, 0.5, 0.7, 0.2, 0.6, 0.8, 1.0, -1.0}, torch::kFloat64), 1e-12, 0));
  // Cell (3, 0), class 2 -> task 1.
  EXPECT_TRUE(all_close(q.bbox_preds[0][0][1],
                        torch::tensor({-3.8, 3.8, 2.0, 1.0, -0.3, 0.4, -1.0, 0.0, 0.0, 2.0}, torch::kFloat64), 1e-12, 0));
  EXPECT_TRUE(all_close(q.cls_logits[0][0], torch::tensor({{3.0, 1.0, -5.0}, {-5.0, -5.0, 2.0}}, torch::kFloat64),
                        0, 0));
  EXPECT_TRUE(all_close(q.points[0][0], torch::tensor({{0.125, -0.25}, {-0.95, 0.95}}, torch::kFloat64), 1e-12, 0));
  EXPECT_FALSE(q.points.requires_grad());
  // Differentiable w.r.t. the regression of the chosen task at the chosen cell only.
  q.bbox_preds.select(3, 0).sum().backward();
  EXPECT_EQ(t0.reg.grad()[0][0].sum().item<double>(), 2.0);  // dx / d reg_x = cell size
  EXPECT_EQ(t1.reg.grad()[0][0].sum().item<double>(), 2.0);
  EXPECT_EQ(t0.reg.grad()[0][1].abs().sum().item<double>(), 0.0);
  // K is clamped to the number of cells; a class in no task gets kAbsentClassLogit.
  const auto all = centerhead_queries({t0}, {{0}}, grid, 100, 3);
  EXPECT_EQ(all.cells.size(1), 16);
  EXPECT_EQ(all.cls_logits[0][0][0][1].item<double>(), kAbsentClassLogit);
  EXPECT_ERROR_WITH(centerhead_queries({t0}, {{0}}, BevGrid::make({-4, -4, -5, 4, 4, 3}, 1.0), 2, 3),
                    "the head's maps are 4 x 4");
}

}  // namespace
}  // namespace bevkd::train::losses
