// FD3D (spec/losses.md §6, paper eq. 3–14): the instance mask against a corner-based
// point-in-rectangle test, the selective mask by hand, SMGD and QFD against brute-force float64
// loops (own 3×3 conv, softmax, bilinear sampling with zeros padding, min–max normalisation),
// hand-worked values, float64 finite differences, and the empty cases (no focal box, no focal
// query, positions off the map).
#include "train/losses/fd3d.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "tests/support/expect_error.h"
#include "tests/support/grad_check.h"
#include "tests/support/tensor_close.h"
#include "tests/train/losses/loss_test_util.h"

namespace bevkd::train::losses {
namespace {

using bevkd::testing::all_close;
using bevkd::testing::gradient_matches;

using test::kF64;

// ---- instance and selective masks ---------------------------------------------------------

// 32 x 24 cells of 0.5 m over x in [−8, 8], y in [−6, 6].
BevGrid small_grid() { return BevGrid::make({-8.0, -6.0, -5.0, 8.0, 6.0, 3.0}, 0.5); }

// Inside (edges included) by the signs of the cross products with the 4 corners taken in
// counter-clockwise order.
bool inside_by_corners(double px, double py, const double* b) {
  const double c = std::cos(b[6]), s = std::sin(b[6]);
  double cx[4], cy[4];
  const double u[4] = {0.5, -0.5, -0.5, 0.5}, v[4] = {0.5, 0.5, -0.5, -0.5};
  for (int k = 0; k < 4; ++k) {
    cx[k] = b[0] + c * u[k] * b[3] - s * v[k] * b[4];
    cy[k] = b[1] + s * u[k] * b[3] + c * v[k] * b[4];
  }
  for (int k = 0; k < 4; ++k) {
    const int n = (k + 1) % 4;
    if ((cx[n] - cx[k]) * (py - cy[k]) - (cy[n] - cy[k]) * (px - cx[k]) < 0) return false;
  }
  return true;
}

TEST(Fd3dMasks, InstanceMaskMatchesCornerTest) {
  const BevGrid g = small_grid();
  ASSERT_EQ(g.H, 24);
  ASSERT_EQ(g.W, 32);
  torch::manual_seed(6);
  std::vector<torch::Tensor> boxes;
  for (const int64_t n : {5, 0, 12}) {
    torch::Tensor b = torch::zeros({n, 9}, kF64);
    if (n > 0) {
      b.select(1, 0).uniform_(-10, 10);  // some boxes partly or wholly off the grid
      b.select(1, 1).uniform_(-8, 8);
      b.select(1, 3).uniform_(0.5, 5);
      b.select(1, 4).uniform_(0.3, 2.5);
      b.select(1, 6).uniform_(-M_PI, M_PI);
    }
    boxes.push_back(b);
  }
  const torch::Tensor m = fd3d_instance_mask(boxes, g, kF64);
  ASSERT_EQ(m.sizes(), torch::IntArrayRef({3, 1, 24, 32}));
  int64_t masked = 0;
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t i = 0; i < 24; ++i)
      for (int64_t j = 0; j < 32; ++j) {
        bool in = false;
        const torch::Tensor bb = boxes[b].contiguous();
        for (int64_t n = 0; n < bb.size(0) && !in; ++n)
          in = inside_by_corners(-8 + (j + 0.5) * 0.5, -6 + (i + 0.5) * 0.5, bb.data_ptr<double>() + 9 * n);
        EXPECT_EQ(m[b][0][i][j].item<double>(), in ? 0.0 : 1.0) << b << " " << i << " " << j;
        masked += in;
      }
  EXPECT_GT(masked, 50);
  EXPECT_EQ(m[1].sum().item<double>(), 24 * 32);  // the sample without boxes
}

TEST(Fd3dMasks, InstanceMaskHandWorked) {
  const BevGrid g = small_grid();
  // 1 m x 1 m box centred on cell (row 4, col 6) (centre x = −8 + 6.5·0.5, y = −6 + 4.5·0.5):
  // the neighbouring centres lie exactly on its edges, which count as inside -> 3 x 3 cells.
  const double x = -8 + 6.5 * 0.5, y = -6 + 4.5 * 0.5;
  // 2.2 m long, 1.2 m wide, heading +y: 5 rows x 3 columns around cell (row 12, col 20).
  const double x2 = -8 + 20.5 * 0.5, y2 = -6 + 12.5 * 0.5;
  const torch::Tensor boxes = torch::tensor({{x, y, 0.0, 1.0, 1.0, 1.0, 0.0}, {x2, y2, 0.0, 2.2, 1.2, 1.0, M_PI / 2}});
  const torch::Tensor m = fd3d_instance_mask({boxes.to(torch::kFloat32)}, g, torch::kFloat32);
  EXPECT_EQ(m.scalar_type(), torch::kFloat32);
  torch::Tensor want = torch::ones({1, 1, 24, 32});
  want.slice(2, 3, 6).slice(3, 5, 8).fill_(0);
  want.slice(2, 10, 15).slice(3, 19, 22).fill_(0);
  EXPECT_TRUE(torch::equal(m, want));
  // no boxes, a degenerate box and a box off the grid mask nothing
  const torch::Tensor none =
      fd3d_instance_mask({torch::zeros({0, 7}),
                          torch::tensor({{0.0, 0.0, 0.0, 0.0, 2.0, 1.0, 0.0}, {50.0, 0.0, 0.0, 4.0, 2.0, 1.0, 0.3}})},
                         g, kF64);
  EXPECT_EQ(none.sum().item<double>(), 2 * 24 * 32);
}

TEST(Fd3dMasks, SelectiveMaskHandWorked) {
  const torch::Tensor fg = torch::tensor({0.0, 0.0, 1.0, 1.0}, kF64).view({1, 1, 2, 2});
  const torch::Tensor u = torch::tensor({0.2, 0.7, 0.2, 0.7}, kF64).view({1, 1, 2, 2});
  // I^r = [0, 1, 0, 1]; I^m = I^fg ∨ I^r: masked only inside a focal box and drawn
  EXPECT_TRUE(
      torch::equal(fd3d_selective_mask(fg, u, 0.5), torch::tensor({0.0, 1.0, 1.0, 1.0}, kF64).view({1, 1, 2, 2})));
  EXPECT_TRUE(torch::equal(fd3d_selective_mask(fg, u, 0.0), torch::ones({1, 1, 2, 2}, kF64)));
  EXPECT_TRUE(torch::equal(fd3d_selective_mask(fg, u, 1.0), fg));
}

// ---- SMGD --------------------------------------------------------------------------------

TEST(Fd3dSmgd, GeneratorShapes) {
  Fd3dGenerator same(3, 6), up(3, 6, true);
  EXPECT_EQ(same->forward(torch::randn({2, 3, 4, 5})).sizes(), torch::IntArrayRef({2, 6, 4, 5}));
  EXPECT_EQ(up->forward(torch::randn({2, 3, 4, 5})).sizes(), torch::IntArrayRef({2, 6, 8, 10}));
  const auto p = same->named_parameters();
  EXPECT_EQ(p["conv1.weight"].sizes(), torch::IntArrayRef({6, 3, 3, 3}));
  EXPECT_EQ(p["conv2.weight"].sizes(), torch::IntArrayRef({6, 6, 3, 3}));
  EXPECT_EQ(up->named_parameters()["deconv1.weight"].sizes(), torch::IntArrayRef({3, 6, 3, 3}));
}

double brute_kl(const torch::Tensor& gen, const torch::Tensor& t, double tau) {
  const int64_t B = gen.size(0), C = gen.size(1), N = gen.size(2) * gen.size(3);
  const torch::Tensor g = gen.reshape({B, C, N}), tt = t.reshape({B, C, N});
  double total = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      double zs = 0, zt = 0;
      for (int64_t i = 0; i < N; ++i) {
        zs += std::exp(g[b][c][i].item<double>() / tau);
        zt += std::exp(tt[b][c][i].item<double>() / tau);
      }
      for (int64_t i = 0; i < N; ++i) {
        const double pt = std::exp(tt[b][c][i].item<double>() / tau) / zt;
        const double ps = std::exp(g[b][c][i].item<double>() / tau) / zs;
        total += pt * std::log(pt / ps);
      }
    }
  return tau * tau / C * total / B;
}

