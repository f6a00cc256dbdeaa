// Lift-splat: mass conservation (the output sums to depth x context over the kept frustum
// points, the kept set computed here from the grid rule), a brute-force scatter reference, and
// the evaluation geometry cache (key, hits, misses, eviction, same result as per-batch).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "base/bev_grid.h"
#include "base/math.h"
#include "tests/train/student/student_test_util.h"
#include "train/student/lift_splat.h"

namespace bevkd::train::student {
namespace {

using testing::level_camera;
using testing::rot_z;

struct Rig {
  torch::Tensor intrinsics;  // [B, N, 3, 3] float32
  torch::Tensor cam2ego;     // [B, N, 4, 4]
  torch::Tensor bda;         // [B, 3, 3]
};

// B samples of an N-camera ring (level cameras every 360/N degrees), sample b with a bda rotated
// by 10·b degrees (and x-flipped for odd b).
Rig ring(int64_t B, int64_t N, int64_t H, int64_t W) {
  const auto K = torch::tensor({0.5 * W, 0.0, (W - 1) / 2.0, 0.0, 0.5 * W, (H - 1) / 2.0, 0.0, 0.0, 1.0},
                               torch::kFloat64)
                     .view({3, 3});
  std::vector<torch::Tensor> intr, c2e, bda;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<torch::Tensor> ib, cb;
    for (int64_t n = 0; n < N; ++n) {
      ib.push_back(K);
      cb.push_back(level_camera(2 * kPi * n / N, {0.5 * std::cos(2 * kPi * n / N), 0.5 * std::sin(2 * kPi * n / N), 1.6}));
    }
    intr.push_back(torch::stack(ib));
    c2e.push_back(torch::stack(cb));
    auto m = rot_z(10.0 * b * kPi / 180.0);
    if (b % 2 == 1) m = torch::matmul(torch::diag(torch::tensor({-1.0, 1.0, 1.0}, torch::kFloat64)), m);
    bda.push_back(m);
  }
  return {torch::stack(intr).to(torch::kFloat32), torch::stack(c2e).to(torch::kFloat32),
          torch::stack(bda).to(torch::kFloat32)};
}

// The grid rule of kernels/bev_pool.h in float32: floor((p - min) / cell) inside the grid, z in
// [z_min, z_max). Returns [.., 3] int64 (col, row, keep) per point.
torch::Tensor cells_of(const torch::Tensor& pts, const BevGrid& g) {
  const auto x = pts.select(-1, 0), y = pts.select(-1, 1), z = pts.select(-1, 2);
  const auto cx = torch::floor((x - static_cast<float>(g.x_min())) / static_cast<float>(g.dx));
  const auto cy = torch::floor((y - static_cast<float>(g.y_min())) / static_cast<float>(g.dy));
  const auto cz = torch::floor((z - static_cast<float>(g.z_min())) / static_cast<float>(g.z_max() - g.z_min()));
  const auto keep = (cx >= 0) & (cx < g.W) & (cy >= 0) & (cy < g.H) & (cz >= 0) & (cz < 1);
  return torch::stack({cx.to(torch::kInt64), cy.to(torch::kInt64), keep.to(torch::kInt64)}, -1);
}

FrustumSpec small_spec() {
  FrustumSpec s;
  s.image_height = 32;
  s.image_width = 64;
  s.stride = 8;
  s.bins = DepthBins{1.0, 41.0, 2.0, "center"};  // 20 bins reaching beyond the grid
  return s;
}

TEST(StudentLiftSplat, ConservesMassOverKeptPoints) {
  torch::manual_seed(7);
  const auto spec = small_spec();
  const BevGrid grid = BevGrid::make({-24, -24, -2, 24, 24, 2}, 1.0);
  const int64_t B = 2, N = 6, D = spec.bins.count(), h = spec.feat_height(), w = spec.feat_width(), C = 5;
  const auto rig = ring(B, N, spec.image_height, spec.image_width);
  LiftSplat ls(spec, grid, 0);
  const auto depth = torch::randn({B, N, D, h, w}).softmax(2);
  const auto ctx = torch::rand({B, N, C, h, w}) + 0.1;
  const auto out = ls.forward(depth, ctx, rig.intrinsics, rig.cam2ego, rig.bda, GeometryMode::kPerBatch);
  ASSERT_EQ(out.sizes().vec(), (std::vector<int64_t>{B, C, 48, 48}));

  const auto keep = cells_of(ls.points(rig.intrinsics, rig.cam2ego, rig.bda, torch::kCPU), grid).select(-1, 2);
  const int64_t kept = keep.sum().item<int64_t>();
  ASSERT_GT(kept, 0);
  ASSERT_LT(kept, keep.numel());  // some far bins and high / low points leave the grid
  // sum over kept (b, n, d, r, c) of depth · sum_c context
  const auto ctx_sum = ctx.sum(2, /*keepdim=*/true);                                     // [B, N, 1, h, w]
  const double want = (depth.to(torch::kFloat64) * keep.to(torch::kFloat64) * ctx_sum.to(torch::kFloat64)).sum().item<double>();
  EXPECT_NEAR(out.sum().item<double>(), want, 1e-5 * want);
  // Per sample and channel too.
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      const double wbc = (depth[b].to(torch::kFloat64) * keep[b].to(torch::kFloat64) *
                          ctx[b].select(1, c).unsqueeze(1).to(torch::kFloat64))
                             .sum()
                             .item<double>();
      EXPECT_NEAR(out[b][c].sum().item<double>(), wbc, 1e-5 * wbc) << "b " << b << " c " << c;
    }
}

