// X³KD (spec/losses.md §5): each term against a brute-force float64 evaluation with explicit
// loops (its own bilinear resize, 1×1 conv, BCE and QFL), hand-worked values, float64 finite
// differences, empty-box batches, and the X-AT step order (the generator loss leaves the
// discriminator untouched and vice versa).
#include "tests/train/losses/loss_test_util.h"
#include "train/losses/x3kd.h"

#include <cmath>
#include <vector>

#include "tests/support/expect_error.h"
#include "tests/support/grad_check.h"
#include "tests/support/tensor_close.h"

namespace bevkd::train::losses {
namespace {

using bevkd::testing::all_close;
using bevkd::testing::gradient_matches;

using test::kF64;

// ---- X-FD --------------------------------------------------------------------------------

// torch's bilinear interpolate with align_corners=False: source = (dst + ½)·in/out − ½,
// clamped at 0; the upper neighbour clamped at in − 1.
torch::Tensor brute_resize(const torch::Tensor& x, int64_t H, int64_t W) {
  const int64_t B = x.size(0), C = x.size(1), h = x.size(2), w = x.size(3);
  torch::Tensor out = torch::zeros({B, C, H, W}, kF64);
  auto src = [](int64_t d, int64_t in, int64_t outn) {
    return std::max(0.0, (d + 0.5) * static_cast<double>(in) / static_cast<double>(outn) - 0.5);
  };
  const auto xa = x.accessor<double, 4>();
  auto oa = out.accessor<double, 4>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < W; ++j) {
          const double sy = src(i, h, H), sx = src(j, w, W);
          const int64_t y0 = static_cast<int64_t>(sy), x0 = static_cast<int64_t>(sx);
          const int64_t y1 = std::min(y0 + 1, h - 1), x1 = std::min(x0 + 1, w - 1);
          const double ly = sy - y0, lx = sx - x0;
          oa[b][c][i][j] = (1 - ly) * ((1 - lx) * xa[b][c][y0][x0] + lx * xa[b][c][y0][x1]) +
                           ly * ((1 - lx) * xa[b][c][y1][x0] + lx * xa[b][c][y1][x1]);
        }
  return out;
}

torch::Tensor brute_conv1x1(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const int64_t B = x.size(0), Ci = x.size(1), H = x.size(2), W = x.size(3), Co = weight.size(0);
  torch::Tensor out = torch::zeros({B, Co, H, W}, kF64);
  const auto xa = x.accessor<double, 4>();
  const auto wa = weight.accessor<double, 4>();
  const auto ba = bias.accessor<double, 1>();
  auto oa = out.accessor<double, 4>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t o = 0; o < Co; ++o)
      for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < W; ++j) {
          double acc = ba[o];
          for (int64_t c = 0; c < Ci; ++c) acc += wa[o][c][0][0] * xa[b][c][i][j];
          oa[b][o][i][j] = acc;
        }
  return out;
}

TEST(X3kdXfd, MatchesBruteForceWithResizeAndAdaptor) {
  torch::manual_seed(1);
  const torch::Tensor s = torch::randn({2, 3, 3, 5}, kF64), t = torch::randn({2, 4, 6, 7}, kF64);
  torch::nn::Conv2d adaptor = x3kd_make_adaptor(3, 4);
  ASSERT_FALSE(adaptor.is_empty());
  adaptor->to(torch::kFloat64);
  const torch::Tensor as = x3kd_adapt(s, adaptor, 6, 7);
  ASSERT_EQ(as.sizes(), torch::IntArrayRef({2, 4, 6, 7}));
  const torch::Tensor want_as = brute_conv1x1(brute_resize(s, 6, 7), adaptor->weight.detach(), adaptor->bias.detach());
  EXPECT_TRUE(all_close(as, want_as, 0, 1e-12));
  double sq = 0;
  const auto a = want_as.accessor<double, 4>();
  const auto ta = t.accessor<double, 4>();
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t c = 0; c < 4; ++c)
      for (int64_t i = 0; i < 6; ++i)
        for (int64_t j = 0; j < 7; ++j) sq += (a[b][c][i][j] - ta[b][c][i][j]) * (a[b][c][i][j] - ta[b][c][i][j]);
  EXPECT_NEAR(x3kd_xfd(as, t, 1.5).item<double>(), 1.5 * sq / (2 * 4 * 6 * 7), 1e-12);
}