TEST(Fd3dSmgd, KlHandWorkedAndBruteForce) {
  // C = 1, two cells, τ = 2: φ(T) = (½, ½), φ(F̂) = (¼, ¾) -> KL = ½ log(4/3), × τ² = 2 log(4/3)
  const torch::Tensor t = torch::zeros({1, 1, 1, 2}, kF64);
  const torch::Tensor f = torch::tensor({0.0, 2 * std::log(3.0)}, kF64).view({1, 1, 1, 2});
  EXPECT_NEAR(fd3d_smgd_kl(f, t, 2.0, 0.25).item<double>(), 0.25 * 2 * std::log(4.0 / 3.0), 1e-14);
  EXPECT_NEAR(fd3d_smgd_kl(t, t, 2.0, 0.25).item<double>(), 0.0, 1e-15);
  torch::manual_seed(7);
  const torch::Tensor gen = torch::randn({2, 3, 4, 5}, kF64) * 3, tt = torch::randn({2, 3, 4, 5}, kF64) * 3;
  EXPECT_NEAR(fd3d_smgd_kl(gen, tt, 2.0, 0.25).item<double>(), 0.25 * brute_kl(gen, tt, 2.0), 1e-12);
  EXPECT_NEAR(fd3d_smgd_kl(gen, tt, 0.5, 1.0).item<double>(), brute_kl(gen, tt, 0.5), 1e-12);
  EXPECT_TRUE(gradient_matches([&](const torch::Tensor& x) { return fd3d_smgd_kl(x, tt, 2.0, 0.25); }, gen));
  // extreme logits stay finite
  EXPECT_TRUE(std::isfinite(fd3d_smgd_kl(gen * 1e4, tt * 1e4, 1.0, 1.0).item<double>()));
}