TEST(StudentLiftSplat, EqualsABruteForceScatter) {
  torch::manual_seed(11);
  auto spec = small_spec();
  spec.image_height = 16;
  spec.image_width = 24;
  spec.bins = DepthBins{1.0, 13.0, 3.0, "start"};
  const BevGrid grid = BevGrid::make({-8, -8, -2, 8, 8, 2}, 2.0);
  const int64_t B = 2, N = 3, D = 4, h = 2, w = 3, C = 2;
  const auto rig = ring(B, N, spec.image_height, spec.image_width);
  LiftSplat ls(spec, grid, 0);
  const auto depth = torch::rand({B, N, D, h, w});
  const auto ctx = torch::randn({B, N, C, h, w});
  const auto out = ls.forward(depth, ctx, rig.intrinsics, rig.cam2ego, rig.bda, GeometryMode::kPerBatch);
  const auto cells = cells_of(ls.points(rig.intrinsics, rig.cam2ego, rig.bda, torch::kCPU), grid);
  auto want = torch::zeros({B, C, grid.H, grid.W}, torch::kFloat64);
  int64_t kept = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t d = 0; d < D; ++d)
        for (int64_t r = 0; r < h; ++r)
          for (int64_t c = 0; c < w; ++c) {
            const auto cell = cells[b][n][d][r][c];
            if (cell[2].item<int64_t>() == 0) continue;
            ++kept;
            const auto col = cell[0].item<int64_t>(), row = cell[1].item<int64_t>();
            for (int64_t ch = 0; ch < C; ++ch)
              want[b][ch][row][col] += depth[b][n][d][r][c].item<double>() * ctx[b][n][ch][r][c].item<double>();
          }
  ASSERT_GT(kept, 3);
  EXPECT_TRUE(torch::allclose(out.to(torch::kFloat64), want, 1e-5, 1e-6));
}

