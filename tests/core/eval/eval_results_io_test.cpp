// Results-file reading (validation errors, each with its message), writing (round trip, ego ->
// global conversion), the devkit config format and the Python-style JSON writer.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>

#include "tests/support/expect_error.h"
#include "base/error.h"
#include "base/fs.h"
#include "core/eval/config.h"
#include "core/eval/results_io.h"
#include "eval_fixtures.h"

namespace bevkd::core::eval {
namespace {

using namespace evaltest;  // NOLINT

const char* kMeta = R"("meta": {"use_camera": true, "use_lidar": false, "use_radar": false, "use_map": false, "use_external": false})";

std::string box_json(const std::string& tok, const std::string& overrides = "", const std::string& extra = "") {
  // Fields in mmdetection3d's order; `overrides` ("key":value;...) replaces values by name
  // (DROP removes the key); `extra` is appended verbatim.
  std::string fields[][2] = {{"sample_token", "\"" + tok + "\""},
                             {"translation", "[10.5, -3.25, 1.0]"},
                             {"size", "[1.9, 4.6, 1.7]"},
                             {"rotation", "[0.7071067811865476, 0.0, 0.0, 0.7071067811865476]"},
                             {"velocity", "[1.5, NaN]"},
                             {"detection_name", "\"car\""},
                             {"detection_score", "0.75"},
                             {"attribute_name", "\"vehicle.moving\""}};
  std::string out = "{";
  for (auto& f : fields) {
    std::string v = f[1];
    const std::string key = "\"" + f[0] + "\":";
    const auto at = overrides.find(key);
    if (at != std::string::npos) {
      const auto end = overrides.find(';', at);
      v = overrides.substr(at + key.size(), end - at - key.size());
      if (v == "DROP") continue;
    }
    out += (out.size() > 1 ? ", " : "") + std::string("\"") + f[0] + "\": " + v;
  }
  return out + extra + "}";
}

std::string doc(const std::string& results_body, bool meta = true) {
  return std::string("{") + (meta ? std::string(kMeta) + ", " : "") + "\"results\": {" + results_body + "}}";
}

// Expects parse_results to fail with a message containing `what`.
void expect_error(const std::string& json, const std::string& what) {
  try {
    parse_results(json, "res.json");
    ADD_FAILURE() << "no error for " << json;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << "message: " << e.what() << "\nwanted: " << what;
  }
}

TEST(EvalResultsIo, ReadsBoxesInFileOrder) {
  const std::string t1 = token(1), t2 = token(2), t0 = token(0);
  const Results r = parse_results(
      doc("\"" + t2 + "\": [" + box_json(t2) + ", " + box_json(t2, R"("detection_score":0.5;)", R"(, "num_pts": 3, "ego_translation": [1, 2, 3])") + "], \"" + t1 +
          "\": [], \"" + t0 + "\": [" + box_json(t0, R"("detection_score":DROP;"velocity":[null, 2];)") + "]"),
      "res.json");
  EXPECT_TRUE(r.meta.use_camera);
  EXPECT_FALSE(r.meta.use_lidar);
  ASSERT_EQ(r.boxes.num_samples(), 3u);
  EXPECT_EQ(r.boxes.token(0), t2);  // key order, not sorted
  EXPECT_EQ(r.boxes.token(1), t1);
  EXPECT_EQ(r.boxes.token(2), t0);
  const EvalBox& b = r.boxes.boxes(0)[0];
  EXPECT_EQ(b.translation, (std::array<double, 3>{10.5, -3.25, 1.0}));
  EXPECT_EQ(b.size, (std::array<double, 3>{1.9, 4.6, 1.7}));
  EXPECT_EQ(b.label, L("car"));
  EXPECT_EQ(b.attribute, A("vehicle.moving"));
  EXPECT_EQ(b.score, 0.75);
  EXPECT_EQ(b.velocity[0], 1.5);
  EXPECT_TRUE(std::isnan(b.velocity[1]));  // Python's NaN literal
  EXPECT_EQ(b.num_pts, -1);
  EXPECT_EQ(r.boxes.boxes(0)[1].num_pts, 3);
  EXPECT_EQ(r.boxes.boxes(2)[0].score, -1.0);  // detection_score defaults to -1
  EXPECT_TRUE(std::isnan(r.boxes.boxes(2)[0].velocity[0]));  // null reads as NaN
  EXPECT_EQ(r.boxes.boxes(2)[0].velocity[1], 2.0);
}

TEST(EvalResultsIo, ValidationErrorsNameFileSampleBoxAndField) {
  const std::string t = token(7);
  const std::string k = "\"" + t + "\": ";
  const std::string at = "res.json: results[\"" + t + "\"][1]";
  auto two = [&](const std::string& overrides) { return doc(k + "[" + box_json(t) + ", " + box_json(t, overrides) + "]"); };
  expect_error(std::string("{\"results\": {}}"), "res.json: (top level): missing \"meta\"");
  expect_error(std::string("{") + kMeta + "}", "res.json: (top level): missing \"results\"");
  expect_error(R"({"meta": {"use_camera": true}, "results": {}})", "res.json: meta: missing \"use_lidar\"");
  expect_error(R"({"meta": {"use_camera": 1, "use_lidar": false, "use_radar": false, "use_map": false, "use_external": false}, "results": {}})",
               "res.json: meta.use_camera: expected true or false, found a number");
  expect_error(two(R"("detection_name":"cat";)"), at + ".detection_name: unknown class \"cat\"");
  expect_error(two(R"("attribute_name":"vehicle.flying";)"), at + ".attribute_name: unknown attribute \"vehicle.flying\"");
  expect_error(two(R"("translation":[1.0, NaN, 2.0];)"), at + ".translation[1]: expected a finite number, found NaN");
  expect_error(two(R"("size":[1.0, -2.0, 1.0];)"), at + ".size[1]: sizes [w, l, h] must be > 0, found -2.0");
  expect_error(two(R"("size":[1.0, 0, 1.0];)"), at + ".size[1]: sizes [w, l, h] must be > 0, found 0.0");
  expect_error(two(R"("rotation":[Infinity, 0, 0, 0];)"), at + ".rotation[0]: expected a finite number, found Infinity");
  expect_error(two(R"("rotation":[0, 0, 0, 0];)"), at + ".rotation: the quaternion [w, x, y, z] is all zeros");
  expect_error(two(R"("rotation":[1, 0, 0];)"), at + ".rotation: expected 4 numbers, found 3");
  expect_error(two(R"("velocity":[1, -Infinity];)"), at + ".velocity[1]: expected a finite number or NaN, found -Infinity");
  expect_error(two(R"("detection_score":"high";)"), at + ".detection_score: expected a number, found a string");
  expect_error(two(R"("detection_score":NaN;)"), at + ".detection_score: expected a finite number, found NaN");
  expect_error(two(R"("size":DROP;)"), at + ": missing \"size\"");
  expect_error(two(R"("sample_token":")" + token(8) + "\";"),
               at + ".sample_token: is \"" + token(8) + "\" but the box is listed under sample \"" + t + "\"");
  expect_error(doc(k + "[], " + k + "[]"), "res.json: results[\"" + t + "\"]: sample token appears twice");
  expect_error(doc(k + "{}"), "res.json: results[\"" + t + "\"]: expected an array, found an object");
  // 501 boxes.
  std::string many = k + "[";
  for (int i = 0; i < 501; ++i) many += (i ? ", " : "") + box_json(t);
  expect_error(doc(many + "]"), "res.json: results[\"" + t + "\"]: more than 500 boxes (max_boxes_per_sample)");
  // Broken JSON.
  expect_error(doc(k + "[" + box_json(t)).substr(0, 200), "res.json");
  try {
    load_results("/nonexistent/res.json");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "results file /nonexistent/res.json does not exist");
  }
}