// 3×3 convolution with zero padding 1, by loops.
torch::Tensor brute_conv3x3(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& bias) {
  const int64_t B = x.size(0), Ci = x.size(1), H = x.size(2), W = x.size(3), Co = w.size(0);
  torch::Tensor out = torch::zeros({B, Co, H, W}, kF64);
  const auto xa = x.accessor<double, 4>();
  const auto wa = w.accessor<double, 4>();
  auto oa = out.accessor<double, 4>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t o = 0; o < Co; ++o)
      for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < W; ++j) {
          double acc = bias[o].item<double>();
          for (int64_t c = 0; c < Ci; ++c)
            for (int64_t di = -1; di <= 1; ++di)
              for (int64_t dj = -1; dj <= 1; ++dj) {
                const int64_t ii = i + di, jj = j + dj;
                if (ii >= 0 && ii < H && jj >= 0 && jj < W) acc += wa[o][c][di + 1][dj + 1] * xa[b][c][ii][jj];
              }
          oa[b][o][i][j] = acc;
        }
  return out;
}

TEST(Fd3dSmgd, MatchesBruteForce) {
  torch::manual_seed(8);
  const int64_t B = 2, Cs = 3, C = 4, H = 5, W = 6;
  const torch::Tensor s = torch::randn({B, Cs, H, W}, kF64), t = torch::randn({B, C, H, W}, kF64);
  const torch::Tensor fg = (torch::rand({B, 1, H, W}, kF64) > 0.4).to(torch::kFloat64);
  const torch::Tensor u = torch::rand({B, 1, H, W}, kF64);
  Fd3dGenerator g(Cs, C);
  g->to(torch::kFloat64);
  Fd3dSmgdOptions o;
  const torch::Tensor loss = fd3d_smgd(s, t, fg, u, g, o);
  // by hand: zero the features of cells inside a focal box (fg = 0) whose draw u < r
  torch::Tensor masked = s.clone();
  int64_t zeroed = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < H; ++i)
      for (int64_t j = 0; j < W; ++j)
        if (fg[b][0][i][j].item<double>() == 0 && u[b][0][i][j].item<double>() < 0.5) {
          masked[b].select(1, i).select(1, j).zero_();
          ++zeroed;
        }
  EXPECT_GT(zeroed, 5);
  const auto p = g->named_parameters();
  const torch::Tensor h = brute_conv3x3(masked, p["conv1.weight"].detach(), p["conv1.bias"].detach()).clamp_min(0);
  const torch::Tensor gen = brute_conv3x3(h, p["conv2.weight"].detach(), p["conv2.bias"].detach());
  EXPECT_NEAR(loss.item<double>(), 0.25 * brute_kl(gen, t, 2.0), 1e-12);
  // gradient with respect to the student features, through the mask and G
  EXPECT_TRUE(gradient_matches([&](const torch::Tensor& x) { return fd3d_smgd(x, t, fg, u, g, o); }, s));
  // masked cells get no gradient
  const torch::Tensor gs =
      bevkd::testing::autograd_gradient([&](const torch::Tensor& x) { return fd3d_smgd(x, t, fg, u, g, o); }, s);
  const torch::Tensor keep = fd3d_selective_mask(fg, u, 0.5);
  EXPECT_EQ((gs * (1 - keep)).abs().sum().item<double>(), 0.0);
}

