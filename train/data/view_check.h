// Do the shards' teacher boxes and the loader's transformed GT describe the same scene? For every
// stored view (or a chosen one), the loader replays the view exactly as training does (its bda on
// the GT), and each confident teacher box is matched to a GT box of its class by centre distance
// (greedy, highest score first, nuScenes-style, within max_distance). A view replayed right puts
// the matched teacher centres within one teacher cell of the GT (median), and keeps about as many
// teacher boxes on the GT as view 0 (the key frame, whose bda is the identity and cannot be
// wrong). As a control the same teacher boxes are matched to the key-frame GT (the view's bda NOT
// applied), which for a rotated or flipped view is far worse — a wrong sign or a missing flip
// shows up as a large gap. Passing needs, for every view: median matched distance <= one cell, and
// for views >= 1: on_gt >= min_view_ratio x view 0's on_gt (on_gt: the fraction of the confident
// teacher boxes within one cell of a GT box of their class).
//
//   bevkd-train check-views --shards run/shards --dataroot run/synth --split mini_train
//
// Used by `bevkd-train check-views` (the figure for a trained teacher comes from the demo's
// shards: scripts/check_views.sh) and by tests/train/data (a teacher built in the test).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace bevkd::train::data {

// One matched pair: a teacher box, a GT box of the same class, their centre distance in x-y (m).
struct CentreMatch {
  std::int64_t teacher = 0, gt = 0;
  double distance = 0;
};

// Greedy centre matching of one sample. teacher_boxes [M, >=2] (x, y first), teacher_scores [M],
// teacher_labels [M]; gt_centres [K, >=2], gt_labels [K]. Teacher boxes with score < min_score are
// ignored; in descending score order (ties: lower index first) each takes the nearest unmatched GT
// of its class within max_distance (ties: lower index). Float tensors on any device.
std::vector<CentreMatch> match_centres(const torch::Tensor& teacher_boxes, const torch::Tensor& teacher_scores,
                                       const torch::Tensor& teacher_labels, const torch::Tensor& gt_centres,
                                       const torch::Tensor& gt_labels, double min_score, double max_distance);

struct ViewCheckConfig {
  std::string shards;    // manifest.json or its directory
  std::string dataroot;  // the images' dataset root (the loader decodes them; small final size)
  std::string split = "train";
  std::int64_t view = -1;         // -1: every stored view
  std::int64_t max_samples = 0;   // per view; 0 = the whole split
  double min_score = 0.3;         // teacher boxes at least this confident
  double max_distance = 2.0;      // m, the match radius (nuScenes' largest centre threshold)
  double min_view_ratio = 0.8;    // pass: a view's on_gt at least this fraction of view 0's
  int threads = 2;

  void validate() const;
  template <class V>
  void fields(V& v) {
    v("shards", shards, "--shards", "manifest.json (or its directory)");
    v("dataroot", dataroot, "--dataroot", "dataset root of the images");
    v("split", split, "--split", "split to check");
    v("view", view, "--view", "stored view to check (-1: all)");
    v("max_samples", max_samples, "--max-samples", "samples per view (0: the whole split)");
    v("min_score", min_score, "--min-score", "teacher boxes with at least this score");
    v("max_distance", max_distance, "--max-distance", "match radius in metres");
    v("min_view_ratio", min_view_ratio, "--min-view-ratio",
      "pass when every view keeps this fraction of view 0's teacher boxes on the GT");
    v("threads", threads, "--loader-threads", "loader threads");
  }
};

// Matched distances of one view, with the view's bda applied to the GT and without it (control).
struct ViewAlignment {
  std::int64_t view = 0;
  std::int64_t samples = 0;
  std::int64_t gt = 0;       // GT boxes after the GT rule, in the view
  std::int64_t teacher = 0;  // teacher boxes with score >= min_score
  std::vector<double> with_bda, without_bda;  // metres

  // Fraction of the confident teacher boxes matched within `cell` (with the view's bda, or the
  // control); NaN without teacher boxes.
  double on_gt(double cell, bool with = true) const;
  // Fraction of `d` at most `limit`; NaN when `d` is empty.
  static double fraction_within(const std::vector<double>& d, double limit);
  static double quantile(std::vector<double> d, double q);  // NaN when empty
};

struct ViewCheckResult {
  double cell = 0;  // the shards' (teacher's) cell size in x (m)
  std::vector<ViewAlignment> views;
  bool passed = false;  // see the top of this file
};

// Runs the check through the training loader (view policy "fixed", one pass per view).
ViewCheckResult check_view_alignment(const ViewCheckConfig& cfg);
// The table bevkd-train check-views prints.
void print_view_check(const ViewCheckResult& r, const ViewCheckConfig& cfg, std::ostream& out);

}  // namespace bevkd::train::data
