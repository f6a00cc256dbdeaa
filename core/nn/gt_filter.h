// THE rule that turns stored ground truth into training targets, shared by both stages
// (DESIGN.md "Box"): the teacher's fitting and precompute's masks/quality (precompute/), and the
// student's loader (train/) go through these functions and nothing else.
//
//  * A GT box is a training target iff it has at least one LiDAR or radar point (mmdetection3d's
//    use_valid_flag) and a label in [0, num_classes).
//  * Its velocity is a target iff velocity_valid: storage keeps vx = vy = 0 with
//    velocity_valid = 0 (the devkit's velocity is NaN there); here such a box gets vx = vy = NaN,
//    which the target builders and losses mask out (center_targets.h, CenterHead.loss's isnotnan).
//    A student fed the stored zeros would otherwise learn "velocity 0" for every such box.
//  * After a BEV augmentation, boxes whose BEV centre leaves the grid are dropped
//    (mmdetection3d's ObjectRangeFilter: strictly inside the x-y range).
#pragma once

#include <torch/types.h>

#include <vector>

#include "base/bev_grid.h"
#include "core/nuscenes_vocab.h"

namespace bevkd::core::nusc {
struct KeyFrame;
}

namespace bevkd::core::nn {

// One sample's ground truth as stored (shards' gt/* datasets, or a key frame), CPU tensors.
struct StoredGt {
  torch::Tensor boxes;           // [N, 9] float32 (key-frame ego frame, Box); vx = vy = 0 where unknown
  torch::Tensor labels;          // [N] integer label ids (DESIGN.md order)
  torch::Tensor num_lidar_pts;   // [N] integer
  torch::Tensor num_radar_pts;   // [N] integer
  torch::Tensor velocity_valid;  // [N] bool or integer (0 / 1)
};

// The training targets of one sample.
struct TrainingGt {
  torch::Tensor boxes;   // [K, 9] float32 (ego frame, Box); vx = vy = NaN where the velocity is unknown
  torch::Tensor labels;  // [K] int64
  torch::Tensor index;   // [K] int64 rows of the StoredGt they come from
  int64_t size() const { return boxes.defined() ? boxes.size(0) : 0; }
};

// The rule above; throws bevkd::Error naming the field on inconsistent shapes or dtypes.
TrainingGt training_gt(const StoredGt& gt, int num_classes = kNumClasses);

// The boxes of `gt` whose BEV centre (x, y) lies strictly inside the grid's x-y range.
TrainingGt in_range(const TrainingGt& gt, const BevGrid& grid);

// A key frame's ground truth in the stored form (core/nuscenes/key_frame.h).
StoredGt stored_gt(const nusc::KeyFrame& kf);

}  // namespace bevkd::core::nn
