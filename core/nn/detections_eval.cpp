#include "core/nn/detections_eval.h"

#include "base/error.h"
#include "core/nuscenes_vocab.h"

namespace bevkd::core::nn {

eval::SampleDetections sample_detections(const Detections& d, const std::string& sample_token,
                                         const Rigid& ego2global) {
  eval::SampleDetections s;
  s.sample_token = sample_token;
  s.ego2global = ego2global;
  const int64_t n = d.size();
  if (n == 0) return s;
  const auto boxes = d.boxes.to(torch::kCPU, torch::kFloat32).contiguous();
  const auto labels = d.labels.to(torch::kCPU, torch::kInt64).contiguous();
  const auto scores = d.scores.to(torch::kCPU, torch::kFloat32).contiguous();
  const float* b = boxes.data_ptr<float>();
  s.detections.reserve(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) {
    eval::EgoDetection e;
    e.box = Box::from_array(b + 9 * k);
    const int64_t label = labels.data_ptr<int64_t>()[k];
    BEVKD_CHECK(label >= 0 && label < kNumClasses, "sample ", sample_token, ": detection ", k, " has label ", label,
                ", expected 0..", kNumClasses - 1);
    e.label = static_cast<int>(label);
    e.score = scores.data_ptr<float>()[k];
    e.attribute = attribute_index(default_attribute(e.label));
    s.detections.push_back(e);
  }
  return s;
}

}  // namespace bevkd::core::nn
