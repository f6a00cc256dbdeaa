// The detection evaluation settings (the devkit's DetectionConfig), as a typed struct with the
// detection_cvpr_2019 defaults (spec/nuscenes.md §(d)), loadable from and writable to the
// devkit's JSON config format:
//
//   { "class_range": {"car": 50, ..., "barrier": 30},   // all 10 classes; key order = output order
//     "dist_fcn": "center_distance",
//     "dist_ths": [0.5, 1.0, 2.0, 4.0], "dist_th_tp": 2.0,
//     "min_recall": 0.1, "min_precision": 0.1,
//     "max_boxes_per_sample": 500, "mean_ap_weight": 5 }
//
// Every key is required and unknown keys are rejected (a misspelt key must not silently fall
// back to a default).
#pragma once

#include <array>
#include <string>
#include <vector>

#include "base/json_writer.h"
#include "core/nuscenes_vocab.h"

namespace bevkd::core::eval {

// The five true-positive error metrics in the devkit's TP_METRICS order.
enum class TpMetric { kTrans = 0, kScale = 1, kOrient = 2, kVel = 3, kAttr = 4 };
inline constexpr int kNumTpMetrics = 5;
// "trans_err", "scale_err", "orient_err", "vel_err", "attr_err".
inline constexpr std::array<const char*, kNumTpMetrics> kTpMetricNames = {
    "trans_err", "scale_err", "orient_err", "vel_err", "attr_err"};
// "mATE", "mASE", "mAOE", "mAVE", "mAAE" (what the devkit prints).
inline constexpr std::array<const char*, kNumTpMetrics> kTpMetricShortNames = {
    "mATE", "mASE", "mAOE", "mAVE", "mAAE"};

struct DetectionConfig {
  // Label ids (into core::kClassNames) in the config's class_range key order; every per-class
  // output follows it. cvpr_2019: car, truck, bus, trailer, construction_vehicle, pedestrian,
  // motorcycle, bicycle, traffic_cone, barrier.
  std::array<int, kNumClasses> class_order = kEvalClassOrder;
  // Evaluation range per label id (m, ego distance in x-y; boxes at or beyond it are dropped).
  std::array<double, kNumClasses> class_range{};
  std::string dist_fcn = "center_distance";       // the only matching function the devkit has
  std::vector<double> dist_ths{0.5, 1.0, 2.0, 4.0};  // matching thresholds for AP (m)
  double dist_th_tp = 2.0;                        // threshold whose matches give the TP errors (m)
  double min_recall = 0.1;                        // recalls at or below are not scored
  double min_precision = 0.1;                     // precision floor subtracted before averaging
  int max_boxes_per_sample = 500;
  double mean_ap_weight = 5;                      // weight of mAP in NDS

  // detection_cvpr_2019 (the default everywhere).
  static DetectionConfig cvpr_2019();

  // Checks what the devkit asserts plus sanity: dist_th_tp is one of dist_ths, thresholds and
  // ranges positive and finite, 0 <= min_recall <= 1, 0 <= min_precision < 1,
  // max_boxes_per_sample >= 1, mean_ap_weight >= 0, class_order a permutation of the 10
  // labels, dist_fcn "center_distance". Throws bevkd::Error naming `source` and the field.
  void validate(const std::string& source = "detection config") const;

  // Index of dist_th_tp in dist_ths.
  int tp_threshold_index() const;
};

// Reads a config in the devkit's JSON format (see the file comment); validated.
DetectionConfig load_detection_config(const std::string& path);
// Parses the JSON text of a config; `source` names it in errors.
DetectionConfig parse_detection_config(const std::string& json_text, const std::string& source);

// Writes the devkit's DetectionConfig.serialize() object (the "cfg" of metrics_summary.json);
// ranges and integer-valued weights are written as integers, like the devkit's config file.
void write_detection_config(JsonWriter& w, const DetectionConfig& cfg);
// The same as a stand-alone document, formatted like Python's json.dump(indent=2).
std::string detection_config_json(const DetectionConfig& cfg);

}  // namespace bevkd::core::eval
