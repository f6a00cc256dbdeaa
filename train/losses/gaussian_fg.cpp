#include "train/losses/gaussian_fg.h"

#include <cmath>

#include "base/error.h"

namespace bevkd::train::losses {
namespace {

torch::Tensor float32_boxes(const torch::Tensor& boxes) {
  BEVKD_CHECK(
      boxes.defined() && boxes.dim() == 2 && (boxes.size(1) == 9 || boxes.size(1) == 7) && boxes.is_floating_point(),
      "gaussian_fg_map: boxes must be [K, 9] (or [K, 7]) float (x, y, z, l, w, h, yaw, vx, vy), found ",
      boxes.defined() ? cat(boxes.sizes(), " ", boxes.scalar_type()) : std::string("undefined"));
  return boxes.detach().to(torch::kFloat32).contiguous();
}

}  // namespace

BevGrid heat_map_grid(double x_min, double y_min, double voxel_x, double voxel_y, int64_t out_size_factor, int64_t H,
                      int64_t W) {
  BEVKD_CHECK(std::isfinite(x_min) && std::isfinite(y_min), "heat-map grid: x_min, y_min must be finite, found ", x_min,
              ", ", y_min);
  BEVKD_CHECK(std::isfinite(voxel_x) && voxel_x > 0 && std::isfinite(voxel_y) && voxel_y > 0,
              "heat-map grid: voxel sizes must be positive, found ", voxel_x, ", ", voxel_y);
  BEVKD_CHECK(out_size_factor >= 1, "heat-map grid: out_size_factor must be >= 1, found ", out_size_factor);
  BEVKD_CHECK(H >= 1 && W >= 1, "heat-map grid: H and W must be >= 1, found ", H, " x ", W);
  const double dx = voxel_x * static_cast<double>(out_size_factor), dy = voxel_y * static_cast<double>(out_size_factor);
  return BevGrid::make({x_min, y_min, 0.0, x_min + static_cast<double>(W) * dx, y_min + static_cast<double>(H) * dy, 1.0},
                       dx, dy, "heat-map grid");
}

FgMap gaussian_fg_map(const torch::Tensor& boxes, const kernels::GaussianOptions& opts) {
  const torch::Tensor b = float32_boxes(boxes);
  return FgMap{kernels::gaussian_mask(b, opts), kernels::gaussian_radii(b, opts)};
}

torch::Tensor gaussian_fg_maps(const std::vector<torch::Tensor>& boxes, const kernels::GaussianOptions& opts) {
  std::vector<torch::Tensor> maps;
  for (const torch::Tensor& b : boxes) maps.push_back(kernels::gaussian_mask(float32_boxes(b), opts));
  if (maps.empty()) return torch::zeros({0, opts.grid.H, opts.grid.W});
  return torch::stack(maps);
}

}  // namespace bevkd::train::losses
