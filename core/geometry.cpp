#include "core/geometry.h"

#include <cmath>
#include <sstream>

#include "base/error.h"
#include "base/math.h"

namespace bevkd::core {

Mat3 Mat3::rot_z(double yaw) {
  const double c = std::cos(yaw), s = std::sin(yaw);
  Mat3 r;
  r.m = {{{c, -s, 0}, {s, c, 0}, {0, 0, 1}}};
  return r;
}

Vec3 Mat3::operator*(const Vec3& v) const {
  Vec3 o{};
  for (int r = 0; r < 3; ++r) o[r] = m[r][0] * v[0] + m[r][1] * v[1] + m[r][2] * v[2];
  return o;
}

Mat3 Mat3::operator*(const Mat3& b) const {
  Mat3 o;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) o.m[r][c] = m[r][0] * b.m[0][c] + m[r][1] * b.m[1][c] + m[r][2] * b.m[2][c];
  return o;
}

Mat3 Mat3::transpose() const {
  Mat3 o;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) o.m[r][c] = m[c][r];
  return o;
}

double Mat3::det() const {
  return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
         m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
         m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
}

Quat Quat::from_axis_angle(const Vec3& axis, double angle) {
  const double n = std::sqrt(axis[0] * axis[0] + axis[1] * axis[1] + axis[2] * axis[2]);
  BEVKD_CHECK(n > 0 && std::isfinite(n), "quaternion from axis-angle: axis has norm ", n);
  const double s = std::sin(angle / 2) / n;
  return {std::cos(angle / 2), axis[0] * s, axis[1] * s, axis[2] * s};
}

Quat Quat::from_matrix(const Mat3& r) {
  const auto& m = r.m;
  const double tr = m[0][0] + m[1][1] + m[2][2];
  Quat q;
  if (tr > 0) {
    const double s = std::sqrt(tr + 1.0) * 2;
    q = {0.25 * s, (m[2][1] - m[1][2]) / s, (m[0][2] - m[2][0]) / s, (m[1][0] - m[0][1]) / s};
  } else if (m[0][0] > m[1][1] && m[0][0] > m[2][2]) {
    const double s = std::sqrt(1.0 + m[0][0] - m[1][1] - m[2][2]) * 2;
    q = {(m[2][1] - m[1][2]) / s, 0.25 * s, (m[0][1] + m[1][0]) / s, (m[0][2] + m[2][0]) / s};
  } else if (m[1][1] > m[2][2]) {
    const double s = std::sqrt(1.0 + m[1][1] - m[0][0] - m[2][2]) * 2;
    q = {(m[0][2] - m[2][0]) / s, (m[0][1] + m[1][0]) / s, 0.25 * s, (m[1][2] + m[2][1]) / s};
  } else {
    const double s = std::sqrt(1.0 + m[2][2] - m[0][0] - m[1][1]) * 2;
    q = {(m[1][0] - m[0][1]) / s, (m[0][2] + m[2][0]) / s, (m[1][2] + m[2][1]) / s, 0.25 * s};
  }
  if (q.w < 0) q = {-q.w, -q.x, -q.y, -q.z};  // canonical sign
  return q.normalized();
}

double Quat::norm() const { return std::sqrt(w * w + x * x + y * y + z * z); }

Quat Quat::normalized() const {
  const double n = norm();
  BEVKD_CHECK(n > 0 && std::isfinite(n), "quaternion [", w, ", ", x, ", ", y, ", ", z,
              "] cannot be normalised (norm ", n, ")");
  return {w / n, x / n, y / n, z / n};
}

Quat Quat::operator*(const Quat& b) const {
  return {w * b.w - x * b.x - y * b.y - z * b.z, w * b.x + x * b.w + y * b.z - z * b.y,
          w * b.y - x * b.z + y * b.w + z * b.x, w * b.z + x * b.y - y * b.x + z * b.w};
}

Mat3 Quat::to_matrix() const {
  const Quat q = normalized();
  const double ww = q.w * q.w, xx = q.x * q.x, yy = q.y * q.y, zz = q.z * q.z;
  const double xy = q.x * q.y, xz = q.x * q.z, yz = q.y * q.z;
  const double wx = q.w * q.x, wy = q.w * q.y, wz = q.w * q.z;
  Mat3 r;
  r.m = {{{ww + xx - yy - zz, 2 * (xy - wz), 2 * (xz + wy)},
          {2 * (xy + wz), ww - xx + yy - zz, 2 * (yz - wx)},
          {2 * (xz - wy), 2 * (yz + wx), ww - xx - yy + zz}}};
  return r;
}

