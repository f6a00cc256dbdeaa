// What the shard-fed loader (train/data/) hands the trainer (train/trainer/) and the student
// (train/student/): one batch of B samples, each replaying one stored view v of its sample
// (DESIGN.md "Stage two: how the student sees the teacher").
//
// Frames and conventions:
//  * Pixels: continuous image coordinates with pixel centres at integers (OpenCV; nuScenes'
//    intrinsics), u = column, v = row, of the AUGMENTED image the student sees.
//  * img_aug A (3x3, affine, last row 0 0 1): original pixel -> augmented pixel, composing
//    resize, crop, flip and rotation; intrinsics = A K (K the stored camera matrix), so a camera
//    point p (OpenCV camera frame, m) projects to A K p / z and the augmented pixel (u, v) at depth
//    d unprojects to d (A K)^-1 [u, v, 1].
//  * cam2ego: camera -> key-frame ego (the stored cams/cam2ego).
//  * bda (3x3): the view's BEV augmentation, key-frame ego -> ego of the view (the stored
//    view/bda[v]); applied to the student's frustum points after cam2ego and to the GT. Stored
//    teacher maps, boxes and masks of view v are already in the view's frame.
#pragma once

#include <torch/types.h>

#include <map>
#include <string>
#include <vector>

namespace bevkd::train::data {

// The camera inputs of a batch (float32; CPU from the loader, moved to the training device).
struct CameraBatch {
  torch::Tensor images;      // [B, N, 3, H, W] float32, augmented, normalised ((x/255 - mean) / std)
  torch::Tensor intrinsics;  // [B, N, 3, 3] float32 = A K (pixels of the augmented image)
  torch::Tensor cam2ego;     // [B, N, 4, 4] float32 camera -> key-frame ego (m)
  torch::Tensor img_aug;     // [B, N, 3, 3] float32 A (original pixel -> augmented pixel)
  torch::Tensor bda;         // [B, 3, 3] float32 key-frame ego -> ego of the view

  CameraBatch to(const torch::Device& device) const;
};

// Ground truth of one sample in the view's frame: the stored GT through the one rule
// (core/nn/gt_filter.h: valid boxes, unknown velocity -> NaN), transformed by bda, then boxes whose
// centre left the grid dropped.
struct SampleGt {
  torch::Tensor boxes;   // [K, 9] float32 (ego of the view, Box); vx = vy = NaN where unknown
  torch::Tensor labels;  // [K] int64
};

// The teacher's stored outputs of one sample's view (converted to float32 on the consumer side).
struct SampleTeacher {
  std::map<std::string, torch::Tensor> features;  // tap -> [C, H, W] float32 (the teacher grid)
  torch::Tensor heatmap;      // [10, H, W] float32 in [0, 1]
  torch::Tensor fg_mask;      // [H, W] float32 in [0, 1]
  torch::Tensor boxes;        // [M, 9] float32 (ego of the view, Box)
  torch::Tensor scores;       // [M] float32
  torch::Tensor labels;       // [M] int64
  torch::Tensor quality;      // [M] float32
  torch::Tensor class_probs;  // [M, 10] float32; undefined for a schema 1.0 shard
};

// Depth supervision at the depth net's stride (from the stored LiDAR points, after A).
struct DepthTargets {
  torch::Tensor depth;   // [B, N, h, w] float32 metres, min-pooled (nearest point per cell); 0 = no point
  torch::Tensor box_id;  // [B, N, h, w] int64, 1-based row of the sample's stored gt/boxes whose box
                         // holds the nearest point, 0 = none (TiG-BEV's fg_gt); undefined unless asked
};

struct Batch {
  std::vector<std::string> sample_tokens;  // [B]
  std::vector<int64_t> views;              // [B] the replayed view of each sample
  CameraBatch cameras;
  DepthTargets depth;
  std::vector<SampleGt> gt;                // [B]
  std::vector<SampleTeacher> teacher;      // [B] (empty maps/tensors for fields not requested)
  std::vector<std::vector<float>> ego2global;  // [B] 16 row-major (key-frame ego -> global), for evaluation
  int64_t size() const { return static_cast<int64_t>(sample_tokens.size()); }
};

}  // namespace bevkd::train::data
