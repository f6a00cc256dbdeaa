// Hard voxelization and pillarization of LiDAR point clouds (mmcv `hard_voxelize` semantics),
// the input stage of the PointPillars teacher.
//
// Cells: a point p falls into cell c_a = floor((p_a - range_min_a) / voxel_size_a) on each axis
// a = x, y, z, evaluated in float32; it is dropped when any c_a is outside [0, n_a),
// n_a = round((range_max_a - range_min_a) / voxel_size_a) (so the upper faces of the range are
// exclusive, and NaN points are dropped).
//
// Which points are kept — identical on CPU and CUDA and for any thread count:
//  * voxels are numbered in the order in which their first point appears in the input;
//  * only the first `max_voxels` voxels are kept (points of later voxels are dropped);
//  * each voxel keeps its first `max_points_per_voxel` points, in input order.
// Pillars are voxels whose z size spans the whole z range (VoxelizeOptions::pillars).
#pragma once

#include <torch/types.h>

#include <array>

#include "base/bev_grid.h"
#include <cstdint>
#include <vector>

namespace bevkd::kernels {

struct VoxelizeOptions {
  // The voxels' x-y cells and the z range (m, ego frame); evaluated in float32.
  BevGrid grid;
  // Voxel height (m); 0 = one voxel over the whole z range (pillars).
  double voxel_z = 0;
  int64_t max_points_per_voxel = 20;
  int64_t max_voxels = 30000;

  // One voxel per BEV cell of `grid` (voxel_z = 0).
  static VoxelizeOptions pillars(const BevGrid& grid, int64_t max_points_per_voxel, int64_t max_voxels);

  // (n_x, n_y, n_z) cells. Throws bevkd::Error naming the bad field when the options are
  // invalid (an empty grid, a z range that is not a whole number of voxel_z, non-positive
  // limits, more than 2^31 - 1 cells).
  std::array<int64_t, 3> grid_size() const;
};

struct Voxels {
  torch::Tensor voxels;      // [V, max_points_per_voxel, F] float32: the kept points with all F
                             // input features (ego frame); unused slots are 0
  torch::Tensor coords;      // [V, 3] int32 (z, y, x) cell indices (row <-> y, column <-> x);
                             // [V, 4] int32 (batch, z, y, x) from voxelize_batch
  torch::Tensor num_points;  // [V] int32, in 1..max_points_per_voxel
};

// points: [P, F] float32, F >= 3, columns x, y, z (m, ego frame) then any features (intensity,
// time lag, ...), CPU or CUDA. Results are on the points' device.
Voxels voxelize(const torch::Tensor& points, const VoxelizeOptions& opts);

// Voxelizes each cloud of a batch (max_voxels applies per cloud) and concatenates the results;
// coords gain a leading batch index: [V, 4] (batch, z, y, x), the layout scatter_to_bev takes.
Voxels voxelize_batch(const std::vector<torch::Tensor>& clouds, const VoxelizeOptions& opts);

}  // namespace bevkd::kernels
