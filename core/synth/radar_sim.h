// Radar simulation: 2-D detections (z = 0 in the radar frame, as real nuScenes radar points)
// on the surfaces of objects within the sensor's field of view, with radial velocities
// (raw and ego-motion compensated), RCS by object type, stationary clutter from buildings and
// poles, and a few invalid / ambiguous detections that the devkit's default filter removes.
#pragma once

#include <vector>

#include "core/geometry.h"
#include "core/nuscenes/sensor_files.h"
#include "base/rng.h"
#include "core/synth/world.h"

namespace bevkd::core::synth {

// One radar frame at time t; ego_velocity is the ego's velocity in the global frame (m/s).
std::vector<nusc::RadarPoint> simulate_radar(const SceneWorld& world, double t, const Rigid& radar_to_global,
                                             const Vec3& ego_velocity, bool long_range, Rng& rng);

}  // namespace bevkd::core::synth
