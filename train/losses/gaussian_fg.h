// Gaussian foreground maps (spec/losses.md §2): mmdet3d's draw_heatmap_gaussian of every box
// into one map, as BEVDistill's dense distillation (§3.1, min_radius 1) and FocalDistiller's
// HeatmapDistiller (§6, min_radius 2) draw them. The drawing is kernels/gaussian.h; this file
// fixes the grid (an explicit H x W map at a given x_min, y_min, voxel and stride) and reports
// the radius of every box.
//
// Upstream computes centres and radii on float32 boxes: boxes of any float dtype are cast to
// float32 first, and the map is float32 (the kernel values are float64 cast to float32).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace bevkd::train::losses {

// Where a foreground map lies: cell (r, c) covers x in x_min + [c, c+1)·voxel_x·stride, y in
// y_min + [r, r+1)·voxel_y·stride (row <-> y, column <-> x).
struct FgMapGeometry {
  double x_min = -51.2, y_min = -51.2;  // pc_range[0], pc_range[1] (m, ego frame)
  double voxel_x = 0.1, voxel_y = 0.1;  // voxel size (m)
  int64_t out_size_factor = 8;          // stride of the map in voxels
  int64_t height = 128, width = 128;    // H (rows, y) and W (columns, x) of the map
  int64_t min_radius = 1;               // 1 for BEVDistill, 2 for CenterPoint / FocalDistiller
  double min_overlap = 0.1;

  // Throws bevkd::Error naming the field for a non-positive size, voxel or stride, a min_overlap
  // outside (0, 1) or a negative min_radius.
  void validate() const;
};

// BEVDistill get_bev_fit_loss's hard-coded geometry (§3.1): pc_range [-51.2, -51.2, ...], voxel
// 0.1, grid 1024 x 1024, stride 8 -> 128 x 128, min_radius 1, min_overlap 0.1.
FgMapGeometry bevdistill_fg_geometry();

struct FgMap {
  torch::Tensor map;     // [H, W] float32 in [0, 1], boxes max-merged
  torch::Tensor radius;  // [K] int64: max(min_radius, int(r)), -1 for a box of non-positive size
};

// One sample. boxes: [K, 9] (or [K, 7]) float32/float64, DESIGN.md Box (x, y, z, l, w, h, yaw,
// vx, vy; ego frame, m). Boxes whose truncated centre is off the map are not drawn but keep
// their radius. K = 0 gives an all-zero map. CPU or CUDA (the map is on the boxes' device).
FgMap gaussian_fg_map(const torch::Tensor& boxes, const FgMapGeometry& g);

// A batch: boxes[b] as above -> [B, H, W] float32 (B = boxes.size()).
torch::Tensor gaussian_fg_maps(const std::vector<torch::Tensor>& boxes, const FgMapGeometry& g);

}  // namespace bevkd::train::losses
