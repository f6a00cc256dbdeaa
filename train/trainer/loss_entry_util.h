// Helpers shared by the registry's entry files (loss_entries*.cpp): the teacher fields of a batch,
// channel counts of taps, shard needs and the one dense adaptor rule.
#pragma once

#include <torch/nn/functional/upsampling.h>
#include <torch/nn/modules/conv.h>
#include <torch/types.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "train/trainer/loss_registry.h"

namespace bevkd::train::trainer {

using nlohmann::json;

inline int64_t tap_channels(const LossSetup& s, const std::string& tap) {
  for (const auto& t : s.teacher_taps)
    if (t.name == tap) return t.channels;
  BEVKD_FAIL(s.where, ": the shards hold no teacher tap '", tap, "'");
}

inline int64_t student_channels(const LossSetup& s, const std::string& tap) {
  const auto& c = s.student;
  if (tap == student::kTapHeadShared) {
    BEVKD_CHECK(!c.query(), s.where, ": the student's query head has no '", tap, "' tap (the CenterHead's shared "
                "conv); use student_tap ", student::kTapNeck, " or ", student::kTapLss);
    return c.head.shared_channels;
  }
  if (tap == student::kTapNeck) return c.bev_neck_channels();
  if (tap == student::kTapLss) return c.depth_net.context_channels;
  std::string known;
  for (const auto& n : student::student_tap_names()) known += (known.empty() ? "" : ", ") + n;
  BEVKD_FAIL(s.where, ": the student has no tap '", tap, "' (taps: ", known, ")");
}

// The teacher's feature map of the batch, [B, C, H, W] float32.
inline torch::Tensor teacher_map(const data::Batch& b, const std::string& tap) {
  std::vector<torch::Tensor> v;
  for (const auto& t : b.teacher) v.push_back(t.features.at(tap));
  return torch::stack(v);
}

inline torch::Tensor teacher_fg(const data::Batch& b) {
  std::vector<torch::Tensor> v;
  for (const auto& t : b.teacher) v.push_back(t.fg_mask);
  return torch::stack(v);
}

inline std::vector<torch::Tensor> gt_boxes(const data::Batch& b) {
  std::vector<torch::Tensor> v;
  for (const auto& g : b.gt) v.push_back(g.boxes);
  return v;
}

inline ShardNeed tap_need(const std::string& tap) {
  return {"teacher/features/" + tap, "--taps " + tap + " (a tap of the teacher)", tap,
          [tap](data::LoaderConfig& c) {
            if (std::find(c.teacher_taps.begin(), c.teacher_taps.end(), tap) == c.teacher_taps.end())
              c.teacher_taps.push_back(tap);
          }};
}

inline ShardNeed fg_need() {
  return {"fg_mask", "(every shard holds fg_mask)", "", [](data::LoaderConfig& c) { c.teacher_fg_mask = true; }};
}

inline ShardNeed box_id_need() {
  return {"depth/box_id", "(every shard holds depth/uvd and depth/box_id)", "",
          [](data::LoaderConfig& c) { c.depth_box_id = true; }};
}

// The one adaptor rule for the pure dense losses: a 1x1 conv (bias) when the channel counts differ,
// then a bilinear resize (align_corners = false) onto the teacher's H x W when the grids differ.
struct DenseAdaptor : torch::nn::Module {
  torch::nn::Conv2d align{nullptr};
  DenseAdaptor(int64_t cs, int64_t ct) {
    if (cs != ct) align = register_module("align", torch::nn::Conv2d(torch::nn::Conv2dOptions(cs, ct, 1)));
  }
  torch::Tensor operator()(torch::Tensor s, const torch::Tensor& t) {
    if (align) s = align->forward(s);
    if (s.size(2) != t.size(2) || s.size(3) != t.size(3))
      s = torch::nn::functional::interpolate(
          s, torch::nn::functional::InterpolateFuncOptions()
                 .size(std::vector<int64_t>{t.size(2), t.size(3)})
                 .mode(torch::kBilinear)
                 .align_corners(false));
    return s;
  }
};

inline std::string str(const json& p, const char* k) { return p.at(k).get<std::string>(); }
inline double num(const json& p, const char* k) { return p.at(k).get<double>(); }


inline ShardNeed teacher_boxes_need() {
  return {"teacher/boxes", "(every shard holds the teacher's boxes, scores, labels and quality)", "",
          [](data::LoaderConfig& c) { c.teacher_boxes = true; }};
}

template <class L>
inline std::function<std::shared_ptr<DistillLoss>(const LossSetup&)> maker() {
  return [](const LossSetup& s) { return std::make_shared<L>(s); };
}

}  // namespace bevkd::train::trainer
