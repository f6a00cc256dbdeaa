// Stage "post-process" of the run pipeline: turns a sample's key frame and the teacher outputs
// of its V views into the shard record (schemas/shard_v1.json, every field; DESIGN.md
// conventions). Per view v (BEV transform M_v, view 0 the identity):
//   teacher/features/<tap>  [V, C, H, W] float16, or int8 + teacher/feature_scales/<tap> [V, C]
//                           (storage/quantize.h); float16 saturates at +-65504 (counted)
//   teacher/heatmap         [V, 10, H, W] float16, sigmoid heat maps
//   teacher/boxes, scores, labels, quality   ragged per view, the decoded boxes after NMS in the
//                           view's frame, and BEVDistill's quality (teacher_quality below)
//   teacher/class_probs     ragged [M, 10] float16: the view's sigmoid heat maps (all 10 classes,
//                           label order) at each box's peak cell (Detections::cells) — every
//                           teacher's TeacherOutput::heatmap holds them, its tasks mapped to label order
//   fg_mask                 [V, H, W] float16: kernels::gaussian_mask of the view's valid GT
//                           centres (spec/losses.md §2; min_radius 1 and min_overlap 0.1 by default)
//   view/bda                [V, 3, 3] float32, M_v (core::nn::BevTransform::matrix())
// and per sample (un-augmented, key-frame ego frame):
//   sample_token, scene_token, timestamp, ego2global
//   gt/boxes, labels, attributes, num_lidar_pts, num_radar_pts, velocity_valid; gt/rack_boxes
//   cams/image_path, intrinsics, cam2ego (kCameraChannels order)
//   depth/uvd, depth/box_id  per camera: kernels::project_depth_sparse of the key frame's points
//                           (or all sweeps), nearest per stride x stride pixels, box_id = row of
//                           gt/boxes containing the point (-1 none)
//
// "Valid GT" is what the teacher is trained on and what the official evaluation keeps: boxes
// with at least one LiDAR or radar point (mmdetection3d's use_valid_flag).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "core/geometry.h"
#include "kernels/gaussian.h"
#include "precompute/run/run_batch.h"
#include "precompute/run/run_config.h"

namespace bevkd::precompute {

struct PostprocessParams {
  BevGrid grid;               // the teacher's output grid
  std::vector<std::string> taps;    // feature taps to store
  bool int8_features = false;
  double quality_gamma = 0.5;
  kernels::GaussianOptions fg;      // on `grid` (voxel = cell, out_size_factor 1)
  int64_t depth_stride = 4;
  float depth_min = 1.0f, depth_max = 100.0f;
  bool depth_key_frame_only = true;

  static PostprocessParams from(const RunConfig& cfg, const BevGrid& grid, std::vector<std::string> taps);
};

class PostprocessStage {
 public:
  explicit PostprocessStage(PostprocessParams p) : p_(std::move(p)) {}

  // Builds s.record from s.frame, s.views and rows [first, first + V) of `out`; releases the
  // key frame's points. Thread-safe.
  void run(SampleWork& s, const TeacherOutput& out, int64_t first) const;

  // Feature values that exceeded float16's range and were saturated, so far.
  int64_t saturated() const { return saturated_.load(); }

 private:
  PostprocessParams p_;
  mutable std::atomic<int64_t> saturated_{0};
};

// BEVDistill's quality of teacher boxes (DESIGN.md teacher/quality; spec/losses.md §11.1):
//   q_i = c_i^gamma * IoU_i^(1 - gamma),  IoU_i = max over GT j with label_j == label_i of
//   IoU_3D(b_i, g_j) (kernels::iou_3d), and q_i = 0 where that maximum is 0 (no GT of the class
//   overlaps the box: unmatched).
// boxes [M, 9] float32 and gt_boxes [G, 9] float32 in one frame (Box); scores [M] float32 in
// [0, 1]; labels [M], gt_labels [G] integer class ids. Returns [M] float32 in [0, 1].
torch::Tensor teacher_quality(const torch::Tensor& boxes, const torch::Tensor& scores, const torch::Tensor& labels,
                              const torch::Tensor& gt_boxes, const torch::Tensor& gt_labels, double gamma);


}  // namespace bevkd::precompute
