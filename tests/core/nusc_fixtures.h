// Test datasets for the nuScenes reader:
//  * write_mini_like_dataset(): a hand-written dataset laid out exactly like real v1.0-mini —
//    scene-0061's first two samples with the tokens, timestamps, file names, channels, LiDAR
//    calibration and ego pose printed in the devkit tutorial, other records in the same style
//    (32-hex tokens, visibility tokens "1".."4", ego_pose token = sample_data token, one
//    calibrated_sensor per sensor and scene, all 12 sensors, sweeps between key frames);
//  * tiny_synth_dataset(): a bevkd-synth dataset (2 scenes x 3 samples, small images), made
//    once per test process.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

#include "base/error.h"
#include "tests/support/expect_error.h"
#include "tests/support/temp_dir.h"

namespace bevkd::core::nusc::testing {

// The version directory of both datasets below.
inline constexpr const char* kVersion = "v1.0-mini";

using Json = nlohmann::ordered_json;

using bevkd::testing::error_of;
using bevkd::testing::fresh_dir;

// Real-data facts used by the mini-like dataset (and asserted by the tests).
struct MiniFacts {
  static constexpr const char* kScene = "cc8c0bf57f984915a77078b10eb33198";
  static constexpr const char* kSample0 = "ca9a282c9e77460f8360f564131a8af5";
  static constexpr const char* kSample1 = "39586f9d59004284a7114a68825e8eec";
  static constexpr long long kSample0Time = 1532402927647951LL;
  static constexpr long long kSample1Time = 1532402928147847LL;
  static constexpr const char* kLidar0 = "9d9bf11fb0e144c8b446d54a8a00184f";
  static constexpr const char* kCamFront0 = "e3d495d4ac534d54b321f50006683844";
  static constexpr long long kCamFront0Time = 1532402927612460LL;
  static constexpr const char* kLogfile = "n015-2018-07-24-11-22-45+0800";
  static constexpr const char* kPedestrianAnn = "ef63a697930c4b20a6b9791f423351da";
  static constexpr const char* kPedestrianAnnNext = "7987617983634b119e383d8a29607fd7";
  static constexpr const char* kCarAnn = "70aecbe9b64f4722ab3c230391a3beb8";
};

// Writes the mini-like dataset under `root` (version "v1.0-mini") and returns `root`.
std::string write_mini_like_dataset(const std::string& root);

// Reads / writes one table of a dataset as JSON (to corrupt it in error-path tests).
Json read_table(const std::string& root, const std::string& version, const std::string& table);
void write_table(const std::string& root, const std::string& version, const std::string& table, const Json& records);

// The synthetic tiny dataset (v1.0-mini): generated on first use in this process.
const std::string& tiny_synth_dataset();

}  // namespace bevkd::core::nusc::testing

// Expects `needle` in the message `haystack` (printed on failure).
#define EXPECT_HAS(haystack, needle) EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)
