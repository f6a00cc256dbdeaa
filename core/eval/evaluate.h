// The nuScenes detection evaluation as a library call (the devkit's DetectionEval), used by
// bevkd-eval, by the teacher evaluation in precompute and by bevkd-train's periodic evaluation:
//
//   GroundTruth gt = ...;                       // from a dataroot or shards (gt_*.h)
//   EvalBoxes preds = load_results(path).boxes;  // or to_eval_boxes(detections) in process
//   EvalResult r = evaluate(gt, preds, DetectionConfig::cvpr_2019());
//   r.metrics.nd_score, r.metrics.mean_ap, ...
//
// spec/nuscenes.md §(d): predictions are checked against the split, both sides get their ego
// distances and are filtered, every (class, threshold) is accumulated, and AP, TP errors (with
// the traffic-cone and barrier overrides), mAP, mTP and NDS are aggregated.
#pragma once

#include <array>
#include <iosfwd>
#include <string>
#include <vector>

#include "core/eval/accumulate.h"
#include "core/eval/config.h"
#include "core/eval/eval_boxes.h"
#include "core/eval/filter.h"

namespace bevkd::core::eval {

// The devkit's DetectionMetrics, per class in cfg.class_order ("position" p below is the index
// into cfg.class_order, not a label id).
struct DetectionMetrics {
  DetectionConfig cfg;
  ResultsMeta meta;
  std::vector<std::vector<double>> label_aps;                   // [p][threshold index] AP
  std::vector<std::array<double, kNumTpMetrics>> label_tp_errors;  // [p][TpMetric]; NaN for the overrides
  std::vector<double> mean_dist_aps;                            // [p] mean AP over the thresholds
  double mean_ap = 0;                                           // mAP over all classes (absent classes count 0)
  std::array<double, kNumTpMetrics> tp_errors{};                // nanmean over classes (mATE ... mAAE)
  std::array<double, kNumTpMetrics> tp_scores{};                // max(0, 1 - tp_errors)
  double nd_score = 0;                                          // NDS
  double eval_time_s = 0;                                       // accumulate + metrics (the devkit's eval_time)

  // AP of a label id at a threshold index; the mean over thresholds; a TP error.
  double ap(int label, int threshold_index) const;
  double mean_dist_ap(int label) const;
  double tp_error(int label, TpMetric m) const;
  int position_of(int label) const;  // index into cfg.class_order
};

// The accumulated curves of every (class, threshold): [p][threshold index] (the devkit's
// DetectionMetricDataList, written as metrics_details.json).
using MetricDataList = std::vector<std::vector<MetricData>>;

struct EvalResult {
  DetectionMetrics metrics;
  MetricDataList details;
  FilterStats gt_filter, pred_filter;       // box counts through the filters
  std::size_t num_samples = 0;              // samples evaluated
  double seconds_filter = 0, seconds_accumulate = 0;
  // Ground truth that could not be read and was left out (GroundTruth::unreadable); when not
  // empty the metrics cover the readable samples only, and bevkd-eval exits with status 2.
  std::vector<std::string> unreadable_gt;
};

struct EvalOptions {
  // Names the predictions in error messages (e.g. the results file path).
  std::string predictions_name = "predictions";
  // Threads for the (class, threshold) accumulations; 0: hardware concurrency.
  int num_threads = 0;
  // Verbose log (filter counts, per-stage timings) like the devkit's verbose mode; null: silent.
  std::ostream* log = nullptr;
  // A Progress line over the (class, threshold) accumulations on stderr.
  bool show_progress = false;
};

// Checks predictions against the ground truth's split (spec/nuscenes.md §(c)) and returns them
// in the order the devkit iterates them:
//  * every sample has at most cfg.max_boxes_per_sample boxes;
//  * kPredefined: the sample set equals the split's — missing and extra samples are errors;
//    the order is the predictions' own (the results file's key order);
//  * kCustom: every split sample must be present, extra samples are dropped; split order.
// Errors name `predictions_name` and the first offending sample tokens.
EvalBoxes align_predictions(const GroundTruth& gt, const EvalBoxes& predictions, const DetectionConfig& cfg,
                            const std::string& predictions_name = "predictions");

// The whole evaluation. `gt` is not modified (its filtered copy is internal). With no
// prediction at all — where the devkit crashes — every class gets the no-prediction record:
// AP 0, TP errors 1 (NaN for the overrides), mAP 0, NDS 0.
EvalResult evaluate(const GroundTruth& gt, const EvalBoxes& predictions, const DetectionConfig& cfg,
                    const ResultsMeta& meta = {}, const EvalOptions& options = {});

// Aggregates accumulated curves into metrics (the devkit's run() step 2); `details` is
// [p][threshold index] as in MetricDataList.
DetectionMetrics compute_metrics(const MetricDataList& details, const DetectionConfig& cfg, const ResultsMeta& meta = {});

}  // namespace bevkd::core::eval