TEST(Fd3dSmgd, NoFocalBoxMeansNoMaskAndUpsamplingGenerator) {
  torch::manual_seed(9);
  // student at half the teacher's resolution: G upsamples
  const torch::Tensor s = torch::randn({2, 3, 4, 5}), t = torch::randn({2, 4, 8, 10});
  Fd3dGenerator g(3, 4, true);
  const torch::Tensor ones = torch::ones({2, 1, 4, 5}), u = torch::rand({2, 1, 4, 5});
  const torch::Tensor l = fd3d_smgd(s, t, ones, u, g, Fd3dSmgdOptions{});
  EXPECT_EQ(l.scalar_type(), torch::kFloat32);
  EXPECT_NEAR(l.item<float>(), fd3d_smgd_kl(g->forward(s), t, 2.0, 0.25).item<float>(), 1e-6);
  EXPECT_TRUE(std::isfinite(l.item<float>()));
  Fd3dGenerator flat(3, 4);
  EXPECT_ERROR_WITH(fd3d_smgd(s, t, ones, u, flat, Fd3dSmgdOptions{}),
                    "fd3d SMGD: the generator turns s [2, 3, 4, 5] into [2, 4, 4, 5] but t is [2, 4, 8, 10] (a "
                    "student grid half the teacher's needs upsample = true)");
  EXPECT_ERROR_WITH(
      fd3d_smgd(s, t, torch::ones({2, 1, 8, 10}), u, g, Fd3dSmgdOptions{}),
      "fd3d SMGD: instance_mask must be [B, 1, H, W] float on s's grid = [2, 1, 4, 5], found [2, 1, 8, 10]");
}

// ---- QFD ---------------------------------------------------------------------------------

// grid_sample (bilinear, zeros, align_corners=False) of map [C, H, W] at metric (x, y) over the
// range r = [x_min, y_min, x_max, y_max].
std::vector<double> brute_sample(const torch::Tensor& map, double x, double y, const std::array<double, 4>& r) {
  return test::bilinear_sample(map, 2 * (x - r[0]) / (r[2] - r[0]) - 1, 2 * (y - r[1]) / (r[3] - r[1]) - 1);
}

