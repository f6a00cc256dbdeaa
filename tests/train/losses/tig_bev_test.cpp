// TiG-BEV losses (spec/losses.md §4): inner depth against a brute-force loop implementation and a
// hand-worked tie, the depth rasteriser through a resize/crop/flip augmentation, and the inner
// feature terms against an independent float64 implementation (corners from DESIGN's Box
// formula, explicit bilinear sampling, Gram matrices by loops), with the 128/127 stretch made
// visible, the invariances and float64 finite-difference gradients.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <set>
#include <vector>

#include "tests/support/expect_error.h"
#include "tests/support/grad_check.h"
#include "tests/train/losses/loss_test_util.h"
#include "train/losses/tig_bev.h"

namespace bevkd::train::losses {
namespace {

using bevkd::testing::gradient_matches;
using test::bilinear_sample;

using test::kF64;

// ---- inner depth ------------------------------------------------------------------------

struct DepthBrute {
  double loss = 0;
  std::set<std::pair<int64_t, int64_t>> refs;  // (image, flat pixel) of every reference pixel
};

// Loops over images, boxes and pixels in double: softmax, expected depth, first-minimum reference.
DepthBrute inner_depth_brute(const torch::Tensor& logits, const torch::Tensor& gt, const torch::Tensor& fg,
                             std::array<double, 3> dbound, double weight) {
  const int64_t BN = logits.size(0), D = logits.size(1), h = logits.size(2), w = logits.size(3);
  const auto L = logits.to(torch::kFloat64).contiguous(), G = gt.to(torch::kFloat64).reshape({BN, h * w}).contiguous();
  const auto Fg = fg.to(torch::kLong).reshape({BN, h * w}).contiguous();
  auto la = L.accessor<double, 4>();
  auto ga = G.accessor<double, 2>();
  auto fa = Fg.accessor<int64_t, 2>();
  DepthBrute out;
  double sum = 0;
  int64_t nfg = 0;
  for (int64_t i = 0; i < BN; ++i) {
    std::vector<double> dh(static_cast<size_t>(h * w));
    for (int64_t p = 0; p < h * w; ++p) {
      double mx = -1e300;
      for (int64_t d = 0; d < D; ++d) mx = std::max(mx, la[i][d][p / w][p % w]);
      double z = 0, e = 0;
      for (int64_t d = 0; d < D; ++d) {
        const double ex = std::exp(la[i][d][p / w][p % w] - mx);
        z += ex;
        e += ex * (dbound[0] + d * dbound[2]);
      }
      dh[static_cast<size_t>(p)] = e / z;
    }
    int64_t kmax = 0;
    for (int64_t p = 0; p < h * w; ++p) kmax = std::max(kmax, fa[i][p]);
    for (int64_t k = 1; k <= kmax; ++k) {
      int64_t r = -1;
      double best = 0;
      for (int64_t p = 0; p < h * w; ++p) {
        if (fa[i][p] != k) continue;
        const double err = std::abs(dh[static_cast<size_t>(p)] - ga[i][p]);
        if (r < 0 || err < best) r = p, best = err;
      }
      if (r < 0) continue;
      out.refs.insert({i, r});
      for (int64_t p = 0; p < h * w; ++p) {
        if (fa[i][p] != k) continue;
        const double diff = (dh[static_cast<size_t>(p)] - dh[static_cast<size_t>(r)]) - (ga[i][p] - ga[i][r]);
        sum += diff * diff;
        ++nfg;
      }
    }
  }
  out.loss = weight * sum / static_cast<double>(std::max<int64_t>(nfg, 1));
  return out;
}

struct DepthCase {
  torch::Tensor logits, gt, fg;
};

DepthCase random_depth_case(int64_t B, int64_t N, int64_t D, int64_t h, int64_t w, uint64_t seed) {
  torch::manual_seed(seed);
  DepthCase c;
  c.logits = torch::randn({B * N, D, h, w}, kF64) * 2;
  c.gt = torch::rand({B, N, h, w}, kF64) * 6 + 1;
  c.fg = torch::randint(0, 4, {B, N, h, w}, torch::kLong);
  c.fg.index_put_({0, N - 1}, 0);      // an image without foreground
  c.gt.index_put_({1, 0, 0, 0}, 0.0);  // a fg pixel may lack a depth
  return c;
}

TEST(TigInnerDepth, MatchesBruteForceLoops) {
  const std::array<double, 3> dbound{2, 7, 1};  // bins 2..6
  const auto c = random_depth_case(2, 2, 5, 3, 4, 7);
  TigInnerDepthOptions o;
  o.dbound = dbound;
  o.weight = 1.5;
  const double got = tig_inner_depth_loss(c.logits, c.gt, c.fg, o).item<double>();
  const auto ref = inner_depth_brute(c.logits, c.gt, c.fg, dbound, 1.5);
  EXPECT_NEAR(got, ref.loss, 1e-12 * std::abs(ref.loss));
  EXPECT_GT(ref.loss, 0);
  // float32 gives the same value to float32 precision.
  const double got32 =
      tig_inner_depth_loss(c.logits.to(torch::kFloat32), c.gt.to(torch::kFloat32), c.fg, o).item<double>();
  EXPECT_NEAR(got32, ref.loss, 1e-5 * ref.loss);
}

TEST(TigInnerDepth, TieTakesTheFirstPixelInRowMajorOrder) {
  // bins {0, 1}. Pixels 0 and 1: equal logits -> d = 0.5 exactly; pixel 2: p = (1/4, 3/4) -> d = 0.75.
  // d_gt = 0.25, 0.75, 1.75: |err| = 0.25, 0.25 (a tie), 1. The reference is pixel 0 (0.5, 0.25):
  //   pixel 0: 0;  pixel 1: (0.5-0.5) - (0.75-0.25) = -0.5;  pixel 2: (0.75-0.5) - (1.75-0.25) = -1.25
  //   L = (0 + 0.25 + 1.5625) / 3 = 0.6041666...   (pixel 1 as reference would give 0.8125 / 3)
  for (auto dt : {torch::kFloat32, torch::kFloat64}) {
    auto logits = torch::zeros({1, 2, 1, 3}, torch::TensorOptions().dtype(dt));
    logits.index_put_({0, 1, 0, 2}, std::log(3.0));
    const auto gt = torch::tensor({0.25, 0.75, 1.75}, torch::TensorOptions().dtype(dt)).view({1, 1, 1, 3});
    const auto fg = torch::ones({1, 1, 1, 3}, torch::kLong);
    TigInnerDepthOptions o;
    o.dbound = {0, 2, 1};
    EXPECT_NEAR(tig_inner_depth_loss(logits, gt, fg, o).item<double>(), 1.8125 / 3, 1e-6);
  }
}

TEST(TigInnerDepth, GradientTreatsTheReferenceAsConstant) {
  const std::array<double, 3> dbound{2, 7, 1};
  const auto c = random_depth_case(2, 2, 5, 3, 3, 11);
  TigInnerDepthOptions o;
  o.dbound = dbound;
  auto x = c.logits.clone().requires_grad_(true);
  tig_inner_depth_loss(x, c.gt, c.fg, o).backward();
  const auto grad = x.grad();
  const auto brute = inner_depth_brute(c.logits, c.gt, c.fg, dbound, 1.0);
  const auto fga = c.fg.reshape({4, 9});
  auto f = [&](const torch::Tensor& l) { return tig_inner_depth_loss(l, c.gt, c.fg, o); };
  int64_t checked = 0;
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t p = 0; p < 9; ++p) {
      const bool fg = fga[i][p].item<int64_t>() > 0;
      const bool is_ref = brute.refs.count({i, p}) > 0;
      for (int64_t d = 0; d < 5; ++d) {
        const double g = grad[i][d][p / 3][p % 3].item<double>();
        if (!fg || is_ref) {
          // Background pixels carry no loss; a reference pixel's own term is 0 and the reference
          // itself is detached, so no gradient reaches it.
          EXPECT_EQ(g, 0.0) << "image " << i << " pixel " << p;
          continue;
        }
        auto xp = c.logits.clone(), xm = c.logits.clone();
        xp[i][d][p / 3][p % 3] += 1e-6;
        xm[i][d][p / 3][p % 3] -= 1e-6;
        const double fd = (f(xp).item<double>() - f(xm).item<double>()) / 2e-6;
        EXPECT_NEAR(g, fd, 1e-7 + 1e-5 * std::abs(fd));
        ++checked;
      }
    }
  EXPECT_GT(checked, 40);
}

TEST(TigInnerDepth, NoForegroundGivesAConnectedZero) {
  auto logits = torch::randn({4, 3, 2, 2}, kF64).requires_grad_(true);
  const auto gt = torch::rand({2, 2, 2, 2}, kF64) * 3 + 1;
  const auto fg = torch::zeros({2, 2, 2, 2}, torch::kLong);
  TigInnerDepthOptions o;
  o.dbound = {1, 4, 1};
  const auto loss = tig_inner_depth_loss(logits, gt, fg, o);
  EXPECT_EQ(loss.item<double>(), 0.0);
  loss.backward();
  EXPECT_EQ(logits.grad().abs().sum().item<double>(), 0.0);
}

TEST(TigInnerDepth, RefusesMismatchedInputsByName) {
  TigInnerDepthOptions o;  // dbound [1, 60, 1) -> 59 bins
  const auto gt = torch::zeros({1, 2, 3, 4});
  const auto fg = torch::zeros({1, 2, 3, 4}, torch::kLong);
  EXPECT_ERROR_WITH(tig_inner_depth_loss(torch::zeros({2, 58, 3, 4}), gt, fg, o),
                    "input depth_logits has shape [2,58,3,4], expected [B*N,D,h,w]=[2,59,3,4]");
  EXPECT_ERROR_WITH(tig_inner_depth_loss(torch::zeros({2, 59, 3, 4}), torch::zeros({1, 2, 3}), fg, o),
                    "input depth_gt has shape [1,2,3]");
  EXPECT_ERROR_WITH(tig_inner_depth_loss(torch::zeros({2, 59, 3, 4}), gt, fg - 1, o), "negative box id");
  o.dbound = {5, 1, 1};
  EXPECT_ERROR_WITH(tig_inner_depth_loss(torch::zeros({2, 59, 3, 4}), gt, fg, o), "dbound");
}

// ---- depth rasteriser -------------------------------------------------------------------

// BEVDet's image augmentation as a pixel transform: resize by 0.5, crop at (8, 4) to 80 x 48, then
// a horizontal flip: u' = 80 - (0.5 u - 8) = 88 - 0.5 u, v' = 0.5 v - 4.
const std::array<double, 9> kAug{-0.5, 0, 88, 0, 0.5, -4, 0, 0, 1};

TEST(TigDepthRaster, PointLandsOnItsAugmentedPixelAndTheNearestWins) {
  const auto uvd = torch::tensor({100.f, 40.f, 10.f,  // u' = 38, v' = 16 -> (row 2, col round(4.75) = 5)
                                  98.f,  41.f, 5.f,   // u' = 39, v' = 16.5 -> same cell, nearer: wins
                                  101.f, 39.f, 20.f,  // same cell, farther
                                  136.f, 32.f, 7.f,   // u' = 20, v' = 12: 2.5 -> 2 and 1.5 -> 2 (half to even)
                                  60.f,  60.f, 60.f,  // depth 60: outside [1, 60)
                                  60.f,  60.f, 0.5f,  // depth 0.5: outside
                                  200.f, 40.f, 9.f,   // u' = -12 -> column -2: off the image
                                  0.f,   40.f, 9.f})  // u' = 88 -> column 11 >= 10: off the image
                       .view({-1, 3});
  const auto ids = torch::tensor({3, -1, 0, 2, 1, 1, 1, 1}, torch::kInt32);
  DepthRasterOptions o;
  o.stride = 8;
  const auto r = rasterize_depth_points(uvd, ids, kAug, 48, 85, o);  // 85 // 8 = 10 columns
  ASSERT_EQ(r.depth.sizes(), (std::vector<int64_t>{6, 10}));
  EXPECT_EQ(r.depth[2][5].item<float>(), 5.f);
  EXPECT_EQ(r.fg[2][5].item<int64_t>(), 0);  // the winner has no box
  EXPECT_EQ(r.depth[2][2].item<float>(), 7.f);
  EXPECT_EQ(r.fg[2][2].item<int64_t>(), 3);  // box row 2 -> id 3
  EXPECT_EQ((r.depth > 0).sum().item<int64_t>(), 2);
  EXPECT_EQ((r.fg > 0).sum().item<int64_t>(), 1);

  // Drop the nearer point: the 10 m one (box row 3) is kept, with id 4.
  const auto r2 =
      rasterize_depth_points(uvd.index({torch::tensor({0, 2})}), ids.index({torch::tensor({0, 2})}), kAug, 48, 80, o);
  EXPECT_EQ(r2.depth[2][5].item<float>(), 10.f);
  EXPECT_EQ(r2.fg[2][5].item<int64_t>(), 4);
}

TEST(TigDepthRaster, EqualDepthsKeepTheLowerPointIndex) {
  const auto uvd = torch::tensor({100.f, 40.f, 10.f, 99.f, 40.f, 10.f}).view({2, 3});
  DepthRasterOptions o;
  o.stride = 8;
  EXPECT_EQ(rasterize_depth_points(uvd, torch::tensor({4, 6}, torch::kInt32), kAug, 48, 80, o).fg[2][5].item<int64_t>(),
            5);
  EXPECT_EQ(rasterize_depth_points(uvd.flip(0), torch::tensor({6, 4}, torch::kInt32), kAug, 48, 80, o)
                .fg[2][5]
                .item<int64_t>(),
            7);
}

TEST(TigDepthRaster, RefusesBadInputsByName) {
  const auto uvd = torch::tensor({1.f, 1.f, 5.f}).view({1, 3});
  std::array<double, 9> persp = kAug;
  persp[6] = 0.1;
  EXPECT_ERROR_WITH(rasterize_depth_points(uvd, torch::tensor({0}, torch::kInt32), persp, 48, 80),
                    "last row is [0.1, 0, 1], expected [0, 0, 1]");
  EXPECT_ERROR_WITH(rasterize_depth_points(uvd, torch::tensor({-2}, torch::kInt32), kAug, 48, 80),
                    "depth/box_id[0] = -2");
  EXPECT_ERROR_WITH(rasterize_depth_points(uvd, torch::tensor({0, 1}, torch::kInt32), kAug, 48, 80),
                    "depth/box_id has shape [2], expected [P]=[1]");
}

// ---- inner feature ----------------------------------------------------------------------

// The physical rectangle of a DESIGN Box grown by e on every side, from DESIGN.md's definition
// (l along the heading (cos yaw, sin yaw), w along the left normal), in the documented order.
std::array<std::array<double, 2>, 4> design_corners(const std::array<double, 7>& b, double e) {
  const double l = b[3] + 2 * e, w = b[4] + 2 * e, c = std::cos(b[6]), s = std::sin(b[6]);
  const double hx = c * l / 2, hy = s * l / 2, nx = -s * w / 2, ny = c * w / 2;
  return {{{b[0] - nx + hx, b[1] - ny + hy},
           {b[0] - nx - hx, b[1] - ny - hy},
           {b[0] + nx + hx, b[1] + ny + hy},
           {b[0] + nx - hx, b[1] + ny - hy}}};
}

torch::Tensor boxes_tensor(const std::vector<std::array<double, 7>>& v) {
  auto t = torch::zeros({static_cast<int64_t>(v.size()), 9}, torch::kFloat32);
  for (size_t k = 0; k < v.size(); ++k)
    for (int j = 0; j < 7; ++j) t[static_cast<int64_t>(k)][j] = v[k][static_cast<size_t>(j)];
  return t;
}

TEST(TigInnerFeature, CornersAreThePhysicalEnlargedRectangle) {
  const std::array<double, 7> box{10, 5, 0.3, 4, 2, 1.5, 0.5};  // rotated, non-square
  const auto corners = tig_box_corners(boxes_tensor({box}), 1.6);
  ASSERT_EQ(corners.sizes(), (std::vector<int64_t>{1, 4, 2}));
  const auto want = design_corners(box, 1.6);
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(corners[0][i][0].item<double>(), want[static_cast<size_t>(i)][0], 1e-5) << "corner " << i;
    EXPECT_NEAR(corners[0][i][1].item<double>(), want[static_cast<size_t>(i)][1], 1e-5) << "corner " << i;
  }
  // p0-p1 is the enlarged length (7.2 m), p0-p2 the enlarged width (5.2 m).
  EXPECT_NEAR((corners[0][1] - corners[0][0]).norm().item<double>(), 7.2, 1e-5);
  EXPECT_NEAR((corners[0][2] - corners[0][0]).norm().item<double>(), 5.2, 1e-5);
  // No enlargement for enlarge_width <= 0.
  EXPECT_NEAR((tig_box_corners(boxes_tensor({box}), -1)[0][1] - tig_box_corners(boxes_tensor({box}), -1)[0][0])
                  .norm()
                  .item<double>(),
              4.0, 1e-5);
}

