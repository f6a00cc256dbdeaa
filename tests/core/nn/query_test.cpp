// The query decoder and its set-prediction loss (core/nn/query_decoder.h, query_loss.h): the
// matching against brute force over every assignment, the loss against a hand-written double loop,
// empty GT, the box code round trip, top-K decoding, and float64 finite-difference gradients of the
// whole decoder (deformable attention included).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/nn/query_decoder.h"
#include "core/nn/query_loss.h"
#include "tests/support/grad_check.h"

namespace bevkd::core::nn {
namespace {

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

// The cost of query q against GT g as the header writes it, in plain double arithmetic.
double hand_cost(const torch::Tensor& logits, const torch::Tensor& codes, const torch::Tensor& gt,
                 const torch::Tensor& labels, int64_t q, int64_t g, const QueryLossConfig& c) {
  const double p = sigmoid(logits[q][labels[g].item<int64_t>()].item<double>());
  const double pos = c.focal_alpha * std::pow(1 - p, c.focal_gamma) * -std::log(p + 1e-12);
  const double neg = (1 - c.focal_alpha) * std::pow(p, c.focal_gamma) * -std::log(1 - p + 1e-12);
  double l1 = 0;
  for (int64_t d = 0; d < c.cost_dims; ++d) l1 += std::abs(codes[q][d].item<double>() - gt[g][d].item<double>());
  return c.cls_weight * (pos - neg) + c.box_weight * l1;
}

TEST(QueryLoss, MatchingIsTheCheapestAssignmentByBruteForce) {
  torch::manual_seed(3);
  const QueryLossConfig c;
  for (int trial = 0; trial < 5; ++trial) {
    const int64_t N = 6, G = 1 + trial % 4, C = 4;
    const auto logits = torch::randn({1, N, C}, torch::kFloat64) * 2;
    const auto codes = torch::rand({1, N, 10}, torch::kFloat64);
    const auto gt = torch::rand({G, 10}, torch::kFloat64);
    const auto labels = torch::randint(0, C, {G}, torch::kInt64);
    const auto m = match_queries(logits, codes, {gt}, {labels}, c);
    ASSERT_EQ(m.size(), 1u);
    ASSERT_EQ(m[0].query.numel(), G);
    double got = 0;
    for (int64_t i = 0; i < G; ++i)
      got += hand_cost(logits[0], codes[0], gt, labels, m[0].query[i].item<int64_t>(), m[0].gt[i].item<int64_t>(), c);
    // Every injective map GT -> queries.
    std::vector<int64_t> perm(static_cast<size_t>(N));
    std::iota(perm.begin(), perm.end(), 0);
    double best = 1e300;
    do {
      double s = 0;
      for (int64_t g = 0; g < G; ++g) s += hand_cost(logits[0], codes[0], gt, labels, perm[static_cast<size_t>(g)], g, c);
      best = std::min(best, s);
    } while (std::next_permutation(perm.begin(), perm.end()));
    EXPECT_NEAR(got, best, 1e-9) << "trial " << trial;
  }
}

TEST(QueryLoss, LayerLossEqualsAHandWrittenLoop) {
  torch::manual_seed(5);
  QueryLossConfig c;
  const int64_t B = 2, N = 5, C = 3;
  const auto logits = torch::randn({B, N, C}, torch::kFloat64);
  const auto codes = torch::rand({B, N, 10}, torch::kFloat64);
  std::vector<torch::Tensor> gt{torch::rand({2, 10}, torch::kFloat64), torch::rand({1, 10}, torch::kFloat64)};
  gt[1][0][8] = std::nan("");  // an unknown velocity component: not trained
  std::vector<torch::Tensor> labels{torch::tensor({0, 2}, torch::kInt64), torch::tensor({1}, torch::kInt64)};
  const auto l = query_layer_loss(logits, codes, gt, labels, c);
  double cls = 0, box = 0;
  for (int64_t b = 0; b < B; ++b) {
    const auto& m = l.match[static_cast<size_t>(b)];
    for (int64_t q = 0; q < N; ++q)
      for (int64_t k = 0; k < C; ++k) {
        double y = 0;
        for (int64_t i = 0; i < m.query.numel(); ++i)
          if (m.query[i].item<int64_t>() == q && labels[static_cast<size_t>(b)][m.gt[i].item<int64_t>()].item<int64_t>() == k)
            y = 1;
        const double x = logits[b][q][k].item<double>(), p = sigmoid(x);
        const double ce = -(y * std::log(p) + (1 - y) * std::log(1 - p));
        const double pt = y ? p : 1 - p, at = y ? c.focal_alpha : 1 - c.focal_alpha;
        cls += at * std::pow(1 - pt, c.focal_gamma) * ce;
      }
    for (int64_t i = 0; i < m.query.numel(); ++i) {
      const int64_t q = m.query[i].item<int64_t>(), g = m.gt[i].item<int64_t>();
      for (int64_t d = 0; d < 10; ++d) {
        const double t = gt[static_cast<size_t>(b)][g][d].item<double>();
        if (!std::isfinite(t)) continue;
        box += (d >= 8 ? c.velocity_weight : 1.0) * std::abs(codes[b][q][d].item<double>() - t);
      }
    }
  }
  EXPECT_NEAR(l.cls.item<double>(), c.cls_weight * cls / 3, 1e-10);
  EXPECT_NEAR(l.box.item<double>(), c.box_weight * box / 3, 1e-10);
}

TEST(QueryLoss, NoGroundTruthGivesFiniteClassificationAndZeroBoxLoss) {
  const auto logits = torch::randn({2, 4, 10}, torch::dtype(torch::kFloat32).requires_grad(true));
  const auto codes = torch::rand({2, 4, 10}, torch::dtype(torch::kFloat32).requires_grad(true));
  const auto l = query_layer_loss(logits, codes, {torch::zeros({0, 10}), torch::zeros({0, 10})},
                                  {torch::zeros({0}, torch::kInt64), torch::zeros({0}, torch::kInt64)}, {});
  EXPECT_TRUE(std::isfinite(l.cls.item<double>()));
  EXPECT_GT(l.cls.item<double>(), 0.0);  // every query is pushed to background
  EXPECT_EQ(l.box.item<double>(), 0.0);
  (l.cls + l.box).backward();
  EXPECT_TRUE(torch::isfinite(logits.grad()).all().item<bool>());
  EXPECT_EQ(codes.grad().abs().sum().item<double>(), 0.0);
}

TEST(QueryDecoder, BoxCodeRoundTripAndTopK) {
  const auto grid = BevGrid::make({-51.2, -51.2, -5, 51.2, 51.2, 3}, 0.8);
  const auto boxes = torch::tensor({{10.0, -20.0, 0.5, 4.0, 1.8, 1.6, 0.3, 1.0, -2.0},
                                    {-51.0, 51.0, -1.0, 0.5, 0.6, 1.7, -3.0, 0.0, 0.0}},
                                   torch::kFloat32);
  const auto code = encode_query_boxes(boxes);
  EXPECT_NEAR(code[0][0].item<double>(), 10.0, 1e-6);
  EXPECT_NEAR(code[0][1].item<double>(), -20.0, 1e-6);
  EXPECT_NEAR(code[0][3].item<double>(), std::log(4.0), 1e-6);
  EXPECT_NEAR(code[0][6].item<double>(), std::sin(0.3), 1e-6);
  const auto back = decode_query_boxes(code);
  EXPECT_TRUE(torch::allclose(back, boxes, 1e-5, 1e-4)) << back;
  const auto loc = query_locations_to_metres(torch::tensor({{0.5, 0.25}}), grid);
  EXPECT_NEAR(loc[0][0].item<double>(), 0.0, 1e-5);
  EXPECT_NEAR(loc[0][1].item<double>(), -25.6, 1e-5);

  const auto logits = torch::tensor({{-5.0, 2.0, -1.0}, {3.0, -4.0, 0.0}});
  const auto top = query_topk(logits, 3);
  EXPECT_TRUE(torch::equal(top.query, torch::tensor({1, 0, 1}, torch::kInt64))) << top.query;
  EXPECT_TRUE(torch::equal(top.label, torch::tensor({0, 1, 2}, torch::kInt64))) << top.label;
  EXPECT_NEAR(top.score[0].item<double>(), sigmoid(3.0), 1e-6);
}

// float64 central differences through the whole decoder (self-attention, deformable attention
// with its value and sampling-point gradients, FFN, the class and box branches) w.r.t. the BEV
// map. The refined reference points are detached by design (Deformable DETR), which central
// differences cannot see; the first layer's centre offsets are zeroed so that layer 2's reference
// does not depend on the map while its queries, hence its sampling points, do.
TEST(QueryDecoder, GradientOfTheBevMapMatchesFiniteDifferences) {
  torch::manual_seed(11);
  QueryDecoderConfig c;
  c.in_channels = 3;
  c.num_queries = 4;
  c.embed_dims = 8;
  c.num_layers = 2;
  c.self_attn_heads = 2;
  c.heads = 2;
  c.points = 2;
  c.ffn_dims = 8;
  c.dropout = 0;
  c.num_classes = 3;
  QueryDecoder dec(c, BevGrid::make({-3, -2.5, -5, 3, 2.5, 3}, 1.0));  // 5 x 6
  dec->to(torch::kFloat64);
  {
    torch::NoGradGuard g;
    auto params = dec->named_parameters();
    params["reg_branches.0.4.weight"].narrow(0, 0, 2).zero_();
    params["reg_branches.0.4.bias"].narrow(0, 0, 2).zero_();
  }
  const auto bev = torch::randn({1, 3, 5, 6}, torch::kFloat64);
  const auto w_cls = torch::randn({1, 4, 3}, torch::kFloat64), w_code = torch::randn({1, 4, 10}, torch::kFloat64);
  auto f = [&](const torch::Tensor& x) {
    const auto out = dec->forward(x);
    torch::Tensor s = torch::zeros({}, torch::kFloat64);
    for (std::size_t l = 0; l < out.codes.size(); ++l)
      s = s + (out.cls_logits[l] * w_cls).sum() + (out.codes[l] * w_code).sum();
    return s;
  };
  EXPECT_TRUE(bevkd::testing::gradient_matches(f, bev, 1e-5, 1e-7));
}

TEST(QueryDecoder, ShapesAndBadInputNamed) {
  QueryDecoderConfig c;
  c.in_channels = 4;
  c.num_queries = 7;
  c.embed_dims = 16;
  c.num_layers = 2;
  c.heads = 4;
  c.points = 3;
  const auto grid = BevGrid::make({-4.5, -4, -5, 4.5, 4, 3}, 1.0);  // 8 x 9
  QueryDecoder dec(c, grid);
  const auto out = dec->forward(torch::randn({2, 4, 8, 9}));
  ASSERT_EQ(out.codes.size(), 2u);
  EXPECT_EQ(out.cls_logits[1].sizes(), torch::IntArrayRef({2, 7, 10}));
  EXPECT_EQ(out.codes[1].sizes(), torch::IntArrayRef({2, 7, 10}));
  EXPECT_EQ(out.locations.sizes(), torch::IntArrayRef({2, 7, 4, 3, 2}));
  const auto cx = out.codes[1].select(-1, 0), cy = out.codes[1].select(-1, 1);
  EXPECT_TRUE(((cx >= -4.5) & (cx <= 4.5) & (cy >= -4) & (cy <= 4)).all().item<bool>());
  try {
    dec->forward(torch::randn({2, 5, 8, 9}));
    FAIL() << "no error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("expected [B, 4, 8, 9]"), std::string::npos) << e.what();
  }
  c.embed_dims = 10;
  EXPECT_THROW(c.validate(), std::exception);
}

}  // namespace
}  // namespace bevkd::core::nn