void minmax_normalise(std::vector<double>& v) {
  const double lo = *std::min_element(v.begin(), v.end()), hi = *std::max_element(v.begin(), v.end());
  for (double& x : v) x = hi > lo ? (x - lo) / (hi - lo) : 0.0;
}

double brute_qfd(const torch::Tensor& s_adapted, const torch::Tensor& t, const std::vector<torch::Tensor>& positions,
                 const std::array<double, 4>& r, double eta) {
  double total = 0;
  int64_t nf = 0;
  for (size_t b = 0; b < positions.size(); ++b) {
    const torch::Tensor p = positions[b];
    for (int64_t q = 0; q < p.size(0); ++q) {
      std::vector<double> fs, ft;
      for (int64_t m = 0; m < p.size(1); ++m)
        for (int64_t k = 0; k < p.size(2); ++k) {
          const double x = p[q][m][k][0].item<double>(), y = p[q][m][k][1].item<double>();
          for (double v : brute_sample(s_adapted[b], x, y, r)) fs.push_back(v);
          for (double v : brute_sample(t[b], x, y, r)) ft.push_back(v);
        }
      minmax_normalise(fs);
      minmax_normalise(ft);
      for (size_t i = 0; i < fs.size(); ++i) total += (fs[i] - ft[i]) * (fs[i] - ft[i]);
      ++nf;
    }
  }
  return nf ? eta * total / nf : 0.0;
}

struct QfdCase {
  torch::Tensor s, t;
  std::vector<torch::Tensor> positions;
  Fd3dQfdOptions opts;
};

// B = 3: student 6 x 8 (Cs = 3), teacher 12 x 16 (C = 4) over x in [−8, 8], y in [−6, 6];
// 2 focal queries in sample 0 (some points off the map), none in sample 1, 1 in sample 2;
// M = 2 heads x K = 3 points.
QfdCase qfd_case(torch::Dtype dtype) {
  torch::manual_seed(10);
  const auto o = torch::TensorOptions().dtype(dtype);
  QfdCase c;
  c.s = torch::randn({3, 3, 6, 8}, o);
  c.t = torch::randn({3, 4, 12, 16}, o);
  auto pos = [&](int64_t n) {
    torch::Tensor p = torch::rand({n, 2, 3, 2}, o);
    p.select(-1, 0).mul_(20).sub_(10);  // x in [−10, 10]: partly off the map
    p.select(-1, 1).mul_(14).sub_(7);
    return p;
  };
  c.positions = {pos(2), torch::zeros({0, 2, 3, 2}, o), pos(1)};
  c.opts.bev_range = {-8, -6, 8, 6};
  return c;
}

TEST(Fd3dQfd, MatchesBruteForce) {
  const QfdCase c = qfd_case(torch::kFloat64);
  torch::nn::Conv2d adaptor(torch::nn::Conv2dOptions(3, 4, 1));
  adaptor->to(torch::kFloat64);
  const torch::Tensor got = fd3d_qfd(c.s, c.t, c.positions, adaptor, c.opts);
  const torch::Tensor sa = adaptor->forward(c.s).detach();
  EXPECT_NEAR(got.item<double>(), brute_qfd(sa, c.t, c.positions, c.opts.bev_range, 0.001), 1e-14);
  EXPECT_GT(got.item<double>(), 0);
  EXPECT_TRUE(
      gradient_matches([&](const torch::Tensor& x) { return fd3d_qfd(x, c.t, c.positions, adaptor, c.opts); }, c.s));
  // Equal channels: no adaptor
  const torch::Tensor s4 = torch::randn({3, 4, 6, 8}, kF64);
  EXPECT_NEAR(fd3d_qfd(s4, c.t, c.positions, torch::nn::Conv2d{nullptr}, c.opts).item<double>(),
              brute_qfd(s4, c.t, c.positions, c.opts.bev_range, 0.001), 1e-14);
}

