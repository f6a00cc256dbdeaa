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
  torch::Tensor index;   // [K] int64: row of each box in the sample's stored gt/boxes (DepthTargets::box_id - 1)

  SampleGt to(const torch::Device& device) const;
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

// The teacher fields of a batch as the shards store them: the loader does not convert them
// (half the bytes to move to the GPU for float16, a quarter for int8); to_float32() converts on
// the consumer's device. Dense fields are stacked over the batch; a field not requested is an
// undefined tensor / empty map / empty vector.
struct TeacherStored {
  std::map<std::string, torch::Tensor> features;        // tap -> [B, C, H, W] float16 (kHalf) or int8 (kChar)
  std::map<std::string, torch::Tensor> feature_scales;  // int8 taps only: [B, C] float32; value = q * scale[c]
  torch::Tensor heatmap;                   // [B, 10, H, W] float16
  torch::Tensor fg_mask;                   // [B, H, W] float16
  std::vector<torch::Tensor> boxes;        // [B] x [M, 9] float32
  std::vector<torch::Tensor> scores;       // [B] x [M] float32
  std::vector<torch::Tensor> labels;       // [B] x [M] int16
  std::vector<torch::Tensor> quality;      // [B] x [M] float32
  std::vector<torch::Tensor> class_probs;  // [B] x [M, 10] float16 (schema >= 1.1, when asked)

  // The float32 form on `device`: the stored tensors are moved there first, then converted
  // (int8 x scale per channel, float16 -> float32); one SampleTeacher per sample, whose dense
  // fields are views into [B, ...] tensors.
  std::vector<SampleTeacher> to_float32(const torch::Device& device, int64_t batch_size) const;
};

// Depth supervision at the depth net's stride (from the stored LiDAR points, after A).
struct DepthTargets {
  torch::Tensor depth;   // [B, N, h, w] float32 metres, min-pooled (nearest point per cell); 0 = no point
  torch::Tensor box_id;  // [B, N, h, w] int64, 1-based row of the sample's stored gt/boxes whose box
                         // holds the nearest point, 0 = none (TiG-BEV's fg_gt); undefined unless asked
  int64_t stride = 0;    // pixels of the augmented image per cell (h = H / stride)

  DepthTargets to(const torch::Device& device) const;
};

struct Batch {
  std::vector<std::string> sample_tokens;  // [B]
  std::vector<int64_t> views;              // [B] the replayed view of each sample
  CameraBatch cameras;
  DepthTargets depth;
  std::vector<SampleGt> gt;                // [B]
  // [B] float32 teacher fields (empty maps/tensors for fields not requested). The loader leaves
  // this empty and fills teacher_stored; Batch::to(device) fills it on the consumer's device.
  std::vector<SampleTeacher> teacher;
  TeacherStored teacher_stored;
  std::vector<std::vector<float>> ego2global;  // [B] 16 row-major (key-frame ego -> global), for evaluation
  std::vector<std::string> shards;             // [B] manifest-relative shard of each sample
  std::vector<int64_t> shard_samples;          // [B] index of each sample in its shard
  int64_t size() const { return static_cast<int64_t>(sample_tokens.size()); }

  // Everything on `device`, teacher fields converted there (TeacherStored::to_float32).
  Batch to(const torch::Device& device) const;
};

}  // namespace bevkd::train::data