TEST(X3kdXfd, HandWorkedAndSameGrid) {
  // Equal channels and grid: no adaptor, no resize; S = 0, T = 2 -> mean 4.
  EXPECT_TRUE(x3kd_make_adaptor(5, 5).is_empty());
  const torch::Tensor s = torch::zeros({3, 5, 2, 2}), t = torch::full({3, 5, 2, 2}, 2.0f);
  const torch::Tensor as = x3kd_adapt(s, torch::nn::Conv2d{nullptr}, 2, 2);
  EXPECT_TRUE(as.is_same(s));
  const torch::Tensor l = x3kd_xfd(as, t, 0.5);
  EXPECT_EQ(l.scalar_type(), torch::kFloat32);
  EXPECT_FLOAT_EQ(l.item<float>(), 2.0f);
}

TEST(X3kdXfd, FiniteDifferenceGradient) {
  torch::manual_seed(2);
  const torch::Tensor s = torch::randn({2, 2, 3, 4}, kF64), t = torch::randn({2, 3, 5, 5}, kF64);
  torch::nn::Conv2d adaptor = x3kd_make_adaptor(2, 3);
  adaptor->to(torch::kFloat64);
  EXPECT_TRUE(
      gradient_matches([&](const torch::Tensor& x) { return x3kd_xfd(x3kd_adapt(x, adaptor, 5, 5), t, 1.0); }, s));
  // The teacher gets no gradient.
  const torch::Tensor tt = t.clone().requires_grad_(true);
  x3kd_xfd(x3kd_adapt(s.clone().requires_grad_(true), adaptor, 5, 5), tt, 1.0).backward();
  EXPECT_FALSE(tt.grad().defined());
}

// ---- X-AT --------------------------------------------------------------------------------

double softplus(double x) { return std::log1p(std::exp(-std::abs(x))) + std::max(x, 0.0); }

TEST(X3kdXat, LossesFromLogitsMatchBruteForce) {
  torch::manual_seed(3);
  const torch::Tensor ls = torch::randn({2, 1, 3, 4}, kF64) * 3, lt = torch::randn({2, 1, 3, 4}, kF64) * 3;
  double gen = 0, dt = 0, ds = 0;
  for (int64_t i = 0; i < ls.numel(); ++i) {
    const double xs = ls.flatten()[i].item<double>(), xt = lt.flatten()[i].item<double>();
    gen += softplus(-xs);  // −log σ(x)
    dt += softplus(-xt);
    ds += softplus(xs);  // −log(1 − σ(x))
  }
  const double n = static_cast<double>(ls.numel());
  EXPECT_NEAR(x3kd_xat_generator_from_logits(ls, 0.1).item<double>(), 0.1 * gen / n, 1e-12);
  EXPECT_NEAR(x3kd_xat_discriminator_from_logits(lt, ls).item<double>(), dt / n + ds / n, 1e-12);
  // hand: all logits 0 -> BCE = log 2 per cell
  const torch::Tensor z = torch::zeros({1, 1, 2, 2});
  EXPECT_NEAR(x3kd_xat_generator_from_logits(z, 0.1).item<float>(), 0.1 * std::log(2.0), 1e-7);
  EXPECT_NEAR(x3kd_xat_discriminator_from_logits(z, z).item<float>(), 2 * std::log(2.0), 1e-6);
  EXPECT_TRUE(gradient_matches([&](const torch::Tensor& x) { return x3kd_xat_generator_from_logits(x, 0.1); }, ls));
  EXPECT_TRUE(gradient_matches([&](const torch::Tensor& x) { return x3kd_xat_discriminator_from_logits(lt, x); }, ls));
  // accuracy: teacher logits > 0 and student logits < 0 count as right
  const torch::Tensor at = torch::tensor({1.0, -1.0, 2.0, 3.0}).view({1, 1, 2, 2}),
                      as = torch::tensor({-1.0, -2.0, 0.5, -3.0}).view({1, 1, 2, 2});
  EXPECT_DOUBLE_EQ(x3kd_discriminator_accuracy(at, as), 6.0 / 8.0);
}

