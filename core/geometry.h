// Geometry shared by every stage: quaternions, rigid transforms, the bevkd Box and its
// conversion from/to nuScenes' representation, and the BEV grid. No LibTorch here.
//
// Conventions (DESIGN.md "Conventions that every module shares"):
//  * Frames are right-handed, metres. Quaternions are [w, x, y, z] (nuScenes order) and act
//    as R(q) on column vectors: p_target = R p_source + t.
//  * Box = 9 floats (x, y, z, l, w, h, yaw, vx, vy): geometric centre; l along the heading,
//    w across it, h up; yaw counter-clockwise from +x, wrapped to [-pi, pi); velocity in m/s
//    in the same frame as the centre.
//  * nuScenes boxes store size as [w, l, h] and the orientation as a full quaternion (real
//    annotations carry small pitch/roll). The yaw of such a box is the heading of its rotated
//    x axis, atan2(R[1][0], R[0][0]) — not 2*atan2(qz, qw), which is wrong for tilted boxes.
//  * BEV grid: base/bev_grid.h (bevkd::BevGrid), re-exported here.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "base/bev_grid.h"

namespace bevkd::core {

using Vec3 = std::array<double, 3>;

// 3x3 matrix, row-major: m[r][c].
struct Mat3 {
  std::array<std::array<double, 3>, 3> m{{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}};

  static Mat3 identity() { return Mat3{}; }
  static Mat3 rot_z(double yaw);
  Vec3 operator*(const Vec3& v) const;
  Mat3 operator*(const Mat3& b) const;
  Mat3 transpose() const;
  double det() const;
};

// Unit quaternion [w, x, y, z]. Operations normalise where the result must be a rotation.
struct Quat {
  double w = 1, x = 0, y = 0, z = 0;

  static Quat from_axis_angle(const Vec3& axis, double angle);
  static Quat from_yaw(double yaw) { return from_axis_angle({0, 0, 1}, yaw); }
  // Rotation matrix -> quaternion (Shepperd's method); `r` must be orthonormal, det +1.
  static Quat from_matrix(const Mat3& r);

  double norm() const;
  Quat normalized() const;  // throws bevkd::Error for a zero or non-finite quaternion
  Quat conjugate() const { return {w, -x, -y, -z}; }
  Quat operator*(const Quat& b) const;  // Hamilton product: (this * b) applies b first
  Mat3 to_matrix() const;               // R of the normalised quaternion
  Vec3 rotate(const Vec3& v) const { return to_matrix() * v; }
};

// Wraps an angle in radians to [-pi, pi).
double wrap_angle(double a);

// Heading of the rotated x axis in the x-y plane: atan2(R[1][0], R[0][0]), in [-pi, pi).
double yaw_of(const Quat& q);
double yaw_of(const Mat3& r);

// Rigid transform target <- source: p_target = R * p_source + t.
struct Rigid {
  Mat3 R;
  Vec3 t{0, 0, 0};

  static Rigid identity() { return {}; }
  // From a nuScenes record (translation, rotation [w,x,y,z]) describing source -> target,
  // e.g. calibrated_sensor (sensor -> ego) or ego_pose (ego -> global).
  static Rigid from_pose(const Vec3& translation, const Quat& rotation);
  // From / to a row-major 4x4 homogeneous matrix.
  static Rigid from_mat4(const std::array<double, 16>& m);
  std::array<double, 16> to_mat4() const;

  Vec3 apply(const Vec3& p) const;       // R p + t
  Vec3 apply_dir(const Vec3& v) const;   // R v (velocities, directions)
  Rigid inverse() const;
  Rigid operator*(const Rigid& b) const;  // (this * b)(p) = this(b(p))
};

// bevkd's box (see the file comment for the convention).
struct Box {
  float x = 0, y = 0, z = 0;
  float l = 0, w = 0, h = 0;
  float yaw = 0;
  float vx = 0, vy = 0;

  static constexpr int kDim = 9;
  std::array<float, 9> to_array() const { return {x, y, z, l, w, h, yaw, vx, vy}; }
  static Box from_array(const float* v9);
};

// A box as nuScenes stores it (annotation or result), in some frame (global for the tables).
struct NuscBox {
  Vec3 translation{0, 0, 0};        // geometric centre, m
  Vec3 size{0, 0, 0};               // [w, l, h], m
  Quat rotation;                    // [w, x, y, z]
  std::array<double, 2> velocity{0, 0};  // [vx, vy] m/s; NaN where undefined
};

// nuScenes representation in frame S -> bevkd Box in frame T, where `t_from_s` maps S to T
// (e.g. ego <- global = ego_pose.inverse()). Centre transformed as a point, velocity as a
// direction (only its x-y part is kept: the vertical velocity is 0 in nuScenes), yaw from
// the rotated x axis of R(t_from_s) * R(q_box), wrapped to [-pi, pi).
Box to_box(const NuscBox& b, const Rigid& t_from_s = Rigid::identity());

// bevkd Box in frame S -> nuScenes representation in frame T (e.g. global <- ego for the
// results JSON). The box's orientation is the pure yaw rotation composed with R(t_from_s).
NuscBox to_nusc_box(const Box& b, const Rigid& t_from_s = Rigid::identity());

// The 8 corners of a box (devkit Box.corners order: x = ±l/2, y = ±w/2, z = ±h/2 ->
// indices 0..3 the front face (+x) top/bottom..., see implementation), in the box's frame.
std::array<Vec3, 8> box_corners(const Box& b);

// True if point p (same frame as b) lies inside b, faces included (the devkit's
// points_in_box test: 0 <= projections <= extents, inclusive).
bool point_in_box(const Box& b, const Vec3& p);

}  // namespace bevkd::core
