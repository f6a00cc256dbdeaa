// The glue every trainer and evaluator shares (precompute's teacher evaluation, bevkd-train's
// periodic evaluation and `bevkd-train eval`): ego-frame detections of a split -> results JSON
// (global frame) -> the official detection metrics -> metrics_summary.json, metrics_details.json
// and PR-curve plots, and the printed table.
#pragma once

#include <string>
#include <vector>

#include "core/eval/eval_boxes.h"
#include "core/eval/evaluate.h"
#include "core/eval/results_io.h"

namespace bevkd::core::eval {

struct DetectionsEvalOptions {
  std::string out_dir;         // results_nusc.json, metrics_summary.json, metrics_details.json, plots/
  ResultsMeta meta;            // what the detector used (use_camera / use_lidar, ...)
  bool plots = true;           // PR curves as PNG
  std::string predictions_name;  // how reports name the predictions ("" = the results path)
};

struct DetectionsEvalResult {
  double map = 0;
  double nds = 0;
  DetectionMetrics metrics;
  std::string results_path;
  std::string metrics_path;
  std::string table;  // format_summary(metrics)
};

// Writes the results JSON of `samples` and evaluates it against `gt` with the CVPR 2019 detection
// configuration. Samples of the split missing from `samples` are an error (align_predictions).
DetectionsEvalResult evaluate_detections(const std::vector<SampleDetections>& samples, const GroundTruth& gt,
                                         const DetectionsEvalOptions& opts);

}  // namespace bevkd::core::eval
