// What bevkd-eval writes and prints after an evaluation, laid out like the devkit's outputs:
//
//   <output_dir>/metrics_summary.json  label_aps, mean_dist_aps, mean_ap, label_tp_errors,
//                                      tp_errors, tp_scores, nd_score, eval_time, cfg, meta
//   <output_dir>/metrics_details.json  "<class>:<dist_th>" -> recall, precision, confidence,
//                                      trans_err, vel_err, scale_err, orient_err, attr_err
//                                      (101 values each)
//   <output_dir>/plots/<class>_pr.png  precision-recall curves at every threshold
//   <output_dir>/plots/dist_pr_<th>.png  all classes at one threshold
//
// JSON is formatted like Python's json.dump(indent=2), NaN included (the devkit writes NaN for
// the traffic-cone and barrier overrides; Python's json reads it back).
#pragma once

#include <string>

#include "core/eval/evaluate.h"

namespace bevkd::core::eval {

// The devkit's printed summary (mAP, mATE ... mAAE, NDS, eval time) followed by a per-class
// table with the mean AP, the AP at every threshold and the five TP errors ("nan" where the
// devkit has NaN).
std::string format_summary(const DetectionMetrics& m);

// metrics_summary.json text.
std::string metrics_summary_json(const DetectionMetrics& m);
// metrics_details.json text.
std::string metrics_details_json(const MetricDataList& details, const DetectionConfig& cfg);

// Writes one PR-curve PNG per class (<dir>/<class>_pr.png) and one per threshold
// (<dir>/dist_pr_<th>.png); creates `dir`.
void write_pr_curves(const std::string& dir, const MetricDataList& details, const DetectionMetrics& m);

// Writes metrics_summary.json, metrics_details.json and (if `plots`) plots/ under
// `output_dir` (created), each file atomically.
void write_eval_outputs(const std::string& output_dir, const EvalResult& r, bool plots = true);

}  // namespace bevkd::core::eval