TEST(TigInnerFeature, LatticeSpansTheRectangleEdgesIncluded) {
  const std::array<double, 7> box{-3, 7, 0, 5, 3, 1, -2.2};
  const int64_t n = 5;
  const auto corners = tig_box_corners(boxes_tensor({box}), 1.6);
  const auto grid = tig_keypoint_lattice(corners, n);
  ASSERT_EQ(grid.sizes(), (std::vector<int64_t>{1, n, n, 2}));
  const auto p = design_corners(box, 1.6);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      for (int a = 0; a < 2; ++a) {
        const double want = p[0][a] + (p[1][a] - p[0][a]) * j / (n - 1.0) + (p[2][a] - p[0][a]) * i / (n - 1.0);
        EXPECT_NEAR(grid[0][i][j][a].item<double>(), want, 2e-5) << i << "," << j << "," << a;
      }
  EXPECT_NEAR((grid[0][n - 1][n - 1] - corners[0][3]).abs().max().item<double>(), 0, 2e-5);
}

// A 128 x 128 map (0.8 m over [-51.2, 51.2]) whose two channels hold each cell centre's x and y.
torch::Tensor coordinate_map() {
  const auto c = torch::arange(128, kF64) * 0.8 - 51.2 + 0.4;
  return torch::stack({c.view({1, 128}).expand({128, 128}), c.view({128, 1}).expand({128, 128})}).unsqueeze(0);
}

