// Gaussian heat maps with exactly the mmdetection3d semantics of spec/losses.md §2
// (core/utils/gaussian.py and CenterHead.get_targets_single): CenterPoint's class heat-map
// targets, and the single-channel foreground masks of BEVDistill and FD3D.
//
// Per box (x, y, z, l, w, h, yaw, ...), in float32 as upstream:
//   width  = w / voxel_x / out_size_factor,  length = l / voxel_y / out_size_factor   (cells)
//   skipped unless width > 0 and length > 0
//   radius = max(min_radius, int(gaussian_radius((length, width), min_overlap)))
//   coor   = ((x - x_min) / voxel_x / out_size_factor, (y - y_min) / voxel_y / out_size_factor)
//   centre = coor truncated toward zero (to(int32)): -0.06 lands in column 0
//   skipped unless the centre is inside [0, W) x [0, H)
// and the kernel g = exp(-(dx² + dy²) / (2σ²)), σ = (2r+1)/6, in float64 with entries below
// eps_f64 set to 0, cast to float32 and max-merged into heatmap[label][y, x] (row <-> y,
// column <-> x). Sizes follow mmdet3d v0.17, whose boxes carry (w, l, h): "width" is the size
// across the heading, "length" along it. The yaw is ignored (upstream draws circles).
#pragma once

#include <torch/types.h>

#include <array>
#include <cstdint>

#include "base/bev_grid.h"

namespace bevkd::kernels {

struct GaussianOptions {
  // The heat map's grid (ego frame; only x and y are used): [grid.H, grid.W] cells of
  // grid.dx x grid.dy m.
  BevGrid grid;
  // Heat-map stride in detector voxels: upstream divides by the voxel size and then by this
  // factor, in float32, with voxel = grid.dx / out_size_factor (e.g. BEVDistill: 0.8 m cells =
  // 0.1 m voxels x 8). Any factor gives the same cells; the factor only reproduces upstream's
  // float32 rounding at borderline truncations.
  int64_t out_size_factor = 1;
  double min_overlap = 0.1;  // gaussian_overlap of the train config
  int64_t min_radius = 2;    // 2 for CenterPoint and FD3D, 1 for BEVDistill's mask
};

// gaussian_radius((height, width), min_overlap) of mmdet3d, evaluated in float32 (sizes in
// heat-map cells); the caller applies max(min_radius, int(r)).
float gaussian_radius(float height, float width, double min_overlap);

// draw_heatmap_gaussian: max-merges the radius-r kernel centred on cell (center_x, center_y)
// into heatmap [H, W] float32 (CPU, contiguous), clipped at the borders. The centre must lie
// inside the map (callers skip other boxes, as upstream does); radius >= 0.
void draw_gaussian(torch::Tensor& heatmap, int64_t center_x, int64_t center_y, int64_t radius);

// boxes:  [N, 7] or [N, 9] float32 (ego frame, Box: x, y, z, l, w, h, yaw[, vx, vy]);
// labels: [N] integer class ids in [0, num_classes), same device.
// Returns the CenterPoint targets [num_classes, H, W] float32 on the boxes' device.
torch::Tensor gaussian_heatmaps(const torch::Tensor& boxes, const torch::Tensor& labels, int64_t num_classes,
                                const GaussianOptions& opts);

// The radius each box is drawn with, max(min_radius, int(gaussian_radius)), or -1 for a box
// upstream skips for its size (width or length not positive in cells); boxes whose centre is
// off the map still get their radius. boxes [N, 7|9] float32 (Box) -> [N] int64 on the boxes'
// device (a per-box scalar: computed on the CPU, for CUDA boxes from a copy).
torch::Tensor gaussian_radii(const torch::Tensor& boxes, const GaussianOptions& opts);

// Single-channel variant (every box drawn into one map), e.g. BEVDistill's foreground mask
// (min_radius 1): boxes [N, 7|9] float32 -> [H, W] float32.
torch::Tensor gaussian_mask(const torch::Tensor& boxes, const GaussianOptions& opts);

}  // namespace bevkd::kernels
