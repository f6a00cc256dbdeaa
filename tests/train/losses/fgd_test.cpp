// FGD (spec/losses.md §7.4): masks worked by hand (overlap, boxes off the map, no boxes, rotated
// BEV boxes), the whole loss against double loops (attention, masks, global-context blocks with
// LayerNorm), upstream's initialisation, the trainable teacher-side block, gradients.
#include <gtest/gtest.h>

#include <cmath>

#include "tests/support/expect_error.h"
#include "tests/support/grad_check.h"
#include "tests/train/losses/loss_test_util.h"
#include "train/losses/fgd.h"

namespace bevkd::train::losses {
namespace {

using bevkd::testing::gradient_matches;

using test::kF64;

TEST(FgdMasks, PixelBoxesMapToInclusiveCellExtents) {
  // img 30 x 50 (h x w) -> map 3 x 5: a scale of 0.1 on both axes.
  const auto boxes = torch::tensor({12.f, 5.f, 27.f, 14.f,    // cols 1..3, rows 0..2: 1/9
                                    20.f, 0.f, 29.f, 9.f,     // cols 2..3, rows 0..1: 1/4 (max on the overlap)
                                    -15.f, -8.f, 5.f, 4.f,    // cols -2..1, rows -1..1: 1/12, clipped to 0..1
                                    45.f, 25.f, 58.f, 38.f})  // cols 4..6, rows 2..4: 1/9, clipped to (2, 4)
                         .view({4, 4});
  const auto m = fgd_masks({boxes, torch::zeros({0, 4})}, {30, 50}, 3, 5, kF64);
  const double a = 1.0 / 9, b = 0.25, c = 1.0 / 12;
  const auto want = torch::tensor({c, std::max(a, c), b, b, 0.0,  //
                                   c, std::max(a, c), b, b, 0.0,  //
                                   0.0, a, a, a, a},
                                  kF64)
                        .view({3, 5});
  EXPECT_TRUE(torch::allclose(m.fg[0], want, 1e-7, 1e-9)) << m.fg[0];
  // Sample 0's three background cells share weight 1; sample 1 has no boxes: uniform 1/15.
  EXPECT_TRUE(torch::allclose(m.bg[0], (want == 0).to(torch::kFloat64) / 3.0, 0, 1e-15)) << m.bg[0];
  EXPECT_EQ(m.fg[1].abs().sum().item<double>(), 0.0);
  EXPECT_NEAR(m.bg[1][2][3].item<double>(), 1.0 / 15, 1e-15);
}

TEST(FgdMasks, RotatedBevBoxesGiveTheirAxisAlignedCellExtents) {
  const auto grid = BevGrid::make({-4, -4, -5, 4, 4, 3}, 1.0);  // 8 x 8, 1 m cells
  auto boxes = torch::zeros({2, 9});
  // A 2 m square at 45 degrees: x in 0.5 +- sqrt(2), y in -1 +- sqrt(2).
  boxes[0] = torch::tensor({0.5f, -1.f, 0.f, 2.f, 2.f, 1.f, static_cast<float>(M_PI / 4), 0.f, 0.f});
  // l = 4 along x, w = 2: x in [-2, 2], y in [-1, 1].
  boxes[1] = torch::tensor({0.f, 0.f, 0.f, 4.f, 2.f, 1.f, 0.f, 0.f, 0.f});
  const auto cells = fgd_cell_boxes(boxes, grid);
  const double r = std::sqrt(2.0);
  const auto want = torch::tensor({4.5 - r, 3 - r, 4.5 + r, 3 + r, 2.0, 3.0, 6.0, 5.0}, kF64).view({2, 4});
  EXPECT_TRUE(torch::allclose(cells.to(torch::kFloat64), want, 0, 1e-5)) << cells;
  const auto m = fgd_masks_bev({boxes.slice(0, 0, 1), boxes.slice(0, 1, 2)}, grid, kF64);
  // Box 0: columns 3..6, rows 1..5 -> 1/20. Box 1: columns 2..6, rows 3..5 -> 1/15.
  EXPECT_NEAR(m.fg[0].sum().item<double>(), 1.0, 1e-7);
  EXPECT_NEAR(m.fg[0][1][3].item<double>(), 1.0 / 20, 1e-8);
  EXPECT_EQ(m.fg[0][0][3].item<double>(), 0.0);
  EXPECT_EQ(m.fg[0][1][2].item<double>(), 0.0);
  EXPECT_NEAR(m.fg[1].sum().item<double>(), 1.0, 1e-7);
  EXPECT_NEAR(m.fg[1][5][6].item<double>(), 1.0 / 15, 1e-8);
}

FgdGlobalContextParams random_gc(int64_t C) {
  FgdGlobalContextParams g;
  const int64_t h = C / 2;
  g.conv_mask_w = torch::randn({1, C, 1, 1}, kF64);
  g.conv_mask_b = torch::randn({1}, kF64);
  g.add_w1 = torch::randn({h, C, 1, 1}, kF64);
  g.add_b1 = torch::randn({h}, kF64);
  g.ln_w = torch::randn({h, 1, 1}, kF64);
  g.ln_b = torch::randn({h, 1, 1}, kF64);
  g.add_w2 = torch::randn({C, h, 1, 1}, kF64);
  g.add_b2 = torch::randn({C}, kF64);
  return g;
}

// x + GC(x) by loops: [C][HW] per sample.
std::vector<std::vector<double>> gc_brute(const torch::Tensor& x, const FgdGlobalContextParams& g) {
  const int64_t C = x.size(0), HW = x.size(1) * x.size(2), h = C / 2;
  const auto X = x.reshape({C, HW});
  std::vector<double> logit(static_cast<size_t>(HW)), ctx(static_cast<size_t>(C), 0.0), a(static_cast<size_t>(h));
  double mx = -1e300, z = 0;
  for (int64_t p = 0; p < HW; ++p) {
    double v = g.conv_mask_b[0].item<double>();
    for (int64_t c = 0; c < C; ++c) v += g.conv_mask_w[0][c][0][0].item<double>() * X[c][p].item<double>();
    logit[static_cast<size_t>(p)] = v;
    mx = std::max(mx, v);
  }
  for (double& v : logit) z += (v = std::exp(v - mx));
  for (int64_t c = 0; c < C; ++c)
    for (int64_t p = 0; p < HW; ++p)
      ctx[static_cast<size_t>(c)] += X[c][p].item<double>() * logit[static_cast<size_t>(p)] / z;
  double mean = 0, var = 0;
  for (int64_t k = 0; k < h; ++k) {
    double v = g.add_b1[k].item<double>();
    for (int64_t c = 0; c < C; ++c) v += g.add_w1[k][c][0][0].item<double>() * ctx[static_cast<size_t>(c)];
    a[static_cast<size_t>(k)] = v;
    mean += v / h;
  }
  for (double v : a) var += (v - mean) * (v - mean) / h;
  for (int64_t k = 0; k < h; ++k) {
    const double n = (a[static_cast<size_t>(k)] - mean) / std::sqrt(var + 1e-5);
    a[static_cast<size_t>(k)] = std::max(0.0, n * g.ln_w[k][0][0].item<double>() + g.ln_b[k][0][0].item<double>());
  }
  std::vector<std::vector<double>> out(static_cast<size_t>(C), std::vector<double>(static_cast<size_t>(HW)));
  for (int64_t c = 0; c < C; ++c) {
    double add = g.add_b2[c].item<double>();
    for (int64_t k = 0; k < h; ++k) add += g.add_w2[c][k][0][0].item<double>() * a[static_cast<size_t>(k)];
    for (int64_t p = 0; p < HW; ++p) out[static_cast<size_t>(c)][static_cast<size_t>(p)] = X[c][p].item<double>() + add;
  }
  return out;
}

struct Terms {
  double fg = 0, bg = 0, mask = 0, rela = 0;
};

Terms fgd_brute(const torch::Tensor& s, const torch::Tensor& t, const FgdMasks& m, const FgdParams& p, double temp) {
  const int64_t N = s.size(0), H = s.size(2), W = s.size(3), C = t.size(1), HW = H * W;
  auto x = s;
  if (p.align_w.defined()) x = torch::conv2d(s, p.align_w, p.align_b);  // a 1x1 conv: checked in MgdTest's loops
  auto attention = [&](const torch::Tensor& f, std::vector<double>& sp, std::vector<double>& ch) {
    sp.assign(static_cast<size_t>(HW), 0);
    ch.assign(static_cast<size_t>(C), 0);
    for (int64_t q = 0; q < HW; ++q)
      for (int64_t c = 0; c < C; ++c) {
        const double v = std::abs(f[c][q / W][q % W].item<double>());
        sp[static_cast<size_t>(q)] += v / C;
        ch[static_cast<size_t>(c)] += v / HW;
      }
    for (auto* vec : {&sp, &ch}) {
      const double scale = vec == &sp ? static_cast<double>(HW) : static_cast<double>(C);
      double z = 0;
      for (double& v : *vec) z += (v = std::exp(v / temp));
      for (double& v : *vec) v = scale * v / z;
    }
  };
  Terms out;
  for (int64_t n = 0; n < N; ++n) {
    std::vector<double> st, ct, ss, cs;
    attention(t[n], st, ct);
    attention(x[n], ss, cs);
    const auto gs = gc_brute(x[n], p.gc_s), gt = gc_brute(t[n], p.gc_t);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t q = 0; q < HW; ++q) {
        const double d = x[n][c][q / W][q % W].item<double>() - t[n][c][q / W][q % W].item<double>();
        const double wgt = st[static_cast<size_t>(q)] * ct[static_cast<size_t>(c)] * d * d;
        out.fg += wgt * m.fg[n][q / W][q % W].item<double>();
        out.bg += wgt * m.bg[n][q / W][q % W].item<double>();
        out.rela += std::pow(
            gs[static_cast<size_t>(c)][static_cast<size_t>(q)] - gt[static_cast<size_t>(c)][static_cast<size_t>(q)], 2);
      }
    for (int64_t c = 0; c < C; ++c) out.mask += std::abs(cs[static_cast<size_t>(c)] - ct[static_cast<size_t>(c)]);
    for (int64_t q = 0; q < HW; ++q) out.mask += std::abs(ss[static_cast<size_t>(q)] - st[static_cast<size_t>(q)]);
  }
  out.fg /= N;
  out.bg /= N;
  out.mask /= N;
  out.rela /= N;
  return out;
}

struct FgdCase {
  torch::Tensor s, t;
  std::vector<torch::Tensor> boxes;
  FgdParams p;
};

FgdCase fgd_case(int64_t Cs, uint64_t seed) {
  torch::manual_seed(seed);
  FgdCase c;
  c.s = torch::randn({2, Cs, 3, 5}, kF64);
  c.t = torch::randn({2, 4, 3, 5}, kF64);
  c.boxes = {torch::tensor({12.0, 5.0, 27.0, 14.0, -15.0, -8.0, 5.0, 4.0}, kF64).view({2, 4}),
             torch::zeros({0, 4}, kF64)};
  if (Cs != 4) {
    c.p.align_w = torch::randn({4, Cs, 1, 1}, kF64);
    c.p.align_b = torch::randn({4}, kF64);
  }
  c.p.gc_s = random_gc(4);
  c.p.gc_t = random_gc(4);
  return c;
}

TEST(Fgd, MatchesLoopsTermByTerm) {
  for (int64_t Cs : {4, 3}) {
    const auto c = fgd_case(Cs, 1);
    FgdOptions o;
    const auto got = fgd_loss(c.s, c.t, c.boxes, {30, 50}, c.p, o);
    const auto masks = fgd_masks(c.boxes, {30, 50}, 3, 5, kF64);
    const auto want = fgd_brute(c.s, c.t, masks, c.p, o.temp);
    EXPECT_NEAR(got.fg.item<double>(), want.fg, 1e-10 * want.fg);
    EXPECT_NEAR(got.bg.item<double>(), want.bg, 1e-10 * want.bg);
    EXPECT_NEAR(got.mask.item<double>(), want.mask, 1e-10 * want.mask);
    EXPECT_NEAR(got.rela.item<double>(), want.rela, 1e-10 * want.rela);
    const double total = 1e-3 * want.fg + 5e-4 * want.bg + 1e-3 * want.mask + 5e-6 * want.rela;
    EXPECT_NEAR(got.loss.item<double>(), total, 1e-10 * total);
    EXPECT_GT(want.fg, 0);
  }
}

TEST(Fgd, GradientsMatchFiniteDifferences) {
  const auto c = fgd_case(3, 2);
  auto f = [&](const torch::Tensor& s) { return fgd_loss(s, c.t, c.boxes, {30, 50}, c.p).loss; };
  EXPECT_TRUE(gradient_matches(f, c.s, 1e-5, 1e-9, 1e-6, 3));
  // Each term on its own (the weights make the sum dominated by fg and mask).
  EXPECT_TRUE(gradient_matches(
      [&](const torch::Tensor& s) {
        return fgd_loss(s, c.t, c.boxes, {30, 50}, c.p).rela;
      },
      c.s, 1e-5, 1e-7, 1e-6, 5));
  EXPECT_TRUE(gradient_matches(
      [&](const torch::Tensor& s) {
        return fgd_loss(s, c.t, c.boxes, {30, 50}, c.p).bg;
      },
      c.s, 1e-5, 1e-7, 1e-6, 5));
}

TEST(Fgd, DistillerInitialisesLikeUpstreamAndTrainsBothContextBlocks) {
  torch::manual_seed(3);
  FgdDistiller m(4, 8);
  EXPECT_EQ(m->parameters().size(), 2u + 16u);  // align + 2 x (conv_mask 2 + add block 6)
  for (const auto* seq : {&m->channel_add_conv_s, &m->channel_add_conv_t}) {
    const auto last = (*seq)->ptr<torch::nn::Conv2dImpl>(3);
    EXPECT_EQ(last->weight.abs().sum().item<double>(), 0.0);
    EXPECT_EQ(last->bias.abs().sum().item<double>(), 0.0);
    EXPECT_EQ((*seq)->ptr<torch::nn::LayerNormImpl>(1)->options.eps(), 1e-5);
  }
  EXPECT_EQ(m->conv_mask_s->bias.item<double>(), 0.0);
  EXPECT_GT(m->conv_mask_t->weight.abs().sum().item<double>(), 0.0);
  const auto names = m->named_parameters().keys();
  EXPECT_NE(std::find(names.begin(), names.end(), "channel_add_conv_t.3.weight"), names.end());

  const auto s = torch::randn({2, 4, 6, 6}), t = torch::randn({2, 8, 6, 6});
  const auto grid = BevGrid::make({-3, -3, -5, 3, 3, 3}, 1.0);
  auto boxes = torch::zeros({1, 9});
  boxes[0] = torch::tensor({0.5f, 0.5f, 0.f, 2.f, 1.f, 1.f, 0.3f, 0.f, 0.f});
  const auto out = m->forward(s, t, {boxes, torch::zeros({0, 9})}, grid);
  // Zero-initialised add blocks: rela starts as a plain sum of squares / N.
  const auto aligned = m->align(s);
  EXPECT_NEAR(out.rela.item<double>(), (aligned - t).square().sum().item<double>() / 2, 1e-3);
  out.loss.backward();
  EXPECT_GT(m->channel_add_conv_t->ptr<torch::nn::Conv2dImpl>(3)->weight.grad().abs().sum().item<double>(), 0.0);
  EXPECT_GT(m->channel_add_conv_s->ptr<torch::nn::Conv2dImpl>(3)->weight.grad().abs().sum().item<double>(), 0.0);
  EXPECT_TRUE(torch::isfinite(m->align->weight.grad()).all().item<bool>());
}

TEST(Fgd, RefusesBadInputsByName) {
  auto c = fgd_case(4, 4);
  auto bad = c.p;
  bad.gc_t.ln_w = torch::ones({2}, kF64);
  EXPECT_ERROR_WITH(fgd_loss(c.s, c.t, c.boxes, {30, 50}, bad), "input add_t_ln_w has shape [2], expected [2, 1, 1]");
  EXPECT_ERROR_WITH(fgd_loss(c.s, c.t, {c.boxes[0]}, {30, 50}, c.p), "1 box sets for a batch of 2");
}

}  // namespace
}  // namespace bevkd::train::losses
