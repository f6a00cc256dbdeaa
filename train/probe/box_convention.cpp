#include "train/probe/box_convention.h"

#include <cmath>

#include "base/error.h"

namespace bevkd::train::probe {

torch::Tensor v017_boxes_to_bevkd(const torch::Tensor& boxes) {
  BEVKD_CHECK(boxes.dim() == 2 && boxes.size(1) == 9 &&
                  (boxes.scalar_type() == torch::kFloat32 || boxes.scalar_type() == torch::kFloat64),
              "mmdet3d v0.17 boxes: expected [K, 9] float32/float64 (x, y, z, dx, dy, dz, yaw, vx, vy), found ",
              boxes.sizes(), " ", boxes.scalar_type());
  const torch::Tensor b = boxes.detach().to(torch::kFloat64);
  const torch::Tensor yaw_v017 = b.select(1, 6);
  torch::Tensor yaw = -yaw_v017 - M_PI / 2;
  yaw = yaw - 2 * M_PI * torch::floor((yaw + M_PI) / (2 * M_PI));  // [-pi, pi)
  const torch::Tensor out = torch::stack({b.select(1, 0), b.select(1, 1), b.select(1, 2), b.select(1, 4),
                                          b.select(1, 3), b.select(1, 5), yaw, b.select(1, 7), b.select(1, 8)},
                                         1);
  return out.to(boxes.scalar_type());
}

torch::Tensor v017_box_code_to_bevkd(const torch::Tensor& code) {
  BEVKD_CHECK(code.dim() >= 1 && code.size(-1) == 10, "BEVDistill box code: expected [..., 10], found ", code.sizes());
  const int64_t d = code.dim() - 1;
  return torch::stack({code.select(d, 0), code.select(d, 1), code.select(d, 3), code.select(d, 2), code.select(d, 4),
                       code.select(d, 5), -code.select(d, 7), -code.select(d, 6), code.select(d, 8), code.select(d, 9)},
                      d);
}

std::array<double, 10> v017_code_weights_to_bevkd(const std::array<double, 10>& w) {
  return {w[0], w[1], w[3], w[2], w[4], w[5], w[7], w[6], w[8], w[9]};
}

}  // namespace bevkd::train::probe
