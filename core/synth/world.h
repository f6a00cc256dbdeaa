// The synthetic world of one scene: a road, the ego vehicle's motion, annotated objects with
// their trajectories, and unannotated background (buildings, poles, trees). Everything is in
// the nuScenes global frame (x, y on the flat ground z = 0, metres); time t is in seconds
// since the scene's first key frame.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "base/canvas.h"
#include "core/geometry.h"
#include "base/rng.h"

namespace bevkd::core::synth {

// A road with a constant-curvature centreline (curvature 0: straight). Points are given in
// road coordinates (s, d): arc length s along the centreline (travel direction +s) and lateral
// offset d (positive to the left of +s).
//
// Cross-section (|d|, m): 0..7 four driving lanes (3.5 m; traffic keeps right, so d < 0
// drives towards +s), 7..9.5 parking strip, 9.5..14.6 sidewalk, >= 15.5 buildings.
struct Road {
  Vec3 origin{0, 0, 0};  // centreline point at s = 0 (global)
  double heading = 0;    // centreline heading at s = 0 (rad)
  double curvature = 0;  // 1/m, positive turns left

  static constexpr double kLaneWidth = 3.5;
  static constexpr double kRoadHalfWidth = 7.0;
  static constexpr double kParkingOuter = 9.5;
  static constexpr double kSidewalkOuter = 14.6;

  double heading_at(double s) const { return heading + curvature * s; }
  Vec3 point(double s, double d) const;           // global point (z = 0)
  void to_sd(double x, double y, double* s, double* d) const;  // inverse of point()
};

// An axis-aligned part of an object in its box frame, as fractions of (l, w, h) in
// [-0.5, 0.5]: a car is a body plus a cabin, a pedestrian legs + torso + head, ...
struct Part {
  std::array<float, 3> lo{-0.5f, -0.5f, -0.5f};
  std::array<float, 3> hi{0.5f, 0.5f, 0.5f};
  Rgb color;
  float reflectivity = 0.2f;  // LiDAR intensity scale (0..1)
};

// How an object moves: along the road at constant signed speed (m/s along +s; 0: static),
// heading = road heading + heading_offset (pi for traffic towards -s, pi/2 for barriers).
struct Motion {
  double s0 = 0;              // s at t = 0
  double d = 0;               // lateral offset (constant)
  double speed = 0;           // ds/dt (m/s)
  double heading_offset = 0;  // rad
};

struct Thing {
  std::string category;   // nuScenes category; "" for unannotated background
  int label = -1;         // detection class (kClassNames) or -1 (ignored category / background)
  int attribute = -1;     // kAttributeNames index or -1
  double l = 1, w = 1, h = 1;  // m (length along the heading, width, height)
  double pitch = 0, roll = 0;  // small tilts of the annotation (rad)
  Motion motion;
  std::vector<Part> parts;
  bool annotated() const { return !category.empty(); }
};

// An object's state at time t (global frame).
struct ThingPose {
  Vec3 center;         // geometric centre, m
  double yaw = 0;      // heading of the box x axis
  Quat rotation;       // yaw * pitch * roll (the annotation quaternion)
  Vec3 velocity;       // m/s
};

struct EgoMotion {
  double s0 = 0;     // s at t = 0
  double d = -1.75;  // lane
  double speed = 0;  // m/s (constant)
};

struct SceneWorld {
  Road road;
  EgoMotion ego;
  std::vector<Thing> things;  // annotated objects and background
  Vec3 sun{0.4, 0.3, 0.85};   // unit vector towards the sun (global)
  double duration = 0;        // s, first to last key frame
};

ThingPose pose_at(const Road& road, const Thing& thing, double t);
// Ego -> global at time t (ego origin on the ground at the rear axle; small pitch/roll sway).
Rigid ego_pose_at(const SceneWorld& world, double t);

// Builds the world of one scene. `objects` annotated instances (at least one of every
// detection class when objects >= 20), placed without overlaps around the ego's path.
SceneWorld make_scene_world(Rng& rng, int objects, double duration);

// The ego vehicle's body in its own frame, for the LiDAR's self-occlusion: a lower body
// (bonnet to boot) and a narrower cabin, as boxes (centre x, length, width, bottom z, top z).
// Rays that hit it give no return, which leaves the real rig's blind zone of ~3 m.
struct EgoBodyPart {
  double center_x, length, width, z0, z1;
};
inline constexpr EgoBodyPart kEgoBodyParts[2] = {{1.35, 4.1, 1.8, 0.15, 0.9}, {1.0, 2.0, 1.5, 0.9, 1.55}};

}  // namespace bevkd::core::synth
