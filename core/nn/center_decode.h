// CenterPoint decoding (mmdetection3d CenterPointBBoxCoder.decode + CenterHead.get_bboxes):
// per task, top-K over the sigmoid heat maps (K = max_num over all of the task's classes), box
// decoding at the chosen cells, score threshold (score > thr) and centre range, then rotated NMS
// (BEV IoU > nms_iou_threshold suppresses; pre_max_size / post_max_size) or circle NMS
// (centre distance² <= radius_t suppresses; post_max_size), then all tasks are merged and the
// best max_per_sample kept.
//
// Decoded box (bevkd Box, ego frame, see center_head.h for the regression layout):
//   x = x_min + (col + reg_x) * dx,  y = y_min + (row + reg_y) * dy,  z = height,
//   (l, w, h) = exp(dim),  yaw = wrap(atan2(sin, cos)),  (vx, vy) = vel (0 without velocity).
// This inverts center_targets() exactly: a target (cx - col, cy - row) decodes to cx * dx + x_min.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/nn/center_head.h"
#include "core/geometry.h"

namespace bevkd::core::nn {

enum class NmsKind { kNone, kRotate, kCircle };
NmsKind nms_kind_from_string(const std::string& s);  // "none" | "rotate" | "circle"; throws otherwise
std::string to_string(NmsKind k);
// Configuration as data (base/config.h): an NmsKind is its string.
nlohmann::json to_config_json(NmsKind k);
void from_config_json(const nlohmann::json& j, NmsKind& k, const std::string& where);

struct DecodeConfig {
  BevGrid grid;                   // the grid of the head's outputs (cells voxel * out_size_factor)
  std::vector<TaskClasses> tasks = nuscenes_tasks();
  int num_classes = kNumClasses;
  int64_t max_num = 500;          // top-K per task
  double score_threshold = 0.1;   // keep score > threshold
  std::array<double, 6> post_center_range{-61.2, -61.2, -10.0, 61.2, 61.2, 10.0};  // x, y, z min / max (m)
  NmsKind nms = NmsKind::kRotate;
  double nms_iou_threshold = 0.2;  // rotated NMS: suppress BEV IoU > threshold
  int64_t pre_max_size = 1000;     // rotated NMS: best candidates considered
  int64_t post_max_size = 83;      // kept per task after NMS
  // Circle NMS per task: suppress a box whose centre lies within sqrt(radius) m of a kept one
  // (mmdet3d compares the squared distance with these values directly).
  std::vector<double> circle_nms_radius{4, 12, 10, 1, 0.85, 0.175};
  // false: mmdet3d's behaviour, NMS across the classes of a task; true: boxes of different
  // classes never suppress each other (for heads with one task for many classes).
  bool nms_per_class = false;
  int64_t max_per_sample = 500;    // the nuScenes submission limit

  void validate(const std::string& where = "decode") const;

  // The post-processing fields only: grid and tasks belong to the model (set from it).
  template <class V>
  void fields(V& v) {
    v("max_num", max_num);
    v("score_threshold", score_threshold);
    v("post_center_range", post_center_range);
    v("nms", nms);
    v("nms_iou_threshold", nms_iou_threshold);
    v("pre_max_size", pre_max_size);
    v("post_max_size", post_max_size);
    v("circle_nms_radius", circle_nms_radius);
    v("nms_per_class", nms_per_class);
    v("max_per_sample", max_per_sample);
  }
};

// Detections of one sample, on the CPU.
struct Detections {
  torch::Tensor boxes;   // [N, 9] float32 (ego frame, Box: x, y, z, l, w, h, yaw, vx, vy)
  torch::Tensor scores;  // [N] float32 sigmoid heat-map value at the centre cell
  torch::Tensor labels;  // [N] int64 label ids (DESIGN.md order)
  torch::Tensor cells;   // [N] int64 row * W + col of the centre cell on the output grid
  int64_t size() const { return boxes.defined() ? boxes.size(0) : 0; }
};

// Top-K candidates of one task before thresholds and NMS, for a batch: the mmdet3d _topk.
struct TopK {
  torch::Tensor scores;  // [B, K] float32, descending
  torch::Tensor cls;     // [B, K] int64 channel within the task
  torch::Tensor index;   // [B, K] int64 row * W + col
};
// heat: [B, C, H, W] probabilities. K is clamped to C * H * W.
TopK topk_heatmap(const torch::Tensor& heat, int64_t k);

// Decodes the boxes of a task at given cells: [B, K, 9] float32 (see the file comment).
torch::Tensor decode_boxes_at(const TaskPrediction& p, const torch::Tensor& index, const BevGrid& grid);

// Full decoding of a batch; preds: one per cfg.tasks entry (logits as the head returns them).
std::vector<Detections> decode_center_head(const std::vector<TaskPrediction>& preds, const DecodeConfig& cfg);

}  // namespace bevkd::core::nn
