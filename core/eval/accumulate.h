// The devkit's per-class matching and curve resampling (eval/detection/algo.py: accumulate,
// calc_ap, calc_tp) and its box error functions (eval/common/utils.py), following
// spec/nuscenes.md §(d) step by step, in float64 and the devkit's operation order.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/eval/config.h"
#include "core/eval/eval_boxes.h"

namespace bevkd::core::eval {

// Number of recall bins: recall r_k = numpy.linspace(0, 1, 101)[k].
inline constexpr int kNumRecallBins = 101;

// The devkit's DetectionMetricData: curves resampled at the 101 recall bins.
struct MetricData {
  std::vector<double> recall;      // r_k = linspace(0, 1, 101)
  std::vector<double> precision;   // P_k = interp(r_k, rec, prec, right=0); no precision envelope
  std::vector<double> confidence;  // C_k = interp(r_k, rec, conf, right=0); 0 beyond the max recall
  std::array<std::vector<double>, kNumTpMetrics> tp_errors;  // E_k per TpMetric (trans, scale, orient, vel, attr)

  // Precision and confidence 0, all TP errors 1 (a class without GT, or without any match).
  static MetricData no_predictions();
  // Last k with C_k != 0, or 0 if none (the devkit's max_recall_ind).
  int max_recall_index() const;
  const std::vector<double>& tp(TpMetric m) const { return tp_errors[static_cast<std::size_t>(m)]; }
};

// Box errors of a match (gt, pred), as the devkit computes them.
double center_distance(const EvalBox& gt, const EvalBox& pred);  // x-y distance (m)
double velocity_l2(const EvalBox& gt, const EvalBox& pred);      // x-y velocity difference (m/s); NaN if either is NaN
double scale_iou(const EvalBox& gt, const EvalBox& pred);        // IoU of the boxes aligned at centre and heading
// Signed smallest angle from y to x with the given period: (x - y + p/2) mod p - p/2 (Python
// mod), minus 2 pi if above pi.
double angle_diff(double x, double y, double period);
// |angle_diff| of the two boxes' yaws (period 2 pi, or pi for barriers).
double yaw_diff(const EvalBox& gt, const EvalBox& pred, double period);
// 1 if the attributes agree, 0 if not, NaN if the GT has no attribute.
double attr_acc(const EvalBox& gt, const EvalBox& pred);

// Matches predictions to GT for every (class, threshold) of an evaluation. Construction sorts
// each class's predictions into the devkit's match order once: by score descending and, for
// equal scores, the box that comes later in `pred`'s iteration order (samples in order, boxes
// in list order) first — the devkit sorts (score, index) ascending and reverses. run() is
// const and may be called from several threads at once.
//
// `gt` and `pred` must already be filtered; every sample of `pred` must exist in `gt`
// (bevkd::Error naming the sample otherwise). Both are referenced, not copied: they must
// outlive the Accumulator.
class Accumulator {
 public:
  Accumulator(const EvalBoxes& gt, const EvalBoxes& pred);

  // accumulate(gt, pred, class, center_distance, dist_th) of the devkit.
  MetricData run(int label, double dist_th) const;
  // Number of GT boxes / predictions of a class.
  std::size_t num_gt(int label) const;
  std::size_t num_pred(int label) const;

 private:
  struct Pred {
    double score;
    std::uint32_t gt_sample;
    const EvalBox* box;
  };
  const EvalBoxes& gt_;
  // Per class, the predictions in match order.
  std::array<std::vector<Pred>, kNumClasses> preds_;
  // Per class, the GT box indices of each sample in list order: gt_index_[c][gt_offset_[c][s] ..
  // gt_offset_[c][s + 1]) are the indices into gt_.boxes(s).
  std::array<std::vector<std::uint32_t>, kNumClasses> gt_offset_;
  std::array<std::vector<std::uint32_t>, kNumClasses> gt_index_;
};

// One-shot form of Accumulator::run.
MetricData accumulate(const EvalBoxes& gt, const EvalBoxes& pred, int label, double dist_th);

// Average precision: mean over k = round(100 min_recall) + 1 .. 100 of max(P_k - min_precision, 0),
// divided by (1 - min_precision).
double calc_ap(const MetricData& md, double min_recall, double min_precision);

// TP error: 1 if max_recall_index() < round(100 min_recall) + 1, else the mean of E_k over
// k = round(100 min_recall) + 1 .. max_recall_index().
double calc_tp(const MetricData& md, double min_recall, TpMetric metric);

}  // namespace bevkd::core::eval
