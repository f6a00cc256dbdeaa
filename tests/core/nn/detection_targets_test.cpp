// CenterPoint target assignment and decoding: hand cases in bevkd's box convention, upstream's
// edge cases (truncation toward zero, off-grid centres, slot order) and the encode -> decode
// round trip.
#include <gtest/gtest.h>

#include <cmath>

#include "base/error.h"
#include "core/nn/center_decode.h"
#include "core/nn/center_targets.h"

namespace bevkd::core::nn {
namespace {

constexpr float kPi = 3.14159265358979f;

// A 0.2 m voxel grid over [-12.8, 12.8) with out_size_factor 4: 32x32 cells of 0.8 m.
CenterTargetConfig small_targets(std::vector<TaskClasses> tasks = nuscenes_tasks()) {
  CenterTargetConfig c;
  c.geometry.grid = BevGrid::make({-12.8, -12.8, -5, 12.8, 12.8, 3}, 0.8);
  c.geometry.out_size_factor = 4;
  c.max_objs = 8;
  c.tasks = std::move(tasks);
  return c;
}

torch::Tensor boxes_tensor(const std::vector<std::array<float, 9>>& rows) {
  std::vector<float> v;
  for (const auto& r : rows) v.insert(v.end(), r.begin(), r.end());
  return torch::tensor(v).view({static_cast<int64_t>(rows.size()), 9});
}

TEST(CenterTargets, HandCaseInBevkdConvention) {
  const auto cfg = small_targets();
  // A car at (1.0, -2.2, 0.9), l 4.5 along a heading of 30 degrees, w 1.9, h 1.6, v (3, 1).
  const auto boxes = boxes_tensor({{1.0f, -2.2f, 0.9f, 4.5f, 1.9f, 1.6f, kPi / 6, 3.0f, 1.0f}});
  const auto t = center_targets({boxes}, {torch::tensor({0}, torch::kInt64)}, cfg);
  ASSERT_EQ(t.size(), 6u);
  // coor = ((1 + 12.8) / 0.2 / 4, (-2.2 + 12.8) / 0.2 / 4) = (17.25, 13.25) -> cell (13, 17).
  EXPECT_EQ(t[0].mask[0][0].item<int>(), 1);
  EXPECT_EQ(t[0].index[0][0].item<int64_t>(), 13 * 32 + 17);
  const auto b = t[0].box[0][0];
  const float want[10] = {0.25f, 0.25f, 0.9f, std::log(4.5f), std::log(1.9f), std::log(1.6f), 0.5f,
                          std::cos(kPi / 6), 3.0f, 1.0f};
  for (int c = 0; c < 10; ++c) EXPECT_NEAR(b[c].item<float>(), want[c], 1e-4) << "channel " << c;
  EXPECT_EQ(t[0].heatmap[0][0][13][17].item<float>(), 1.0f);
  EXPECT_EQ(t[0].heatmap.sum().item<float>() > 1.0f, true);  // a Gaussian, not a single cell
  for (size_t k = 1; k < 6; ++k) {
    EXPECT_EQ(t[k].mask.sum().item<int>(), 0);
    EXPECT_EQ(t[k].heatmap.sum().item<float>(), 0.0f);
  }
}

TEST(CenterTargets, UpstreamEdgeCases) {
  const auto cfg = small_targets(single_task());
  // 0: centre 0.05 m below x_min -> coor_x -0.0625 truncates to column 0 (not -1).
  // 1: centre outside the grid -> no slot.
  // 2: zero width -> skipped.
  // 3: a pedestrian with NaN velocity -> NaN kept in the target.
  const auto boxes = boxes_tensor({{-12.85f, 0.1f, 0, 4, 2, 1.5f, 0, 0, 0},
                                   {20.0f, 0.0f, 0, 4, 2, 1.5f, 0, 0, 0},
                                   {3.0f, 3.0f, 0, 4, 0, 1.5f, 0, 0, 0},
                                   {-3.0f, 5.0f, 0, 0.7f, 0.7f, 1.8f, 0, NAN, NAN}});
  const auto labels = torch::tensor({0, 0, 1, 8}, torch::kInt64);
  const auto t = center_targets({boxes}, {labels}, cfg)[0];
  // Slots follow the task's class order: class 0 objects (boxes 0, 1), then class 1 (box 2),
  // then class 8 (box 3).
  EXPECT_EQ(t.mask[0][0].item<int>(), 1);
  EXPECT_EQ(t.index[0][0].item<int64_t>() % 32, 0);
  EXPECT_NEAR(t.box[0][0][0].item<float>(), -0.0625f, 1e-4);  // offset from the truncated cell
  EXPECT_EQ(t.mask[0][1].item<int>(), 0);
  EXPECT_EQ(t.mask[0][2].item<int>(), 0);
  EXPECT_EQ(t.mask[0][3].item<int>(), 1);
  EXPECT_TRUE(std::isnan(t.box[0][3][8].item<float>()));
  EXPECT_EQ(t.heatmap[0][1].sum().item<float>(), 0.0f);  // the zero-width truck drew nothing
}

TEST(CenterTargets, MaxObjsCapsSlots) {
  auto cfg = small_targets(single_task());
  cfg.max_objs = 2;
  const auto boxes = boxes_tensor({{0, 0, 0, 4, 2, 1.5f, 0, 0, 0}, {5, 5, 0, 4, 2, 1.5f, 0, 0, 0},
                                   {-5, -5, 0, 4, 2, 1.5f, 0, 0, 0}});
  const auto t = center_targets({boxes}, {torch::tensor({0, 0, 0}, torch::kInt64)}, cfg)[0];
  EXPECT_EQ(t.mask.sum().item<int>(), 2);
  EXPECT_EQ(t.box.size(1), 2);
  // Like upstream (its loop runs over num_objs = min(N, max_objs)), the third object is not drawn.
  EXPECT_EQ(t.heatmap.eq(1).sum().item<int>(), 2);
}

TEST(CenterTargets, RejectsBadInput) {
  const auto cfg = small_targets();
  try {
    center_targets({torch::zeros({2, 7})}, {torch::zeros({2}, torch::kInt64)}, cfg);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "center targets: sample 0 boxes have shape [2, 7], expected [N, 9]");
  }
}

// A prediction that reproduces the targets exactly: heat-map logits +-12 at / away from the
// centre cells, regression maps holding the target values at the centre cells.
std::vector<TaskPrediction> perfect_prediction(const std::vector<TaskTargets>& targets, int64_t H, int64_t W) {
  std::vector<TaskPrediction> preds;
  for (const auto& t : targets) {
    const auto B = t.heatmap.size(0);
    TaskPrediction p;
    p.heatmap = torch::where(t.heatmap.eq(1), torch::full_like(t.heatmap, 12), torch::full_like(t.heatmap, -12));
    auto reg = torch::zeros({B, 10, H * W});
    for (int64_t b = 0; b < B; ++b)
      for (int64_t m = 0; m < t.mask.size(1); ++m)
        if (t.mask[b][m].item<int>() == 1) reg[b].select(1, t.index[b][m].item<int64_t>()).copy_(t.box[b][m]);
    reg = reg.view({B, 10, H, W});
    p.reg = reg.narrow(1, 0, 2);
    p.height = reg.narrow(1, 2, 1);
    p.dim = reg.narrow(1, 3, 3);
    p.rot = reg.narrow(1, 6, 2);
    p.vel = reg.narrow(1, 8, 2);
    preds.push_back(p);
  }
  return preds;
}

TEST(CenterDecode, EncodeDecodeRoundTrip) {
  const auto cfg = small_targets();
  const auto boxes0 = boxes_tensor({{1.0f, -2.2f, 0.9f, 4.5f, 1.9f, 1.6f, kPi / 6, 3.0f, 1.0f},
                                    {-7.3f, 6.1f, 1.2f, 10.5f, 2.9f, 3.4f, -2.5f, 0.0f, -4.0f},
                                    {5.5f, 8.8f, 0.4f, 0.6f, 0.7f, 1.7f, 3.0f, 0.5f, 0.2f}});
  const auto labels0 = torch::tensor({0, 3, 8}, torch::kInt64);
  const auto boxes1 = boxes_tensor({{-3.0f, -9.0f, 0.3f, 0.5f, 0.5f, 1.0f, 1.0f, 0.0f, 0.0f}});
  const auto labels1 = torch::tensor({9}, torch::kInt64);
  const auto targets = center_targets({boxes0, boxes1}, {labels0, labels1}, cfg);
  const auto grid = cfg.geometry.output_grid();
  DecodeConfig dc;
  dc.grid = grid;
  dc.tasks = cfg.tasks;
  dc.nms = NmsKind::kRotate;
  const auto dets = decode_center_head(perfect_prediction(targets, grid.H, grid.W), dc);
  ASSERT_EQ(dets.size(), 2u);
  const std::vector<torch::Tensor> want{boxes0, boxes1};
  const std::vector<torch::Tensor> want_labels{labels0, labels1};
  for (size_t b = 0; b < 2; ++b) {
    ASSERT_EQ(dets[b].size(), want[b].size(0)) << "sample " << b;
    for (int64_t i = 0; i < want[b].size(0); ++i) {
      // Find the detection with this label.
      const auto j = dets[b].labels.eq(want_labels[b][i]).nonzero();
      ASSERT_EQ(j.size(0), 1);
      const auto got = dets[b].boxes[j[0][0].item<int64_t>()];
      EXPECT_TRUE(torch::allclose(got, want[b][i], 1e-5, 1e-4)) << "sample " << b << " box " << i << ": got " << got
                                                                << " want " << want[b][i];
    }
  }
}

TEST(CenterDecode, TopKAndThresholds) {
  // 1 class, 4x4 map: values 0.9 at (1, 2), 0.5 at (3, 0), 0.05 elsewhere.
  auto heat = torch::full({1, 1, 4, 4}, 0.05f);
  heat[0][0][1][2] = 0.9f;
  heat[0][0][3][0] = 0.5f;
  const auto top = topk_heatmap(heat, 3);
  EXPECT_NEAR(top.scores[0][0].item<float>(), 0.9f, 1e-6);
  EXPECT_EQ(top.index[0][0].item<int64_t>(), 1 * 4 + 2);
  EXPECT_EQ(top.index[0][1].item<int64_t>(), 3 * 4 + 0);
  EXPECT_EQ(topk_heatmap(heat, 100).scores.size(1), 16);  // K clamped to the map

  // Decoding: the 0.05 cells fall under the 0.1 threshold; boxes decode at cell + offset.
  TaskPrediction p;
  p.heatmap = torch::logit(heat);
  p.reg = torch::full({1, 2, 4, 4}, 0.25f);
  p.height = torch::full({1, 1, 4, 4}, 1.0f);
  p.dim = torch::zeros({1, 3, 4, 4});
  p.rot = torch::zeros({1, 2, 4, 4});
  p.rot.select(1, 1).fill_(-1.0f);  // yaw = atan2(0, -1) = pi, wrapped to -pi
  p.vel = torch::zeros({1, 2, 4, 4});
  DecodeConfig dc;
  dc.grid = BevGrid::make({-2, -2, -5, 2, 2, 3}, 1.0);
  dc.tasks = {{4}};
  dc.nms = NmsKind::kNone;
  const auto d = decode_center_head({p}, dc)[0];
  ASSERT_EQ(d.size(), 2);
  EXPECT_NEAR(d.boxes[0][0].item<float>(), -2 + 2.25f, 1e-6);  // col 2
  EXPECT_NEAR(d.boxes[0][1].item<float>(), -2 + 1.25f, 1e-6);  // row 1
  EXPECT_NEAR(d.boxes[0][6].item<float>(), -kPi, 1e-5);
  EXPECT_EQ(d.labels[0].item<int64_t>(), 4);
  EXPECT_NEAR(d.scores[1].item<float>(), 0.5f, 1e-6);
  // The post-centre range drops the second box (y = -2 + 3.25 = 1.25 > 1).
  dc.post_center_range = {-10, -10, -10, 10, 1, 10};
  EXPECT_EQ(decode_center_head({p}, dc)[0].size(), 1);
}

TEST(CenterDecode, RotatedNmsSuppressesOverlapsWithinATask) {
  // Two strong peaks in adjacent cells with identical boxes: rotated NMS keeps one.
  TaskPrediction p;
  p.heatmap = torch::full({1, 1, 4, 4}, -10.0f);
  p.heatmap[0][0][1][1] = 3.0f;
  p.heatmap[0][0][1][2] = 2.0f;
  p.reg = torch::zeros({1, 2, 4, 4});
  p.reg[0][0][1][2] = -0.5f;  // pull the second centre 0.5 cells towards the first
  p.height = torch::zeros({1, 1, 4, 4});
  p.dim = torch::full({1, 3, 4, 4}, std::log(2.0f));
  p.rot = torch::zeros({1, 2, 4, 4});
  p.rot.select(1, 1).fill_(1.0f);
  p.vel = torch::zeros({1, 2, 4, 4});
  DecodeConfig dc;
  dc.grid = BevGrid::make({-2, -2, -5, 2, 2, 3}, 1.0);
  dc.tasks = {{0}};
  dc.nms = NmsKind::kRotate;
  EXPECT_EQ(decode_center_head({p}, dc)[0].size(), 1);
  dc.nms = NmsKind::kNone;
  EXPECT_EQ(decode_center_head({p}, dc)[0].size(), 2);
  dc.nms = NmsKind::kCircle;
  dc.circle_nms_radius = {0.5};  // centres 0.5 m apart: 0.25 m² <= 0.5 suppresses
  EXPECT_EQ(decode_center_head({p}, dc)[0].size(), 1);
}

TEST(CenterDecode, PerClassNmsKeepsOverlappingBoxesOfDifferentClasses) {
  // One task with two classes; overlapping peaks in channel 0 and channel 1.
  TaskPrediction p;
  p.heatmap = torch::full({1, 2, 4, 4}, -10.0f);
  p.heatmap[0][0][1][1] = 3.0f;
  p.heatmap[0][1][1][2] = 2.0f;
  p.reg = torch::zeros({1, 2, 4, 4});
  p.reg[0][0][1][2] = -0.5f;
  p.height = torch::zeros({1, 1, 4, 4});
  p.dim = torch::full({1, 3, 4, 4}, std::log(2.0f));
  p.rot = torch::zeros({1, 2, 4, 4});
  p.rot.select(1, 1).fill_(1.0f);
  p.vel = torch::zeros({1, 2, 4, 4});
  DecodeConfig dc;
  dc.grid = BevGrid::make({-2, -2, -5, 2, 2, 3}, 1.0);
  dc.tasks = {{6, 8}};  // motorcycle, pedestrian
  dc.nms = NmsKind::kRotate;
  const auto across = decode_center_head({p}, dc)[0];
  ASSERT_EQ(across.size(), 1);  // mmdet3d: NMS across the task's classes
  EXPECT_EQ(across.labels[0].item<int64_t>(), 6);
  dc.nms_per_class = true;
  const auto per_class = decode_center_head({p}, dc)[0];
  ASSERT_EQ(per_class.size(), 2);
  EXPECT_EQ(per_class.labels[1].item<int64_t>(), 8);
}

}  // namespace
}  // namespace bevkd::core::nn