TEST(Fd3dQfd, HandWorkedSingleQuery) {
  // One channel, a 1 x 2 map over x in [0, 2], y in [0, 1]: cell centres at x = 0.5 and 1.5.
  // Query with M = 1, K = 2 sampling the two centres: student (1, 3) -> normalised (0, 1);
  // teacher (5, 4) -> (1, 0); L = (0 − 1)² + (1 − 0)² = 2, × η.
  const torch::Tensor s = torch::tensor({1.0, 3.0}, kF64).view({1, 1, 1, 2});
  const torch::Tensor t = torch::tensor({5.0, 4.0}, kF64).view({1, 1, 1, 2});
  const torch::Tensor p = torch::tensor({0.5, 0.5, 1.5, 0.5}, kF64).view({1, 1, 2, 2});
  Fd3dQfdOptions o;
  o.bev_range = {0, 0, 2, 1};
  o.weight = 0.5;
  EXPECT_NEAR(fd3d_qfd(s, t, {p}, torch::nn::Conv2d{nullptr}, o).item<double>(), 0.5 * 2.0, 1e-14);
}

TEST(Fd3dQfd, NoFocalQueriesOrNothingOnTheMapGiveZero) {
  for (const auto dtype : {torch::kFloat32, torch::kFloat64}) {
    QfdCase c = qfd_case(dtype);
    for (auto& p : c.positions) p = p.slice(0, 0, 0);
    const torch::Tensor s = c.s.slice(1, 0, 3).clone();
    torch::nn::Conv2d adaptor(torch::nn::Conv2dOptions(3, 4, 1));
    adaptor->to(dtype);
    const torch::Tensor sg = s.clone().requires_grad_(true);
    const torch::Tensor l = fd3d_qfd(sg, c.t, c.positions, adaptor, c.opts);
    EXPECT_EQ(l.item<double>(), 0.0);
    EXPECT_EQ(l.scalar_type(), dtype);
    // every point off the map: both sides sample 0, the range is 0, the loss 0 (not NaN)
    QfdCase far = qfd_case(dtype);
    for (auto& p : far.positions) p = p * 0 + 100;
    const torch::Tensor lf = fd3d_qfd(sg, far.t, far.positions, adaptor, far.opts);
    EXPECT_EQ(lf.item<double>(), 0.0);
    lf.backward();
    EXPECT_TRUE(torch::isfinite(sg.grad()).all().item<bool>());
  }
}

TEST(Fd3dQfd, RejectsBadInput) {
  const QfdCase c = qfd_case(torch::kFloat64);
  EXPECT_ERROR_WITH(fd3d_qfd(c.s, c.t, c.positions, torch::nn::Conv2d{nullptr}, c.opts),
                    "fd3d QFD: s has 3 channels and t 4; an adaptor (1x1 conv) is needed when they differ");
  torch::nn::Conv2d adaptor(torch::nn::Conv2dOptions(3, 4, 1));
  adaptor->to(torch::kFloat64);
  EXPECT_ERROR_WITH(fd3d_qfd(c.s, c.t, {c.positions[0]}, adaptor, c.opts),
                    "fd3d QFD: 1 samples of focal positions for a batch of 3");
  Fd3dQfdOptions o;  // no range
  EXPECT_ERROR_WITH(fd3d_qfd(c.s, c.t, c.positions, adaptor, o),
                    "fd3d QFD options: bev_range must be [x_min, y_min, x_max, y_max] with min < max");
  EXPECT_EQ(Fd3dQfdOptions::from_grid(small_grid()).bev_range, (std::array<double, 4>{-8, -6, 8, 6}));
}

}  // namespace
}  // namespace bevkd::train::losses
