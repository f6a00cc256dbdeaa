// CenterPoint's CenterHead (Yin et al., CVPR 2021; mmdetection3d `CenterHead` + `SeparateHead`):
// a shared 3x3 conv + BN + ReLU (the `head_shared` feature tap of spec/losses.md §11), then one
// SeparateHead per task with the heat-map branch and the regression branches
//   reg (2: sub-cell centre offset), height (1: z of the geometric centre),
//   dim (3: log l, log w, log h), rot (2: sin yaw, cos yaw), vel (2: vx, vy; optional).
//
// Used by the LiDAR teacher (precompute/) and by the camera student (train/), so it knows
// nothing about LiDAR. Parameter names follow mmdetection3d's state-dict keys
// (`shared_conv.conv.weight`, `task_heads.0.reg.0.bn.running_mean`, `task_heads.0.heatmap.1.bias`)
// so that weights map one-to-one.
//
// Box parameterisation — bevkd's Box (DESIGN.md), NOT mmdetection3d v0.17's:
//   dim = log(l, w, h) with l along the heading; rot = (sin yaw, cos yaw) with yaw CCW from +x.
// mmdetection3d v0.17 (the version BEVDistill/TiG-BEV vendor) regresses log(w, l, h) and
// yaw' = -yaw - pi/2 (spec/losses.md §1); bevkd's parameterisation is the one of mmdetection3d
// >= 1.0, where LiDAR boxes are (x, y, z, l, w, h, yaw). See convert_v017_box_regression().
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/nuscenes_vocab.h"

namespace bevkd::core::nn {

// The label ids (DESIGN.md class order, see core/nuscenes_vocab.h) one task predicts; heat-map
// channel k of the task is class task[k].
using TaskClasses = std::vector<int>;

// mmdetection3d's nuScenes CenterPoint tasks: [car], [truck, construction_vehicle],
// [bus, trailer], [barrier], [motorcycle, bicycle], [pedestrian, traffic_cone].
std::vector<TaskClasses> nuscenes_tasks();
// One task holding classes 0..num_classes-1.
std::vector<TaskClasses> single_task(int num_classes = kNumClasses);
// Throws bevkd::Error (prefixed with `where`) unless the tasks are non-empty, each non-empty,
// with labels in [0, num_classes) and no label in two tasks.
void validate_tasks(const std::vector<TaskClasses>& tasks, int num_classes, const std::string& where);

struct CenterHeadConfig {
  int64_t in_channels = 384;      // channels of the BEV feature the head reads
  int64_t shared_channels = 64;   // mmdet3d share_conv_channel
  int64_t head_channels = 64;     // mmdet3d head_conv
  int64_t final_kernel = 3;       // kernel of every branch conv (SeparateHead final_kernel)
  int64_t num_heatmap_convs = 2;  // heat-map branch depth (convs, the last one included)
  int64_t num_reg_convs = 2;      // depth of each regression branch (common_heads' second entry)
  bool with_velocity = true;
  double init_bias = -2.19;       // heat-map logit bias at init: sigmoid(-2.19) = 0.1
  double bn_eps = 1e-5;           // BN2d defaults, as mmdet3d's head norm_cfg=dict(type='BN2d')
  double bn_momentum = 0.1;
  int num_classes = kNumClasses;
  std::vector<TaskClasses> tasks = nuscenes_tasks();

  // Throws bevkd::Error naming the field (prefixed with `where`).
  void validate(const std::string& where = "center head") const;

  template <class V>
  void fields(V& v) {
    v("in_channels", in_channels);
    v("shared_channels", shared_channels);
    v("head_channels", head_channels);
    v("final_kernel", final_kernel);
    v("num_heatmap_convs", num_heatmap_convs);
    v("num_reg_convs", num_reg_convs);
    v("with_velocity", with_velocity);
    v("init_bias", init_bias);
    v("bn_eps", bn_eps);
    v("bn_momentum", bn_momentum);
    v("num_classes", num_classes);
    v("tasks", tasks);
  }
};

// Raw outputs of one task on the head's BEV grid (DESIGN.md: row <-> y, column <-> x), float32.
struct TaskPrediction {
  torch::Tensor heatmap;  // [B, K_t, H, W] logits; channel k is class tasks[t][k]
  torch::Tensor reg;      // [B, 2, H, W] centre offset (x, y) in cells from the cell's lower corner
  torch::Tensor height;   // [B, 1, H, W] z of the box's geometric centre, m
  torch::Tensor dim;      // [B, 3, H, W] log l, log w, log h (m)
  torch::Tensor rot;      // [B, 2, H, W] sin yaw, cos yaw
  torch::Tensor vel;      // [B, 2, H, W] vx, vy (m/s); undefined for a head without velocity
};

struct CenterHeadOutput {
  torch::Tensor shared;               // [B, shared_channels, H, W]: the `head_shared` tap
  std::vector<TaskPrediction> tasks;  // one per CenterHeadConfig::tasks entry
};

// The class heat maps after sigmoid, channels in label order: [B, num_classes, H, W] float32.
// Classes in no task are 0.
torch::Tensor class_heatmap(const std::vector<TaskPrediction>& preds, const std::vector<TaskClasses>& tasks,
                            int num_classes = kNumClasses);

// mmdet3d's ConvModule(conv, BN, ReLU) with bias=False: children `conv` and `bn`.
class ConvBnReluImpl : public torch::nn::Module {
 public:
  ConvBnReluImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, double bn_eps, double bn_momentum);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv_{nullptr};
  torch::nn::BatchNorm2d bn_{nullptr};
};
TORCH_MODULE(ConvBnRelu);

// One task's branches (mmdet3d SeparateHead): children `reg`, `height`, `dim`, `rot`, [`vel`],
// `heatmap`, each a Sequential of (num_convs - 1) ConvBnRelu and a final biased Conv2d.
class SeparateHeadImpl : public torch::nn::Module {
 public:
  SeparateHeadImpl(const CenterHeadConfig& cfg, int64_t num_task_classes);
  TaskPrediction forward(const torch::Tensor& shared);

 private:
  torch::nn::Sequential branch(const CenterHeadConfig& cfg, int64_t out, int64_t num_convs, bool heatmap);
  torch::nn::Sequential heatmap_{nullptr}, reg_{nullptr}, height_{nullptr}, dim_{nullptr}, rot_{nullptr}, vel_{nullptr};
};
TORCH_MODULE(SeparateHead);

class CenterHeadImpl : public torch::nn::Module {
 public:
  explicit CenterHeadImpl(CenterHeadConfig cfg);
  // x: [B, in_channels, H, W] float32 BEV features.
  CenterHeadOutput forward(const torch::Tensor& x);
  const CenterHeadConfig& config() const { return cfg_; }

 private:
  CenterHeadConfig cfg_;
  ConvBnRelu shared_conv_{nullptr};
  torch::nn::ModuleList task_heads_{nullptr};
};
TORCH_MODULE(CenterHead);

// Converts one task's regression maps from mmdetection3d v0.17's box parameterisation
// (dim = log(w, l, h), rot = (sin yaw', cos yaw') with yaw' = -yaw - pi/2; spec/losses.md §1) to
// bevkd's (dim = log(l, w, h), rot = (sin yaw, cos yaw)) in place of the returned copy:
//   sin yaw = sin(-yaw' - pi/2) = -cos yaw',   cos yaw = cos(yaw' + pi/2) = -sin yaw'.
// Centre, height and velocity need no change.
TaskPrediction convert_v017_box_regression(const TaskPrediction& p);

}  // namespace bevkd::core::nn