TEST(X3kdXat, DiscriminatorArchitecture) {
  X3kdDiscriminator d(64);
  const torch::Tensor y = d->forward(torch::randn({2, 64, 5, 6}));
  EXPECT_EQ(y.sizes(), torch::IntArrayRef({2, 1, 5, 6}));
  int64_t n = 0;
  for (const auto& p : d->parameters()) n += p.numel();
  EXPECT_EQ(n, (64 * 256 * 9 + 256) + (256 * 256 * 9 + 256) + (256 + 1));
  // LeakyReLU(0.2) between the convs: a negative pre-activation passes with slope 0.2. With
  // every weight 0 but the identity path of one channel, D(x) = 0.2²·x for x < 0.
  X3kdDiscriminator e(1, 1);
  torch::NoGradGuard ng;
  for (auto& p : e->parameters()) p.zero_();
  for (const char* name : {"conv1.weight", "conv2.weight"}) e->named_parameters()[name][0][0][1][1] = 1;
  e->named_parameters()["conv3.weight"].fill_(1);
  const torch::Tensor x = torch::tensor({-1.0f, 2.0f}).view({1, 1, 1, 2});
  EXPECT_TRUE(all_close(e->forward(x), torch::tensor({-0.04f, 2.0f}).view({1, 1, 1, 2}), 0, 1e-7));
}

// The trainer's X-AT step order on a tiny student (one conv making S), its adaptor and D.
TEST(X3kdXat, GeneratorLossLeavesTheDiscriminatorUntouchedAndViceVersa) {
  torch::manual_seed(4);
  torch::nn::Conv2d student(torch::nn::Conv2dOptions(3, 4, 3).padding(1));
  torch::nn::Conv2d adaptor = x3kd_make_adaptor(4, 6);
  X3kdDiscriminator d(6, 8);
  const torch::Tensor image = torch::randn({2, 3, 5, 5}), t = torch::randn({2, 6, 5, 5});
  std::vector<torch::Tensor> student_params = student->parameters();
  for (const auto& p : adaptor->parameters()) student_params.push_back(p);
  torch::optim::SGD student_opt(student_params, 0.1), disc_opt(d->parameters(), 0.1);
  auto snapshot = [](const std::vector<torch::Tensor>& ps) {
    std::vector<torch::Tensor> out;
    for (const auto& p : ps) out.push_back(p.detach().clone());
    return out;
  };
  auto unchanged = [](const std::vector<torch::Tensor>& ps, const std::vector<torch::Tensor>& before) {
    for (size_t i = 0; i < ps.size(); ++i)
      if (!torch::equal(ps[i].detach(), before[i])) return false;
    return true;
  };

  // student step: X-FD + X-AT generator
  const torch::Tensor as = x3kd_adapt(student->forward(image), adaptor, 5, 5);
  const torch::Tensor gen = x3kd_xfd(as, t, 1.0) + x3kd_xat_generator_loss(d, as, 0.1);
  student_opt.zero_grad();
  disc_opt.zero_grad();
  gen.backward();
  for (const auto& p : d->parameters()) {
    EXPECT_TRUE(p.requires_grad());  // restored after the frozen forward
    EXPECT_TRUE(!p.grad().defined() || p.grad().abs().sum().item<double>() == 0);
  }
  EXPECT_GT(student->weight.grad().abs().sum().item<double>(), 0);
  const auto d_before = snapshot(d->parameters());
  student_opt.step();
  disc_opt.step();  // the discriminator's optimizer has nothing to apply
  EXPECT_TRUE(unchanged(d->parameters(), d_before));

  // discriminator step on detached features
  const torch::Tensor as2 = x3kd_adapt(student->forward(image), adaptor, 5, 5);
  const torch::Tensor dl = x3kd_xat_discriminator_loss(d, t, as2);
  student_opt.zero_grad();
  disc_opt.zero_grad();
  dl.backward();
  for (const auto& p : student_params) EXPECT_TRUE(!p.grad().defined() || p.grad().abs().sum().item<double>() == 0);
  for (const auto& p : d->parameters()) EXPECT_GT(p.grad().abs().sum().item<double>(), 0);
  const auto s_before = snapshot(student_params);
  disc_opt.step();
  student_opt.step();
  EXPECT_TRUE(unchanged(student_params, s_before));
  EXPECT_FALSE(unchanged(d->parameters(), d_before));

  // Control: the same generator loss computed through an unfrozen D does reach D's parameters,
  // so the checks above can fail.
  disc_opt.zero_grad();
  x3kd_xat_generator_from_logits(d->forward(x3kd_adapt(student->forward(image), adaptor, 5, 5)), 0.1).backward();
  double reached = 0;
  for (const auto& p : d->parameters()) reached += p.grad().abs().sum().item<double>();
  EXPECT_GT(reached, 0);
}