TEST(TigInnerFeature, ReferenceNormalisationStretchesBy128Over127AndExactDoesNot) {
  const std::array<double, 7> box{20, -10, 0, 4, 2, 1.5, 0.3};
  const auto lattice = tig_keypoint_lattice(tig_box_corners(boxes_tensor({box}), 1.6), 6);
  const auto map = coordinate_map();
  const BevGrid grid = BevGrid::make({-51.2, -51.2, -5, 51.2, 51.2, 3}, 0.8);  // the reference's LSS grid
  const LssGridParams lss = LssGridParams::of(grid);
  EXPECT_DOUBLE_EQ(lss.bx[0], -50.8);  // x_min + dx/2, within rounding
  EXPECT_EQ(lss.nx[1], 128);
  const auto ref = tig_sample_keypoints(map, {tig_normalize_lss(lattice, lss)});
  const auto exact = tig_sample_keypoints(map, {tig_normalize_exact(lattice, grid)});
  ASSERT_EQ(ref.sizes(), (std::vector<int64_t>{1, 2, 6, 6}));
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t j = 0; j < 6; ++j)
      for (int a = 0; a < 2; ++a) {
        const double p = lattice[0][i][j][a].item<double>();
        EXPECT_NEAR(exact[0][a][i][j].item<double>(), p, 1e-4);
        // pixel = (p - x_min)/dx * 128/127 - 0.5, so the sampled coordinate is x_min + (p - x_min) * 128/127.
        EXPECT_NEAR(ref[0][a][i][j].item<double>(), -51.2 + (p + 51.2) * 128.0 / 127.0, 1e-4);
      }
}

