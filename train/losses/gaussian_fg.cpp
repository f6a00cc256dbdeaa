#include "train/losses/gaussian_fg.h"

#include <cmath>

#include "base/error.h"
#include "kernels/gaussian.h"

namespace bevkd::train::losses {
namespace {

kernels::GaussianOptions kernel_options(const FgMapGeometry& g) {
  g.validate();
  kernels::GaussianOptions o;
  o.range = {static_cast<float>(g.x_min), static_cast<float>(g.y_min), 0.0f, 0.0f, 0.0f, 0.0f};
  o.voxel_x = static_cast<float>(g.voxel_x);
  o.voxel_y = static_cast<float>(g.voxel_y);
  o.out_size_factor = g.out_size_factor;
  o.min_overlap = g.min_overlap;
  o.min_radius = g.min_radius;
  o.map_shape = {g.height, g.width};
  return o;
}

torch::Tensor float32_boxes(const torch::Tensor& boxes) {
  BEVKD_CHECK(
      boxes.defined() && boxes.dim() == 2 && (boxes.size(1) == 9 || boxes.size(1) == 7) && boxes.is_floating_point(),
      "gaussian_fg_map: boxes must be [K, 9] (or [K, 7]) float (x, y, z, l, w, h, yaw, vx, vy), found ",
      boxes.defined() ? cat(boxes.sizes(), " ", boxes.scalar_type()) : std::string("undefined"));
  return boxes.detach().to(torch::kFloat32).contiguous();
}

}  // namespace

void FgMapGeometry::validate() const {
  BEVKD_CHECK(height >= 1 && width >= 1, "foreground map: H and W must be >= 1, found ", height, " x ", width);
  BEVKD_CHECK(std::isfinite(x_min) && std::isfinite(y_min), "foreground map: x_min, y_min must be finite, found ",
              x_min, ", ", y_min);
  BEVKD_CHECK(std::isfinite(voxel_x) && voxel_x > 0 && std::isfinite(voxel_y) && voxel_y > 0,
              "foreground map: voxel sizes must be positive, found ", voxel_x, ", ", voxel_y);
  BEVKD_CHECK(out_size_factor >= 1, "foreground map: out_size_factor must be >= 1, found ", out_size_factor);
  BEVKD_CHECK(min_radius >= 0, "foreground map: min_radius must be >= 0, found ", min_radius);
  BEVKD_CHECK(min_overlap > 0 && min_overlap < 1, "foreground map: min_overlap must be in (0, 1), found ", min_overlap);
}

FgMapGeometry bevdistill_fg_geometry() {
  FgMapGeometry g;
  g.x_min = g.y_min = -51.2;
  g.voxel_x = g.voxel_y = 0.1;
  g.out_size_factor = 8;
  g.height = g.width = 1024 / 8;
  g.min_radius = 1;
  g.min_overlap = 0.1;
  return g;
}

FgMap gaussian_fg_map(const torch::Tensor& boxes, const FgMapGeometry& g) {
  const kernels::GaussianOptions o = kernel_options(g);
  const torch::Tensor b = float32_boxes(boxes);
  return FgMap{kernels::gaussian_mask(b, o), kernels::gaussian_radii(b, o)};
}

torch::Tensor gaussian_fg_maps(const std::vector<torch::Tensor>& boxes, const FgMapGeometry& g) {
  const kernels::GaussianOptions o = kernel_options(g);
  std::vector<torch::Tensor> maps;
  for (const torch::Tensor& b : boxes) maps.push_back(kernels::gaussian_mask(float32_boxes(b), o));
  if (maps.empty()) return torch::zeros({0, g.height, g.width});
  return torch::stack(maps);
}

}  // namespace bevkd::train::losses