// ---- X-OD --------------------------------------------------------------------------------

double brute_qfl(double x, double y, double beta) {
  const double p = 1 / (1 + std::exp(-x));
  return -std::pow(std::abs(y - p), beta) * (y * std::log(p) + (1 - y) * std::log(1 - p));
}

struct XodCase {
  torch::Tensor s_hm, t_hm, s_reg;
  std::vector<X3kdTeacherBoxes> teacher;
};

// B = 3: sample 0 has 3 boxes (one under the score threshold, two sharing a cell), sample 1
// none, sample 2 one.
XodCase xod_case(torch::Dtype dtype) {
  torch::manual_seed(5);
  XodCase c;
  const auto o = torch::TensorOptions().dtype(dtype);
  c.s_hm = torch::randn({3, 2, 4, 5}, o) * 2;
  c.t_hm = torch::rand({3, 2, 4, 5}, o);
  c.s_reg = torch::randn({3, 3, 4, 5}, o);
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  c.teacher.push_back({torch::randn({3, 3}, o), torch::tensor({1, 2, 3, 4, 1, 2}, i64).view({3, 2}),
                       torch::tensor({0.9, 0.05, 0.4}, o)});
  c.teacher.push_back({torch::zeros({0, 3}, o), torch::zeros({0, 2}, i64), torch::zeros({0}, o)});
  c.teacher.push_back({torch::randn({1, 3}, o), torch::tensor({0, 0}, i64).view({1, 2}), torch::tensor({0.1}, o)});
  return c;
}

TEST(X3kdXod, MatchesBruteForce) {
  const XodCase c = xod_case(torch::kFloat64);
  X3kdOptions o;
  o.w_hm = 1.3;
  o.w_reg = 0.7;
  const X3kdXodLoss l = x3kd_xod(c.s_hm, c.t_hm, c.s_reg, c.teacher, o);
  double hm = 0;
  for (int64_t i = 0; i < c.s_hm.numel(); ++i)
    hm += brute_qfl(c.s_hm.flatten()[i].item<double>(), c.t_hm.flatten()[i].item<double>(), 2.0);
  hm /= 4.0;  // 3 + 0 + 1 teacher boxes
  double num = 0, den = 0;
  for (int64_t b = 0; b < 3; ++b) {
    const X3kdTeacherBoxes& tb = c.teacher[b];
    for (int64_t j = 0; j < tb.code.size(0); ++j) {
      const double s = tb.score[j].item<double>();
      if (s < 0.1) continue;
      const int64_t row = tb.cell[j][0].item<int64_t>(), col = tb.cell[j][1].item<int64_t>();
      double l1 = 0;
      for (int64_t r = 0; r < 3; ++r)
        l1 += std::abs(c.s_reg[b][r][row][col].item<double>() - tb.code[j][r].item<double>());
      num += s * l1;
      den += s;
    }
  }
  EXPECT_NEAR(den, 0.9 + 0.4 + 0.1, 1e-12);  // the 0.05 box is out, the 0.1 box (== threshold) in
  EXPECT_NEAR(l.hm.item<double>(), hm, 1e-12);
  EXPECT_NEAR(l.reg.item<double>(), num / den, 1e-12);
  EXPECT_NEAR(l.total.item<double>(), 1.3 * hm + 0.7 * num / den, 1e-12);
  // hand: logit 0 (p = ½), y = 1, β = 2 -> ¼·log 2
  EXPECT_NEAR(quality_focal_loss(torch::zeros({1}, kF64), torch::ones({1}, kF64), 2.0).item<double>(),
              0.25 * std::log(2.0), 1e-15);
  // QFL vanishes where p = y and stays finite for extreme logits
  const torch::Tensor q =
      quality_focal_loss(torch::tensor({0.0, 80.0, -80.0}, kF64), torch::tensor({0.5, 1.0, 0.0}, kF64), 2);
  EXPECT_NEAR(q[0].item<double>(), 0.0, 1e-15);
  EXPECT_TRUE(torch::isfinite(q).all().item<bool>());
}

