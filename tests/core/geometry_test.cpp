#include "base/math.h"
#include "core/geometry.h"
#include "tests/support/expect_error.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "base/error.h"

namespace bevkd::core {
namespace {

constexpr double kTol = 1e-9;

Quat random_quat(std::mt19937& rng) {
  std::normal_distribution<double> n(0, 1);
  return Quat{n(rng), n(rng), n(rng), n(rng)}.normalized();
}

TEST(Geometry, WrapAngleIsHalfOpen) {
  EXPECT_NEAR(wrap_angle(0.5), 0.5, kTol);
  EXPECT_NEAR(wrap_angle(kPi), -kPi, kTol);
  EXPECT_NEAR(wrap_angle(-kPi), -kPi, kTol);
  EXPECT_NEAR(wrap_angle(3 * kPi / 2), -kPi / 2, kTol);
  EXPECT_NEAR(wrap_angle(-7.0), -7.0 + 2 * kPi, kTol);
  for (double a = -20; a < 20; a += 0.37) {
    const double w = wrap_angle(a);
    EXPECT_GE(w, -kPi);
    EXPECT_LT(w, kPi);
    EXPECT_NEAR(std::remainder(w - a, 2 * kPi), 0.0, 1e-9);
  }
}

TEST(Geometry, QuaternionMatrixRoundTrip) {
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    const Quat q = random_quat(rng);
    const Mat3 r = q.to_matrix();
    EXPECT_NEAR(r.det(), 1.0, 1e-12);
    const Quat back = Quat::from_matrix(r);
    // q and -q are the same rotation
    const double dot = q.w * back.w + q.x * back.x + q.y * back.y + q.z * back.z;
    EXPECT_NEAR(std::abs(dot), 1.0, 1e-12);
  }
}

TEST(Geometry, ForwardCameraQuaternionMapsAxesAsInSpec) {
  // spec/nuscenes.md: [0.5, -0.5, 0.5, -0.5] maps camera z -> ego x, x -> -y, y -> -z.
  const Mat3 r = Quat{0.5, -0.5, 0.5, -0.5}.to_matrix();
  const Vec3 z = r * Vec3{0, 0, 1}, x = r * Vec3{1, 0, 0}, y = r * Vec3{0, 1, 0};
  EXPECT_NEAR(z[0], 1, kTol);
  EXPECT_NEAR(x[1], -1, kTol);
  EXPECT_NEAR(y[2], -1, kTol);
}

TEST(Geometry, HamiltonProductComposesRotations) {
  std::mt19937 rng(3);
  for (int i = 0; i < 50; ++i) {
    const Quat a = random_quat(rng), b = random_quat(rng);
    const Mat3 ab = (a * b).to_matrix(), ref = a.to_matrix() * b.to_matrix();
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c) EXPECT_NEAR(ab.m[r][c], ref.m[r][c], 1e-12);
  }
}

TEST(Geometry, YawOfTiltedBoxUsesRotatedXAxis) {
  // A box yawed by 0.7 rad and then pitched by 0.3 rad about its own y axis (q = q_yaw * q_pitch).
  const Quat q = Quat::from_yaw(0.7) * Quat::from_axis_angle({0, 1, 0}, 0.3);
  EXPECT_NEAR(yaw_of(q), 0.7, 1e-12);
  // Rolled as well: the heading of the rotated x axis is still 0.7.
  const Quat q2 = Quat::from_yaw(0.7) * Quat::from_axis_angle({1, 0, 0}, 0.25);
  EXPECT_NEAR(yaw_of(q2), 0.7, 1e-12);
  // 2*atan2(z, w) is wrong for a tilted quaternion; our rule is not that.
  const Quat q3 = Quat::from_yaw(0.7) * Quat::from_axis_angle({1, 1, 0}, 0.4);
  const double naive = 2 * std::atan2(q3.z, q3.w);
  const Vec3 hx = q3.rotate({1, 0, 0});
  EXPECT_NEAR(yaw_of(q3), std::atan2(hx[1], hx[0]), 1e-12);
  EXPECT_GT(std::abs(naive - yaw_of(q3)), 1e-3);
}

TEST(Geometry, RigidInverseAndComposition) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(-50, 50);
  for (int i = 0; i < 50; ++i) {
    const Rigid a = Rigid::from_pose({u(rng), u(rng), u(rng)}, random_quat(rng));
    const Rigid b = Rigid::from_pose({u(rng), u(rng), u(rng)}, random_quat(rng));
    const Vec3 p{u(rng), u(rng), u(rng)};
    const Vec3 q = (a * b).apply(p), ref = a.apply(b.apply(p));
    const Vec3 back = a.inverse().apply(a.apply(p));
    for (int k = 0; k < 3; ++k) {
      EXPECT_NEAR(q[k], ref[k], 1e-9);
      EXPECT_NEAR(back[k], p[k], 1e-9);
    }
    const Rigid m = Rigid::from_mat4(a.to_mat4());
    const Vec3 pm = m.apply(p), pa = a.apply(p);
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(pm[k], pa[k], 1e-12);
  }
}

