// Gaussian foreground maps (spec/losses.md §2): mmdet3d's draw_heatmap_gaussian of every box
// into one map, as BEVDistill's dense distillation (§3.1, min_radius 1) and FocalDistiller's
// HeatmapDistiller (§6, min_radius 2) draw them, and the radius each box is drawn with. The
// drawing is kernels/gaussian.h on the map's BevGrid (opts.grid: the map is grid.H x grid.W
// cells; the trainer passes the head's grid, loss-probe builds one with heat_map_grid()).
//
// Upstream computes centres and radii on float32 boxes: boxes of any float dtype are cast to
// float32 first, and the map is float32 (the kernel values are float64 cast to float32).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "base/bev_grid.h"
#include "kernels/gaussian.h"

namespace bevkd::train::losses {

// The grid of a heat map described the way upstream configs describe it: the map's first
// corner (pc_range[0], pc_range[1]), the detector voxel, the stride in voxels (one cell =
// voxel · out_size_factor m) and the map's size H (rows, y) x W (columns, x). The 2-D maps never
// read z: the grid's z range is [0, 1]. Throws bevkd::Error for non-finite or non-positive values.
BevGrid heat_map_grid(double x_min, double y_min, double voxel_x, double voxel_y, int64_t out_size_factor, int64_t H,
                      int64_t W);

struct FgMap {
  torch::Tensor map;     // [H, W] float32 in [0, 1], boxes max-merged
  torch::Tensor radius;  // [K] int64: max(min_radius, int(r)), -1 for a box of non-positive size
};

// One sample. boxes: [K, 9] (or [K, 7]) float32/float64, DESIGN.md Box (x, y, z, l, w, h, yaw, vx,
// vy; ego frame, m). Boxes whose truncated centre is off the map are not drawn but keep their
// radius. K = 0 gives an all-zero map. CPU or CUDA (the map is on the boxes' device).
FgMap gaussian_fg_map(const torch::Tensor& boxes, const kernels::GaussianOptions& opts);

// A batch: boxes[b] as above -> [B, H, W] float32 (B = boxes.size()).
torch::Tensor gaussian_fg_maps(const std::vector<torch::Tensor>& boxes, const kernels::GaussianOptions& opts);

}  // namespace bevkd::train::losses
