// bev_pool_prepare / bev_pool against a brute-force sum, and the backward against finite
// differences.
#include "kernels/bev_pool.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tests/kernels/test_util.h"

namespace bevkd::kernels {
namespace {

using test::all_close;
using test::same;

constexpr int64_t B = 2, N = 2, D = 4, Hf = 3, Wf = 5, C = 3;

BevGrid small_grid() { return BevGrid::make({-4.0, -3.0, -2.0, 4.0, 3.0, 2.0}, 1.0); }  // 8 x 6 cells

// Frustum points spread over a box larger than the grid; point 0 sits 0.3 cells below x_min
// (the reference implementations' truncation would keep it in column 0; bevkd drops it).
torch::Tensor random_frustum(uint64_t seed) {
  torch::manual_seed(seed);
  torch::Tensor pts = torch::rand({B, N, D, Hf, Wf, 3});
  pts.select(5, 0).mul_(10.0).sub_(5.0);
  pts.select(5, 1).mul_(8.0).sub_(4.0);
  pts.select(5, 2).mul_(6.0).sub_(3.0);
  pts[0][0][0][0][0] = torch::tensor({-4.3f, 0.5f, 0.0f});
  return pts;
}

// The cell of point q or -1, computed directly from the definition in bev_pool.h.
int64_t cell_of(const float* q, const BevGrid& g, int64_t b) {
  const float col = std::floor((q[0] - static_cast<float>(g.range[0])) / static_cast<float>(g.dx)),
              row = std::floor((q[1] - static_cast<float>(g.range[1])) / static_cast<float>(g.dy));
  const bool inside = col >= 0 && col < g.W && row >= 0 && row < g.H && q[2] >= static_cast<float>(g.range[2]) &&
                      q[2] < static_cast<float>(g.range[5]);
  return inside ? (b * g.H + static_cast<int64_t>(row)) * g.W + static_cast<int64_t>(col) : -1;
}

torch::Tensor reference_pool(const torch::Tensor& pts, const torch::Tensor& depth, const torch::Tensor& feat,
                             const BevGrid& g) {
  const int64_t H = g.H, W = g.W;
  torch::Tensor out = torch::zeros({B * H * W, C}, torch::kFloat64);
  const torch::Tensor p = pts.contiguous(), d = depth.to(torch::kFloat64).flatten(),
                      f = feat.to(torch::kFloat64).reshape({-1, C});
  const float* pp = p.data_ptr<float>();
  for (int64_t i = 0; i < p.numel() / 3; ++i) {
    const int64_t cell = cell_of(pp + 3 * i, g, i / (N * D * Hf * Wf));
    if (cell >= 0) out[cell] += d[i] * f[i / (D * Hf * Wf) * Hf * Wf + i % (Hf * Wf)];
  }
  return out.view({B, H, W, C}).permute({0, 3, 1, 2});
}

TEST(BevPool, GeometryIsTheSortedPointToCellMapping) {
  const BevGrid g = small_grid();
  const torch::Tensor pts = random_frustum(1);
  const BevPoolGeometry geom = bev_pool_prepare(pts, g);
  EXPECT_EQ(geom.grid_h, 6);
  EXPECT_EQ(geom.grid_w, 8);

  std::vector<std::pair<int64_t, int64_t>> by_cell, by_row;  // (cell, point), (feature row, point)
  const float* pp = pts.data_ptr<float>();
  for (int64_t i = 0; i < pts.numel() / 3; ++i) {
    const int64_t cell = cell_of(pp + 3 * i, g, i / (N * D * Hf * Wf));
    if (cell < 0) continue;
    by_cell.emplace_back(cell, i);
    by_row.emplace_back(i / (D * Hf * Wf) * Hf * Wf + i % (Hf * Wf), i);
  }
  std::sort(by_cell.begin(), by_cell.end());
  std::sort(by_row.begin(), by_row.end());
  const int64_t K = static_cast<int64_t>(by_cell.size());
  ASSERT_EQ(geom.num_kept(), K);
  ASSERT_LT(K, pts.numel() / 3);  // some points are dropped
  auto column = [](const std::vector<std::pair<int64_t, int64_t>>& v, bool first) {
    std::vector<int32_t> out;
    for (const auto& e : v) out.push_back(static_cast<int32_t>(first ? e.first : e.second));
    return torch::tensor(out, torch::kInt32);
  };
  auto runs = [](const torch::Tensor& sorted) {
    std::vector<int32_t> starts, lengths;
    const auto a = sorted.accessor<int32_t, 1>();
    for (int64_t k = 0; k < sorted.size(0); ++k) {
      if (k == 0 || a[k] != a[k - 1]) {
        starts.push_back(static_cast<int32_t>(k));
        lengths.push_back(0);
      }
      ++lengths.back();
    }
    return std::make_pair(torch::tensor(starts, torch::kInt32), torch::tensor(lengths, torch::kInt32));
  };
  auto feat_row = [](const torch::Tensor& p) {
    return (p.div(D * Hf * Wf, "floor") * (Hf * Wf) + p.remainder(Hf * Wf)).to(torch::kInt32);
  };
  EXPECT_TRUE(same(geom.ranks_bev, column(by_cell, true)));
  EXPECT_TRUE(same(geom.ranks_depth, column(by_cell, false)));
  EXPECT_TRUE(same(geom.ranks_feat, feat_row(geom.ranks_depth.to(torch::kInt64))));
  EXPECT_TRUE(same(geom.interval_starts, runs(geom.ranks_bev).first));
  EXPECT_TRUE(same(geom.interval_lengths, runs(geom.ranks_bev).second));
  EXPECT_TRUE(same(geom.feat_ranks_feat, column(by_row, true)));
  EXPECT_TRUE(same(geom.feat_ranks_depth, column(by_row, false)));
  torch::Tensor cell_of_point = torch::full({pts.numel() / 3}, -1, torch::kInt32);
  cell_of_point.index_put_({geom.ranks_depth.to(torch::kInt64)}, geom.ranks_bev);
  EXPECT_TRUE(same(geom.feat_ranks_bev, cell_of_point.index_select(0, geom.feat_ranks_depth.to(torch::kInt64))));
  EXPECT_TRUE(same(geom.feat_interval_starts, runs(geom.feat_ranks_feat).first));
  EXPECT_TRUE(same(geom.feat_interval_lengths, runs(geom.feat_ranks_feat).second));
  EXPECT_FALSE((geom.ranks_depth == 0).any().item<bool>()) << "the point below x_min must be dropped";
}

TEST(BevPool, ForwardMatchesBruteForceAndReusesTheGeometry) {
  const BevGrid g = small_grid();
  const torch::Tensor pts = random_frustum(2);
  const BevPoolGeometry geom = bev_pool_prepare(pts, g);
  for (uint64_t seed : {3, 4}) {
    torch::manual_seed(seed);
    const torch::Tensor depth = torch::rand({B, N, D, Hf, Wf}).softmax(2);
    const torch::Tensor feat = torch::randn({B, N, Hf, Wf, C});
    const torch::Tensor out = bev_pool(depth, feat, geom);
    ASSERT_EQ(out.sizes(), torch::IntArrayRef({B, C, 6, 8}));
    EXPECT_TRUE(out.is_contiguous());
    EXPECT_TRUE(all_close(out, reference_pool(pts, depth, feat, g), test::kF32RelTol, test::kF32AbsTol));
  }
}

TEST(BevPool, BackwardMatchesFiniteDifferences) {
  const BevGrid g = small_grid();
  const BevPoolGeometry geom = bev_pool_prepare(random_frustum(5), g);
  torch::manual_seed(6);
  const torch::Tensor depth = torch::rand({B, N, D, Hf, Wf}, torch::kFloat64).requires_grad_(true);
  const torch::Tensor feat = torch::randn({B, N, Hf, Wf, C}, torch::kFloat64).requires_grad_(true);
  const torch::Tensor w = torch::randn({B, C, 6, 8}, torch::kFloat64);
  (bev_pool(depth, feat, geom) * w).sum().backward();

  torch::NoGradGuard no_grad;
  auto loss = [&](const torch::Tensor& d, const torch::Tensor& f) {
    return (bev_pool(d, f, geom) * w).sum().item<double>();
  };
  const double eps = 1e-6;
  for (const bool wrt_depth : {true, false}) {
    const torch::Tensor x = (wrt_depth ? depth : feat).detach().clone();
    torch::Tensor numeric = torch::zeros_like(x);
    torch::Tensor xf = x.view({-1}), nf = numeric.view({-1});
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double x0 = xf[i].item<double>();
      xf[i] = x0 + eps;
      const double up = wrt_depth ? loss(x, feat) : loss(depth, x);
      xf[i] = x0 - eps;
      const double down = wrt_depth ? loss(x, feat) : loss(depth, x);
      xf[i] = x0;
      nf[i] = (up - down) / (2 * eps);
    }
    const torch::Tensor analytic = wrt_depth ? depth.grad() : feat.grad();
    EXPECT_TRUE(all_close(analytic, numeric, 1e-6, 1e-8)) << (wrt_depth ? "d loss / d depth" : "d loss / d feat");
    EXPECT_GT(analytic.abs().sum().item<double>(), 0.0);
  }
}

TEST(BevPool, OnlyTheRequestedGradientIsComputed) {
  const BevPoolGeometry geom = bev_pool_prepare(random_frustum(7), small_grid());
  const torch::Tensor depth = torch::rand({B, N, D, Hf, Wf}).requires_grad_(true);
  const torch::Tensor feat = torch::randn({B, N, Hf, Wf, C});
  bev_pool(depth, feat, geom).sum().backward();
  ASSERT_TRUE(depth.grad().defined());
  EXPECT_FALSE(feat.grad().defined());
}

TEST(BevPool, RejectsMismatchedInputs) {
  const BevPoolGeometry geom = bev_pool_prepare(random_frustum(8), small_grid());
  const torch::Tensor feat = torch::randn({B, N, Hf, Wf, C});
  EXPECT_ERROR_WITH(
      bev_pool(torch::rand({B, N, D + 1, Hf, Wf}), feat, geom),
      "bev_pool: depth must be [2, 2, 4, 3, 5] float32 or float64 (the geometry's shape), found [2, 2, 5, "
      "3, 5] float32 on cpu");
  EXPECT_ERROR_WITH(bev_pool(torch::rand({B, N, D, Hf, Wf}), feat.to(torch::kFloat64), geom),
                     "bev_pool: feat must be [2, 2, 3, 5, C] with depth's dtype");
  EXPECT_ERROR_WITH(bev_pool(torch::rand({B, N, D, Hf, Wf}), feat, BevPoolGeometry{}),
                     "bev_pool: the geometry is empty; build it with bev_pool_prepare");
  EXPECT_ERROR_WITH(bev_pool_prepare(torch::rand({B, N, D, Hf, Wf, 2}), small_grid()),
                     "bev_pool_prepare: points must be [B, N, D, Hf, Wf, 3] float32");
  EXPECT_ERROR_WITH(bev_pool_prepare(random_frustum(9), BevGrid{}), "bev_pool: no grid given (an empty BevGrid)");
}

}  // namespace
}  // namespace bevkd::kernels
