// The devkit's add_center_dist and filter_eval_boxes (spec/nuscenes.md §(d) "Filtering"),
// applied identically to GT and predictions, per sample, in this order:
//   1. range: keep a box if ego_dist < class_range[label] (strict);
//   2. points: drop boxes with num_pts == 0 (predictions carry -1 unless their JSON says 0);
//   3. bicycle racks: drop a bicycle or motorcycle box whose centre lies inside any
//      static_object.bicycle_rack box of the sample (faces included, in the rack's rotated frame).
#pragma once

#include <array>
#include <cstddef>

#include "core/eval/config.h"
#include "core/eval/eval_boxes.h"

namespace bevkd::core::eval {

// Box counts after each filter stage (what the devkit prints in verbose mode).
struct FilterStats {
  std::size_t total = 0;
  std::size_t after_range = 0;
  std::size_t after_points = 0;
  std::size_t after_bike_racks = 0;
};

// Sets every box's ego_translation = translation - the LIDAR_TOP key-frame ego position of its
// sample (looked up by token in `gt`). Throws bevkd::Error for a sample `gt` does not have.
void add_ego_translation(EvalBoxes& boxes, const GroundTruth& gt);

// Applies the three filters in place (boxes keep their relative order); ego_translation must
// have been set. Sample contexts are looked up by token in `gt`.
FilterStats filter_eval_boxes(EvalBoxes& boxes, const GroundTruth& gt, const DetectionConfig& cfg);

// The same for the boxes of one sample with its context; counts are added to `stats`.
void add_ego_translation(std::vector<EvalBox>& boxes, const SampleContext& ctx);
void filter_sample(std::vector<EvalBox>& boxes, const SampleContext& ctx, const DetectionConfig& cfg, FilterStats& stats);

// The devkit's points_in_box for one point: the point p (global) lies inside `rack`, faces
// included, tested by projecting p - corner0 on the three edges from corner 0 of the rack's
// corners (its full rotation, tilt included).
bool point_in_nusc_box(const core::NuscBox& box, const std::array<double, 3>& p);

}  // namespace bevkd::core::eval
