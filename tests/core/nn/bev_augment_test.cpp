// BEV augmentation: hand cases and consistency between points and boxes.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "base/error.h"
#include "base/math.h"
#include "core/nn/bev_augment.h"
#include "base/rng.h"

namespace bevkd::core::nn {
namespace {

TEST(BevAugment, RotationByQuarterTurn) {
  BevTransform t;
  t.rotation = kPi / 2;
  Box b{10, 0, 1, 4, 2, 1.5, 0, 3, 0};
  const Box o = t.apply(b);
  EXPECT_NEAR(o.x, 0, 1e-5);
  EXPECT_NEAR(o.y, 10, 1e-5);
  EXPECT_NEAR(o.z, 1, 1e-6);
  EXPECT_NEAR(o.yaw, kPi / 2, 1e-6);
  EXPECT_NEAR(o.vx, 0, 1e-5);
  EXPECT_NEAR(o.vy, 3, 1e-5);
}

TEST(BevAugment, FlipsMirrorPositionHeadingAndVelocity) {
  Box b{5, 2, 0, 4, 2, 1.5, 0.3f, 1, 2};
  BevTransform fy;
  fy.flip_y = true;  // y -> -y
  Box o = fy.apply(b);
  EXPECT_NEAR(o.y, -2, 1e-6);
  EXPECT_NEAR(o.yaw, -0.3, 1e-6);
  EXPECT_NEAR(o.vy, -2, 1e-6);
  EXPECT_NEAR(o.vx, 1, 1e-6);
  BevTransform fx;
  fx.flip_x = true;  // x -> -x
  o = fx.apply(b);
  EXPECT_NEAR(o.x, -5, 1e-6);
  EXPECT_NEAR(o.yaw, kPi - 0.3, 1e-6);
  EXPECT_NEAR(o.vx, -1, 1e-6);
}

TEST(BevAugment, ScaleScalesSizesAndVelocity) {
  BevTransform t;
  t.scale = 1.05;
  const Box o = t.apply(Box{10, -4, 2, 4, 2, 1.5, 1, 2, 0});
  EXPECT_NEAR(o.x, 10.5, 1e-5);
  EXPECT_NEAR(o.z, 2.1, 1e-5);
  EXPECT_NEAR(o.l, 4.2, 1e-5);
  EXPECT_NEAR(o.vx, 2.1, 1e-5);
}

TEST(BevAugment, PointsStayInsideTheirBoxUnderRandomTransforms) {
  std::mt19937_64 rng(7);
  BevAugmentConfig cfg;
  cfg.rotation_range = {-3, 3};
  std::uniform_real_distribution<double> u(-1, 1);
  for (int trial = 0; trial < 20; ++trial) {
    const Box b{static_cast<float>(20 * u(rng)), static_cast<float>(20 * u(rng)), 0.5f, 4.5f, 1.9f, 1.6f,
                static_cast<float>(3 * u(rng)), 1, -1};
    // Points inside the box (local coordinates scaled by 0.9).
    std::vector<float> pts;
    for (int i = 0; i < 30; ++i) {
      const double lx = 0.45 * b.l * u(rng), ly = 0.45 * b.w * u(rng), lz = 0.45 * b.h * u(rng);
      const double c = std::cos(b.yaw), s = std::sin(b.yaw);
      pts.insert(pts.end(), {static_cast<float>(b.x + c * lx - s * ly), static_cast<float>(b.y + s * lx + c * ly),
                             static_cast<float>(b.z + lz), 0.f, 0.f});
    }
    const auto points = torch::tensor(pts).view({30, 5});
    Rng draw(static_cast<uint64_t>(trial));
    const auto t = cfg.sample(draw);
    const auto tp = t.apply_points(points);
    const auto arr = b.to_array();
    const auto tb = t.apply_boxes(torch::tensor(std::vector<float>(arr.begin(), arr.end())).view({1, 9}));
    const Box ob = Box::from_array(tb.contiguous().data_ptr<float>());
    const Box ob2 = t.apply(b);
    EXPECT_NEAR(ob.yaw, ob2.yaw, 1e-5);
    EXPECT_NEAR(ob.x, ob2.x, 1e-4);
    for (int i = 0; i < 30; ++i) {
      const Vec3 p{tp[i][0].item<double>(), tp[i][1].item<double>(), tp[i][2].item<double>()};
      EXPECT_TRUE(point_in_box(ob, p)) << "trial " << trial << " point " << i;
    }
  }
}

TEST(BevAugment, SamplingIsDeterministicAndInRange) {
  BevAugmentConfig cfg;
  Rng a(11), b(11);
  for (int i = 0; i < 50; ++i) {
    const auto ta = cfg.sample(a), tb = cfg.sample(b);
    EXPECT_EQ(ta.rotation, tb.rotation);
    EXPECT_EQ(ta.flip_x, tb.flip_x);
    EXPECT_GE(ta.rotation, -0.3925);
    EXPECT_LE(ta.rotation, 0.3925);
    EXPECT_GE(ta.scale, 0.95);
    EXPECT_LE(ta.scale, 1.05);
  }
}

}  // namespace
}  // namespace bevkd::core::nn
