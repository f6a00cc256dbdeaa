// The world at one instant as oriented boxes ("solids": the parts of every object) in a
// sensor frame — what the LiDAR ray caster and the camera rasteriser see.
#pragma once

#include <vector>

#include "base/canvas.h"
#include "core/geometry.h"
#include "core/synth/world.h"

namespace bevkd::core::synth {

struct Solid {
  Vec3 center;        // in the sensor frame, m
  Mat3 axes;          // columns: the solid's x, y, z axes in the sensor frame
  Vec3 half;          // half extents along its axes, m
  int thing = -1;     // index into SceneWorld::things; kEgoBody for the ego vehicle's body
  Rgb color;
  float reflectivity = 0.2f;
};

inline constexpr int kEgoBody = -2;

// All parts of all things within `max_range` (m, x-y distance from the sensor) at time t,
// transformed by `frame_from_global`, grouped by thing (parts of one thing are consecutive).
// With include_ego, the ego vehicle's body (kEgoBodyParts at ego_to_global) is added.
std::vector<Solid> solids_at(const SceneWorld& world, double t, const Rigid& frame_from_global, double max_range,
                             bool include_ego = false, const Rigid& ego_to_global = Rigid::identity());

}  // namespace bevkd::core::synth
