// Decoded detections (center_decode.h, tensors) -> the evaluation's ego-frame detections
// (core/eval/results_io.h), the step between a head and core/eval's evaluate_detections() that
// both trainers share.
#pragma once

#include <string>
#include <vector>

#include "core/eval/results_io.h"
#include "core/nn/center_decode.h"

namespace bevkd::core::nn {

// One sample: boxes, labels and scores of `d` (ego frame) with mmdetection3d's per-class default
// attribute (bevkd's heads have no attribute branch). Throws bevkd::Error naming the sample for a
// label outside the 10 classes.
eval::SampleDetections sample_detections(const Detections& d, const std::string& sample_token,
                                         const Rigid& ego2global);

}  // namespace bevkd::core::nn
