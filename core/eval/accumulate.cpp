#include "core/eval/accumulate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "base/error.h"
#include "base/math.h"
#include "core/eval/numpy_ops.h"
#include "core/nuscenes_vocab.h"

namespace bevkd::core::eval {

MetricData MetricData::no_predictions() {
  MetricData md;
  md.recall = np::linspace(0, 1, kNumRecallBins);
  md.precision.assign(kNumRecallBins, 0.0);
  md.confidence.assign(kNumRecallBins, 0.0);
  for (auto& e : md.tp_errors) e.assign(kNumRecallBins, 1.0);
  return md;
}

int MetricData::max_recall_index() const {
  for (int k = static_cast<int>(confidence.size()) - 1; k >= 0; --k)
    if (confidence[static_cast<std::size_t>(k)] != 0.0) return k;
  return 0;
}

double center_distance(const EvalBox& gt, const EvalBox& pred) {
  const double dx = pred.translation[0] - gt.translation[0];
  const double dy = pred.translation[1] - gt.translation[1];
  return std::sqrt(dx * dx + dy * dy);
}

double velocity_l2(const EvalBox& gt, const EvalBox& pred) {
  const double dx = pred.velocity[0] - gt.velocity[0];
  const double dy = pred.velocity[1] - gt.velocity[1];
  return std::sqrt(dx * dx + dy * dy);
}

double scale_iou(const EvalBox& gt, const EvalBox& pred) {
  // numpy.prod multiplies left to right.
  const double va = (gt.size[0] * gt.size[1]) * gt.size[2];
  const double vr = (pred.size[0] * pred.size[1]) * pred.size[2];
  const double inter = (std::min(gt.size[0], pred.size[0]) * std::min(gt.size[1], pred.size[1])) *
                       std::min(gt.size[2], pred.size[2]);
  const double uni = va + vr - inter;
  return inter / uni;
}

double angle_diff(double x, double y, double period) {
  double diff = np::python_mod(x - y + period / 2, period) - period / 2;
  if (diff > kPi) diff = diff - 2 * kPi;
  return diff;
}

double yaw_diff(const EvalBox& gt, const EvalBox& pred, double period) {
  return std::abs(angle_diff(quaternion_yaw(gt.rotation), quaternion_yaw(pred.rotation), period));
}

double attr_acc(const EvalBox& gt, const EvalBox& pred) {
  if (gt.attribute < 0) return std::numeric_limits<double>::quiet_NaN();
  return gt.attribute == pred.attribute ? 1.0 : 0.0;
}

Accumulator::Accumulator(const EvalBoxes& gt, const EvalBoxes& pred) : gt_(gt) {
  // GT of each class per sample, in list order.
  const std::size_t ns = gt.num_samples();
  for (int c = 0; c < kNumClasses; ++c) {
    gt_offset_[static_cast<std::size_t>(c)].assign(ns + 1, 0);
  }
  for (std::size_t s = 0; s < ns; ++s) {
    for (int c = 0; c < kNumClasses; ++c) gt_offset_[static_cast<std::size_t>(c)][s + 1] = gt_offset_[static_cast<std::size_t>(c)][s];
    const auto& list = gt.boxes(s);
    for (std::size_t i = 0; i < list.size(); ++i) {
      const auto c = static_cast<std::size_t>(list[i].label);
      BEVKD_ASSERT(list[i].label >= 0 && list[i].label < kNumClasses);
      gt_index_[c].push_back(static_cast<std::uint32_t>(i));
      ++gt_offset_[c][s + 1];
    }
  }
  // Predictions of each class in iteration order, then sorted into match order.
  for (std::size_t s = 0; s < pred.num_samples(); ++s) {
    const long g = gt.index_of(pred.token(s));
    BEVKD_CHECK(g >= 0, "predictions for sample ", pred.token(s), ", which is not in the ground truth");
    for (const EvalBox& b : pred.boxes(s)) {
      BEVKD_ASSERT(b.label >= 0 && b.label < kNumClasses);
      preds_[static_cast<std::size_t>(b.label)].push_back({b.score, static_cast<std::uint32_t>(g), &b});
    }
  }
  for (auto& list : preds_) {
    // Descending score; for ties the later box first. A stable sort on score descending after
    // reversing the iteration order gives exactly that.
    std::reverse(list.begin(), list.end());
    std::stable_sort(list.begin(), list.end(), [](const Pred& a, const Pred& b) { return a.score > b.score; });
  }
}

std::size_t Accumulator::num_gt(int label) const { return gt_index_[static_cast<std::size_t>(label)].size(); }
std::size_t Accumulator::num_pred(int label) const { return preds_[static_cast<std::size_t>(label)].size(); }

MetricData Accumulator::run(int label, double dist_th) const {
  BEVKD_ASSERT(label >= 0 && label < kNumClasses, "label ", label);
  const auto c = static_cast<std::size_t>(label);
  const std::size_t npos = gt_index_[c].size();
  if (npos == 0) return MetricData::no_predictions();

  const auto& offsets = gt_offset_[c];
  const auto& gt_idx = gt_index_[c];
  std::vector<char> taken(npos, 0);  // per entry of gt_idx
  const double period = label == kBarrierLabel ? kPi : 2 * kPi;

  const auto& preds = preds_[c];
  std::vector<double> tp, fp, conf;
  tp.reserve(preds.size());
  fp.reserve(preds.size());
  conf.reserve(preds.size());
  std::array<std::vector<double>, kNumTpMetrics> err;
  std::vector<double> match_conf;

  for (const Pred& p : preds) {
    double min_dist = std::numeric_limits<double>::infinity();
    std::size_t match = 0;
    bool found = false;
    const auto& gt_list = gt_.boxes(p.gt_sample);
    for (std::uint32_t k = offsets[p.gt_sample]; k < offsets[p.gt_sample + 1]; ++k) {
      if (taken[k]) continue;
      const double d = center_distance(gt_list[gt_idx[k]], *p.box);
      if (d < min_dist) {
        min_dist = d;
        match = k;
        found = true;
      }
    }
    if (found && min_dist < dist_th) {
      taken[match] = 1;
      tp.push_back(1);
      fp.push_back(0);
      conf.push_back(p.score);
      const EvalBox& g = gt_list[gt_idx[match]];
      err[static_cast<std::size_t>(TpMetric::kTrans)].push_back(center_distance(g, *p.box));
      err[static_cast<std::size_t>(TpMetric::kVel)].push_back(velocity_l2(g, *p.box));
      err[static_cast<std::size_t>(TpMetric::kScale)].push_back(1 - scale_iou(g, *p.box));
      err[static_cast<std::size_t>(TpMetric::kOrient)].push_back(yaw_diff(g, *p.box, period));
      err[static_cast<std::size_t>(TpMetric::kAttr)].push_back(1 - attr_acc(g, *p.box));
      match_conf.push_back(p.score);
    } else {
      tp.push_back(0);
      fp.push_back(1);
      conf.push_back(p.score);
    }
  }
  if (match_conf.empty()) return MetricData::no_predictions();

  // Cumulative sums (exact in double: they are integers), precision and recall.
  std::vector<double> prec(tp.size()), rec(tp.size());
  double ctp = 0, cfp = 0;
  for (std::size_t i = 0; i < tp.size(); ++i) {
    ctp += tp[i];
    cfp += fp[i];
    prec[i] = ctp / (cfp + ctp);
    rec[i] = ctp / static_cast<double>(npos);
  }

  MetricData md;
  md.recall = np::linspace(0, 1, kNumRecallBins);
  md.precision = np::interp(md.recall, rec, prec, std::nullopt, 0.0);
  md.confidence = np::interp(md.recall, rec, conf, std::nullopt, 0.0);

  // TP errors: NaN-aware cumulative mean in match order, resampled at the confidences C_k
  // (numpy.interp needs increasing xp, hence the reversed match scores).
  std::vector<double> xp(match_conf.rbegin(), match_conf.rend());
  for (int m = 0; m < kNumTpMetrics; ++m) {
    const std::vector<double> cm = np::cummean(err[static_cast<std::size_t>(m)]);
    const std::vector<double> fp_rev(cm.rbegin(), cm.rend());
    md.tp_errors[static_cast<std::size_t>(m)] = np::interp(md.confidence, xp, fp_rev);
  }
  return md;
}

MetricData accumulate(const EvalBoxes& gt, const EvalBoxes& pred, int label, double dist_th) {
  return Accumulator(gt, pred).run(label, dist_th);
}

double calc_ap(const MetricData& md, double min_recall, double min_precision) {
  BEVKD_CHECK(min_precision >= 0 && min_precision < 1, "calc_ap: min_precision must be in [0, 1), found ", min_precision);
  BEVKD_CHECK(min_recall >= 0 && min_recall <= 1, "calc_ap: min_recall must be in [0, 1], found ", min_recall);
  const auto first = static_cast<std::size_t>(np::python_round(100 * min_recall) + 1);
  std::vector<double> p;
  for (std::size_t k = first; k < md.precision.size(); ++k) {
    double v = md.precision[k] - min_precision;
    if (v < 0) v = 0;
    p.push_back(v);
  }
  return np::mean(p) / (1.0 - min_precision);
}

double calc_tp(const MetricData& md, double min_recall, TpMetric metric) {
  const long long first = np::python_round(100 * min_recall) + 1;
  const long long last = md.max_recall_index();
  if (last < first) return 1.0;
  const auto& e = md.tp(metric);
  return np::mean(e.data() + first, static_cast<std::size_t>(last + 1 - first));
}

}  // namespace bevkd::core::eval
