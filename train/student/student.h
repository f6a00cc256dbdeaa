// The camera student: BEVDepth-style lift-splat (Li et al., AAAI 2023) ending in the teacher's
// CenterHead (core/nn, the same box coding).
//
//   images [B, N, 3, H, W]
//     -> img_backbone (ResNet, torchvision names)        one map per out index
//     -> img_neck (SECONDFPN)                             [B·N, Ci, H/16, W/16]
//     -> depth_net (camera-aware, BEVDepth DepthNet)      depth logits [B·N, D, h, w], context [B·N, C, h, w]
//     -> softmax over D; lift-splat (kernels/bev_pool)   "lss" [B, C, Hg, Wg] on the student grid
//     -> bev_backbone (ResNet trunk, no max pool) + bev_neck (SECONDFPN over [lss, trunk outputs])
//                                                          "neck" [B, Cn, Hg, Wg]
//     -> head (core::nn::CenterHead)                       "head_shared" [B, 64, Hg, Wg] + per-task maps
//
// Module names (state-dict prefixes): img_backbone, img_neck, depth_net, bev_backbone, bev_neck, head.
// The lift-splat geometry follows the module's mode: training prepares it per batch, evaluation
// (eval()) uses the geometry cache (lift_splat.h).
//
// Usage:
//   auto cfg = student_preset("tiny");
//   Student model(cfg);
//   model->load_image_backbone_weights("resnet18.bevkd.pt");   // --init (full-width presets)
//   StudentTimings t;
//   StudentOutput out = model->forward(batch.cameras, &t);
//   auto loss = core::nn::center_head_loss(out.tasks, targets, cfg.loss).total;
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <string>
#include <vector>

#include "core/nn/center_head.h"
#include "core/nn/query_decoder.h"
#include "core/nn/second.h"
#include "train/data/batch.h"
#include "train/student/depth_net.h"
#include "train/student/lift_splat.h"
#include "train/student/resnet.h"
#include "train/student/student_config.h"
#include "train/student/torchvision_init.h"

namespace bevkd::train::student {

// The distillation taps (spec/losses.md §11): names a loss's `tap` option takes.
inline constexpr const char* kTapLss = "lss";                 // raw lift-splat BEV map
inline constexpr const char* kTapNeck = "neck";               // BEV neck output
inline constexpr const char* kTapHeadShared = "head_shared";  // the head's shared conv output
std::vector<std::string> student_tap_names();                 // lss, neck, head_shared

// Wall-clock milliseconds per stage of one forward pass (CUDA synchronised before each reading),
// filled when forward() is given a StudentTimings.
struct StudentTimings {
  double image_backbone_ms = 0;
  double image_neck_ms = 0;
  double depth_net_ms = 0;   // including the softmax
  LiftSplatTimings lift_splat;  // geometry (frustum points), prepare, pool; cache hit
  double bev_encoder_ms = 0;    // bev_backbone + bev_neck
  double head_ms = 0;
  double total_ms = 0;
};

struct StudentOutput {
  std::vector<core::nn::TaskPrediction> tasks;  // CenterHead outputs per task on the student grid
  torch::Tensor head_shared;   // [B, head.shared_channels, Hg, Wg] float32
  torch::Tensor neck;          // [B, bev_neck channels, Hg, Wg] float32
  torch::Tensor lss;           // [B, depth_net.context_channels, Hg, Wg] float32, the lift-splat map
  torch::Tensor depth_logits;  // [B, N, D, h, w] float32 (h, w = image / depth_stride)
  torch::Tensor depth;         // [B, N, D, h, w] float32 softmax over D (BEVDepth's depth loss reads this)
  torch::Tensor context;       // [B, N, C, h, w] float32
  // The query head's per-layer outputs (head_type "query"; then `tasks` is empty and head_shared
  // undefined): class logits [B, Q, 10], box codes [B, Q, 10] (core/nn/query_decoder.h).
  core::nn::QueryDecoderOutput query;

  // A distillation tap by name (kTap*); throws bevkd::Error naming the known taps otherwise.
  const torch::Tensor& tap(const std::string& name) const;
};

class StudentImpl : public torch::nn::Module {
 public:
  explicit StudentImpl(StudentConfig cfg);

  // cameras: train/data/batch.h's CameraBatch (images [B, N, 3, H, W] normalised, intrinsics = A K,
  // cam2ego, img_aug, bda), all on the model's device, H x W = the config's image size.
  StudentOutput forward(const data::CameraBatch& cameras, StudentTimings* timings = nullptr);

  // --init: torchvision ResNet weights (torchvision_init.h) into img_backbone.
  InitReport load_image_backbone_weights(const std::string& path);

  const StudentConfig& config() const { return cfg_; }
  LiftSplat& lift_splat() { return *lift_splat_; }
  int64_t num_parameters() const;            // all parameters
  int64_t num_parameters(const std::string& module) const;  // of one child (img_backbone, ...)

  ResNet img_backbone{nullptr};
  core::nn::SecondFpn img_neck{nullptr};
  DepthNet depth_net{nullptr};
  ResNet bev_backbone{nullptr};
  core::nn::SecondFpn bev_neck{nullptr};
  core::nn::CenterHead head{nullptr};            // head_type "center"
  core::nn::QueryDecoder query_head{nullptr};    // head_type "query"

 private:
  StudentConfig cfg_;
  std::unique_ptr<LiftSplat> lift_splat_;
};
TORCH_MODULE(Student);

}  // namespace bevkd::train::student
