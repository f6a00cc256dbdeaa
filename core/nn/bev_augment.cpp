#include "core/nn/bev_augment.h"

#include <cmath>

#include "base/error.h"
#include "base/math.h"

namespace bevkd::core::nn {

namespace {

torch::Tensor matrix_tensor(const Mat3& m) {
  auto t = torch::empty({3, 3}, torch::kFloat32);
  auto a = t.accessor<float, 2>();
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) a[r][c] = static_cast<float>(m.m[r][c]);
  return t;
}
}  // namespace

Mat3 BevTransform::matrix() const {
  Mat3 s;
  s.m = {{{scale, 0, 0}, {0, scale, 0}, {0, 0, scale}}};
  Mat3 f;
  f.m = {{{flip_x ? -1.0 : 1.0, 0, 0}, {0, flip_y ? -1.0 : 1.0, 0}, {0, 0, 1}}};
  return f * (s * Mat3::rot_z(rotation));
}

BevTransform BevTransform::from_matrix(const Mat3& m, const std::string& where) {
  const auto& a = m.m;
  auto shown = [&] {
    return cat("[[", a[0][0], ", ", a[0][1], ", ", a[0][2], "], [", a[1][0], ", ", a[1][1], ", ", a[1][2], "], [",
               a[2][0], ", ", a[2][1], ", ", a[2][2], "]]");
  };
  const double det2 = a[0][0] * a[1][1] - a[0][1] * a[1][0];
  const double s = std::sqrt(std::abs(det2));
  BEVKD_CHECK(std::isfinite(s) && s > 0, where, ": BEV augmentation matrix ", shown(), " is singular or not finite");
  const double tol = 1e-4 * s;
  // x-y block = s * [[c, -sg], [sg, c]] * diag(1, r) with r = +-1 (r = -1: a reflection).
  const double r = det2 > 0 ? 1.0 : -1.0;
  const double c = a[0][0] / s, sg = a[1][0] / s;
  const bool similarity = std::abs(a[1][1] - r * a[0][0]) <= tol && std::abs(a[0][1] + r * a[1][0]) <= tol &&
                          std::abs(c * c + sg * sg - 1.0) <= 1e-4;
  const bool z_ok = std::abs(a[2][2] - s) <= tol && std::abs(a[0][2]) <= tol && std::abs(a[1][2]) <= tol &&
                    std::abs(a[2][0]) <= tol && std::abs(a[2][1]) <= tol;
  BEVKD_CHECK(similarity && z_ok, where, ": BEV augmentation matrix ", shown(),
              " is not a scaled rotation or reflection about z (expected s*R(theta)*diag(1, +-1) in x-y and s on z)");
  BevTransform t;
  t.scale = s;
  if (r > 0) {
    t.rotation = std::atan2(sg, c);  // M = s R(theta)
  } else {
    // M = diag(1, -1) s R(theta) (flip_y after the rotation): s R(theta) = diag(1, -1) M.
    t.flip_y = true;
    t.rotation = std::atan2(-a[1][0] / s, a[0][0] / s);
  }
  return t;
}

Box BevTransform::apply(const Box& b) const {
  const Mat3 m = matrix();
  const Vec3 c = m * Vec3{b.x, b.y, b.z};
  const Vec3 v = m * Vec3{b.vx, b.vy, 0.0};
  double yaw = b.yaw + rotation;
  if (flip_y) yaw = -yaw;
  if (flip_x) yaw = kPi - yaw;
  Box o;
  o.x = static_cast<float>(c[0]);
  o.y = static_cast<float>(c[1]);
  o.z = static_cast<float>(c[2]);
  o.l = static_cast<float>(b.l * scale);
  o.w = static_cast<float>(b.w * scale);
  o.h = static_cast<float>(b.h * scale);
  o.yaw = static_cast<float>(wrap_angle(yaw));
  o.vx = static_cast<float>(v[0]);
  o.vy = static_cast<float>(v[1]);
  return o;
}

torch::Tensor BevTransform::apply_points(const torch::Tensor& points) const {
  BEVKD_CHECK(points.dim() == 2 && points.size(1) >= 3 && points.scalar_type() == torch::kFloat32,
              "bev transform: points have shape ", points.sizes(), " and dtype ", points.scalar_type(),
              ", expected [P, >=3] float32");
  auto out = points.clone();
  if (is_identity()) return out;
  const auto m = matrix_tensor(matrix()).to(points.device());
  out.narrow(1, 0, 3).copy_(torch::matmul(points.narrow(1, 0, 3), m.t()));
  return out;
}

torch::Tensor BevTransform::apply_boxes(const torch::Tensor& boxes) const {
  BEVKD_CHECK(boxes.dim() == 2 && boxes.size(1) == 9 && boxes.scalar_type() == torch::kFloat32,
              "bev transform: boxes have shape ", boxes.sizes(), " and dtype ", boxes.scalar_type(),
              ", expected [N, 9] float32");
  auto out = boxes.clone();
  if (is_identity() || boxes.size(0) == 0) return out;
  const auto m = matrix_tensor(matrix()).to(boxes.device());
  out.narrow(1, 0, 3).copy_(torch::matmul(boxes.narrow(1, 0, 3), m.t()));
  out.narrow(1, 3, 3).mul_(static_cast<float>(scale));
  auto yaw = boxes.select(1, 6).to(torch::kFloat64) + rotation;
  if (flip_y) yaw = -yaw;
  if (flip_x) yaw = kPi - yaw;
  yaw = yaw - 2 * kPi * torch::floor((yaw + kPi) / (2 * kPi));  // wrap to [-pi, pi)
  out.select(1, 6).copy_(yaw.to(torch::kFloat32));
  const auto m2 = m.narrow(0, 0, 2).narrow(1, 0, 2);
  out.narrow(1, 7, 2).copy_(torch::matmul(boxes.narrow(1, 7, 2), m2.t()));
  return out;
}

void BevAugmentConfig::validate(const std::string& where) const {
  BEVKD_CHECK(rotation_range[0] <= rotation_range[1], where, ": rotation_range min ", rotation_range[0], " > max ",
              rotation_range[1]);
  BEVKD_CHECK(scale_range[0] > 0 && scale_range[0] <= scale_range[1], where, ": scale_range must satisfy 0 < min <= max, got [",
              scale_range[0], ", ", scale_range[1], "]");
  BEVKD_CHECK(flip_x_prob >= 0 && flip_x_prob <= 1 && flip_y_prob >= 0 && flip_y_prob <= 1, where,
              ": flip probabilities must be in [0, 1]");
}

BevTransform BevAugmentConfig::sample(Rng& rng) const {
  BevTransform t;
  t.rotation = rng.uniform(rotation_range[0], rotation_range[1]);
  t.scale = rng.uniform(scale_range[0], scale_range[1]);
  t.flip_y = rng.uniform() < flip_y_prob;
  t.flip_x = rng.uniform() < flip_x_prob;
  return t;
}

}  // namespace bevkd::core::nn
