// Every CUDA twin against the CPU reference on random inputs: exact for index results, named
// tolerances for float sums. Skipped (GTEST_SKIP) without a CUDA device or without
// BEVKD_WITH_CUDA.
#include <array>

#include "kernels/backend.h"
#include "kernels/bev_pool.h"
#include "kernels/deform_attn.h"
#include "kernels/depth_projection.h"
#include "kernels/gaussian.h"
#include "kernels/iou.h"
#include "kernels/nms.h"
#include "kernels/scatter.h"
#include "kernels/voxelize.h"
#include "tests/kernels/test_util.h"

namespace bevkd::kernels {
namespace {

using test::all_close;
using test::same;

#define BEVKD_REQUIRE_CUDA()                                                                                      \
  do {                                                                                                            \
    if (!cuda_available())                                                                                        \
      GTEST_SKIP() << (cuda_compiled() ? "no CUDA device visible to LibTorch" : "built without BEVKD_WITH_CUDA"); \
  } while (0)

const torch::Device kGpu(torch::kCUDA, 0);

torch::Tensor twin_boxes(int64_t n, double spread, uint64_t seed) {
  return test::random_boxes(n, spread, 12.0, seed, torch::kFloat32);
}

TEST(CudaTwin, Voxelize) {
  BEVKD_REQUIRE_CUDA();
  const VoxelizeOptions o =
      VoxelizeOptions::pillars(BevGrid::make({-51.2, -51.2, -5.0, 51.2, 51.2, 3.0}, 0.2), 20, 30000);
  torch::manual_seed(71);
  torch::Tensor pts = torch::randn({250000, 5}) * 20;  // dense near the centre: both limits hit
  const Voxels cpu = voxelize(pts, o), gpu = voxelize(pts.to(kGpu), o);
  EXPECT_TRUE(same(gpu.coords, cpu.coords));
  EXPECT_TRUE(same(gpu.num_points, cpu.num_points));
  EXPECT_TRUE(same(gpu.voxels, cpu.voxels));
}

TEST(CudaTwin, Scatter) {
  BEVKD_REQUIRE_CUDA();
  torch::manual_seed(72);
  const torch::Tensor cells = torch::randperm(2 * 64 * 64).slice(0, 0, 3000);
  const torch::Tensor coords = torch::stack({cells.div(4096, "floor"), torch::zeros_like(cells),
                                             cells.div(64, "floor").remainder(64), cells.remainder(64)},
                                            1)
                                   .to(torch::kInt32);
  const torch::Tensor f = torch::randn({3000, 32}).requires_grad_(true);
  const torch::Tensor fg = f.detach().to(kGpu).requires_grad_(true);
  const torch::Tensor w = torch::randn({2, 32, 64, 64});
  const torch::Tensor out = scatter_to_bev(f, coords, 2, 64, 64),
                      out_gpu = scatter_to_bev(fg, coords.to(kGpu), 2, 64, 64);
  EXPECT_TRUE(all_close(out_gpu, out, test::kF32RelTol, test::kF32AbsTol));
  (out * w).sum().backward();
  (out_gpu * w.to(kGpu)).sum().backward();
  EXPECT_TRUE(all_close(fg.grad(), f.grad(), 0, 0));
}

TEST(CudaTwin, BevPoolAtBevDepthSize) {
  BEVKD_REQUIRE_CUDA();
  // BEVDepth R50: 6 cameras x 112 depth bins x 16 x 44 features, 80 channels, 128 x 128 grid.
  const int64_t B = 1, N = 6, D = 112, Hf = 16, Wf = 44, C = 80;
  torch::manual_seed(73);
  torch::Tensor pts = torch::rand({B, N, D, Hf, Wf, 3});
  pts.select(5, 0).mul_(120).sub_(60);
  pts.select(5, 1).mul_(120).sub_(60);
  pts.select(5, 2).mul_(10).sub_(6);
  const BevGrid grid = BevGrid::make({-51.2, -51.2, -5.0, 51.2, 51.2, 3.0}, 0.8);
  const BevPoolGeometry g = bev_pool_prepare(pts, grid), gg = bev_pool_prepare(pts.to(kGpu), grid);
  for (const auto& [a, b] : {std::pair{&g.ranks_depth, &gg.ranks_depth},
                             {&g.ranks_feat, &gg.ranks_feat},
                             {&g.ranks_bev, &gg.ranks_bev},
                             {&g.interval_starts, &gg.interval_starts},
                             {&g.interval_lengths, &gg.interval_lengths},
                             {&g.feat_ranks_depth, &gg.feat_ranks_depth},
                             {&g.feat_ranks_feat, &gg.feat_ranks_feat},
                             {&g.feat_ranks_bev, &gg.feat_ranks_bev},
                             {&g.feat_interval_starts, &gg.feat_interval_starts},
                             {&g.feat_interval_lengths, &gg.feat_interval_lengths}})
    EXPECT_TRUE(same(*b, *a));
  const torch::Tensor depth = torch::rand({B, N, D, Hf, Wf}).softmax(2).requires_grad_(true);
  const torch::Tensor feat = torch::randn({B, N, Hf, Wf, C}).requires_grad_(true);
  const torch::Tensor dg = depth.detach().to(kGpu).requires_grad_(true),
                      fg = feat.detach().to(kGpu).requires_grad_(true);
  const torch::Tensor w = torch::randn({B, C, 128, 128});
  const torch::Tensor out = bev_pool(depth, feat, g), out_gpu = bev_pool(dg, fg, gg);
  EXPECT_TRUE(all_close(out_gpu, out, test::kF32RelTol, test::kF32AbsTol));
  (out * w).sum().backward();
  (out_gpu * w.to(kGpu)).sum().backward();
  EXPECT_TRUE(all_close(dg.grad(), depth.grad(), test::kF32RelTol, test::kF32AbsTol));
  EXPECT_TRUE(all_close(fg.grad(), feat.grad(), test::kF32RelTol, test::kF32AbsTol));
  // A geometry prepared on the CPU and moved is the same geometry.
  EXPECT_TRUE(all_close(bev_pool(dg.detach(), fg.detach(), g.to(kGpu)), out, test::kF32RelTol, test::kF32AbsTol));
}

TEST(CudaTwin, GaussianHeatmaps) {
  BEVKD_REQUIRE_CUDA();
  const torch::Tensor boxes = twin_boxes(400, 56.0, 74);
  const torch::Tensor labels = torch::randint(0, 10, {400}, torch::kInt64);
  GaussianOptions o;  // CenterPoint nuScenes: 0.1 m voxels, stride 8
  o.grid = BevGrid::make({-51.2, -51.2, -5.0, 51.2, 51.2, 3.0}, 0.8);
  o.out_size_factor = 8;
  const torch::Tensor cpu = gaussian_heatmaps(boxes, labels, 10, o),
                      gpu = gaussian_heatmaps(boxes.to(kGpu), labels.to(kGpu), 10, o);
  // Radii and centres are bit-identical (float32 without FMA); the float64 exp may differ by an
  // ulp before the cast to float32.
  EXPECT_TRUE(all_close(gpu, cpu, 1e-6, 0));
  EXPECT_TRUE(same((gpu > 0).cpu(), cpu > 0));
  o.min_radius = 1;
  EXPECT_TRUE(all_close(gaussian_mask(boxes.to(kGpu), o), gaussian_mask(boxes, o), 1e-6, 0));
}

TEST(CudaTwin, IouAndNms) {
  BEVKD_REQUIRE_CUDA();
  for (const auto dtype : {torch::kFloat32, torch::kFloat64}) {
    const torch::Tensor a = twin_boxes(300, 8.0, 75).to(dtype),
                        b = twin_boxes(200, 8.0, 76).slice(1, 0, 7).to(dtype);
    const double tol = dtype == torch::kFloat64 ? test::kF64Tol : test::kF32AbsTol;
    EXPECT_TRUE(all_close(bev_iou(a.to(kGpu), b.to(kGpu)), bev_iou(a, b), 0, tol));
    EXPECT_TRUE(all_close(iou_3d(a.to(kGpu), b.to(kGpu)), iou_3d(a, b), 0, tol));
    EXPECT_TRUE(all_close(bev_giou(a.to(kGpu), b.to(kGpu)), bev_giou(a, b), 0, tol));
    EXPECT_TRUE(all_close(bev_giou_aligned(a.slice(0, 0, 200).to(kGpu), b.to(kGpu)),
                          bev_giou_aligned(a.slice(0, 0, 200), b), 0, tol));
    EXPECT_TRUE(all_close(bev_iou_aligned(a.slice(0, 0, 200).to(kGpu), b.to(kGpu)),
                          bev_iou_aligned(a.slice(0, 0, 200), b), 0, tol));
    torch::manual_seed(77);
    const torch::Tensor scores = torch::rand({300}, dtype), groups = torch::randint(0, 4, {300}, torch::kInt64);
    NmsOptions opt;
    opt.pre_max_size = 200;
    opt.post_max_size = 40;
    EXPECT_TRUE(same(nms_bev(a.to(kGpu), scores.to(kGpu), 0.1, opt, groups.to(kGpu)).cpu(),
                     nms_bev(a, scores, 0.1, opt, groups)));
    EXPECT_TRUE(same(circle_nms(a.to(kGpu), scores.to(kGpu), {1.0, 4.0, 0.5, 9.0}, opt, groups.to(kGpu)).cpu(),
                     circle_nms(a, scores, {1.0, 4.0, 0.5, 9.0}, opt, groups)));
  }
}

TEST(CudaTwin, DeformAttnForwardAndBackward) {
  BEVKD_REQUIRE_CUDA();
  // FD3D's distillation head: 900 queries, 8 heads x 4 points, 256 channels over 128 x 128;
  // locations partly off the map, points crowded so that many add into the same value cells.
  const int64_t B = 2, H = 128, W = 128, M = 8, Dh = 32, Q = 900, K = 4;
  for (const auto dtype : {torch::kFloat32, torch::kFloat64}) {
    torch::manual_seed(80);
    const torch::Tensor value = torch::randn({B, H * W, M, Dh}, dtype);
    const torch::Tensor loc = torch::rand({B, Q, M, K, 2}, dtype) * 0.5 - 0.05;
    const torch::Tensor attn = torch::randn({B, Q, M, K}, dtype).softmax(-1);
    const torch::Tensor w = torch::randn({B, Q, M * Dh}, dtype);
    auto run = [&](const torch::Device& dev) {
      const torch::Tensor v = value.to(dev).requires_grad_(true), l = loc.to(dev).requires_grad_(true),
                          a = attn.to(dev).requires_grad_(true);
      const torch::Tensor out = deform_attn(v, H, W, l, a);
      (out * w.to(dev)).sum().backward();
      return std::array<torch::Tensor, 4>{out.detach().cpu(), v.grad().cpu(), l.grad().cpu(), a.grad().cpu()};
    };
    const auto cpu = run(torch::kCPU), gpu = run(kGpu);
    const bool f32 = dtype == torch::kFloat32;
    const double rtol = f32 ? test::kF32RelTol : 0, atol = f32 ? test::kF32AbsTol : test::kF64Tol;
    EXPECT_TRUE(all_close(gpu[0], cpu[0], rtol, atol)) << "output " << dtype;
    EXPECT_TRUE(
        all_close(gpu[1], cpu[1], f32 ? test::kF32AtomicRelTol : 0, f32 ? test::kF32AtomicAbsTol : test::kF64Tol))
        << "value gradient (atomicAdd on the GPU) " << dtype;
    // location gradients: sums of 32 channel products times W = 128
    EXPECT_TRUE(all_close(gpu[2], cpu[2], f32 ? test::kF32AtomicRelTol : 0, f32 ? 1e-3 : 1e-8))
        << "location gradient " << dtype;
    EXPECT_TRUE(all_close(gpu[3], cpu[3], rtol, f32 ? test::kF32AtomicAbsTol : test::kF64Tol))
        << "weight gradient " << dtype;
  }
}

TEST(CudaTwin, DepthProjection) {
  BEVKD_REQUIRE_CUDA();
  torch::manual_seed(78);
  torch::Tensor pts = torch::rand({250000, 5});
  pts.select(1, 0).mul_(100).sub_(50);
  pts.select(1, 1).mul_(100).sub_(50);
  pts.select(1, 2).mul_(6).sub_(3);
  // Six cameras around the ego vehicle, 704 x 256 images.
  std::vector<torch::Tensor> e;
  for (int n = 0; n < 6; ++n) {
    const double yaw = n * M_PI / 3, c = std::cos(yaw), s = std::sin(yaw);
    // columns: camera x (right) = (s, -c, 0), camera y (down) = (0, 0, -1), camera z (forward) = (c, s, 0)
    e.push_back(
        torch::tensor({{s, 0.0, c, 1.0 * c}, {-c, 0.0, s, 1.0 * s}, {0.0, -1.0, 0.0, 1.6}, {0.0, 0.0, 0.0, 1.0}}));
  }
  const torch::Tensor cam2ego = torch::stack(e).to(torch::kFloat32);
  const torch::Tensor k = torch::tensor({{560.0f, 0.0f, 352.0f}, {0.0f, 560.0f, 128.0f}, {0.0f, 0.0f, 1.0f}});
  const torch::Tensor intr = k.expand({6, 3, 3}).contiguous();
  const torch::Tensor boxes = twin_boxes(60, 40.0, 79);
  DepthProjectionOptions o;  // 256 x 704, stride 16
  const SparseDepth cpu = project_depth_sparse(pts, cam2ego, intr, boxes, o);
  const SparseDepth gpu = project_depth_sparse(pts.to(kGpu), cam2ego.to(kGpu), intr.to(kGpu), boxes.to(kGpu), o);
  EXPECT_TRUE(same(gpu.offsets, cpu.offsets));
  EXPECT_TRUE(same(gpu.uvd, cpu.uvd));
  EXPECT_TRUE(same(gpu.box_id, cpu.box_id));
  o.stride = 1;
  const DenseDepth dc = project_depth_dense(pts, cam2ego, intr, boxes, o);
  const DenseDepth dg = project_depth_dense(pts.to(kGpu), cam2ego.to(kGpu), intr.to(kGpu), boxes.to(kGpu), o);
  EXPECT_TRUE(same(dg.depth, dc.depth));
  EXPECT_TRUE(same(dg.box_id, dc.box_id));
}

}  // namespace
}  // namespace bevkd::kernels
