// Small builders for the core/eval tests: boxes, ground truth and predictions by hand.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "core/eval/eval_boxes.h"
#include "core/nuscenes_vocab.h"

namespace bevkd::core::eval::evaltest {

inline int L(const char* name) { return class_index(name); }
inline int A(const char* name) { return attribute_index(name); }

// A box of class `label` centred at (x, y, 1) with heading `yaw` (a pure yaw quaternion).
inline EvalBox box(int label, double x, double y, double yaw = 0.0) {
  EvalBox b;
  b.label = label;
  b.translation = {x, y, 1.0};
  b.size = {2.0, 4.0, 1.5};
  b.rotation = {std::cos(yaw / 2), 0.0, 0.0, std::sin(yaw / 2)};
  b.velocity = {1.0, 0.0};
  return b;
}

// A GT box: `num_pts` points and an attribute (default: the class's usual one, none for
// cones and barriers).
inline EvalBox gt_box(int label, double x, double y, double yaw = 0.0, int num_pts = 10) {
  EvalBox b = box(label, x, y, yaw);
  b.num_pts = num_pts;
  const std::string_view name = kClassNames[static_cast<std::size_t>(label)];
  if (name == "pedestrian") b.attribute = A("pedestrian.standing");
  else if (name == "bicycle" || name == "motorcycle") b.attribute = A("cycle.with_rider");
  else if (name == "traffic_cone" || name == "barrier") b.attribute = -1;
  else b.attribute = A("vehicle.moving");
  return b;
}

// A prediction identical to a GT box, with a score.
inline EvalBox pred_of(const EvalBox& gt, double score) {
  EvalBox p = gt;
  p.score = score;
  p.num_pts = -1;
  return p;
}

// A 32-hex-like token "s0000...<i>".
inline std::string token(int i) {
  std::string t = "sample" + std::to_string(i);
  t.resize(32, '0');
  return t;
}

// Ground truth with the ego at `ego` for every sample.
struct GtBuilder {
  GroundTruth gt;
  explicit GtBuilder(SplitKind kind = SplitKind::kPredefined) {
    gt.split_kind = kind;
    gt.description = "test split";
  }
  GtBuilder& sample(const std::string& tok, std::vector<EvalBox> boxes, core::Vec3 ego = {0, 0, 0},
                    std::vector<core::NuscBox> racks = {}) {
    gt.boxes.add_sample(tok, std::move(boxes));
    SampleContext c;
    c.ego_translation = ego;
    c.bicycle_racks = std::move(racks);
    gt.context.push_back(std::move(c));
    return *this;
  }
};

}  // namespace bevkd::core::eval::evaltest
