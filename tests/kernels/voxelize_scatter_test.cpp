// voxelize / voxelize_batch and scatter_to_bev against brute-force references.
#include <cmath>
#include <limits>
#include <map>
#include <tuple>
#include <vector>

#include "kernels/scatter.h"
#include "kernels/voxelize.h"
#include "tests/kernels/test_util.h"

namespace bevkd::kernels {
namespace {

using test::all_close;
using test::same;

// mmcv hard voxelization written out naively: a map from (z, y, x) to voxel, filled in input
// order.
Voxels reference_voxelize(const torch::Tensor& points, const VoxelizeOptions& o) {
  const auto n = o.grid_size();
  const int64_t P = points.size(0), F = points.size(1), M = o.max_points_per_voxel;
  const auto acc = points.accessor<float, 2>();
  std::map<std::tuple<int64_t, int64_t, int64_t>, int64_t> voxel_of;
  std::vector<std::tuple<int64_t, int64_t, int64_t>> cells;
  std::vector<std::vector<int64_t>> members;
  const float lo[3] = {static_cast<float>(o.grid.range[0]), static_cast<float>(o.grid.range[1]),
                       static_cast<float>(o.grid.range[2])};
  const float size[3] = {static_cast<float>(o.grid.dx), static_cast<float>(o.grid.dy),
                         static_cast<float>(o.voxel_z > 0 ? o.voxel_z : o.grid.z_max() - o.grid.z_min())};
  for (int64_t i = 0; i < P; ++i) {
    int64_t c[3];
    bool inside = true;
    for (int a = 0; a < 3; ++a) {
      const float f = std::floor((acc[i][a] - lo[a]) / size[a]);
      inside = inside && f >= 0 && f < static_cast<float>(n[a]);
      c[a] = inside ? static_cast<int64_t>(f) : -1;
    }
    if (!inside) continue;
    const auto key = std::make_tuple(c[2], c[1], c[0]);
    auto it = voxel_of.find(key);
    if (it == voxel_of.end()) {
      if (static_cast<int64_t>(cells.size()) == o.max_voxels) continue;
      it = voxel_of.emplace(key, cells.size()).first;
      cells.push_back(key);
      members.emplace_back();
    }
    if (static_cast<int64_t>(members[it->second].size()) < M) members[it->second].push_back(i);
  }
  const int64_t V = static_cast<int64_t>(cells.size());
  Voxels out{torch::zeros({V, M, F}), torch::zeros({V, 3}, torch::kInt32), torch::zeros({V}, torch::kInt32)};
  for (int64_t v = 0; v < V; ++v) {
    out.coords[v][0] = std::get<0>(cells[v]);
    out.coords[v][1] = std::get<1>(cells[v]);
    out.coords[v][2] = std::get<2>(cells[v]);
    out.num_points[v] = static_cast<int64_t>(members[v].size());
    for (size_t s = 0; s < members[v].size(); ++s) out.voxels[v][s] = points[members[v][s]];
  }
  return out;
}

// Points in a box slightly larger than the range (so some fall outside), 5 features, a NaN
// point and points exactly on the range faces.
torch::Tensor random_cloud(int64_t P, const VoxelizeOptions& o, uint64_t seed) {
  torch::manual_seed(seed);
  torch::Tensor pts = torch::rand({P, 5});
  for (int a = 0; a < 3; ++a) {
    const float lo = static_cast<float>(o.grid.range[a]), hi = static_cast<float>(o.grid.range[a + 3]),
                pad = 0.1f * (hi - lo);
    pts.select(1, a).mul_(hi - lo + 2 * pad).add_(lo - pad);
  }
  pts[0][0] = std::numeric_limits<float>::quiet_NaN();
  pts[1][0] = static_cast<float>(o.grid.range[0]);  // on the lower x face: inside
  pts[2][1] = static_cast<float>(o.grid.range[4]);  // on the upper y face: outside
  return pts;
}

VoxelizeOptions small_options() {
  VoxelizeOptions o;
  o.grid = BevGrid::make({-4.0, -4.0, -2.0, 4.0, 4.0, 2.0}, 0.5);
  o.voxel_z = 1.0;  // 16 x 16 x 4 cells
  o.max_points_per_voxel = 3;
  o.max_voxels = 600;
  return o;
}

TEST(Voxelize, MatchesReferenceWithBothLimitsActive) {
  const VoxelizeOptions o = small_options();
  const torch::Tensor pts = random_cloud(4000, o, 7);
  const Voxels got = voxelize(pts, o);
  const Voxels want = reference_voxelize(pts, o);
  ASSERT_EQ(got.voxels.size(0), o.max_voxels);                                  // the voxel limit is hit
  EXPECT_TRUE((want.num_points == o.max_points_per_voxel).any().item<bool>());  // so is the point limit
  EXPECT_TRUE(same(got.coords, want.coords));
  EXPECT_TRUE(same(got.num_points, want.num_points));
  EXPECT_TRUE(same(got.voxels, want.voxels));
}

TEST(Voxelize, ResultDoesNotDependOnThreadCount) {
  const VoxelizeOptions o = small_options();
  const torch::Tensor pts = random_cloud(50000, o, 8);
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const Voxels one = voxelize(pts, o);
  at::set_num_threads(4);
  const Voxels four = voxelize(pts, o);
  at::set_num_threads(threads);
  EXPECT_TRUE(same(one.voxels, four.voxels));
  EXPECT_TRUE(same(one.coords, four.coords));
}

TEST(Voxelize, HandWorkedOrderAndCoords) {
  VoxelizeOptions o = small_options();
  o.max_points_per_voxel = 2;
  // cells (z, y, x): p0 -> (2, 8, 9), p1 -> (0, 0, 0), p2 -> (2, 8, 9), p3 -> (2, 8, 9) (over
  // the 2-point limit), p4 outside in z, p5 -> (0, 0, 0)
  const torch::Tensor pts = torch::tensor({{0.7f, 0.2f, 0.5f, 1.0f, 0.0f},
                                           {-3.9f, -3.9f, -1.9f, 2.0f, 0.0f},
                                           {0.6f, 0.4f, 0.9f, 3.0f, 0.0f},
                                           {0.55f, 0.1f, 0.1f, 4.0f, 0.0f},
                                           {0.0f, 0.0f, 2.5f, 5.0f, 0.0f},
                                           {-3.6f, -3.6f, -1.5f, 6.0f, 0.0f}});
  const Voxels v = voxelize(pts, o);
  EXPECT_TRUE(same(v.coords, torch::tensor({{2, 8, 9}, {0, 0, 0}}, torch::kInt32)));
  EXPECT_TRUE(same(v.num_points, torch::tensor({2, 2}, torch::kInt32)));
  EXPECT_TRUE(same(v.voxels.select(2, 3), torch::tensor({{1.0f, 3.0f}, {2.0f, 6.0f}})));
}

TEST(Voxelize, PillarsSpanTheWholeZRange) {
  const VoxelizeOptions o = VoxelizeOptions::pillars(BevGrid::make({-4.0, -4.0, -2.0, 4.0, 4.0, 2.0}, 0.5), 4, 100000);
  EXPECT_EQ(o.grid_size(), (std::array<int64_t, 3>{16, 16, 1}));
  const torch::Tensor pts = random_cloud(3000, o, 9);
  const Voxels got = voxelize(pts, o);
  EXPECT_TRUE((got.coords.select(1, 0) == 0).all().item<bool>());
  EXPECT_TRUE(same(got.voxels, reference_voxelize(pts, o).voxels));
}

TEST(Voxelize, BatchPrependsTheCloudIndex) {
  const VoxelizeOptions o = small_options();
  const torch::Tensor a = random_cloud(500, o, 10), b = random_cloud(700, o, 11);
  const Voxels batch = voxelize_batch({a, b}, o);
  const Voxels va = voxelize(a, o), vb = voxelize(b, o);
  const int64_t Va = va.coords.size(0);
  ASSERT_EQ(batch.coords.size(0), Va + vb.coords.size(0));
  EXPECT_TRUE(same(batch.coords.slice(0, 0, Va).select(1, 0), torch::zeros({Va}, torch::kInt32)));
  EXPECT_TRUE(same(batch.coords.slice(0, Va).select(1, 0), torch::ones({vb.coords.size(0)}, torch::kInt32)));
  EXPECT_TRUE(same(batch.coords.slice(0, Va).slice(1, 1), vb.coords));
  EXPECT_TRUE(same(batch.voxels.slice(0, 0, Va), va.voxels));
}

TEST(Voxelize, RejectsBadInput) {
  VoxelizeOptions o = small_options();
  EXPECT_ERROR_WITH(
      voxelize(torch::zeros({4, 2}), o),
      "voxelize: points must be [P, F >= 3] float32 (x, y, z, features...), found [4, 2] float32 on cpu");
  EXPECT_ERROR_WITH(voxelize(torch::zeros({4, 3}, torch::kFloat64), o), "found [4, 3] float64 on cpu");
  o.voxel_z = -0.5;
  EXPECT_ERROR_WITH(voxelize(torch::zeros({4, 3}), o), "voxelize: voxel_z must be >= 0 (0 = pillars), found -0.5");
  o = small_options();
  o.voxel_z = 0.3;
  EXPECT_ERROR_WITH(voxelize(torch::zeros({4, 3}), o), "voxelize: the z range (4 m) is not a whole number of 0.3 m voxels");
  o = small_options();
  o.grid = BevGrid{};
  EXPECT_ERROR_WITH(voxelize(torch::zeros({4, 3}), o), "voxelize: no grid given (VoxelizeOptions::grid is empty)");
  o = small_options();
  o.max_voxels = 0;
  EXPECT_ERROR_WITH(voxelize(torch::zeros({4, 3}), o), "max_voxels must be >= 1, found 0");
  EXPECT_ERROR_WITH(voxelize_batch({torch::zeros({4, 4}), torch::zeros({4, 5})}, small_options()),
                     "voxelize_batch: clouds[1] is [4, 5] float32 on cpu but clouds[0] is [4, 4] float32 on cpu");
}

// ---- scatter_to_bev ---------------------------------------------------------------------

torch::Tensor reference_scatter(const torch::Tensor& f, const torch::Tensor& coords, int64_t B, int64_t H, int64_t W) {
  torch::Tensor out = torch::zeros({B, f.size(1), H, W}, torch::kFloat64);
  for (int64_t v = 0; v < f.size(0); ++v) {
    const auto c = coords[v];
    out.select(0, c[0].item<int64_t>()).select(1, c[2].item<int64_t>()).select(1, c[3].item<int64_t>()) +=
        f[v].to(torch::kFloat64);
  }
  return out;
}

// V pillars with distinct cells, 2 batch entries, plus one duplicate of the first cell.
std::pair<torch::Tensor, torch::Tensor> random_pillars(int64_t V, int64_t C, int64_t H, int64_t W, torch::Dtype dtype) {
  torch::manual_seed(21);
  const torch::Tensor cells = torch::randperm(2 * H * W).slice(0, 0, V);
  torch::Tensor coords = torch::stack(
      {cells.div(H * W, "floor"), torch::zeros_like(cells), cells.div(W, "floor").remainder(H), cells.remainder(W)}, 1);
  coords = torch::cat({coords, coords.slice(0, 0, 1)}).to(torch::kInt32);
  return {torch::randn({V + 1, C}, dtype), coords};
}

TEST(ScatterToBev, MatchesReferenceAndSumsDuplicates) {
  const auto [f, coords] = random_pillars(150, 6, 12, 17, torch::kFloat32);
  const torch::Tensor out = scatter_to_bev(f, coords, 2, 12, 17);
  ASSERT_EQ(out.sizes(), torch::IntArrayRef({2, 6, 12, 17}));
  EXPECT_TRUE(all_close(out, reference_scatter(f, coords, 2, 12, 17), test::kF32RelTol, test::kF32AbsTol));
  const auto c0 = coords[0];
  EXPECT_TRUE(all_close(out[c0[0].item<int64_t>()].select(1, c0[2].item<int64_t>()).select(1, c0[3].item<int64_t>()),
                        f[0] + f[150], test::kF32RelTol, test::kF32AbsTol));
}

TEST(ScatterToBev, GradientIsTheGatheredCanvasGradient) {
  auto [f, coords] = random_pillars(80, 5, 9, 11, torch::kFloat64);
  f.requires_grad_(true);
  const torch::Tensor w = torch::randn({2, 5, 9, 11}, torch::kFloat64);
  (scatter_to_bev(f, coords, 2, 9, 11) * w).sum().backward();
  const torch::Tensor c = coords.to(torch::kInt64);
  const torch::Tensor want = w.permute({0, 2, 3, 1}).index({c.select(1, 0), c.select(1, 2), c.select(1, 3)});
  EXPECT_TRUE(all_close(f.grad(), want, 0, 0));
}

TEST(ScatterToBev, RejectsOutOfRangeCoords) {
  auto [f, coords] = random_pillars(10, 3, 4, 5, torch::kFloat32);
  coords[7][3] = 5;
  EXPECT_ERROR_WITH(scatter_to_bev(f, coords, 2, 4, 5), "scatter_to_bev: coords row 7 is (batch");
  EXPECT_ERROR_WITH(scatter_to_bev(f, coords, 2, 4, 5), "x 5), outside the canvas (batch < 2, z = 0, y < 4, x < 5)");
  EXPECT_ERROR_WITH(
      scatter_to_bev(f, coords.to(torch::kInt64), 2, 4, 5),
      "coords must be [V, 4] int32 (batch, z, y, x) with V = features.size(0), found [11, 4] int64 on cpu");
}

}  // namespace
}  // namespace bevkd::kernels