TEST(EvalResultsIo, BatchesAndThreadsChangeNothing) {
  // Tiny batches on several threads: the same boxes in the same order, and of two broken
  // samples the first in the file is the one reported.
  std::string body;
  for (int i = 0; i < 20; ++i) {
    const std::string t = token(100 + i);
    body += (i ? ", \"" : "\"") + t + "\": [" + box_json(t) + ", " + box_json(t, "\"detection_score\":" + std::to_string(i) + ";") + "]";
  }
  ResultsReadOptions small;
  small.batch_bytes = 1;
  small.threads = 3;
  const Results a = parse_results(doc(body), "res.json"), b = parse_results(doc(body), "res.json", small);
  ASSERT_EQ(a.boxes.num_samples(), 20u);
  ASSERT_EQ(b.boxes.num_samples(), 20u);
  for (std::size_t s = 0; s < 20; ++s) {
    EXPECT_EQ(a.boxes.token(s), b.boxes.token(s));
    EXPECT_EQ(b.boxes.boxes(s)[1].score, static_cast<double>(s));
  }
  std::string broken = body;
  for (int i : {13, 4}) {
    const std::string t = token(100 + i);
    const auto at = broken.find("\"" + t + "\": [");
    broken.insert(broken.find("\"car\"", at), "\"truck\", \"detection_name\": ");
    broken.replace(broken.find("\"truck\"", at), 7, "\"lorry\"");
  }
  ResultsReadOptions batch;
  batch.batch_bytes = 1 << 20;
  batch.threads = 4;
  for (const ResultsReadOptions& o : {small, batch}) {
    try {
      parse_results(doc(broken), "res.json", o);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("results[\"" + token(104) + "\"][0].detection_name: unknown class \"lorry\""),
                std::string::npos) << e.what();
    }
  }
}

