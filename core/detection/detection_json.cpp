#include "core/detection/detection_json.h"

namespace bevkd::core::detection {

nlohmann::json to_json(const CenterHeadConfig& c) {
  return {{"in_channels", c.in_channels},
          {"shared_channels", c.shared_channels},
          {"head_channels", c.head_channels},
          {"final_kernel", c.final_kernel},
          {"num_heatmap_convs", c.num_heatmap_convs},
          {"num_reg_convs", c.num_reg_convs},
          {"with_velocity", c.with_velocity},
          {"init_bias", c.init_bias},
          {"bn_eps", c.bn_eps},
          {"bn_momentum", c.bn_momentum},
          {"num_classes", c.num_classes},
          {"tasks", c.tasks}};
}

void read_json(JsonFields f, CenterHeadConfig& c) {
  f.get("in_channels", c.in_channels);
  f.get("shared_channels", c.shared_channels);
  f.get("head_channels", c.head_channels);
  f.get("final_kernel", c.final_kernel);
  f.get("num_heatmap_convs", c.num_heatmap_convs);
  f.get("num_reg_convs", c.num_reg_convs);
  f.get("with_velocity", c.with_velocity);
  f.get("init_bias", c.init_bias);
  f.get("bn_eps", c.bn_eps);
  f.get("bn_momentum", c.bn_momentum);
  f.get("num_classes", c.num_classes);
  f.get("tasks", c.tasks);
  f.finish();
}

nlohmann::json to_json(const CenterLossConfig& c) {
  return {{"code_weights", c.code_weights}, {"heatmap_weight", c.heatmap_weight}, {"bbox_weight", c.bbox_weight}};
}

void read_json(JsonFields f, CenterLossConfig& c) {
  f.get("code_weights", c.code_weights);
  f.get("heatmap_weight", c.heatmap_weight);
  f.get("bbox_weight", c.bbox_weight);
  f.finish();
}

nlohmann::json to_json(const DecodeConfig& c) {
  return {{"max_num", c.max_num},
          {"score_threshold", c.score_threshold},
          {"post_center_range", c.post_center_range},
          {"nms", to_string(c.nms)},
          {"nms_iou_threshold", c.nms_iou_threshold},
          {"pre_max_size", c.pre_max_size},
          {"post_max_size", c.post_max_size},
          {"circle_nms_radius", c.circle_nms_radius},
          {"nms_per_class", c.nms_per_class},
          {"max_per_sample", c.max_per_sample}};
}

void read_json(JsonFields f, DecodeConfig& c) {
  f.get("max_num", c.max_num);
  f.get("score_threshold", c.score_threshold);
  f.get("post_center_range", c.post_center_range);
  std::string nms = to_string(c.nms);
  f.get("nms", nms);
  try {
    c.nms = nms_kind_from_string(nms);
  } catch (const Error& e) {
    BEVKD_FAIL(f.source(), ": field ", f.field("nms"), ": ", e.what());
  }
  f.get("nms_iou_threshold", c.nms_iou_threshold);
  f.get("pre_max_size", c.pre_max_size);
  f.get("post_max_size", c.post_max_size);
  f.get("circle_nms_radius", c.circle_nms_radius);
  f.get("nms_per_class", c.nms_per_class);
  f.get("max_per_sample", c.max_per_sample);
  f.finish();
}

}  // namespace bevkd::core::detection
