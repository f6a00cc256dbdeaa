#include "train/losses/loss_util.h"

#include <torch/nn/functional/upsampling.h>

#include <cmath>
#include <sstream>

#include "base/error.h"

namespace bevkd::train::losses {

std::string shape_str(const torch::Tensor& t) {
  if (!t.defined()) return "(undefined)";
  std::ostringstream os;
  os << '[';
  for (int64_t i = 0; i < t.dim(); ++i) os << (i ? "," : "") << t.size(i);
  os << ']';
  return os.str();
}

void check_float_tensor(const torch::Tensor& t, const char* loss, const char* name, int64_t rank, const char* layout) {
  BEVKD_CHECK(t.defined(), loss, ": input ", name, " is missing, expected ", layout);
  BEVKD_CHECK(t.dim() == rank, loss, ": input ", name, " has shape ", shape_str(t), ", expected ", layout);
  BEVKD_CHECK(t.scalar_type() == torch::kFloat32 || t.scalar_type() == torch::kFloat64, loss, ": input ", name,
              " has dtype ", t.scalar_type(), ", expected float32 or float64");
}

void check_int_tensor(const torch::Tensor& t, const char* loss, const char* name, int64_t rank, const char* layout) {
  BEVKD_CHECK(t.defined(), loss, ": input ", name, " is missing, expected ", layout);
  BEVKD_CHECK(t.dim() == rank, loss, ": input ", name, " has shape ", shape_str(t), ", expected ", layout);
  BEVKD_CHECK(!torch::isFloatingType(t.scalar_type()) && t.scalar_type() != torch::kBool, loss, ": input ", name,
              " has dtype ", t.scalar_type(), ", expected an integer dtype (int64)");
}

torch::Tensor connected_zero(const torch::Tensor& x) { return x.sum() * 0.0; }

torch::Tensor box_bev_corners(const torch::Tensor& boxes, double extra_width) {
  BEVKD_CHECK(boxes.defined() && boxes.dim() == 2 && boxes.size(1) >= 7,
              "box corners: boxes have shape ", shape_str(boxes), ", expected [K, >=7] (x, y, z, l, w, h, yaw, ...)");
  const auto f32 = boxes.options().dtype(torch::kFloat32);
  const auto b = boxes.to(torch::kFloat32);
  // mmdet3d v0.17 dims (dx, dy) = (w, l) and yaw_m = -yaw - pi/2 (the same rectangle).
  const auto extra = static_cast<float>(extra_width * 2.0);
  const auto dx = b.select(1, 4) + extra;
  const auto dy = b.select(1, 3) + extra;
  const auto yaw_m = (-boxes.select(1, 6).to(torch::kFloat64) - M_PI / 2).to(torch::kFloat32);
  const auto c = torch::cos(yaw_m), s = torch::sin(yaw_m);
  // Local corners (a, b) = (+-dx/2, +-dy/2) in the order p0..p3; rotation by -yaw_m:
  // x' = a cos + b sin, y' = -a sin + b cos (mmdet3d v0.17 rotation_3d_in_axis, axis 2).
  const auto sa = torch::tensor({-0.5f, -0.5f, 0.5f, 0.5f}, f32).view({1, 4});
  const auto sb = torch::tensor({-0.5f, 0.5f, -0.5f, 0.5f}, f32).view({1, 4});
  const auto a = dx.view({-1, 1}) * sa;
  const auto bb = dy.view({-1, 1}) * sb;
  const auto x = a * c.view({-1, 1}) + bb * s.view({-1, 1}) + b.select(1, 0).view({-1, 1});
  const auto y = -a * s.view({-1, 1}) + bb * c.view({-1, 1}) + b.select(1, 1).view({-1, 1});
  return torch::stack({x, y}, 2);
}

torch::Tensor resize_to(const torch::Tensor& map, int64_t H, int64_t W) {
  if (map.size(-2) == H && map.size(-1) == W) return map;
  namespace F = torch::nn::functional;
  return F::interpolate(map, F::InterpolateFuncOptions()
                                 .size(std::vector<int64_t>{H, W})
                                 .mode(torch::kBilinear)
                                 .align_corners(false));
}

}  // namespace bevkd::train::losses
