// MGD (spec/losses.md §7.3): loops (1x1 align, mask, two 3x3 convs with padding, ReLU) in
// double, the mask convention, the injected draw vs the seeded generator, gradients.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "tests/support/expect_error.h"
#include "tests/support/grad_check.h"
#include "tests/train/losses/loss_test_util.h"
#include "train/losses/mgd.h"

namespace bevkd::train::losses {
namespace {

using bevkd::testing::gradient_matches;

using test::kF64;
using Grid = std::vector<std::vector<std::vector<double>>>;  // [C][H][W]

Grid conv3x3(const Grid& x, const torch::Tensor& w, const torch::Tensor& b) {
  const int64_t Co = w.size(0), Ci = w.size(1), H = static_cast<int64_t>(x[0].size()),
                W = static_cast<int64_t>(x[0][0].size());
  Grid y(static_cast<size_t>(Co),
         std::vector<std::vector<double>>(static_cast<size_t>(H), std::vector<double>(static_cast<size_t>(W))));
  for (int64_t o = 0; o < Co; ++o)
    for (int64_t i = 0; i < H; ++i)
      for (int64_t j = 0; j < W; ++j) {
        double v = b[o].item<double>();
        for (int64_t c = 0; c < Ci; ++c)
          for (int64_t di = -1; di <= 1; ++di)
            for (int64_t dj = -1; dj <= 1; ++dj) {
              const int64_t ii = i + di, jj = j + dj;
              if (ii < 0 || ii >= H || jj < 0 || jj >= W) continue;
              v += w[o][c][di + 1][dj + 1].item<double>() *
                   x[static_cast<size_t>(c)][static_cast<size_t>(ii)][static_cast<size_t>(jj)];
            }
        y[static_cast<size_t>(o)][static_cast<size_t>(i)][static_cast<size_t>(j)] = v;
      }
  return y;
}

double mgd_brute(const torch::Tensor& s, const torch::Tensor& t, const torch::Tensor& u, const MgdParams& p,
                 double alpha, double lambda) {
  const int64_t N = s.size(0), Cs = s.size(1), H = s.size(2), W = s.size(3), C = t.size(1);
  double total = 0;
  for (int64_t n = 0; n < N; ++n) {
    Grid x(static_cast<size_t>(C),
           std::vector<std::vector<double>>(static_cast<size_t>(H), std::vector<double>(static_cast<size_t>(W))));
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < W; ++j) {
          double v;
          if (p.align_w.defined()) {
            v = p.align_b[c].item<double>();
            for (int64_t d = 0; d < Cs; ++d) v += p.align_w[c][d][0][0].item<double>() * s[n][d][i][j].item<double>();
          } else {
            v = s[n][c][i][j].item<double>();
          }
          const bool masked = u[n][0][i][j].item<double>() > 1 - lambda;
          x[static_cast<size_t>(c)][static_cast<size_t>(i)][static_cast<size_t>(j)] = masked ? 0.0 : v;
        }
    auto g = conv3x3(x, p.gen_w1, p.gen_b1);
    for (auto& ch : g)
      for (auto& row : ch)
        for (auto& v : row) v = std::max(v, 0.0);
    g = conv3x3(g, p.gen_w2, p.gen_b2);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < W; ++j)
          total += std::pow(
              g[static_cast<size_t>(c)][static_cast<size_t>(i)][static_cast<size_t>(j)] - t[n][c][i][j].item<double>(),
              2);
  }
  return alpha * total / static_cast<double>(N);
}

MgdParams random_params(int64_t Cs, int64_t C) {
  MgdParams p;
  if (Cs != C) {
    p.align_w = torch::randn({C, Cs, 1, 1}, kF64);
    p.align_b = torch::randn({C}, kF64);
  }
  p.gen_w1 = torch::randn({C, C, 3, 3}, kF64) * 0.4;
  p.gen_b1 = torch::randn({C}, kF64) * 0.1;
  p.gen_w2 = torch::randn({C, C, 3, 3}, kF64) * 0.4;
  p.gen_b2 = torch::randn({C}, kF64) * 0.1;
  return p;
}

TEST(Mgd, MatchesLoopsWithAndWithoutAlign) {
  torch::manual_seed(1);
  for (int64_t Cs : {2, 3}) {
    const auto s = torch::randn({2, Cs, 3, 4}, kF64), t = torch::randn({2, 2, 3, 4}, kF64);
    const auto u = torch::rand({2, 1, 3, 4}, kF64);
    const auto p = random_params(Cs, 2);
    MgdOptions o;
    o.alpha = 0.5;
    const double want = mgd_brute(s, t, u, p, 0.5, 0.65);
    EXPECT_NEAR(mgd_loss(s, t, u, p, o).item<double>(), want, 1e-12 * want) << "Cs " << Cs;
  }
}

