#include "core/eval/evaluate.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <ostream>
#include <mutex>
#include <thread>

#include "base/error.h"
#include "base/progress.h"
#include "core/eval/numpy_ops.h"
#include "core/nuscenes_vocab.h"

namespace bevkd::core::eval {

namespace {

const int kTrafficCone = class_index("traffic_cone");

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// "a, b, c (and 12 more)" for error messages.
std::string token_list(const std::vector<std::string>& tokens) {
  std::string s;
  const std::size_t shown = std::min<std::size_t>(tokens.size(), 3);
  for (std::size_t i = 0; i < shown; ++i) s += cat(i ? ", " : "", tokens[i]);
  if (tokens.size() > shown) s += cat(" (and ", tokens.size() - shown, " more)");
  return s;
}

}  // namespace

int DetectionMetrics::position_of(int label) const {
  for (int p = 0; p < kNumClasses; ++p)
    if (cfg.class_order[static_cast<std::size_t>(p)] == label) return p;
  BEVKD_FAIL("label ", label, " is not a detection class id");
}

double DetectionMetrics::ap(int label, int threshold_index) const {
  return label_aps[static_cast<std::size_t>(position_of(label))][static_cast<std::size_t>(threshold_index)];
}

double DetectionMetrics::mean_dist_ap(int label) const {
  return mean_dist_aps[static_cast<std::size_t>(position_of(label))];
}

double DetectionMetrics::tp_error(int label, TpMetric m) const {
  return label_tp_errors[static_cast<std::size_t>(position_of(label))][static_cast<std::size_t>(m)];
}

namespace {

// The checks of align_predictions; returns the indices into `predictions` in iteration order.
std::vector<std::size_t> prediction_order(const GroundTruth& gt, const EvalBoxes& predictions, const DetectionConfig& cfg,
                                          const std::string& predictions_name) {
  for (std::size_t s = 0; s < predictions.num_samples(); ++s) {
    const auto& list = predictions.boxes(s);
    BEVKD_CHECK(list.size() <= static_cast<std::size_t>(cfg.max_boxes_per_sample), predictions_name, ": sample ",
                predictions.token(s), " has ", list.size(), " boxes, at most ", cfg.max_boxes_per_sample,
                " per sample are allowed (max_boxes_per_sample)");
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string problem = box_problem(list[i]);
      BEVKD_CHECK(problem.empty(), predictions_name, ": results[\"", predictions.token(s), "\"][", i, "]", problem);
    }
  }
  std::vector<std::string> missing;
  for (const std::string& t : gt.boxes.tokens())
    if (!predictions.contains(t)) missing.push_back(t);
  const std::string split = gt.description.empty() ? std::string("the evaluated split") : gt.description;
  BEVKD_CHECK(missing.empty(), predictions_name, ": ", missing.size(), " of the ", gt.boxes.num_samples(),
              " samples of ", split, " are missing from the results (every sample needs an entry, an empty list is fine): ",
              token_list(missing));
  std::vector<std::size_t> order;
  if (gt.split_kind == SplitKind::kPredefined) {
    std::vector<std::string> extra;
    for (const std::string& t : predictions.tokens())
      if (!gt.boxes.contains(t)) extra.push_back(t);
    BEVKD_CHECK(extra.empty(), predictions_name, ": ", extra.size(), " result samples are not part of ", split,
                " (for a predefined split the results must hold exactly its samples): ", token_list(extra));
    for (std::size_t s = 0; s < predictions.num_samples(); ++s) order.push_back(s);
  } else {
    for (const std::string& t : gt.boxes.tokens()) order.push_back(static_cast<std::size_t>(predictions.index_of(t)));
  }
  return order;
}

}  // namespace

EvalBoxes align_predictions(const GroundTruth& gt, const EvalBoxes& predictions, const DetectionConfig& cfg,
                            const std::string& predictions_name) {
  EvalBoxes out;
  for (std::size_t s : prediction_order(gt, predictions, cfg, predictions_name))
    out.add_sample(predictions.token(s), predictions.boxes(s));
  return out;
}