double wrap_angle(double a) {
  if (!std::isfinite(a)) return a;
  double r = std::fmod(a + kPi, 2 * kPi);
  if (r < 0) r += 2 * kPi;
  r -= kPi;
  // fmod can return exactly 2*pi - eps rounding to pi; keep the half-open interval.
  if (r >= kPi) r -= 2 * kPi;
  return r;
}

double yaw_of(const Mat3& r) { return wrap_angle(std::atan2(r.m[1][0], r.m[0][0])); }
double yaw_of(const Quat& q) { return yaw_of(q.to_matrix()); }

Rigid Rigid::from_pose(const Vec3& translation, const Quat& rotation) {
  Rigid t;
  t.R = rotation.to_matrix();
  t.t = translation;
  return t;
}

Rigid Rigid::from_mat4(const std::array<double, 16>& m) {
  Rigid t;
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) t.R.m[r][c] = m[r * 4 + c];
    t.t[r] = m[r * 4 + 3];
  }
  return t;
}

std::array<double, 16> Rigid::to_mat4() const {
  std::array<double, 16> m{};
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) m[r * 4 + c] = R.m[r][c];
    m[r * 4 + 3] = t[r];
  }
  m[15] = 1.0;
  return m;
}

Vec3 Rigid::apply(const Vec3& p) const {
  Vec3 o = R * p;
  return {o[0] + t[0], o[1] + t[1], o[2] + t[2]};
}

Vec3 Rigid::apply_dir(const Vec3& v) const { return R * v; }

Rigid Rigid::inverse() const {
  Rigid inv;
  inv.R = R.transpose();
  const Vec3 rt = inv.R * t;
  inv.t = {-rt[0], -rt[1], -rt[2]};
  return inv;
}

Rigid Rigid::operator*(const Rigid& b) const {
  Rigid o;
  o.R = R * b.R;
  o.t = apply(b.t);
  return o;
}

Box Box::from_array(const float* v) {
  return {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]};
}

Box to_box(const NuscBox& b, const Rigid& t_from_s) {
  const Vec3 c = t_from_s.apply(b.translation);
  const Mat3 r = t_from_s.R * b.rotation.to_matrix();
  const Vec3 v = t_from_s.apply_dir({b.velocity[0], b.velocity[1], 0.0});
  Box o;
  o.x = static_cast<float>(c[0]);
  o.y = static_cast<float>(c[1]);
  o.z = static_cast<float>(c[2]);
  o.w = static_cast<float>(b.size[0]);
  o.l = static_cast<float>(b.size[1]);
  o.h = static_cast<float>(b.size[2]);
  o.yaw = static_cast<float>(yaw_of(r));
  // A NaN velocity (undefined in the devkit's rule) stays NaN in both components.
  o.vx = static_cast<float>(v[0]);
  o.vy = static_cast<float>(v[1]);
  return o;
}

NuscBox to_nusc_box(const Box& b, const Rigid& t_from_s) {
  NuscBox o;
  o.translation = t_from_s.apply({b.x, b.y, b.z});
  o.size = {b.w, b.l, b.h};
  o.rotation = Quat::from_matrix(t_from_s.R * Mat3::rot_z(b.yaw));
  const Vec3 v = t_from_s.apply_dir({b.vx, b.vy, 0.0});
  o.velocity = {v[0], v[1]};
  return o;
}

std::array<Vec3, 8> box_corners(const Box& b) {
  static constexpr double kX[8] = {1, 1, 1, 1, -1, -1, -1, -1};
  static constexpr double kY[8] = {1, -1, -1, 1, 1, -1, -1, 1};
  static constexpr double kZ[8] = {1, 1, -1, -1, 1, 1, -1, -1};
  const double c = std::cos(b.yaw), s = std::sin(b.yaw);
  std::array<Vec3, 8> out{};
  for (int k = 0; k < 8; ++k) {
    const double px = kX[k] * b.l / 2, py = kY[k] * b.w / 2, pz = kZ[k] * b.h / 2;
    out[k] = {b.x + c * px - s * py, b.y + s * px + c * py, b.z + pz};
  }
  return out;
}

bool point_in_box(const Box& b, const Vec3& p) {
  const double c = std::cos(b.yaw), s = std::sin(b.yaw);
  const double dx = p[0] - b.x, dy = p[1] - b.y, dz = p[2] - b.z;
  const double lx = c * dx + s * dy;   // along the heading
  const double ly = -s * dx + c * dy;  // across it
  return std::abs(lx) <= b.l / 2.0 && std::abs(ly) <= b.w / 2.0 && std::abs(dz) <= b.h / 2.0;
}

}  // namespace bevkd::core
