// loss-probe's boxes are mmdet3d v0.17 (x, y, z, dx, dy, dz, yaw', vx, vy); the trainer's are
// DESIGN.md Boxes (x, y, z, l, w, h, yaw, vx, vy). A rotated, non-square box written by hand in
// both conventions gives equal losses through the probe (which converts at its boundary) and
// through the trainer-side functions called with the DESIGN Box.
#include <gtest/gtest.h>

#include <cmath>

#include "tests/support/tensor_close.h"
#include "tests/train/probe/probe_test_util.h"
#include "train/losses/bevdistill.h"
#include "train/losses/focaldistiller.h"
#include "train/losses/gaussian_fg.h"
#include "train/probe/box_convention.h"
#include "train/probe/npy.h"

namespace bevkd::train {
namespace {

using nlohmann::json;
using bevkd::testing::kF64;

// The same two physical boxes. Box 0: a 4.6 m x 1.9 m car at yaw 0.6 rad (l along the heading);
// box 1: a 12 m x 2.9 m truck heading -2.5 rad.
torch::Tensor design_boxes() {
  return torch::tensor(
      {{3.1, -2.4, 0.7, 4.6, 1.9, 1.6, 0.6, 1.2, -0.4}, {-6.0, 5.5, 1.2, 12.0, 2.9, 3.4, -2.5, -3.0, 0.8}}, kF64);
}
// mmdet3d v0.17: dims (w, l, h) = (dx, dy, dz), yaw' = -yaw - pi/2, z the gravity centre.
torch::Tensor v017_boxes() {
  return torch::tensor({{3.1, -2.4, 0.7, 1.9, 4.6, 1.6, -0.6 - M_PI / 2, 1.2, -0.4},
                        {-6.0, 5.5, 1.2, 2.9, 12.0, 3.4, 2.5 - M_PI / 2, -3.0, 0.8}},
                       kF64);
}

TEST(ProbeBoxConvention, ConversionOfARotatedNonSquareBox) {
  const torch::Tensor b = probe::v017_boxes_to_bevkd(v017_boxes());
  const torch::Tensor d = design_boxes();
  // Same everything; yaw equal modulo 2π (box 1: 2.5 − π/2 -> −2.5).
  EXPECT_TRUE(bevkd::testing::all_close(b.slice(1, 0, 6), d.slice(1, 0, 6), 0, 1e-15));
  EXPECT_TRUE(bevkd::testing::all_close(b.slice(1, 7, 9), d.slice(1, 7, 9), 0, 1e-15));
  EXPECT_TRUE(bevkd::testing::all_close(b.select(1, 6).sin(), d.select(1, 6).sin(), 0, 1e-15));
  EXPECT_TRUE(bevkd::testing::all_close(b.select(1, 6).cos(), d.select(1, 6).cos(), 0, 1e-15));
  EXPECT_TRUE((b.select(1, 6) >= -M_PI).all().item<bool>() && (b.select(1, 6) < M_PI).all().item<bool>());
  // The reference's regression code of the v0.17 box maps onto bevkd's code of the DESIGN box.
  const torch::Tensor v = v017_boxes();
  const torch::Tensor ref_code =
      torch::stack({v.select(1, 0), v.select(1, 1), v.select(1, 3).log(), v.select(1, 4).log(), v.select(1, 2),
                    v.select(1, 5).log(), v.select(1, 6).sin(), v.select(1, 6).cos(), v.select(1, 7), v.select(1, 8)},
                   1);
  EXPECT_TRUE(
      bevkd::testing::all_close(probe::v017_box_code_to_bevkd(ref_code), losses::bevdistill_box_code(d), 0, 1e-14));
}

TEST(ProbeBoxConvention, GaussianMapAndDenseLossEqualThroughProbeAndTrainer) {
  test::TempDir dir;
  // Non-square voxels (0.1 x 0.2 m, stride 4 -> 0.4 x 0.8 m cells) make the size order matter.
  // The trainer's heat-map grid: 64 x 32 cells of 0.4 x 0.8 m over [-12.8, 12.8]².
  kernels::GaussianOptions g;
  g.grid = BevGrid::make({-12.8, -12.8, -5, 12.8, 12.8, 3}, 0.4, 0.8);
  g.out_size_factor = 4;
  g.min_radius = 1;
  test::write_case(dir / "g", {{"boxes", v017_boxes().to(torch::kFloat32)}},
                   {{"H", 32},
                    {"W", 64},
                    {"pc_min_xy", {-12.8, -12.8}},
                    {"voxel_xy", {0.1, 0.2}},
                    {"out_size_factor", 4},
                    {"min_radius", 1}});
  const test::ProbeRun r = test::probe("gaussian_fg_map", dir / "g", dir / "gout");
  ASSERT_EQ(r.code, 0) << r.err;
  const losses::FgMap trainer = losses::gaussian_fg_map(design_boxes().to(torch::kFloat32), g);
  EXPECT_TRUE(torch::equal(probe::read_npy(dir / "gout/fg_map.npy"), trainer.map.to(torch::kFloat64)));
  EXPECT_TRUE(torch::equal(probe::read_npy(dir / "gout/radius_per_box.npy"), trainer.radius));
  // The size order matters here: swapping l and w gives other radii.
  torch::Tensor swapped = design_boxes();
  swapped.select(1, 3).copy_(design_boxes().select(1, 4));
  swapped.select(1, 4).copy_(design_boxes().select(1, 3));
  EXPECT_FALSE(torch::equal(losses::gaussian_fg_map(swapped, g).radius, trainer.radius));

  // bevdistill_dense with fg from the boxes (stride 8 on grid_size [nx, ny] = [128, 64]).
  torch::manual_seed(21);
  const torch::Tensor s = torch::randn({1, 3, 8, 16}, kF64), t = torch::randn({1, 3, 8, 16}, kF64);
  test::write_case(
      dir / "d", {{"s_feat", s}, {"t_feat", t}, {"boxes_b0", v017_boxes()}},
      {{"grid_size", {128, 64}}, {"voxel_size", {0.2, 0.4}}, {"pc_range", {-12.8, -12.8, -5, 12.8, 12.8, 3}}});
  const test::ProbeRun rd = test::probe("bevdistill_dense", dir / "d");
  ASSERT_EQ(rd.code, 0) << rd.err;
  kernels::GaussianOptions gd = g;
  gd.grid = BevGrid::make({-12.8, -12.8, -5, 12.8, 12.8, 3}, 1.6, 3.2);  // 16 x 8 cells
  gd.out_size_factor = 8;
  const torch::Tensor fg = losses::gaussian_fg_maps({design_boxes()}, gd);
  EXPECT_GT(fg.sum().item<double>(), 0.0);
  EXPECT_DOUBLE_EQ(rd.json()["values"]["bev_fit_loss"].get<double>(),
                   losses::bevdistill_dense(s, t, fg).item<double>());
}

TEST(ProbeBoxConvention, BoxDistillEqualThroughProbeAndTrainer) {
  test::TempDir dir;
  torch::manual_seed(22);
  // Student predictions in the reference's layout (x, y, log w, log l, z, log h, sin yaw', cos yaw', vx, vy),
  // close to the teacher boxes, with asymmetric code weights so that a wrong permutation shows.
  const torch::Tensor v = v017_boxes();
  const torch::Tensor ref_code =
      torch::stack({v.select(1, 0), v.select(1, 1), v.select(1, 3).log(), v.select(1, 4).log(), v.select(1, 2),
                    v.select(1, 5).log(), v.select(1, 6).sin(), v.select(1, 6).cos(), v.select(1, 7), v.select(1, 8)},
                   1);
  torch::Tensor preds_v017 = torch::randn({1, 1, 3, 10}, kF64) * 0.3;
  preds_v017[0][0][0] += ref_code[1];
  preds_v017[0][0][2] += ref_code[0];
  const torch::Tensor logits = torch::randn({1, 1, 3, 4}, kF64);
  const torch::Tensor scores = torch::rand({2, 4}, kF64);
  const std::vector<double> cw{1, 0.5, 2, 0.7, 1, 1.5, 0.3, 1.2, 0.2, 0.4};
  test::write_case(dir / "b",
                   {{"cls_logits", logits}, {"bbox_preds", preds_v017}, {"t_boxes_b0", v}, {"t_scores_b0", scores}},
                   {{"code_weights", cw}});
  const test::ProbeRun r = test::probe("bevdistill_box_distill", dir / "b", dir / "out", true);
  ASSERT_EQ(r.code, 0) << r.err;

  // Trainer side: DESIGN boxes; the student's predictions in bevkd's layout, written out by hand:
  // (x, y, log l, log w, z, log h, sin yaw, cos yaw, vx, vy) with sin yaw = −cos yaw', cos yaw = −sin yaw'.
  const torch::Tensor p = preds_v017;
  const torch::Tensor preds_bevkd =
      torch::stack({p.select(3, 0), p.select(3, 1), p.select(3, 3), p.select(3, 2), p.select(3, 4), p.select(3, 5),
                    -p.select(3, 7), -p.select(3, 6), p.select(3, 8), p.select(3, 9)},
                   3)
          .requires_grad_(true);
  losses::BoxDistillOptions o;
  o.code_weights = {1, 0.5, 0.7, 2, 1, 1.5, 1.2, 0.3, 0.2, 0.4};
  const losses::BoxDistillTeacher teacher{losses::bevdistill_box_code(design_boxes()), scores,
                                          losses::bevdistill_max_prob_score(scores)};
  const losses::BoxDistillResult want = losses::bevdistill_box_distill(logits, preds_bevkd, {teacher}, o);
  const double got = r.json()["values"]["loss_bbox_distill_total"];
  EXPECT_NEAR(got, want.total.item<double>(), 1e-14 * std::abs(got));
  EXPECT_GT(got, 0.0);
  const torch::Tensor match = probe::read_npy(dir / "out/match_l0_b0.npy");
  EXPECT_EQ(match[0][1].item<int64_t>(), want.matches[0][0].cols[0]);
  EXPECT_EQ(match[1][1].item<int64_t>(), want.matches[0][0].cols[1]);
  // The gradient, mapped back to the reference's layout, is the probe's.
  want.total.backward();
  const torch::Tensor gb = preds_bevkd.grad();
  const torch::Tensor g_v017 =
      torch::stack({gb.select(3, 0), gb.select(3, 1), gb.select(3, 3), gb.select(3, 2), gb.select(3, 4),
                    gb.select(3, 5), -gb.select(3, 7), -gb.select(3, 6), gb.select(3, 8), gb.select(3, 9)},
                   3);
  EXPECT_TRUE(bevkd::testing::all_close(probe::read_npy(dir / "out/grad_bbox_preds.npy"), g_v017, 0, 1e-15));
}

TEST(ProbeBoxConvention, HeatmapMaskEqualThroughProbeAndTrainer) {
  test::TempDir dir;
  torch::manual_seed(23);
  const torch::Tensor s = torch::randn({1, 2, 10, 10}, kF64), t = torch::randn({1, 2, 10, 10}, kF64);
  test::write_case(dir / "h", {{"s_bev", s}, {"t_bev", t}, {"boxes_b0", v017_boxes()}},
                   {{"heatmap_grid", {256, 128}},
                    {"voxel", {0.1, 0.2}},
                    {"out_size_factor", 4},
                    {"pc_range", {-12.8, -12.8, -5, 12.8, 12.8, 3}}});
  const test::ProbeRun r = test::probe("focaldistiller_bev_l2_heatmap", dir / "h", dir / "out");
  ASSERT_EQ(r.code, 0) << r.err;
  kernels::GaussianOptions g;
  g.grid = BevGrid::make({-12.8, -12.8, -5, 12.8, 12.8, 3}, 0.4, 0.8);  // 64 x 32 cells
  g.out_size_factor = 4;
  g.min_radius = 2;
  const torch::Tensor mask = losses::focaldistiller_heat_mask({design_boxes()}, g, 10, 10);
  EXPECT_TRUE(torch::equal(probe::read_npy(dir / "out/heat_mask.npy"), mask.to(torch::kFloat64)));
  EXPECT_DOUBLE_EQ(r.json()["values"]["loss"].get<double>(),
                   losses::focaldistiller_bev_l2_heatmap(s, t, mask).item<double>());
}

}  // namespace
}  // namespace bevkd::train