TEST(Mgd, MaskDropsCellsWhereUExceedsOneMinusLambda) {
  const auto u = torch::tensor({0.0, 0.34, 0.35, 0.36, 0.999}, kF64).view({1, 1, 1, 5});
  EXPECT_TRUE(torch::equal(mgd_mask(u, 0.65), torch::tensor({1.0, 1.0, 1.0, 0.0, 0.0}, kF64).view({1, 1, 1, 5})));
  // Everything masked: G sees zeros, so the loss no longer depends on S.
  torch::manual_seed(2);
  const auto p = random_params(2, 2);
  const auto t = torch::randn({1, 2, 3, 3}, kF64);
  const auto ones = torch::ones({1, 1, 3, 3}, kF64) * 0.99;
  const double a = mgd_loss(torch::randn({1, 2, 3, 3}, kF64), t, ones, p).item<double>();
  const double b = mgd_loss(torch::randn({1, 2, 3, 3}, kF64), t, ones, p).item<double>();
  EXPECT_EQ(a, b);
}

TEST(Mgd, GradientsMatchFiniteDifferences) {
  torch::manual_seed(3);
  const auto s = torch::randn({2, 3, 3, 3}, kF64), t = torch::randn({2, 2, 3, 3}, kF64);
  const auto u = torch::rand({2, 1, 3, 3}, kF64);
  const auto p = random_params(3, 2);
  MgdOptions o;
  o.alpha = 0.1;
  EXPECT_TRUE(
      gradient_matches([&](const torch::Tensor& x) { return mgd_loss(x, t, u, p, o); }, s, 1e-5, 1e-7, 1e-6, 2));
  EXPECT_TRUE(gradient_matches(
      [&](const torch::Tensor& w) {
        auto q = p;
        q.gen_w1 = w;
        return mgd_loss(s, t, u, q, o);
      },
      p.gen_w1, 1e-5, 1e-7, 1e-6, 3));
}

TEST(Mgd, DistillerDrawsTheMaskFromTheCallersGenerator) {
  torch::manual_seed(4);
  MgdDistiller m(3, 2);
  ASSERT_TRUE(m->align);
  EXPECT_EQ(m->parameters().size(), 6u);
  const auto s = torch::randn({2, 3, 4, 4}), t = torch::randn({2, 2, 4, 4});
  auto g1 = at::detail::createCPUGenerator(42), g2 = at::detail::createCPUGenerator(42),
       g3 = at::detail::createCPUGenerator(43);
  const double a = m->forward(s, t, {}, g1).item<double>();
  EXPECT_EQ(a, m->forward(s, t, {}, g2).item<double>());
  EXPECT_NE(a, m->forward(s, t, {}, g3).item<double>());
  // The draw is torch.rand([N,1,H,W]) from that generator: injecting it gives the same value.
  auto g4 = at::detail::createCPUGenerator(42);
  const auto u = torch::rand({2, 1, 4, 4}, g4);
  EXPECT_EQ(a, m->forward(s, t, u).item<double>());
  EXPECT_EQ(a, mgd_loss(s, t, u, m->params()).item<double>());
  EXPECT_ERROR_WITH(m->forward(s, t), "neither a mask draw u nor a random generator");
}

TEST(Mgd, RefusesAlignExactlyWhenChannelsAgree) {
  torch::manual_seed(5);
  const auto s = torch::randn({1, 2, 3, 3}, kF64), t = torch::randn({1, 2, 3, 3}, kF64),
             u = torch::rand({1, 1, 3, 3}, kF64);
  auto p = random_params(2, 2);
  p.align_w = torch::randn({2, 2, 1, 1}, kF64);
  p.align_b = torch::randn({2}, kF64);
  EXPECT_ERROR_WITH(mgd_loss(s, t, u, p), "align_w/align_b given but Cs = C = 2");
  EXPECT_ERROR_WITH(mgd_loss(torch::randn({1, 3, 3, 3}, kF64), t, u, random_params(2, 2)),
                    "mgd: input align_w has shape (undefined), expected [2, 3, 1, 1]");
  EXPECT_ERROR_WITH(mgd_loss(s, t, torch::rand({1, 2, 3, 3}, kF64), random_params(2, 2)),
                    "input u has shape [1,2,3,3], expected [N,1,H,W]=[1,1,3,3]");
}

}  // namespace
}  // namespace bevkd::train::losses