TEST(Geometry, NuscBoxToEgoWorkedByHand) {
  // Ego at global (100, 200, 0) facing +y (yaw 90 deg). A car 10 m ahead of the ego, heading
  // along global -x (yaw 180 deg), moving at 5 m/s along global -x.
  const Rigid global_from_ego = Rigid::from_pose({100, 200, 0}, Quat::from_yaw(kPi / 2));
  NuscBox nb;
  nb.translation = {100, 210, 1.0};
  nb.size = {2.0, 4.5, 1.6};  // [w, l, h]
  nb.rotation = Quat::from_yaw(kPi);
  nb.velocity = {-5.0, 0.0};
  const Box b = to_box(nb, global_from_ego.inverse());
  EXPECT_NEAR(b.x, 10.0, 1e-5);
  EXPECT_NEAR(b.y, 0.0, 1e-5);
  EXPECT_NEAR(b.z, 1.0, 1e-6);
  EXPECT_FLOAT_EQ(b.l, 4.5f);
  EXPECT_FLOAT_EQ(b.w, 2.0f);
  EXPECT_FLOAT_EQ(b.h, 1.6f);
  EXPECT_NEAR(b.yaw, kPi / 2, 1e-6);  // heading global -x = ego +y
  EXPECT_NEAR(b.vx, 0.0, 1e-5);
  EXPECT_NEAR(b.vy, 5.0, 1e-5);
}

TEST(Geometry, BoxRoundTripThroughNuscenes) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(-40, 40), a(-kPi, kPi), s(0.3, 12);
  for (int i = 0; i < 100; ++i) {
    const Rigid global_from_ego = Rigid::from_pose({u(rng) * 10, u(rng) * 10, 0}, Quat::from_yaw(a(rng)));
    Box b{static_cast<float>(u(rng)), static_cast<float>(u(rng)), static_cast<float>(u(rng) / 20),
          static_cast<float>(s(rng)),  static_cast<float>(s(rng)),  static_cast<float>(s(rng)),
          static_cast<float>(a(rng)),  static_cast<float>(u(rng) / 4), static_cast<float>(u(rng) / 4)};
    const NuscBox g = to_nusc_box(b, global_from_ego);
    EXPECT_NEAR(g.size[0], b.w, 1e-6);
    EXPECT_NEAR(g.size[1], b.l, 1e-6);
    const Box back = to_box(g, global_from_ego.inverse());
    EXPECT_NEAR(back.x, b.x, 1e-3);
    EXPECT_NEAR(back.y, b.y, 1e-3);
    EXPECT_NEAR(back.z, b.z, 1e-4);
    EXPECT_NEAR(std::remainder(back.yaw - b.yaw, 2 * kPi), 0.0, 1e-5);
    EXPECT_NEAR(back.vx, b.vx, 1e-4);
    EXPECT_NEAR(back.vy, b.vy, 1e-4);
  }
}

TEST(Geometry, NanVelocityStaysNan) {
  NuscBox nb;
  nb.size = {1, 1, 1};
  nb.velocity = {NAN, NAN};
  const Box b = to_box(nb, Rigid::from_pose({1, 2, 3}, Quat::from_yaw(0.4)));
  EXPECT_TRUE(std::isnan(b.vx));
  EXPECT_TRUE(std::isnan(b.vy));
}

TEST(Geometry, CornersAndPointInBox) {
  const Box b{1, 2, 0.5, 4, 2, 1, static_cast<float>(kPi / 2), 0, 0};  // heading +y
  const auto c = box_corners(b);
  // corner 0 = (+l/2, +w/2, +h/2) in the box frame -> heading +y: x = 1 - 1, y = 2 + 2
  EXPECT_NEAR(c[0][0], 0.0, 1e-6);
  EXPECT_NEAR(c[0][1], 4.0, 1e-6);
  EXPECT_NEAR(c[0][2], 1.0, 1e-6);
  EXPECT_TRUE(point_in_box(b, {1, 2, 0.5}));
  EXPECT_TRUE(point_in_box(b, {1.0, 3.9, 0.5}));   // along the length
  EXPECT_FALSE(point_in_box(b, {2.5, 2.0, 0.5}));  // 1.5 m across the 2 m width
  const Box axis{1, 2, 0.5, 4, 2, 1, 0, 0, 0};
  EXPECT_TRUE(point_in_box(axis, {3.0, 3.0, 1.0}));  // exactly on a corner: inclusive
  EXPECT_FALSE(point_in_box(axis, {3.0001, 3.0, 1.0}));
  EXPECT_FALSE(point_in_box(b, {1, 2, 1.01}));
}

TEST(Geometry, ZeroQuaternionIsAnError) {
  EXPECT_ERROR_WITH(Quat({0, 0, 0, 0}).normalized(), "quaternion");
}

}  // namespace
}  // namespace bevkd::core