TEST(StudentLiftSplat, EvaluationCachesTheGeometryByExactKey) {
  torch::manual_seed(3);
  const auto spec = small_spec();
  const BevGrid grid = BevGrid::make({-24, -24, -2, 24, 24, 2}, 1.0);
  const int64_t N = 6, D = spec.bins.count(), h = spec.feat_height(), w = spec.feat_width();
  const auto rig = ring(1, N, spec.image_height, spec.image_width);
  LiftSplat ls(spec, grid, 2);
  const auto depth = torch::rand({1, N, D, h, w});
  const auto ctx = torch::rand({1, N, 3, h, w});

  LiftSplatTimings t;
  const auto per_batch = ls.forward(depth, ctx, rig.intrinsics, rig.cam2ego, rig.bda, GeometryMode::kPerBatch, &t);
  EXPECT_FALSE(t.cache_hit);
  EXPECT_EQ(ls.cache_entries(), 0);  // per-batch never fills the cache
  EXPECT_GT(t.kept_points, 0);

  const auto first = ls.forward(depth, ctx, rig.intrinsics, rig.cam2ego, rig.bda, GeometryMode::kCached, &t);
  EXPECT_FALSE(t.cache_hit);
  EXPECT_EQ(ls.cache_misses(), 1);
  const auto again = ls.forward(depth, ctx, rig.intrinsics.clone(), rig.cam2ego.clone(), rig.bda.clone(),
                                GeometryMode::kCached, &t);
  EXPECT_TRUE(t.cache_hit);
  EXPECT_EQ(t.geometry_ms, 0.0);
  EXPECT_EQ(t.prepare_ms, 0.0);
  EXPECT_EQ(ls.cache_hits(), 1);
  EXPECT_TRUE(torch::equal(first, per_batch));
  EXPECT_TRUE(torch::equal(again, per_batch));

  // One changed bit of one matrix is another key.
  auto bda2 = rig.bda.clone();
  bda2[0][0][0] = std::nextafter(bda2[0][0][0].item<float>(), 2.0f);
  EXPECT_NE(LiftSplat::geometry_key(rig.intrinsics, rig.cam2ego, rig.bda, torch::kCPU),
            LiftSplat::geometry_key(rig.intrinsics, rig.cam2ego, bda2, torch::kCPU));
  EXPECT_EQ(LiftSplat::geometry_key(rig.intrinsics, rig.cam2ego, rig.bda, torch::kCPU),
            LiftSplat::geometry_key(rig.intrinsics.clone(), rig.cam2ego.clone(), rig.bda.clone(), torch::kCPU));
  ls.forward(depth, ctx, rig.intrinsics, rig.cam2ego, bda2, GeometryMode::kCached, &t);
  EXPECT_FALSE(t.cache_hit);
  EXPECT_EQ(ls.cache_entries(), 2);
  // A third geometry evicts the least recently used (the first); asking for it again misses.
  const auto rotated = torch::matmul(rot_z(0.3).to(torch::kFloat32), rig.bda[0]).unsqueeze(0);
  const auto rotated_out = ls.forward(depth, ctx, rig.intrinsics, rig.cam2ego, rotated, GeometryMode::kCached, &t);
  EXPECT_EQ(ls.cache_entries(), 2);
  EXPECT_FALSE(torch::equal(rotated_out, first));
  ls.forward(depth, ctx, rig.intrinsics, rig.cam2ego, rig.bda, GeometryMode::kCached, &t);
  EXPECT_FALSE(t.cache_hit);
  EXPECT_EQ(ls.cache_misses(), 4);
}

TEST(StudentLiftSplat, GradientFlowsToDepthAndContext) {
  const auto spec = small_spec();
  const BevGrid grid = BevGrid::make({-24, -24, -2, 24, 24, 2}, 1.0);
  const int64_t N = 6, D = spec.bins.count(), h = spec.feat_height(), w = spec.feat_width();
  const auto rig = ring(1, N, spec.image_height, spec.image_width);
  LiftSplat ls(spec, grid, 0);
  auto depth = torch::rand({1, N, D, h, w}).requires_grad_();
  auto ctx = torch::rand({1, N, 2, h, w}).requires_grad_();
  ls.forward(depth, ctx, rig.intrinsics, rig.cam2ego, rig.bda, GeometryMode::kPerBatch).sum().backward();
  // d(sum)/d depth[p] = keep[p] · sum_c ctx; d(sum)/d ctx[c, r, col] = sum_d keep · depth.
  const auto keep = cells_of(ls.points(rig.intrinsics, rig.cam2ego, rig.bda, torch::kCPU), grid).select(-1, 2).to(torch::kFloat32);
  EXPECT_TRUE(torch::allclose(depth.grad(), keep * ctx.detach().sum(2, true), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(ctx.grad(), (keep * depth.detach()).sum(2, true).expand_as(ctx), 1e-5, 1e-6));
}

TEST(StudentLiftSplat, ShapeErrorsNameTheExpectedShape) {
  const auto spec = small_spec();
  LiftSplat ls(spec, BevGrid::make({-24, -24, -2, 24, 24, 2}, 1.0), 0);
  const auto rig = ring(1, 2, spec.image_height, spec.image_width);
  testing::expect_error(
      [&] {
        ls.forward(torch::rand({1, 2, 5, 4, 8}), torch::rand({1, 2, 3, 4, 8}), rig.intrinsics, rig.cam2ego, rig.bda,
                   GeometryMode::kPerBatch);
      },
      {"depth must be [B, N, 20, 4, 8], got [1, 2, 5, 4, 8]"});
}

}  // namespace
}  // namespace bevkd::train::student
