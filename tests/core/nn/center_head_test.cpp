// CenterHead: shapes, mmdetection3d parameter names, initialisation, class heat-map order and the
// mmdet3d v0.17 regression conversion.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "tests/support/expect_error.h"
#include "base/error.h"
#include "core/nn/center_head.h"

namespace bevkd::core::nn {
namespace {

CenterHeadConfig small_config() {
  CenterHeadConfig c;
  c.in_channels = 12;
  c.shared_channels = 8;
  c.head_channels = 8;
  c.tasks = nuscenes_tasks();
  return c;
}

TEST(CenterHead, ForwardShapesPerTask) {
  CenterHead head(small_config());
  head->eval();
  const auto out = head->forward(torch::randn({2, 12, 6, 10}));
  EXPECT_EQ(out.shared.sizes(), (std::vector<int64_t>{2, 8, 6, 10}));
  ASSERT_EQ(out.tasks.size(), 6u);
  const int64_t classes[] = {1, 2, 2, 1, 2, 2};
  for (size_t t = 0; t < 6; ++t) {
    EXPECT_EQ(out.tasks[t].heatmap.sizes(), (std::vector<int64_t>{2, classes[t], 6, 10}));
    EXPECT_EQ(out.tasks[t].reg.size(1), 2);
    EXPECT_EQ(out.tasks[t].height.size(1), 1);
    EXPECT_EQ(out.tasks[t].dim.size(1), 3);
    EXPECT_EQ(out.tasks[t].rot.size(1), 2);
    EXPECT_EQ(out.tasks[t].vel.size(1), 2);
  }
}

TEST(CenterHead, ParameterNamesFollowMmdet3d) {
  CenterHead head(small_config());
  std::set<std::string> names;
  for (const auto& p : head->named_parameters()) names.insert(p.key());
  for (const auto& b : head->named_buffers()) names.insert(b.key());
  for (const char* n : {"shared_conv.conv.weight", "shared_conv.bn.weight", "shared_conv.bn.running_var",
                        "task_heads.0.reg.0.conv.weight", "task_heads.0.reg.0.bn.bias", "task_heads.0.reg.1.weight",
                        "task_heads.0.reg.1.bias", "task_heads.5.heatmap.1.bias", "task_heads.3.vel.1.weight"})
    EXPECT_TRUE(names.count(n)) << n;
  EXPECT_FALSE(names.count("shared_conv.conv.bias"));  // ConvModule with a norm has no bias
}

TEST(CenterHead, HeatmapBiasStartsAtPrior) {
  CenterHead head(small_config());
  for (const auto& p : head->named_parameters()) {
    if (p.key().find("heatmap.1.bias") != std::string::npos) {
      EXPECT_TRUE(torch::allclose(p.value(), torch::full_like(p.value(), -2.19))) << p.key();
    }
  }
}

TEST(CenterHead, ClassHeatmapPutsTaskChannelsAtLabels) {
  const auto tasks = nuscenes_tasks();
  std::vector<TaskPrediction> preds(tasks.size());
  for (size_t t = 0; t < tasks.size(); ++t) {
    preds[t].heatmap = torch::zeros({1, static_cast<int64_t>(tasks[t].size()), 2, 2});
    for (size_t k = 0; k < tasks[t].size(); ++k) preds[t].heatmap[0][k].fill_(static_cast<float>(tasks[t][k]));
  }
  const auto hm = class_heatmap(preds, tasks);
  ASSERT_EQ(hm.size(1), kNumClasses);
  for (int c = 0; c < kNumClasses; ++c)
    EXPECT_NEAR(hm[0][c][1][1].item<double>(), 1.0 / (1.0 + std::exp(-c)), 1e-6) << kClassNames[c];
}

TEST(CenterHead, ValidatesTasks) {
  auto c = small_config();
  c.tasks = {{0, 1}, {1, 2}};
  try {
    c.validate();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("label 1 (task 1) appears in more than one task"), std::string::npos)
        << e.what();
  }
  c.tasks = {{0, 12}};
  EXPECT_ERROR_WITH(c.validate(), "task 0 lists label 12");
  CenterHead head(small_config());
  EXPECT_THROW(head->forward(torch::zeros({1, 5, 4, 4})), Error);
}

TEST(CenterHead, ConvertsMmdet3dV017Regression) {
  // A car heading +y (yaw = pi/2), l = 4, w = 2, h = 1.5. mmdet3d v0.17 stores dims (w, l, h)
  // and yaw' = -yaw - pi/2 = -pi.
  TaskPrediction p;
  const double yaw_old = -M_PI;
  p.dim = torch::tensor({std::log(2.0f), std::log(4.0f), std::log(1.5f)}).view({1, 3, 1, 1});
  p.rot = torch::tensor({static_cast<float>(std::sin(yaw_old)), static_cast<float>(std::cos(yaw_old))}).view({1, 2, 1, 1});
  p.heatmap = torch::zeros({1, 1, 1, 1});
  const auto q = convert_v017_box_regression(p);
  EXPECT_NEAR(std::exp(q.dim[0][0][0][0].item<double>()), 4.0, 1e-5);  // l
  EXPECT_NEAR(std::exp(q.dim[0][1][0][0].item<double>()), 2.0, 1e-5);  // w
  EXPECT_NEAR(std::atan2(q.rot[0][0][0][0].item<double>(), q.rot[0][1][0][0].item<double>()), M_PI / 2, 1e-6);
}

}  // namespace
}  // namespace bevkd::core::nn