// Independent float64 implementation of the inner-feature terms: DESIGN corners, lattice, LSS or
// exact normalisation with clipping, explicit bilinear sampling, embed and Gram matrices by loops.
struct FeatureBrute {
  double kp = 0, ch = 0;
};

FeatureBrute inner_feature_brute(const torch::Tensor& s_bev, const torch::Tensor& t_bev,
                                 const std::vector<std::vector<std::array<double, 7>>>& boxes, const torch::Tensor& ew,
                                 const torch::Tensor& eb, const TigInnerFeatureOptions& o) {
  const int64_t n = o.sample_num, N = n * n, Cs = s_bev.size(1), C = t_bev.size(1);
  const auto S = s_bev.to(torch::kFloat64).contiguous(), T = t_bev.to(torch::kFloat64).contiguous();
  const auto Ew = ew.to(torch::kFloat64).reshape({C, Cs}).contiguous(), Eb = eb.to(torch::kFloat64).contiguous();
  auto norm = [&](double p, int a, const BevGrid& g) {
    double v;
    if (o.exact) {
      v = 2 * (p - g.range[a]) / (g.range[a + 3] - g.range[a]) - 1;
    } else {
      v = ((p - (o.lss.bx[a] - o.lss.dx[a] / 2)) / o.lss.dx[a] / (o.lss.nx[a] - 1)) * 2 - 1;
    }
    return std::min(1.0, std::max(-1.0, v));
  };
  // Row-L2-normalised Gram rows and their squared differences, summed over the last index.
  auto gram_loss = [](const std::vector<std::vector<double>>& fs, const std::vector<std::vector<double>>& ft,
                      bool over_points) {
    // fs[c][p]; over_points: G[p][q] = sum_c f[c][p] f[c][q]; else G[c][d] = sum_p f[c][p] f[d][p].
    const size_t R = over_points ? fs[0].size() : fs.size();
    auto gram = [&](const std::vector<std::vector<double>>& f, size_t r, size_t q) {
      double g = 0;
      if (over_points) {
        for (const auto& ch : f) g += ch[r] * ch[q];
      } else {
        for (size_t p = 0; p < f[r].size(); ++p) g += f[r][p] * f[q][p];
      }
      return g;
    };
    double total = 0;
    for (size_t r = 0; r < R; ++r) {
      std::vector<double> gs(R), gt(R);
      double ns = 0, nt = 0;
      for (size_t q = 0; q < R; ++q) {
        gs[q] = gram(fs, r, q);
        gt[q] = gram(ft, r, q);
        ns += gs[q] * gs[q];
        nt += gt[q] * gt[q];
      }
      ns = std::max(std::sqrt(ns), 1e-12);
      nt = std::max(std::sqrt(nt), 1e-12);
      for (size_t q = 0; q < R; ++q) total += std::pow(gs[q] / ns - gt[q] / nt, 2);
    }
    return total / static_cast<double>(R);  // mean over rows
  };
  FeatureBrute out;
  int64_t K = 0;
  for (size_t b = 0; b < boxes.size(); ++b)
    for (const auto& box : boxes[b]) {
      const auto p = design_corners(box, o.enlarge_width > 0 ? o.enlarge_width : 0);
      std::vector<std::vector<double>> fs(static_cast<size_t>(Cs), std::vector<double>(static_cast<size_t>(N)));
      std::vector<std::vector<double>> ft(static_cast<size_t>(C), std::vector<double>(static_cast<size_t>(N)));
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) {
          const double x = p[0][0] + (p[1][0] - p[0][0]) * j / (n - 1.0) + (p[2][0] - p[0][0]) * i / (n - 1.0);
          const double y = p[0][1] + (p[1][1] - p[0][1]) * j / (n - 1.0) + (p[2][1] - p[0][1]) * i / (n - 1.0);
          const auto vs =
              bilinear_sample(S[static_cast<int64_t>(b)], norm(x, 0, o.student_grid), norm(y, 1, o.student_grid));
          const auto vt =
              bilinear_sample(T[static_cast<int64_t>(b)], norm(x, 0, o.teacher_grid), norm(y, 1, o.teacher_grid));
          for (int64_t c = 0; c < Cs; ++c)
            fs[static_cast<size_t>(c)][static_cast<size_t>(i * n + j)] = vs[static_cast<size_t>(c)];
          for (int64_t c = 0; c < C; ++c)
            ft[static_cast<size_t>(c)][static_cast<size_t>(i * n + j)] = vt[static_cast<size_t>(c)];
        }
      std::vector<std::vector<double>> fe(static_cast<size_t>(C), std::vector<double>(static_cast<size_t>(N)));
      for (int64_t c = 0; c < C; ++c)
        for (int64_t q = 0; q < N; ++q) {
          double v = Eb[c].item<double>();
          for (int64_t d = 0; d < Cs; ++d)
            v += Ew[c][d].item<double>() * fs[static_cast<size_t>(d)][static_cast<size_t>(q)];
          fe[static_cast<size_t>(c)][static_cast<size_t>(q)] = v;
        }
      out.kp += gram_loss(fs, ft, true);
      out.ch += gram_loss(fe, ft, false);
      ++K;
    }
  out.kp = o.inter_keypoint_weight * out.kp / static_cast<double>(K);
  out.ch = o.inter_channel_weight * out.ch / static_cast<double>(K);
  return out;
}

