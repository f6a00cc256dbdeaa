// Depth projection against a hand-worked case and a brute-force nearest-point search.
#include "kernels/depth_projection.h"

#include <cmath>
#include <map>
#include <vector>

#include "tests/kernels/test_util.h"

namespace bevkd::kernels {
namespace {

using test::all_close;
using test::same;

// Front camera looking along ego +x and left camera along ego +y (camera x right, y down, z
// forward), 96 x 64 image, f = 100 px.
torch::Tensor cam2ego() {
  return torch::tensor(
      {{{0.0f, 0.0f, 1.0f, 1.5f}, {-1.0f, 0.0f, 0.0f, 0.0f}, {0.0f, -1.0f, 0.0f, 1.6f}, {0.0f, 0.0f, 0.0f, 1.0f}},
       {{1.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 1.0f, 0.8f}, {0.0f, -1.0f, 0.0f, 1.6f}, {0.0f, 0.0f, 0.0f, 1.0f}}});
}
torch::Tensor intrinsics() {
  const torch::Tensor k = torch::tensor({{100.0f, 0.0f, 48.0f}, {0.0f, 100.0f, 32.0f}, {0.0f, 0.0f, 1.0f}});
  return torch::stack({k, k});
}
DepthProjectionOptions options() {
  DepthProjectionOptions o;
  o.image_height = 64;
  o.image_width = 96;
  o.stride = 8;  // 8 x 12 cells
  o.min_depth = 0.5f;
  return o;
}

TEST(DepthProjection, HandWorkedNearestPointAndBox) {
  // p1 is 8.5 m ahead of the front camera on its axis -> (u, v) = (48, 32), cell (4, 6); p0 on
  // the same ray 10 m further (hidden); p2 behind the cameras. The left camera sees none.
  const torch::Tensor pts =
      torch::tensor({{20.0f, 0.0f, 1.6f, 0.3f}, {10.0f, 0.0f, 1.6f, 0.1f}, {-5.0f, 0.0f, 1.6f, 0.2f}});
  const torch::Tensor boxes =
      torch::tensor({{50.0f, 50.0f, 0.0f, 4.0f, 2.0f, 2.0f, 0.0f}, {10.0f, 0.0f, 1.0f, 2.0f, 2.0f, 2.0f, 0.3f}});
  const SparseDepth s = project_depth_sparse(pts, cam2ego(), intrinsics(), boxes, options());
  EXPECT_TRUE(same(s.offsets, torch::tensor({0, 1, 1}, torch::kInt64)));
  EXPECT_TRUE(same(s.uvd, torch::tensor({{48.0f, 32.0f, 8.5f}})));
  EXPECT_TRUE(same(s.box_id, torch::tensor({1}, torch::kInt32)));

  const DenseDepth d = project_depth_dense(pts, cam2ego(), intrinsics(), boxes, options());
  ASSERT_EQ(d.depth.sizes(), torch::IntArrayRef({2, 8, 12}));
  torch::Tensor want = torch::zeros({2, 8, 12});
  want[0][4][6] = 8.5f;
  EXPECT_TRUE(same(d.depth, want));
  torch::Tensor want_id = torch::full({2, 8, 12}, -1, torch::kInt32);
  want_id[0][4][6] = 1;
  EXPECT_TRUE(same(d.box_id, want_id));

  const SparseDepth no_boxes = project_depth_sparse(pts, cam2ego(), intrinsics(), torch::Tensor(), options());
  EXPECT_TRUE(same(no_boxes.box_id, torch::tensor({-1}, torch::kInt32)));
}

struct RefCell {
  float depth;
  int64_t point;
  float u, v;
};

// Brute force: every (camera, point), the nearest per cell (ties: lower index), boxes by the
// devkit's inclusive test.
SparseDepth reference(const torch::Tensor& pts, const torch::Tensor& boxes, const DepthProjectionOptions& o) {
  const torch::Tensor e = cam2ego().to(torch::kFloat64), k = intrinsics().to(torch::kFloat64);
  const int64_t ncam = e.size(0), ow = o.out_width();
  std::vector<float> uvd;
  std::vector<int32_t> ids;
  std::vector<int64_t> offsets{0};
  for (int64_t n = 0; n < ncam; ++n) {
    const torch::Tensor en = e[n], kn = k[n];
    const auto m = en.accessor<double, 2>();
    const auto kk = kn.accessor<double, 2>();
    std::map<int64_t, RefCell> best;
    for (int64_t i = 0; i < pts.size(0); ++i) {
      double p[3], q[3] = {0, 0, 0}, h[3] = {0, 0, 0};
      for (int a = 0; a < 3; ++a) p[a] = pts[i][a].item<double>() - m[a][3];
      for (int r = 0; r < 3; ++r)
        for (int a = 0; a < 3; ++a) q[r] += m[a][r] * p[a];  // Rᵀ (p - t)
      for (int r = 0; r < 3; ++r)
        for (int a = 0; a < 3; ++a) h[r] += kk[r][a] * q[a];
      const float depth = static_cast<float>(q[2]);
      if (depth < o.min_depth || depth >= o.max_depth) continue;
      const double u = h[0] / h[2], v = h[1] / h[2];
      if (u < 0 || u >= o.image_width || v < 0 || v >= o.image_height) continue;
      const int64_t cell = static_cast<int64_t>(v / o.stride) * ow + static_cast<int64_t>(u / o.stride);
      auto it = best.find(cell);
      if (it == best.end() || depth < it->second.depth)
        best[cell] = {depth, i, static_cast<float>(u), static_cast<float>(v)};
    }
    for (const auto& [cell, c] : best) {
      uvd.insert(uvd.end(), {c.u, c.v, c.depth});
      int32_t id = -1;
      for (int64_t g = 0; g < boxes.size(0) && id < 0; ++g) {
        const torch::Tensor bg = boxes[g];
        const auto b = bg.accessor<float, 1>();
        const double cs = std::cos(static_cast<double>(b[6])), sn = std::sin(static_cast<double>(b[6]));
        const double dx = pts[c.point][0].item<double>() - b[0], dy = pts[c.point][1].item<double>() - b[1];
        const double dz = pts[c.point][2].item<double>() - b[2];
        if (std::abs(cs * dx + sn * dy) <= b[3] / 2.0 && std::abs(-sn * dx + cs * dy) <= b[4] / 2.0 &&
            std::abs(dz) <= b[5] / 2.0)
          id = static_cast<int32_t>(g);
      }
      ids.push_back(id);
    }
    offsets.push_back(static_cast<int64_t>(ids.size()));
  }
  return {torch::tensor(uvd).view({-1, 3}), torch::tensor(ids, torch::kInt32), torch::tensor(offsets, torch::kInt64)};
}

TEST(DepthProjection, RandomCloudMatchesBruteForce) {
  torch::manual_seed(61);
  torch::Tensor boxes = torch::zeros({12, 9});
  boxes.select(1, 0).uniform_(-20, 20);
  boxes.select(1, 1).uniform_(-20, 20);
  boxes.select(1, 3).uniform_(2, 5);
  boxes.select(1, 4).uniform_(1.5, 2.5);
  boxes.select(1, 5).uniform_(1.5, 3);
  boxes.select(1, 6).uniform_(-3, 3);
  torch::Tensor pts = torch::rand({2500, 5});
  pts.select(1, 0).mul_(60).sub_(30);
  pts.select(1, 1).mul_(60).sub_(30);
  pts.select(1, 2).mul_(5).sub_(2);
  // 40 points around each box centre, so that some kept points lie in boxes.
  const torch::Tensor near = boxes.slice(1, 0, 3).repeat_interleave(40, 0) + torch::randn({480, 3}) * 0.6;
  pts = torch::cat({pts, torch::cat({near, torch::zeros({480, 2})}, 1)});

  const DepthProjectionOptions o = options();
  const SparseDepth got = project_depth_sparse(pts, cam2ego(), intrinsics(), boxes, o);
  const SparseDepth want = reference(pts, boxes, o);
  ASSERT_TRUE(same(got.offsets, want.offsets));
  EXPECT_GT(want.uvd.size(0), 60);
  EXPECT_TRUE(all_close(got.uvd, want.uvd, 1e-6, 1e-4));
  EXPECT_TRUE(same(got.box_id, want.box_id));
  EXPECT_GT((got.box_id >= 0).sum().item<int64_t>(), 3);

  // The dense map holds the same points, in (camera, row, column) order.
  const DenseDepth dense = project_depth_dense(pts, cam2ego(), intrinsics(), boxes, o);
  const torch::Tensor filled = dense.depth > 0;
  EXPECT_TRUE(same(dense.depth.masked_select(filled), got.uvd.select(1, 2)));
  EXPECT_TRUE(same(dense.box_id.masked_select(filled), got.box_id));
  EXPECT_TRUE(
      same(dense.box_id.masked_select(~filled), torch::full({(~filled).sum().item<int64_t>()}, -1, torch::kInt32)));

  // float64 calibration gives the same result
  const SparseDepth f64 =
      project_depth_sparse(pts, cam2ego().to(torch::kFloat64), intrinsics().to(torch::kFloat64), boxes, o);
  EXPECT_TRUE(same(f64.uvd, got.uvd));
}

TEST(DepthProjection, RejectsBadInput) {
  const torch::Tensor pts = torch::rand({10, 4});
  DepthProjectionOptions o = options();
  EXPECT_ERROR_WITH(
      project_depth_sparse(pts, cam2ego().slice(1, 0, 3), intrinsics(), torch::Tensor(), o),
      "project_depth: cam2ego must be [Ncam >= 1, 4, 4] float32/float64, found [2, 3, 4] float32 on cpu");
  EXPECT_ERROR_WITH(project_depth_sparse(pts, cam2ego(), intrinsics().slice(0, 0, 1), torch::Tensor(), o),
                     "intrinsics must be [Ncam, 3, 3] float32/float64 with Ncam = cam2ego.size(0), found [1, 3, 3]");
  EXPECT_ERROR_WITH(project_depth_dense(pts.slice(1, 0, 2), cam2ego(), intrinsics(), torch::Tensor(), o),
                     "project_depth: points must be [P, >= 3] float32");
  EXPECT_ERROR_WITH(project_depth_dense(pts, cam2ego(), intrinsics(), torch::zeros({3, 8}), o),
                     "boxes must be undefined or [G, 7|9] float32");
  o.min_depth = 0.0f;
  EXPECT_ERROR_WITH(project_depth_dense(pts, cam2ego(), intrinsics(), torch::Tensor(), o),
                     "project_depth: min_depth must be positive, found 0");
  o = options();
  torch::Tensor e = cam2ego();
  e[1][0][3] = NAN;
  EXPECT_ERROR_WITH(project_depth_dense(pts, e, intrinsics(), torch::Tensor(), o),
                     "project_depth: cam2ego[1] has a non-finite entry nan");
}

}  // namespace
}  // namespace bevkd::kernels
