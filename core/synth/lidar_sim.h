// LIDAR_TOP simulation: a spinning multi-beam LiDAR ray-cast against the ground plane and the
// scene's solids (nearest hit wins, so objects occlude each other and the ground).
#pragma once

#include <vector>

#include "core/geometry.h"
#include "base/rng.h"
#include "core/synth/world.h"

namespace bevkd::core::synth {

struct LidarSpec {
  int beams = 32;
  int azimuth_steps = 1084;        // rays per beam and revolution
  double elevation_min_deg = -30.67;
  double elevation_max_deg = 10.67;
  double max_range = 80.0;         // m; no return beyond
  double range_noise = 0.015;      // m (Gaussian)
  double dropout = 0.02;           // probability of a missing return
};

// One LiDAR frame at time t. Returns [P, 5] float32 row-major in the LiDAR frame: x, y, z (m),
// intensity (0..255, integer-valued like real data), ring (beam index, 0 = lowest beam).
// Rays that hit the ego vehicle's body give no return.
std::vector<float> simulate_lidar(const SceneWorld& world, double t, const Rigid& lidar_to_global,
                                  const Rigid& ego_to_global, const LidarSpec& spec, Rng& rng);

// LiDAR intensity of the ground at a global point (lane markings are brighter than asphalt).
double ground_reflectivity(const Road& road, double x, double y);

}  // namespace bevkd::core::synth