// A 12.8 m x 12.8 m scene: student 16 x 16 (0.8 m), teacher 8 x 8 (1.6 m), 4 x 4 key points.
struct FeatureCase {
  torch::Tensor s, t, ew, eb;
  std::vector<std::vector<std::array<double, 7>>> boxes;
  TigInnerFeatureOptions o;
  std::vector<torch::Tensor> box_tensors() const {
    std::vector<torch::Tensor> v;
    for (const auto& b : boxes) v.push_back(b.empty() ? torch::zeros({0, 9}) : boxes_tensor(b));
    return v;
  }
};

FeatureCase feature_case(bool exact, uint64_t seed) {
  torch::manual_seed(seed);
  FeatureCase c;
  c.s = torch::randn({3, 3, 16, 16}, kF64);
  c.t = torch::randn({3, 4, 8, 8}, kF64);
  c.ew = torch::randn({4, 3, 1, 1}, kF64) * 0.5;
  c.eb = torch::randn({4}, kF64) * 0.1;
  // sample 0: a rotated box and one partly off the map (x up to 7.3 m > 6.4 m); sample 1: none;
  // sample 2: one box.
  c.boxes = {{{-1.0, 0.5, 0, 3.0, 1.6, 1.5, 0.7}, {5.5, -2.0, 0, 2.5, 2.0, 1.5, 2.9}},
             {},
             {{1.2, -3.1, 0, 1.0, 0.8, 1, -1.3}}};
  c.o.sample_num = 4;
  c.o.lss.bx = {-6.0, -6.0};
  c.o.lss.dx = {0.8, 0.8};
  c.o.lss.nx = {16, 16};
  c.o.exact = exact;
  c.o.student_grid = BevGrid::make({-6.4, -6.4, -5, 6.4, 6.4, 3}, 0.8);
  c.o.teacher_grid = BevGrid::make({-6.4, -6.4, -5, 6.4, 6.4, 3}, 1.6);
  return c;
}

