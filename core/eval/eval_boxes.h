// The evaluation's data classes (the devkit's DetectionBox / EvalBoxes) and the ground truth
// with what the filters need per sample (spec/nuscenes.md §(c)-(d)). All in the nuScenes
// GLOBAL frame, float64, exactly as the devkit holds them: the evaluation never converts
// frames, so it gives the devkit's numbers on the same inputs.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/geometry.h"

namespace bevkd::core::eval {

// One box, a prediction or a GT annotation. The sample it belongs to is given by the
// EvalBoxes entry that holds it (the token is stored once per sample, not per box).
struct EvalBox {
  std::array<double, 3> translation{0, 0, 0};   // centre (global, m)
  std::array<double, 3> size{0, 0, 0};          // [w, l, h] (m), all > 0
  std::array<double, 4> rotation{1, 0, 0, 0};   // quaternion [w, x, y, z] (global)
  std::array<double, 2> velocity{0, 0};         // [vx, vy] (global, m/s); NaN where undefined
  std::array<double, 3> ego_translation{0, 0, 0};  // translation - LIDAR_TOP key-frame ego position (m); set by add_ego_translation
  int num_pts = -1;            // GT: num_lidar_pts + num_radar_pts; predictions: -1 unless the JSON says otherwise
  int label = 0;               // detection_name as a label id into core::kClassNames
  double score = -1.0;         // detection_score; -1 for GT
  int attribute = -1;          // attribute_name as an index into core::kAttributeNames; -1 = ""

  // sqrt(ego_x^2 + ego_y^2), the devkit's ego_dist (plain sqrt, not hypot).
  double ego_dist() const;
};

// What is wrong with a box, as the tail of an error message (".size[1]: sizes [w, l, h] must
// be > 0, found -2.0"), or "" if nothing: label and attribute ids in range, finite translation,
// size (> 0) and rotation (not all zero), velocity finite or NaN, finite score. Callers prefix
// the box's location.
std::string box_problem(const EvalBox& b);

// Boxes grouped by sample, in sample order (the devkit's EvalBoxes: iteration order matters for
// tie-breaking in matching) and, within a sample, in list order.
class EvalBoxes {
 public:
  // Appends a sample. Throws bevkd::Error if `token` is already present.
  void add_sample(std::string token, std::vector<EvalBox> boxes = {});

  std::size_t num_samples() const { return tokens_.size(); }
  const std::string& token(std::size_t i) const { return tokens_[i]; }
  const std::vector<std::string>& tokens() const { return tokens_; }
  const std::vector<EvalBox>& boxes(std::size_t i) const { return boxes_[i]; }
  std::vector<EvalBox>& boxes(std::size_t i) { return boxes_[i]; }
  // Index of a sample token, or -1.
  long index_of(const std::string& token) const;
  bool contains(const std::string& token) const { return index_of(token) >= 0; }
  // Number of boxes over all samples.
  std::size_t total_boxes() const;

 private:
  std::vector<std::string> tokens_;
  std::vector<std::vector<EvalBox>> boxes_;
  std::unordered_map<std::string, std::size_t> index_;
};

// The 'meta' block of a results file.
struct ResultsMeta {
  bool use_camera = false, use_lidar = false, use_radar = false, use_map = false, use_external = false;
};

// How the set of result samples is checked against the split (spec/nuscenes.md §(c)):
//  * kPredefined (train, val, test, mini_train, mini_val, train_detect, train_track): the results
//    must hold exactly the split's samples; predictions are iterated in the results' order.
//  * kCustom (a splits.json split, a scene list, shards): every sample of the split must be
//    present, extra samples are ignored; predictions are iterated in the split's order.
enum class SplitKind { kPredefined, kCustom };

// What the filters need to know about a sample from the dataset.
struct SampleContext {
  core::Vec3 ego_translation{0, 0, 0};       // ego_pose.translation of the sample's LIDAR_TOP key frame (global, m)
  std::vector<core::NuscBox> bicycle_racks;  // the sample's static_object.bicycle_rack annotations (global; velocity unused)
};

// Ground truth of one evaluation: the samples of the split in sample-table order, per sample
// its annotations mapped to the 10 classes in sample.anns order (score -1, num_pts = lidar +
// radar points, velocity by the devkit's box_velocity rule), plus the per-sample context.
struct GroundTruth {
  EvalBoxes boxes;
  std::vector<SampleContext> context;  // parallel to boxes' samples
  SplitKind split_kind = SplitKind::kCustom;
  std::string description;             // names the source in messages, e.g. "v1.0-mini split mini_val"
  // GT from shards: shards (or samples) that could not be read — damaged files, each message
  // names the file — and were left out. The evaluation then covers the remaining samples only.
  std::vector<std::string> unreadable;

  // Checks that context has one entry per sample and the GT boxes are well-formed.
  void validate() const;
};

// Yaw of a quaternion [w, x, y, z] the devkit's way (quaternion_yaw): the heading of the rotated
// x axis, atan2(R[1][0], R[0][0]), with pyquaternion's normalisation (skipped when the squared
// norm is within 1e-14 of 1). In (-pi, pi].
double quaternion_yaw(const std::array<double, 4>& q);

}  // namespace bevkd::core::eval
