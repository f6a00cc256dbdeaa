// The trainer kit of core/nn: LR schedules, gradient clipping, the metrics log, SECOND blocks
// and the one GT rule.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <limits>

#include "base/fs.h"
#include "core/nn/gt_filter.h"
#include "core/nn/lr_schedule.h"
#include "core/nn/metrics_log.h"
#include "core/nn/second.h"
#include "tests/support/expect_error.h"
#include "tests/support/tensor_close.h"
#include "tests/support/temp_dir.h"

namespace bevkd::core::nn {
namespace {

TEST(LrSchedule, OneCycleRisesThenFallsWithInverseMomentum) {
  LrScheduleConfig c;  // onecycle, lr 2e-3, warm-up 0.4, div 10, final div 1e4
  const int64_t total = 101;
  const auto first = lr_at(c, 0, total), peak = lr_at(c, 40, total), last = lr_at(c, 100, total);
  EXPECT_NEAR(first.lr, 2e-4, 1e-12);
  EXPECT_NEAR(first.beta1, 0.95, 1e-12);
  EXPECT_NEAR(peak.lr, 2e-3, 1e-12);
  EXPECT_NEAR(peak.beta1, 0.85, 1e-12);
  EXPECT_NEAR(last.lr, 2e-7, 1e-15);
  EXPECT_NEAR(last.beta1, 0.95, 1e-12);
  // Half way up: the cosine midpoint.
  EXPECT_NEAR(lr_at(c, 20, total).lr, 2e-4 + (2e-3 - 2e-4) / 2, 1e-12);
  for (int64_t s = 1; s <= 40; ++s) EXPECT_GE(lr_at(c, s, total).lr, lr_at(c, s - 1, total).lr);
  for (int64_t s = 41; s <= 100; ++s) EXPECT_LE(lr_at(c, s, total).lr, lr_at(c, s - 1, total).lr);
}

TEST(LrSchedule, CosineWithLinearWarmUpAndConstant) {
  LrScheduleConfig c;
  c.kind = "cosine";
  c.lr = 1.0;
  c.warmup_fraction = 0.25;
  c.div_factor = 4;
  c.final_div_factor = 100;
  EXPECT_NEAR(lr_at(c, 0, 5).lr, 0.25, 1e-12);
  EXPECT_NEAR(lr_at(c, 1, 5).lr, 1.0, 1e-12);  // t = 0.25: the peak
  EXPECT_NEAR(lr_at(c, 4, 5).lr, 0.01, 1e-12);
  EXPECT_EQ(lr_at(c, 2, 5).beta1, 0.9);
  c.kind = "constant";
  EXPECT_NEAR(lr_at(c, 4, 5).lr, 1.0, 1e-12);
  c.kind = "step";
  EXPECT_ERROR_WITH(c.validate("train"), "train: schedule kind is 'step', expected onecycle, cosine or constant");
}

TEST(LrSchedule, ApplySetsEveryGroupsLrAndBetas) {
  auto w = torch::zeros({3}, torch::requires_grad());
  torch::optim::AdamW opt({w}, torch::optim::AdamWOptions(1.0));
  apply_lr(opt, LrPoint{0.5, 0.8, 0.99}, 2.0);
  const auto& o = static_cast<torch::optim::AdamWOptions&>(opt.param_groups()[0].options());
  EXPECT_EQ(o.lr(), 1.0);
  EXPECT_EQ(std::get<0>(o.betas()), 0.8);
  EXPECT_EQ(std::get<1>(o.betas()), 0.99);
}

TEST(ClipGradNorm, ScalesAboveTheLimitAndReportsNonFinite) {
  auto a = torch::zeros({2}, torch::requires_grad()), b = torch::zeros({1}, torch::requires_grad());
  a.mutable_grad() = torch::tensor({3.0f, 0.0f});
  b.mutable_grad() = torch::tensor({4.0f});
  EXPECT_NEAR(clip_grad_norm({a, b}, 10.0), 5.0, 1e-9);  // below: untouched
  EXPECT_FLOAT_EQ(a.grad()[0].item<float>(), 3.0f);
  EXPECT_NEAR(clip_grad_norm({a, b}, 1.0), 5.0, 1e-9);
  EXPECT_NEAR(a.grad()[0].item<float>(), 3.0f / 5.0f, 1e-6);
  EXPECT_NEAR(b.grad()[0].item<float>(), 4.0f / 5.0f, 1e-6);
  b.mutable_grad() = torch::tensor({std::numeric_limits<float>::quiet_NaN()});
  EXPECT_TRUE(std::isnan(clip_grad_norm({a, b}, 1.0)));
  EXPECT_NEAR(a.grad()[0].item<float>(), 0.6f, 1e-6);  // not scaled
}

TEST(MetricsLog, AppendsAndCutsBackOnResume) {
  testing::TempDir dir;
  const std::string path = dir / "metrics.jsonl";
  {
    MetricsLog log(path, -1);
    for (int s = 1; s <= 5; ++s) log.append({{"step", s}, {"loss", 1.0 / s}});
    log.append({{"event", "note"}});
  }
  // A torn last line from a killed run.
  std::ofstream(path, std::ios::app) << "{\"step\": 6, \"lo";
  EXPECT_EQ(MetricsLog::read(path).size(), 6u);
  {
    MetricsLog resumed(path, 3);
    resumed.append({{"step", 4}, {"loss", 0.3}});
  }
  const auto recs = MetricsLog::read(path);
  ASSERT_EQ(recs.size(), 5u);  // steps 1..3, the event without a step, the new step 4
  EXPECT_EQ(recs[2].at("step"), 3);
  EXPECT_EQ(recs[4].at("loss"), 0.3);
  MetricsLog fresh(path, -1);
  EXPECT_TRUE(MetricsLog::read(path).empty());
}

TEST(Second, BackboneAndFpnShapesAndMmdet3dNames) {
  SecondConfig bb;
  bb.out_channels = {8, 16};
  bb.layer_nums = {1, 1};
  bb.layer_strides = {2, 2};
  SecondFpnConfig neck;
  neck.out_channels = {4, 4};
  neck.upsample_strides = {1, 2};
  SecondBackbone backbone(3, bb);
  SecondFpn fpn(bb.out_channels, neck);
  const auto levels = backbone->forward(torch::randn({2, 3, 32, 32}));
  ASSERT_EQ(levels.size(), 2u);
  EXPECT_EQ(levels[1].sizes(), torch::IntArrayRef({2, 16, 8, 8}));
  EXPECT_EQ(fpn->forward(levels).sizes(), torch::IntArrayRef({2, 8, 16, 16}));
  const auto names = backbone->named_parameters();
  EXPECT_TRUE(names.contains("blocks.0.0.weight"));
  EXPECT_TRUE(names.contains("blocks.1.4.weight"));  // conv, bn, relu, conv, bn
  EXPECT_TRUE(fpn->named_parameters().contains("deblocks.1.0.weight"));
  neck.upsample_strides = {1, 4};
  SecondFpn wrong(bb.out_channels, neck);
  EXPECT_ERROR_WITH(wrong->forward(levels), "SECONDFPN neck: level 1 comes out at 32x32, level 0 at 16x16");
  neck.upsample_strides = {1, 0.3};
  EXPECT_ERROR_WITH(neck.validate("neck"), "neck: upsample_strides[1] is 0.3, expected an integer >= 1 or 1/n");
}

StoredGt stored(const std::vector<std::array<float, 9>>& boxes, std::vector<int64_t> labels, std::vector<int64_t> lidar,
                std::vector<int64_t> radar, std::vector<uint8_t> vel) {
  std::vector<float> flat;
  for (const auto& b : boxes) flat.insert(flat.end(), b.begin(), b.end());
  const auto n = static_cast<int64_t>(boxes.size());
  return {torch::tensor(flat).view({n, 9}), torch::tensor(labels), torch::tensor(lidar), torch::tensor(radar),
          torch::tensor(std::vector<int64_t>(vel.begin(), vel.end())).to(torch::kUInt8)};
}

TEST(GtRule, ValidBoxesAndUnknownVelocityBecomeNaN) {
  const auto gt = stored({{1, 2, 0, 4, 2, 1.5, 0.1f, 3, 4},   // valid, velocity known
                          {5, 5, 0, 4, 2, 1.5, 0, 0, 0},      // no points: not a target
                          {-3, 1, 0, 1, 1, 1.8f, 0, 0, 0},    // radar only; velocity unknown
                          {0, 0, 0, 1, 1, 1, 0, 0, 0}},       // label out of range
                         {0, 1, 8, 12}, {10, 0, 0, 5}, {0, 0, 2, 0}, {1, 1, 0, 1});
  const auto t = training_gt(gt);
  ASSERT_EQ(t.size(), 2);
  EXPECT_TRUE(testing::same(t.index, torch::tensor({0, 2}, torch::kInt64)));
  EXPECT_TRUE(testing::same(t.labels, torch::tensor({0, 8}, torch::kInt64)));
  EXPECT_EQ(t.boxes[0][7].item<float>(), 3.0f);
  EXPECT_TRUE(std::isnan(t.boxes[1][7].item<float>()) && std::isnan(t.boxes[1][8].item<float>()));
  EXPECT_EQ(t.boxes[1][0].item<float>(), -3.0f);
  // The stored form is not modified.
  EXPECT_EQ(gt.boxes[2][7].item<float>(), 0.0f);
  BevGrid g = BevGrid::make({-2, -10, -5, 10, 10, 3}, 1.0);
  const auto r = in_range(t, g);
  ASSERT_EQ(r.size(), 1);
  EXPECT_EQ(r.index[0].item<int64_t>(), 0);
  EXPECT_EQ(training_gt(stored({}, {}, {}, {}, {})).size(), 0);
  auto bad = gt;
  bad.velocity_valid = torch::ones({3}, torch::kUInt8);
  EXPECT_ERROR_WITH(training_gt(bad), "ground truth: velocity_valid has shape [3], expected [4] (one per box)");
}

}  // namespace
}  // namespace bevkd::core::nn