TEST(TigInnerFeature, MatchesIndependentFloat64Implementation) {
  for (bool exact : {false, true}) {
    const auto c = feature_case(exact, 5);
    const auto got = tig_inner_feature_loss(c.s, c.t, c.box_tensors(), c.ew, c.eb, c.o);
    const auto want = inner_feature_brute(c.s, c.t, c.boxes, c.ew, c.eb, c.o);
    EXPECT_NEAR(got.inter_keypoint.item<double>(), want.kp, 1e-4 * want.kp) << "exact " << exact;
    EXPECT_NEAR(got.inter_channel.item<double>(), want.ch, 1e-4 * want.ch) << "exact " << exact;
    EXPECT_GT(want.kp, 0);
    EXPECT_GT(want.ch, 0);
    // float32 maps: the same values to float32 precision.
    const auto got32 = tig_inner_feature_loss(c.s.to(torch::kFloat32), c.t.to(torch::kFloat32), c.box_tensors(),
                                              c.ew.to(torch::kFloat32), c.eb.to(torch::kFloat32), c.o);
    EXPECT_NEAR(got32.inter_keypoint.item<double>(), want.kp, 1e-3 * want.kp);
    EXPECT_NEAR(got32.inter_channel.item<double>(), want.ch, 1e-3 * want.ch);
  }
}

