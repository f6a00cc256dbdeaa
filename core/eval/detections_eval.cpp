#include "core/eval/detections_eval.h"

#include "base/error.h"
#include "base/fs.h"
#include "core/eval/config.h"
#include "core/eval/evaluate.h"
#include "core/eval/report.h"

namespace bevkd::core::eval {

DetectionsEvalResult evaluate_detections(const std::vector<SampleDetections>& samples, const GroundTruth& gt,
                                         const DetectionsEvalOptions& opts) {
  BEVKD_CHECK(!opts.out_dir.empty(), "evaluate detections: no output directory given");
  make_dirs(opts.out_dir);
  DetectionsEvalResult r;
  const auto preds = to_eval_boxes(samples);
  r.results_path = opts.out_dir + "/results_nusc.json";
  write_results_json(r.results_path, preds, opts.meta);
  EvalOptions eo;
  eo.predictions_name = opts.predictions_name.empty() ? r.results_path : opts.predictions_name;
  const auto result = evaluate(gt, preds, DetectionConfig::cvpr_2019(), opts.meta, eo);
  write_eval_outputs(opts.out_dir, result, opts.plots);
  r.metrics_path = opts.out_dir + "/metrics_summary.json";
  r.metrics = result.metrics;
  r.map = result.metrics.mean_ap;
  r.nds = result.metrics.nd_score;
  r.table = format_summary(result.metrics);
  return r;
}

}  // namespace bevkd::core::eval