TEST(EvalResultsIo, WriterRoundTripsAndConvertsEgoToGlobal) {
  // Ego at (100, 200, 0) heading +90 degrees: ego x is global y.
  SampleDetections s;
  s.sample_token = token(1);
  s.ego2global = core::Rigid::from_pose({100, 200, 0}, core::Quat::from_yaw(M_PI / 2));
  EgoDetection d;
  d.box = {10, 0, 1, 4.5f, 1.9f, 1.6f, 0.0f, 2.0f, 0.0f};  // 10 m ahead, heading forward, 2 m/s forward
  d.label = L("car");
  d.score = 0.625f;
  d.attribute = A("vehicle.moving");
  s.detections.push_back(d);
  SampleDetections empty;
  empty.sample_token = token(0);
  const EvalBoxes boxes = to_eval_boxes({s, empty});
  const EvalBox& b = boxes.boxes(0)[0];
  EXPECT_NEAR(b.translation[0], 100, 1e-9);
  EXPECT_NEAR(b.translation[1], 210, 1e-9);
  EXPECT_NEAR(b.translation[2], 1, 1e-9);
  EXPECT_EQ(b.size, (std::array<double, 3>{1.9f, 4.5f, 1.6f}));  // [w, l, h]
  EXPECT_NEAR(quaternion_yaw(b.rotation), M_PI / 2, 1e-9);
  EXPECT_NEAR(b.velocity[0], 0, 1e-9);
  EXPECT_NEAR(b.velocity[1], 2, 1e-9);
  // Write and read back: every double survives (shortest round-trip repr), order kept.
  ResultsMeta meta;
  meta.use_camera = true;
  const std::string path = std::string(BEVKD_BINARY_DIR) + "/tests/core/eval_roundtrip.json";
  write_results_json(path, boxes, meta);
  const Results back = load_results(path);
  EXPECT_TRUE(back.meta.use_camera);
  ASSERT_EQ(back.boxes.num_samples(), 2u);
  EXPECT_EQ(back.boxes.token(1), token(0));
  const EvalBox& c = back.boxes.boxes(0)[0];
  EXPECT_EQ(c.translation, b.translation);
  EXPECT_EQ(c.size, b.size);
  EXPECT_EQ(c.rotation, b.rotation);
  EXPECT_EQ(c.velocity, b.velocity);
  EXPECT_EQ(c.score, 0.625);
  EXPECT_EQ(c.attribute, b.attribute);
  // The writer refuses what the reader would refuse.
  EvalBoxes bad;
  EvalBox nb = b;
  nb.size[2] = 0;
  bad.add_sample(token(3), {nb});
  try {
    results_json(bad, meta);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("results[\"" + token(3) + "\"][0].size[2]: sizes [w, l, h] must be > 0"),
              std::string::npos) << e.what();
  }
  d.label = 12;
  s.detections = {d};
  EXPECT_ERROR_WITH(to_eval_boxes({s}), "detection 0: label 12");
}