TEST(X3kdXod, FiniteDifferenceGradients) {
  const XodCase c = xod_case(torch::kFloat64);
  const X3kdOptions o;
  EXPECT_TRUE(gradient_matches([&](const torch::Tensor& x) { return x3kd_xod(x, c.t_hm, c.s_reg, c.teacher, o).total; },
                               c.s_hm));
  EXPECT_TRUE(gradient_matches([&](const torch::Tensor& x) { return x3kd_xod(c.s_hm, c.t_hm, x, c.teacher, o).total; },
                               c.s_reg));
}

TEST(X3kdXod, NoTeacherBoxesGiveFiniteValues) {
  for (const auto dtype : {torch::kFloat32, torch::kFloat64}) {
    XodCase c = xod_case(dtype);
    for (auto& tb : c.teacher) {
      tb.code = tb.code.slice(0, 0, 0);
      tb.cell = tb.cell.slice(0, 0, 0);
      tb.score = tb.score.slice(0, 0, 0);
    }
    const torch::Tensor s_reg = c.s_reg.clone().requires_grad_(true), s_hm = c.s_hm.clone().requires_grad_(true);
    const X3kdXodLoss l = x3kd_xod(s_hm, c.t_hm, s_reg, c.teacher, X3kdOptions{});
    EXPECT_EQ(l.total.scalar_type(), dtype);
    EXPECT_EQ(l.reg.item<double>(), 0.0);
    // normaliser max(1, 0) = 1: the plain QFL sum
    EXPECT_NEAR(l.hm.item<double>(), quality_focal_loss(c.s_hm, c.t_hm, 2.0).sum().item<double>(), 1e-4);
    l.total.backward();
    EXPECT_TRUE(torch::isfinite(s_hm.grad()).all().item<bool>());
    EXPECT_TRUE(!s_reg.grad().defined() || s_reg.grad().abs().sum().item<double>() == 0);
  }
  // Boxes all under the threshold: the regression term is 0, not 0/0.
  XodCase c = xod_case(torch::kFloat64);
  for (auto& tb : c.teacher) tb.score = tb.score * 0;
  EXPECT_EQ(x3kd_xod(c.s_hm, c.t_hm, c.s_reg, c.teacher, X3kdOptions{}).reg.item<double>(), 0.0);
}

TEST(X3kdXod, RejectsBadInput) {
  XodCase c = xod_case(torch::kFloat64);
  c.teacher[2].cell = torch::tensor({4, 0}, torch::kInt64).view({1, 2});
  EXPECT_ERROR_WITH(x3kd_xod(c.s_hm, c.t_hm, c.s_reg, c.teacher, X3kdOptions{}),
                    "x3kd X-OD: sample 2: a teacher box cell lies outside the 4 x 5 grid");
  c = xod_case(torch::kFloat64);
  c.teacher.pop_back();
  EXPECT_ERROR_WITH(x3kd_xod(c.s_hm, c.t_hm, c.s_reg, c.teacher, X3kdOptions{}),
                    "x3kd X-OD: 2 samples of teacher boxes for a batch of 3");
  c = xod_case(torch::kFloat64);
  EXPECT_ERROR_WITH(x3kd_xod(c.s_hm, c.t_hm.slice(1, 0, 1), c.s_reg, c.teacher, X3kdOptions{}),
                    "x3kd X-OD: t_hm has shape [3, 1, 4, 5], expected that of s_hm_logits [3, 2, 4, 5]");
  c.teacher[0].code = torch::zeros({3, 4}, kF64);
  EXPECT_ERROR_WITH(x3kd_xod(c.s_hm, c.t_hm, c.s_reg, c.teacher, X3kdOptions{}),
                    "x3kd X-OD: sample 0: code must be [J, R] float with R = 3 (s_reg's channels), found [3, 4]");
  X3kdOptions bad;
  bad.w_reg = -1;
  EXPECT_ERROR_WITH(bad.validate(), "x3kd options: w_reg must be a finite weight >= 0, found -1");
}

}  // namespace
}  // namespace bevkd::train::losses