TEST(TigInnerFeature, InvariantToCornerOrderAndKeyPointPermutation) {
  const auto c = feature_case(false, 9);
  const auto base = tig_inner_feature_loss(c.s, c.t, c.box_tensors(), c.ew, c.eb, c.o);
  // The same rectangles written differently: yaw + pi, and (l, w, yaw) -> (w, l, yaw + pi/2).
  for (int variant = 0; variant < 2; ++variant) {
    auto v = c;
    for (auto& sample : v.boxes)
      for (auto& b : sample) {
        if (variant == 0) {
          b[6] += M_PI;
        } else {
          std::swap(b[3], b[4]);
          b[6] += M_PI / 2;
        }
      }
    const auto other = tig_inner_feature_loss(v.s, v.t, v.box_tensors(), v.ew, v.eb, v.o);
    EXPECT_NEAR(other.inter_keypoint.item<double>(), base.inter_keypoint.item<double>(),
                1e-5 * base.inter_keypoint.item<double>())
        << "variant " << variant;
    EXPECT_NEAR(other.inter_channel.item<double>(), base.inter_channel.item<double>(),
                1e-5 * base.inter_channel.item<double>())
        << "variant " << variant;
  }
  // An explicit permutation of the key points (the same for both maps) changes nothing.
  torch::manual_seed(2);
  const auto fs = torch::randn({3, 5, 4, 4}, kF64), ft = torch::randn({3, 6, 4, 4}, kF64);
  const auto perm = torch::randperm(16, torch::kLong);
  auto permuted = [&](const torch::Tensor& f) {
    return f.reshape({f.size(0), f.size(1), 16}).index_select(2, perm).reshape(f.sizes());
  };
  EXPECT_NEAR(tig_inter_keypoint_loss(permuted(fs), permuted(ft)).item<double>(),
              tig_inter_keypoint_loss(fs, ft).item<double>(), 1e-12);
  const auto fe = torch::randn({3, 6, 4, 4}, kF64);
  EXPECT_NEAR(tig_inter_channel_loss(permuted(fe), permuted(ft)).item<double>(),
              tig_inter_channel_loss(fe, ft).item<double>(), 1e-12);
  EXPECT_GT(tig_inter_keypoint_loss(fs, ft).item<double>(), 0);
}