DetectionMetrics compute_metrics(const MetricDataList& details, const DetectionConfig& cfg, const ResultsMeta& meta) {
  BEVKD_ASSERT(details.size() == static_cast<std::size_t>(kNumClasses));
  DetectionMetrics m;
  m.cfg = cfg;
  m.meta = meta;
  const int tp_index = cfg.tp_threshold_index();
  m.label_aps.resize(kNumClasses);
  m.label_tp_errors.resize(kNumClasses);
  m.mean_dist_aps.resize(kNumClasses);
  for (std::size_t p = 0; p < static_cast<std::size_t>(kNumClasses); ++p) {
    const int label = cfg.class_order[p];
    BEVKD_ASSERT(details[p].size() == cfg.dist_ths.size());
    for (const MetricData& md : details[p]) m.label_aps[p].push_back(calc_ap(md, cfg.min_recall, cfg.min_precision));
    for (int k = 0; k < kNumTpMetrics; ++k) {
      const auto metric = static_cast<TpMetric>(k);
      // The devkit's overrides, regardless of data: cones have no orientation, velocity or
      // attribute; barriers no velocity or attribute.
      const bool cone_na = label == kTrafficCone &&
                           (metric == TpMetric::kAttr || metric == TpMetric::kVel || metric == TpMetric::kOrient);
      const bool barrier_na = label == kBarrierLabel && (metric == TpMetric::kAttr || metric == TpMetric::kVel);
      m.label_tp_errors[p][static_cast<std::size_t>(k)] =
          cone_na || barrier_na ? std::nan("") : calc_tp(details[p][static_cast<std::size_t>(tp_index)], cfg.min_recall, metric);
    }
    m.mean_dist_aps[p] = np::mean(m.label_aps[p]);
  }
  m.mean_ap = np::mean(m.mean_dist_aps);
  for (int k = 0; k < kNumTpMetrics; ++k) {
    std::vector<double> per_class;
    for (const auto& e : m.label_tp_errors) per_class.push_back(e[static_cast<std::size_t>(k)]);
    m.tp_errors[static_cast<std::size_t>(k)] = np::nanmean(per_class);
    const double score = 1.0 - m.tp_errors[static_cast<std::size_t>(k)];
    m.tp_scores[static_cast<std::size_t>(k)] = score > 0.0 ? score : 0.0;  // Python's max(0.0, score)
  }
  const std::vector<double> scores(m.tp_scores.begin(), m.tp_scores.end());
  m.nd_score = (cfg.mean_ap_weight * m.mean_ap + np::sum(scores)) / (cfg.mean_ap_weight + static_cast<double>(kNumTpMetrics));
  return m;
}

EvalResult evaluate(const GroundTruth& gt, const EvalBoxes& predictions, const DetectionConfig& cfg,
                    const ResultsMeta& meta, const EvalOptions& options) {
  cfg.validate();
  gt.validate();
  EvalResult r;
  auto t0 = std::chrono::steady_clock::now();
  // Copy, place and filter one sample at a time, so only the kept boxes are ever copied whole.
  EvalBoxes pred, gt_boxes;
  for (std::size_t s : prediction_order(gt, predictions, cfg, options.predictions_name)) {
    std::vector<EvalBox> boxes = predictions.boxes(s);
    const SampleContext& ctx = gt.context[static_cast<std::size_t>(gt.boxes.index_of(predictions.token(s)))];
    add_ego_translation(boxes, ctx);
    filter_sample(boxes, ctx, cfg, r.pred_filter);
    boxes.shrink_to_fit();
    pred.add_sample(predictions.token(s), std::move(boxes));
  }
  for (std::size_t s = 0; s < gt.boxes.num_samples(); ++s) {
    std::vector<EvalBox> boxes = gt.boxes.boxes(s);
    add_ego_translation(boxes, gt.context[s]);
    filter_sample(boxes, gt.context[s], cfg, r.gt_filter);
    gt_boxes.add_sample(gt.boxes.token(s), std::move(boxes));
  }
  r.num_samples = gt_boxes.num_samples();
  r.seconds_filter = seconds_since(t0);
  if (options.log) {
    auto& os = *options.log;
    os << "Filtering predictions: " << r.pred_filter.total << " boxes, " << r.pred_filter.after_range
       << " after the range filter, " << r.pred_filter.after_points << " after the points filter, "
       << r.pred_filter.after_bike_racks << " after the bike-rack filter\n";
    os << "Filtering ground truth: " << r.gt_filter.total << " boxes, " << r.gt_filter.after_range
       << " after the range filter, " << r.gt_filter.after_points << " after the points filter, "
       << r.gt_filter.after_bike_racks << " after the bike-rack filter\n";
  }

  // Accumulate every (class, threshold) — independent tasks, run on a few threads.
  t0 = std::chrono::steady_clock::now();
  const Accumulator acc(gt_boxes, pred);
  const std::size_t nt = cfg.dist_ths.size();
  const std::size_t tasks = static_cast<std::size_t>(kNumClasses) * nt;
  r.details.assign(kNumClasses, std::vector<MetricData>(nt));
  ProgressOptions popts;
  popts.unit = "curves";
  popts.enabled = options.show_progress;
  Progress progress("accumulate", static_cast<std::int64_t>(tasks), popts);
  std::atomic<std::size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mu;
  auto worker = [&] {
    for (std::size_t t = next++; t < tasks; t = next++) {
      const std::size_t p = t / nt, d = t % nt;
      try {
        r.details[p][d] = acc.run(cfg.class_order[p], cfg.dist_ths[d]);
        progress.advance();
      } catch (...) {
        std::lock_guard<std::mutex> lock(failure_mu);
        if (!failure) failure = std::current_exception();
      }
    }
  };
  int threads = options.num_threads > 0 ? options.num_threads : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::max(1, std::min<int>(threads, static_cast<int>(tasks)));
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back(worker);
  worker();
  for (auto& th : pool) th.join();
  if (failure) std::rethrow_exception(failure);
  progress.finish();
  r.metrics = compute_metrics(r.details, cfg, meta);
  r.seconds_accumulate = seconds_since(t0);
  r.metrics.eval_time_s = r.seconds_accumulate;
  if (options.log) *options.log << "Accumulated " << tasks << " (class, threshold) pairs in " << r.seconds_accumulate << " s\n";
  return r;
}

}  // namespace bevkd::core::eval
