#include "core/eval/results_io.h"

#include <cmath>

#include "base/error.h"
#include "base/fs.h"
#include "core/eval/json_writer.h"
#include "core/eval/simdjson_util.h"
#include "core/nuscenes_vocab.h"

namespace bevkd::core::eval {

namespace jd = json_detail;
namespace od = simdjson::ondemand;

namespace {

// Value checks shared by the reader and the writer; `where` is "<source>: results["<token>"][<i>]".
void check_result_box(const EvalBox& b, const std::string& where) {
  for (int k = 0; k < 3; ++k)
    BEVKD_CHECK(std::isfinite(b.translation[k]), where, ".translation[", k, "]: expected a finite number, found ",
                python_float_repr(b.translation[k]));
  for (int k = 0; k < 3; ++k) {
    BEVKD_CHECK(std::isfinite(b.size[k]), where, ".size[", k, "]: expected a finite number, found ", python_float_repr(b.size[k]));
    BEVKD_CHECK(b.size[k] > 0, where, ".size[", k, "]: sizes [w, l, h] must be > 0, found ", python_float_repr(b.size[k]));
  }
  for (int k = 0; k < 4; ++k)
    BEVKD_CHECK(std::isfinite(b.rotation[k]), where, ".rotation[", k, "]: expected a finite number, found ",
                python_float_repr(b.rotation[k]));
  const double qn = b.rotation[0] * b.rotation[0] + b.rotation[1] * b.rotation[1] + b.rotation[2] * b.rotation[2] +
                    b.rotation[3] * b.rotation[3];
  BEVKD_CHECK(qn > 0, where, ".rotation: the quaternion [w, x, y, z] is all zeros");
  for (int k = 0; k < 2; ++k)
    BEVKD_CHECK(!std::isinf(b.velocity[k]), where, ".velocity[", k, "]: expected a finite number or NaN, found ",
                python_float_repr(b.velocity[k]));
  BEVKD_CHECK(std::isfinite(b.score), where, ".detection_score: expected a finite number, found ", python_float_repr(b.score));
}

ResultsMeta parse_meta(od::value v, const std::string& source) {
  static constexpr std::array<std::string_view, 5> kFlags = {"use_camera", "use_lidar", "use_radar", "use_map",
                                                             "use_external"};
  ResultsMeta meta;
  bool* slots[5] = {&meta.use_camera, &meta.use_lidar, &meta.use_radar, &meta.use_map, &meta.use_external};
  std::array<bool, 5> seen{};
  auto obj = jd::get_object(v, source, "meta");
  for (auto field : obj) {
    std::string_view key;
    jd::check(field.unescaped_key().get(key), source, "meta", "an object key");
    for (std::size_t i = 0; i < kFlags.size(); ++i) {
      if (key != kFlags[i]) continue;
      const std::string path = cat("meta.", key);
      od::value fv;
      jd::check(field.value().get(fv), source, path, "a boolean");
      bool flag = false;
      const auto e = fv.get_bool().get(flag);
      if (e == simdjson::INCORRECT_TYPE) jd::fail_at(source, path, "expected true or false, found ", jd::type_name(fv));
      jd::check(e, source, path, "a boolean");
      *slots[i] = flag;
      seen[i] = true;
    }
  }
  for (std::size_t i = 0; i < kFlags.size(); ++i)
    if (!seen[i]) jd::fail_at(source, "meta", "missing \"", kFlags[i], "\" (meta needs use_camera, use_lidar, use_radar, use_map and use_external)");
  return meta;
}

EvalBox parse_box(od::value v, const std::string& source, const std::string& token, const std::string& where_path,
                  std::size_t index) {
  const std::string path = cat(where_path, "[", index, "]");
  auto obj = jd::get_object(v, source, path);
  EvalBox b;
  enum Field { kToken, kTrans, kSize, kRot, kVel, kName, kAttr, kNumRequired };
  bool have[kNumRequired] = {};
  for (auto field : obj) {
    std::string_view key;
    jd::check(field.unescaped_key().get(key), source, path, "an object key");
    od::value fv;
    jd::check(field.value().get(fv), source, cat(path, ".", key), "a value");
    if (key == "translation") {
      jd::get_numbers(fv, b.translation.data(), 3, source, cat(path, ".translation"));
      have[kTrans] = true;
    } else if (key == "size") {
      jd::get_numbers(fv, b.size.data(), 3, source, cat(path, ".size"));
      have[kSize] = true;
    } else if (key == "rotation") {
      jd::get_numbers(fv, b.rotation.data(), 4, source, cat(path, ".rotation"));
      have[kRot] = true;
    } else if (key == "velocity") {
      // null reads as NaN too (what a JSON writer without NaN literals produces).
      od::array a = jd::get_array(fv, source, cat(path, ".velocity"));
      std::size_t k = 0;
      for (auto el : a) {
        od::value ev;
        jd::check(el.get(ev), source, cat(path, ".velocity"), "an array element");
        if (k < 2) b.velocity[k] = ev.is_null() ? std::nan("") : jd::get_number(ev, source, cat(path, ".velocity[", k, "]"));
        ++k;
      }
      if (k != 2) jd::fail_at(source, cat(path, ".velocity"), "expected 2 numbers [vx, vy], found ", k);
      have[kVel] = true;
    } else if (key == "detection_name") {
      const std::string name = jd::get_string(fv, source, cat(path, ".detection_name"));
      b.label = class_index(name);
      if (b.label < 0)
        jd::fail_at(source, cat(path, ".detection_name"), "unknown class \"", name,
                    "\" (expected one of car, truck, bus, trailer, construction_vehicle, pedestrian, motorcycle, bicycle, "
                    "traffic_cone, barrier)");
      have[kName] = true;
    } else if (key == "attribute_name") {
      const std::string name = jd::get_string(fv, source, cat(path, ".attribute_name"));
      b.attribute = attribute_index(name);
      if (b.attribute < 0 && !name.empty())
        jd::fail_at(source, cat(path, ".attribute_name"), "unknown attribute \"", name,
                    "\" (expected \"\" or one of the 8 nuScenes attributes, e.g. vehicle.moving, cycle.with_rider, "
                    "pedestrian.standing)");
      have[kAttr] = true;
    } else if (key == "detection_score") {
      b.score = jd::get_number(fv, source, cat(path, ".detection_score"));
    } else if (key == "sample_token") {
      const std::string t = jd::get_string(fv, source, cat(path, ".sample_token"));
      if (t != token)
        jd::fail_at(source, cat(path, ".sample_token"), "is \"", t, "\" but the box is listed under sample \"", token, "\"");
      have[kToken] = true;
    } else if (key == "num_pts") {
      const double n = jd::get_number(fv, source, cat(path, ".num_pts"));
      if (!(n == std::floor(n) && n >= -1 && n <= 2e9)) jd::fail_at(source, cat(path, ".num_pts"), "expected an integer >= -1, found ", n);
      b.num_pts = static_cast<int>(n);
    }
    // Other keys (ego_translation, tracking fields...) are ignored, as by the devkit.
  }
  static constexpr const char* kRequired[kNumRequired] = {"sample_token", "translation", "size", "rotation",
                                                          "velocity", "detection_name", "attribute_name"};
  for (int f = 0; f < kNumRequired; ++f)
    if (!have[f]) jd::fail_at(source, path, "missing \"", kRequired[f], "\"");
  check_result_box(b, cat(source, ": ", path));
  return b;
}

Results parse_padded(const simdjson::padded_string& padded, const std::string& source, int max_boxes_per_sample) {
  od::parser parser;
  od::document doc;
  jd::check(parser.iterate(padded).get(doc), source, "", "a JSON document");
  od::value root;
  jd::check(doc.get_value().get(root), source, "", "a JSON object");
  auto top = jd::get_object(root, source, "");
  Results out;
  bool have_meta = false, have_results = false;
  for (auto field : top) {
    std::string_view key;
    jd::check(field.unescaped_key().get(key), source, "", "an object key");
    od::value v;
    jd::check(field.value().get(v), source, std::string(key), "a value");
    if (key == "meta") {
      if (have_meta) jd::fail_at(source, "meta", "appears twice");
      out.meta = parse_meta(v, source);
      have_meta = true;
    } else if (key == "results") {
      if (have_results) jd::fail_at(source, "results", "appears twice");
      have_results = true;
      auto results = jd::get_object(v, source, "results");
      for (auto sample : results) {
        std::string_view tok_view;
        jd::check(sample.unescaped_key().get(tok_view), source, "results", "a sample token");
        std::string token(tok_view);
        const std::string where = cat("results[\"", token, "\"]");
        if (out.boxes.contains(token)) jd::fail_at(source, where, "sample token appears twice");
        od::value sv;
        jd::check(sample.value().get(sv), source, where, "a list of boxes");
        auto arr = jd::get_array(sv, source, where);
        std::vector<EvalBox> boxes;
        for (auto el : arr) {
          od::value bv;
          jd::check(el.get(bv), source, where, "a box");
          if (boxes.size() >= static_cast<std::size_t>(max_boxes_per_sample))
            jd::fail_at(source, where, "more than ", max_boxes_per_sample,
                        " boxes (max_boxes_per_sample); keep the highest-scoring ones");
          boxes.push_back(parse_box(bv, source, token, where, boxes.size()));
        }
        out.boxes.add_sample(std::move(token), std::move(boxes));
      }
    }
    // Other top-level keys are ignored, as by the devkit.
  }
  if (!have_meta) jd::fail_at(source, "", "missing \"meta\" (the devkit requires {\"meta\": {...}, \"results\": {...}})");
  if (!have_results) jd::fail_at(source, "", "missing \"results\" (the devkit requires {\"meta\": {...}, \"results\": {...}})");
  return out;
}

}  // namespace

Results parse_results(std::string_view json_text, const std::string& source, int max_boxes_per_sample) {
  return parse_padded(simdjson::padded_string(json_text), source, max_boxes_per_sample);
}

Results load_results(const std::string& path, int max_boxes_per_sample) {
  BEVKD_CHECK(path_exists(path), "results file ", path, " does not exist");
  simdjson::padded_string padded;
  const auto e = simdjson::padded_string::load(path).get(padded);
  BEVKD_CHECK(e == simdjson::SUCCESS, "results file ", path, " cannot be read: ", simdjson::error_message(e));
  return parse_padded(padded, path, max_boxes_per_sample);
}

EvalBoxes to_eval_boxes(const std::vector<SampleDetections>& samples) {
  EvalBoxes out;
  for (const SampleDetections& s : samples) {
    std::vector<EvalBox> boxes;
    boxes.reserve(s.detections.size());
    for (std::size_t i = 0; i < s.detections.size(); ++i) {
      const EgoDetection& d = s.detections[i];
      const std::string where = cat("sample ", s.sample_token, " detection ", i);
      BEVKD_CHECK(d.label >= 0 && d.label < kNumClasses, where, ": label ", d.label, " is not a detection class id (0..",
                  kNumClasses - 1, ")");
      BEVKD_CHECK(d.attribute >= -1 && d.attribute < kNumAttributes, where, ": attribute ", d.attribute,
                  " is not an attribute id (-1..", kNumAttributes - 1, ")");
      const core::NuscBox nb = core::to_nusc_box(d.box, s.ego2global);
      EvalBox b;
      b.translation = nb.translation;
      b.size = nb.size;
      b.rotation = {nb.rotation.w, nb.rotation.x, nb.rotation.y, nb.rotation.z};
      b.velocity = nb.velocity;
      b.label = d.label;
      b.score = d.score;
      b.attribute = d.attribute;
      check_result_box(b, where);
      boxes.push_back(b);
    }
    out.add_sample(s.sample_token, std::move(boxes));
  }
  return out;
}

std::string results_json(const EvalBoxes& boxes, const ResultsMeta& meta, int max_boxes_per_sample) {
  JsonWriter w;
  w.begin_object();
  w.key("meta").begin_object();
  w.key("use_camera").value(meta.use_camera);
  w.key("use_lidar").value(meta.use_lidar);
  w.key("use_radar").value(meta.use_radar);
  w.key("use_map").value(meta.use_map);
  w.key("use_external").value(meta.use_external);
  w.end_object();
  w.key("results").begin_object();
  for (std::size_t s = 0; s < boxes.num_samples(); ++s) {
    const std::string& token = boxes.token(s);
    const auto& list = boxes.boxes(s);
    BEVKD_CHECK(list.size() <= static_cast<std::size_t>(max_boxes_per_sample), "results for sample ", token, ": ",
                list.size(), " boxes, at most ", max_boxes_per_sample, " are allowed per sample");
    w.key(token).begin_array();
    for (std::size_t i = 0; i < list.size(); ++i) {
      const EvalBox& b = list[i];
      BEVKD_CHECK(b.label >= 0 && b.label < kNumClasses, "results for sample ", token, " box ", i, ": label ", b.label,
                  " is not a detection class id");
      BEVKD_CHECK(b.attribute >= -1 && b.attribute < kNumAttributes, "results for sample ", token, " box ", i,
                  ": attribute ", b.attribute, " is not an attribute id");
      check_result_box(b, cat("results[\"", token, "\"][", i, "]"));
      w.begin_object();
      w.key("sample_token").value(token);
      w.key("translation").begin_array().value(b.translation[0]).value(b.translation[1]).value(b.translation[2]).end_array();
      w.key("size").begin_array().value(b.size[0]).value(b.size[1]).value(b.size[2]).end_array();
      w.key("rotation").begin_array().value(b.rotation[0]).value(b.rotation[1]).value(b.rotation[2]).value(b.rotation[3]).end_array();
      w.key("velocity").begin_array().value(b.velocity[0]).value(b.velocity[1]).end_array();
      w.key("detection_name").value(kClassNames[static_cast<std::size_t>(b.label)]);
      w.key("detection_score").value(b.score);
      w.key("attribute_name").value(b.attribute < 0 ? std::string_view() : kAttributeNames[static_cast<std::size_t>(b.attribute)]);
      if (b.num_pts != -1) w.key("num_pts").value(b.num_pts);
      w.end_object();
    }
    w.end_array();
  }
  w.end_object();
  w.end_object();
  return w.take();
}

void write_results_json(const std::string& path, const EvalBoxes& boxes, const ResultsMeta& meta, int max_boxes_per_sample) {
  write_file_atomic(path, results_json(boxes, meta, max_boxes_per_sample));
}

}  // namespace bevkd::core::eval