TEST(EvalConfig, DevkitFileParsesToTheDefaults) {
  // detection_cvpr_2019.json as the devkit ships it.
  const std::string devkit = R"({
  "class_range": {"car": 50, "truck": 50, "bus": 50, "trailer": 50, "construction_vehicle": 50,
                  "pedestrian": 40, "motorcycle": 40, "bicycle": 40, "traffic_cone": 30, "barrier": 30},
  "dist_fcn": "center_distance",
  "dist_ths": [0.5, 1.0, 2.0, 4.0],
  "dist_th_tp": 2.0,
  "min_recall": 0.1,
  "min_precision": 0.1,
  "max_boxes_per_sample": 500,
  "mean_ap_weight": 5
})";
  const DetectionConfig c = parse_detection_config(devkit, "cvpr.json");
  const DetectionConfig d = DetectionConfig::cvpr_2019();
  EXPECT_EQ(c.class_order, d.class_order);
  EXPECT_EQ(c.class_range, d.class_range);
  EXPECT_EQ(c.dist_ths, d.dist_ths);
  EXPECT_EQ(c.dist_th_tp, d.dist_th_tp);
  EXPECT_EQ(c.min_recall, 0.1);
  EXPECT_EQ(c.max_boxes_per_sample, 500);
  EXPECT_EQ(c.mean_ap_weight, 5);
  EXPECT_EQ(c.tp_threshold_index(), 2);
  // Serialised back the devkit's way, and parsed again to the same config.
  const std::string json = detection_config_json(c);
  EXPECT_NE(json.find("\"car\": 50,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"dist_ths\": [\n    0.5,\n    1.0,"), std::string::npos) << json;
  EXPECT_EQ(parse_detection_config(json, "again").class_range, c.class_range);

  auto expect_cfg_error = [](const std::string& text, const std::string& what) {
    try {
      parse_detection_config(text, "my.json");
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  std::string unknown = devkit;
  unknown.insert(1, "\"min_recal\": 0.2, ");
  expect_cfg_error(unknown, "my.json: (top level): unknown key \"min_recal\"");
  std::string no_bus = devkit;
  no_bus.replace(no_bus.find("\"bus\": 50, "), 11, "");
  expect_cfg_error(no_bus, "my.json: class_range: missing class \"bus\"");
  std::string tp = devkit;
  tp.replace(tp.find("\"dist_th_tp\": 2.0"), 17, "\"dist_th_tp\": 3.0");
  expect_cfg_error(tp, "my.json: dist_th_tp 3 must be one of dist_ths");
  std::string missing = devkit;
  missing.replace(missing.find("\"mean_ap_weight\": 5"), 19, "\"mean_ap_weight\": 5, \"mean_ap_weight\": 4");
  expect_cfg_error(missing, "my.json: mean_ap_weight: appears twice");
  std::string fcn = devkit;
  fcn.replace(fcn.find("center_distance"), 15, "iou_3d");
  expect_cfg_error(fcn, "dist_fcn must be \"center_distance\"");
}

}  // namespace
}  // namespace bevkd::core::eval
