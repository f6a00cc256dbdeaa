// The synthetic sensor rig: the 12 nuScenes sensors with calibrations close to the real
// vehicle's (values of the public v1.0-mini calibration, rounded), camera intrinsics scaled
// to the configured image size, and each sensor's firing offset relative to the LiDAR key
// frame. Each scene gets its own calibrated_sensor records (real data has one per scene and
// sensor) with millimetre / sub-degree perturbations.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "core/geometry.h"
#include "base/rng.h"

namespace bevkd::core::synth {

struct SensorSpec {
  std::string_view channel;
  std::string_view modality;  // "lidar", "camera", "radar"
  Vec3 translation;           // sensor -> ego
  Quat rotation;
  // Cameras: real 1600x900 intrinsics (fx = fy, cx, cy).
  double f = 0, cx = 0, cy = 0;
  double time_offset_s = 0;   // firing time relative to the LiDAR key frame
};

inline constexpr int kNumSensors = 12;
// LIDAR_TOP, then the cameras in kCameraChannels order, then the radars in kRadarChannels order.
const std::array<SensorSpec, kNumSensors>& sensor_specs();

// One sensor's calibration in one scene.
struct Calibration {
  Rigid sensor_to_ego;
  Vec3 translation;
  Quat rotation;
  bool camera = false;
  std::array<double, 9> K{};  // intrinsics scaled to the image size (cameras)
};

// The calibration of sensor `k` (index into sensor_specs()) for one scene: the spec perturbed
// by `rng`, intrinsics scaled from 1600x900 to width x height.
Calibration calibrate(int k, Rng& rng, int width, int height);

}  // namespace bevkd::core::synth
