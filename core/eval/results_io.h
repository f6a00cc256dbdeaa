// Reading and writing results files in the nuScenes detection submission format
// (spec/nuscenes.md §(c)):
//
//   { "meta": {"use_camera": bool, "use_lidar": bool, "use_radar": bool, "use_map": bool,
//              "use_external": bool},
//     "results": { "<sample_token>": [ { "sample_token": str,
//                    "translation": [x, y, z] (global, m), "size": [w, l, h] (m, > 0),
//                    "rotation": [w, x, y, z] (global), "velocity": [vx, vy] (global, m/s),
//                    "detection_name": one of the 10 classes, "detection_score": float,
//                    "attribute_name": one of the 8 attributes or "" }, ... ], ... } }
//
// The reader keeps the key order of "results" (it decides tie-breaking in matching) and
// validates everything before evaluation starts; every error names the file, the sample token,
// the box index and the field. Optional box keys read as the devkit reads them:
// detection_score (default -1), num_pts (default -1; 0 removes the box in the points filter),
// ego_translation (ignored: recomputed). Velocity may be NaN (Python's NaN literal or null);
// Python's NaN/Infinity literals are recognised everywhere so that a NaN size is reported as
// such rather than as broken JSON.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/eval/eval_boxes.h"
#include "core/geometry.h"

namespace bevkd::core::eval {

struct Results {
  ResultsMeta meta;
  EvalBoxes boxes;  // samples in the file's key order, boxes in list order
};

// Reads and validates a results file: meta present with its five booleans; results an object
// of unique sample tokens, each a list of at most `max_boxes_per_sample` boxes; each box with
// sample_token equal to its key, known detection_name and attribute_name, finite translation,
// size (> 0) and rotation (non-zero norm), velocity finite or NaN, finite detection_score.
// Whether the samples match the split is checked by align_predictions (evaluate.h).
//
// The file is memory-mapped and read in batches of samples, each batch parsed by simdjson on
// several threads; pages already read are dropped, so the peak memory is about one batch plus
// the boxes, whatever the file size.
struct ResultsReadOptions {
  int max_boxes_per_sample = 500;  // DetectionConfig::max_boxes_per_sample
  int threads = 0;                 // 0: all cores
  bool show_progress = false;      // a Progress line (MiB read) on stderr
  std::size_t batch_bytes = std::size_t{16} << 20;  // JSON text parsed per batch
};
Results load_results(const std::string& path, const ResultsReadOptions& options = {});
// The same for JSON text in memory; `source` names it in errors.
Results parse_results(std::string_view json_text, const std::string& source, const ResultsReadOptions& options = {});

// One detection in the ego frame of its sample's key frame (what a detector head decodes).
struct EgoDetection {
  core::Box box;       // ego frame (see core::Box): centre, l/w/h, yaw, vx/vy in m/s
  int label = 0;       // label id into core::kClassNames
  float score = 0;     // confidence
  int attribute = -1;  // index into core::kAttributeNames, -1 for "" (see core::default_attribute)
};

// The detections of one sample and the ego pose that places them in the world.
struct SampleDetections {
  std::string sample_token;
  core::Rigid ego2global;  // key-frame ego pose: p_global = R p_ego + t
  std::vector<EgoDetection> detections;
};

// Moves ego-frame detections into the submission representation (global frame, size [w, l, h],
// yaw quaternion, global velocity) with core::to_nusc_box; samples and boxes keep their order.
// Throws bevkd::Error naming the sample and detection for a bad label/attribute id, a
// non-finite value or a non-positive size.
EvalBoxes to_eval_boxes(const std::vector<SampleDetections>& samples);

// The results JSON text of `boxes` (samples in order), one line, Python's json.dump layout and
// float repr; NaN velocities are written as NaN. Throws bevkd::Error if a sample has more than
// `max_boxes_per_sample` boxes or a box would not pass load_results.
std::string results_json(const EvalBoxes& boxes, const ResultsMeta& meta, int max_boxes_per_sample = 500);
// Writes results_json(...) to `path` atomically (a crash leaves the old file or none).
void write_results_json(const std::string& path, const EvalBoxes& boxes, const ResultsMeta& meta,
                        int max_boxes_per_sample = 500);

}  // namespace bevkd::core::eval
