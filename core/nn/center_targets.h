// CenterPoint target assignment (mmdetection3d CenterHead.get_targets_single), in bevkd's box
// parameterisation (see center_head.h):
//   * heat map per task: a Gaussian per object drawn with mmdetection3d's semantics through
//     kernels/ (spec/losses.md §2: radius from the CornerNet formula on the box's l and w in
//     feature cells, max(min_radius, int(r)), centre truncated toward zero, max-merged);
//   * for slot k (the task's k-th object, k < max_objs): the index row*W + col of its centre cell,
//     mask 1, and the regression target
//       (cx - col, cy - row, z, log l, log w, log h, sin yaw, cos yaw, vx, vy)
//     with (cx, cy) = ((x - x_min) / voxel / out_size_factor, (y - y_min) / ...) in float32 —
//     the same two divisions as upstream, so borderline truncations match;
//   * objects whose centre cell falls outside the grid, or with l <= 0 or w <= 0, keep mask 0.
// Velocities that are NaN (nuScenes: no neighbouring annotation) stay NaN in the target; the
// loss masks them out (CenterHead.loss's `isnotnan`).
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <vector>

#include "core/nn/center_head.h"
#include "core/geometry.h"

namespace bevkd::core::nn {

// Geometry of a CenterPoint head's output: the output grid, and how many detector voxels one
// output cell spans (upstream computes centres as (x - x_min) / voxel / out_size_factor in float32,
// with voxel = grid cell / out_size_factor; keeping the factor reproduces its borderline
// truncations exactly; kernels/gaussian.h).
struct HeadGeometry {
  BevGrid grid;                 // the head's output grid (m, ego frame)
  int64_t out_size_factor = 1;  // detector voxels per output cell

  const BevGrid& output_grid() const { return grid; }
  void validate(const std::string& where) const;

  template <class V>
  void fields(V& v) {
    v("grid", grid);
    v("out_size_factor", out_size_factor);
  }
};

struct CenterTargetConfig {
  HeadGeometry geometry;
  double gaussian_overlap = 0.1;  // min_overlap of gaussian_radius
  int min_radius = 2;             // CenterPoint's 2 (BEVDistill's fg mask uses 1)
  int64_t max_objs = 500;         // slots per task (max_objs * dense_reg upstream)
  std::vector<TaskClasses> tasks = nuscenes_tasks();
  int num_classes = kNumClasses;

  void validate(const std::string& where = "center targets") const;
};

// Targets of one task for a batch.
struct TaskTargets {
  torch::Tensor heatmap;  // [B, K_t, H, W] float32 in [0, 1]; 1 exactly at object centre cells
  torch::Tensor box;      // [B, M, 10] float32 regression targets (see the file comment)
  torch::Tensor index;    // [B, M] int64 row * W + col of the centre cell (0 where mask is 0)
  torch::Tensor mask;     // [B, M] uint8 1 where slot m holds an object
  torch::Tensor source;   // [B, M] int64 the object's row in gt_boxes[b] where mask is 1, -1 elsewhere
};

// gt_boxes[b]: [N_b, 9] float32 (ego frame, Box: x, y, z, l, w, h, yaw, vx, vy); gt_labels[b]:
// [N_b] int64 label ids (DESIGN.md order; labels in no task are ignored). CPU tensors.
// Returns one TaskTargets per task, on the CPU.
std::vector<TaskTargets> center_targets(const std::vector<torch::Tensor>& gt_boxes,
                                        const std::vector<torch::Tensor>& gt_labels, const CenterTargetConfig& cfg);

}  // namespace bevkd::core::nn