TEST(TigInnerFeature, SamplesWithoutBoxesContributeNothing) {
  const auto c = feature_case(false, 3);
  // Empty batch of boxes: zeros connected to the graph.
  auto s = c.s.clone().requires_grad_(true);
  const auto none =
      tig_inner_feature_loss(s, c.t, {torch::zeros({0, 9}), torch::Tensor(), torch::zeros({0, 9})}, c.ew, c.eb, c.o);
  EXPECT_EQ(none.inter_keypoint.item<double>(), 0.0);
  EXPECT_EQ(none.inter_channel.item<double>(), 0.0);
  (none.inter_keypoint + none.inter_channel).backward();
  EXPECT_EQ(s.grad().abs().sum().item<double>(), 0.0);
  // The empty sample 1 changes nothing: the mean runs over boxes.
  const auto all = tig_inner_feature_loss(c.s, c.t, c.box_tensors(), c.ew, c.eb, c.o);
  const auto idx = torch::tensor({0, 2});
  const auto two = tig_inner_feature_loss(c.s.index_select(0, idx), c.t.index_select(0, idx),
                                          {c.box_tensors()[0], c.box_tensors()[2]}, c.ew, c.eb, c.o);
  EXPECT_NEAR(all.inter_keypoint.item<double>(), two.inter_keypoint.item<double>(), 1e-12);
  EXPECT_NEAR(all.inter_channel.item<double>(), two.inter_channel.item<double>(), 1e-12);
}

TEST(TigInnerFeature, GradientsMatchFiniteDifferences) {
  const auto c = feature_case(false, 21);
  const auto boxes = c.box_tensors();
  EXPECT_TRUE(gradient_matches(
      [&](const torch::Tensor& s) { return tig_inner_feature_loss(s, c.t, boxes, c.ew, c.eb, c.o).inter_keypoint; },
      c.s, 1e-5, 1e-7, 1e-6, 7));
  EXPECT_TRUE(gradient_matches(
      [&](const torch::Tensor& s) { return tig_inner_feature_loss(s, c.t, boxes, c.ew, c.eb, c.o).inter_channel; }, c.s,
      1e-5, 1e-7, 1e-6, 7));
  EXPECT_TRUE(gradient_matches(
      [&](const torch::Tensor& w) { return tig_inner_feature_loss(c.s, c.t, boxes, w, c.eb, c.o).inter_channel; }, c.ew,
      1e-5, 1e-7, 1e-6, 1));
}

TEST(TigInnerFeature, ModuleOwnsTheEmbedAndMatchesThePureFunction) {
  auto c = feature_case(false, 4);
  TigInnerFeature m(3, 4, c.o);
  m->to(torch::kFloat64);
  EXPECT_EQ(m->parameters().size(), 2u);
  const auto got = m->forward(c.s, c.t, c.box_tensors());
  const auto want = tig_inner_feature_loss(c.s, c.t, c.box_tensors(), m->embed->weight, m->embed->bias, c.o);
  EXPECT_EQ(got.inter_channel.item<double>(), want.inter_channel.item<double>());
  got.inter_channel.backward();
  EXPECT_GT(m->embed->weight.grad().abs().sum().item<double>(), 0);
}

TEST(TigInnerFeature, RefusesMismatchedInputsByName) {
  auto c = feature_case(true, 1);
  EXPECT_ERROR_WITH(tig_inner_feature_loss(c.s, c.t, c.box_tensors(), c.ew.view({4, 3}), c.eb, c.o),
                    "input embed_w has shape [4,3], expected [C,Cs,1,1]=[4,3,1,1]");
  EXPECT_ERROR_WITH(tig_inner_feature_loss(c.s, c.t, {torch::zeros({0, 9})}, c.ew, c.eb, c.o),
                    "1 box sets for a batch of 3");
  c.o.teacher_grid = BevGrid::make({-6.4, -6.4, -5, 6.4, 6.4, 3}, 0.8);
  EXPECT_ERROR_WITH(tig_inner_feature_loss(c.s, c.t, c.box_tensors(), c.ew, c.eb, c.o),
                    "exact sampling: t_bev is 8x8 (HxW), its grid");
}

}  // namespace
}  // namespace bevkd::train::losses
