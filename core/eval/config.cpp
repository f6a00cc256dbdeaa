#include "core/eval/config.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "base/fs.h"
#include "core/eval/simdjson_util.h"

namespace bevkd::core::eval {

namespace jd = json_detail;

DetectionConfig DetectionConfig::cvpr_2019() {
  DetectionConfig c;
  c.class_order = kEvalClassOrder;
  for (int label = 0; label < kNumClasses; ++label) c.class_range[static_cast<std::size_t>(label)] = eval_class_range(label);
  return c;
}

void DetectionConfig::validate(const std::string& source) const {
  std::array<bool, kNumClasses> seen{};
  for (int label : class_order) {
    BEVKD_CHECK(label >= 0 && label < kNumClasses, source, ": class_order holds label ", label,
                ", expected a label id in [0, ", kNumClasses, ")");
    BEVKD_CHECK(!seen[static_cast<std::size_t>(label)], source, ": class_order lists ",
                kClassNames[static_cast<std::size_t>(label)], " twice");
    seen[static_cast<std::size_t>(label)] = true;
  }
  for (int label = 0; label < kNumClasses; ++label) {
    const double r = class_range[static_cast<std::size_t>(label)];
    BEVKD_CHECK(std::isfinite(r) && r > 0, source, ": class_range[\"", kClassNames[static_cast<std::size_t>(label)],
                "\"] must be a positive distance in metres, found ", r);
  }
  BEVKD_CHECK(dist_fcn == "center_distance", source, ": dist_fcn must be \"center_distance\" (the only one the devkit has), found \"",
              dist_fcn, "\"");
  BEVKD_CHECK(!dist_ths.empty(), source, ": dist_ths is empty, expected at least one matching threshold");
  for (std::size_t i = 0; i < dist_ths.size(); ++i)
    BEVKD_CHECK(std::isfinite(dist_ths[i]) && dist_ths[i] > 0, source, ": dist_ths[", i,
                "] must be a positive distance in metres, found ", dist_ths[i]);
  BEVKD_CHECK(std::find(dist_ths.begin(), dist_ths.end(), dist_th_tp) != dist_ths.end(), source,
              ": dist_th_tp ", dist_th_tp, " must be one of dist_ths");
  BEVKD_CHECK(min_recall >= 0 && min_recall <= 1, source, ": min_recall must be in [0, 1], found ", min_recall);
  BEVKD_CHECK(min_precision >= 0 && min_precision < 1, source, ": min_precision must be in [0, 1), found ", min_precision);
  BEVKD_CHECK(max_boxes_per_sample >= 1, source, ": max_boxes_per_sample must be at least 1, found ", max_boxes_per_sample);
  BEVKD_CHECK(std::isfinite(mean_ap_weight) && mean_ap_weight >= 0, source,
              ": mean_ap_weight must be a non-negative number, found ", mean_ap_weight);
}

int DetectionConfig::tp_threshold_index() const {
  const auto it = std::find(dist_ths.begin(), dist_ths.end(), dist_th_tp);
  BEVKD_CHECK(it != dist_ths.end(), "detection config: dist_th_tp ", dist_th_tp, " is not one of dist_ths");
  return static_cast<int>(it - dist_ths.begin());
}

DetectionConfig parse_detection_config(const std::string& json_text, const std::string& source) {
  static constexpr std::array<std::string_view, 8> kKeys = {
      "class_range", "dist_fcn", "dist_ths", "dist_th_tp", "min_recall", "min_precision",
      "max_boxes_per_sample", "mean_ap_weight"};
  simdjson::padded_string padded(json_text);
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  const jd::Path top = jd::Path::root();
  jd::check(parser.iterate(padded).get(doc), source, top, "a JSON document");
  simdjson::ondemand::value root;
  jd::check(doc.get_value().get(root), source, top, "a JSON object");
  auto obj = jd::get_object(root, source, top);

  DetectionConfig c;
  std::array<bool, kKeys.size()> seen{};
  for (auto field : obj) {
    std::string_view key_view;
    jd::check(field.unescaped_key().get(key_view), source, top, "an object key");
    const std::string key(key_view);
    const auto k = std::find(kKeys.begin(), kKeys.end(), key);
    if (k == kKeys.end()) {
      std::string known;
      for (auto n : kKeys) known += cat(known.empty() ? "" : ", ", n);
      jd::fail_at(source, top, "unknown key \"", key, "\" (a detection config has exactly: ", known, ")");
    }
    const auto ki = static_cast<std::size_t>(k - kKeys.begin());
    const jd::Path kp = top.key(key);
    if (seen[ki]) jd::fail_at(source, kp, "appears twice");
    seen[ki] = true;
    simdjson::ondemand::value v;
    jd::check(field.value().get(v), source, kp, "a value");
    if (key == "class_range") {
      auto ranges = jd::get_object(v, source, kp);
      std::array<bool, kNumClasses> have{};
      int n = 0;
      for (auto rf : ranges) {
        std::string_view name;
        jd::check(rf.unescaped_key().get(name), source, kp, "a class name");
        const int label = class_index(name);
        const jd::Path path = kp.key(name);
        if (label < 0) jd::fail_at(source, path, "unknown class \"", name, "\" (expected one of the 10 detection classes)");
        if (have[static_cast<std::size_t>(label)]) jd::fail_at(source, path, "appears twice");
        have[static_cast<std::size_t>(label)] = true;
        simdjson::ondemand::value rv;
        jd::check(rf.value().get(rv), source, path, "a number");
        c.class_range[static_cast<std::size_t>(label)] = jd::get_number(rv, source, path);
        c.class_order[static_cast<std::size_t>(n++)] = label;
      }
      for (int label = 0; label < kNumClasses; ++label)
        if (!have[static_cast<std::size_t>(label)])
          jd::fail_at(source, kp, "missing class \"", kClassNames[static_cast<std::size_t>(label)],
                      "\" (all 10 detection classes are required)");
    } else if (key == "dist_fcn") {
      c.dist_fcn = jd::get_string(v, source, kp);
    } else if (key == "dist_ths") {
      c.dist_ths.clear();
      auto arr = jd::get_array(v, source, kp);
      for (auto el : arr) {
        simdjson::ondemand::value ev;
        jd::check(el.get(ev), source, kp, "a number");
        c.dist_ths.push_back(jd::get_number(ev, source, kp.index(c.dist_ths.size())));
      }
    } else if (key == "dist_th_tp") {
      c.dist_th_tp = jd::get_number(v, source, kp);
    } else if (key == "min_recall") {
      c.min_recall = jd::get_number(v, source, kp);
    } else if (key == "min_precision") {
      c.min_precision = jd::get_number(v, source, kp);
    } else if (key == "max_boxes_per_sample") {
      const double m = jd::get_number(v, source, kp);
      if (!(m == std::floor(m) && m >= 1 && m <= 1e9))
        jd::fail_at(source, kp, "expected a positive integer, found ", m);
      c.max_boxes_per_sample = static_cast<int>(m);
    } else if (key == "mean_ap_weight") {
      c.mean_ap_weight = jd::get_number(v, source, kp);
    }
  }
  for (std::size_t i = 0; i < kKeys.size(); ++i)
    if (!seen[i]) jd::fail_at(source, top, "missing key \"", kKeys[i], "\"");
  c.validate(source);
  return c;
}

DetectionConfig load_detection_config(const std::string& path) {
  return parse_detection_config(read_file(path), path);
}

namespace {

// Integers stay integers (the devkit's config file writes 50, 500, 5).
void write_number(JsonWriter& w, double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::abs(v) < 1e15) w.value(static_cast<std::int64_t>(v));
  else w.value(v);
}

}  // namespace

void write_detection_config(JsonWriter& w, const DetectionConfig& cfg) {
  w.begin_object();
  w.key("class_range").begin_object();
  for (int label : cfg.class_order) {
    w.key(kClassNames[static_cast<std::size_t>(label)]);
    write_number(w, cfg.class_range[static_cast<std::size_t>(label)]);
  }
  w.end_object();
  w.key("dist_fcn").value(cfg.dist_fcn);
  w.key("dist_ths").value(cfg.dist_ths);
  w.key("dist_th_tp").value(cfg.dist_th_tp);
  w.key("min_recall").value(cfg.min_recall);
  w.key("min_precision").value(cfg.min_precision);
  w.key("max_boxes_per_sample").value(cfg.max_boxes_per_sample);
  w.key("mean_ap_weight");
  write_number(w, cfg.mean_ap_weight);
  w.end_object();
}

std::string detection_config_json(const DetectionConfig& cfg) {
  JsonWriter w(JsonFormat::python(2));
  write_detection_config(w, cfg);
  return w.take() + "\n";
}

}  // namespace bevkd::core::eval
