#include "core/synth/solids.h"

#include <cmath>

namespace bevkd::core::synth {

std::vector<Solid> solids_at(const SceneWorld& world, double t, const Rigid& frame_from_global, double max_range,
                             bool include_ego, const Rigid& ego_to_global) {
  std::vector<Solid> out;
  const Rigid global_from_frame = frame_from_global.inverse();
  const Vec3 sensor = global_from_frame.t;
  for (std::size_t k = 0; k < world.things.size(); ++k) {
    const Thing& th = world.things[k];
    const ThingPose p = pose_at(world.road, th, t);
    const double dx = p.center[0] - sensor[0], dy = p.center[1] - sensor[1];
    const double reach = max_range + 0.5 * std::sqrt(th.l * th.l + th.w * th.w);
    if (dx * dx + dy * dy > reach * reach) continue;
    const Mat3 r_global = p.rotation.to_matrix();
    const Mat3 axes = frame_from_global.R * r_global;
    for (const Part& part : th.parts) {
      const Vec3 local{(part.lo[0] + part.hi[0]) * 0.5 * th.l, (part.lo[1] + part.hi[1]) * 0.5 * th.w,
                       (part.lo[2] + part.hi[2]) * 0.5 * th.h};
      const Vec3 rc = r_global * local;
      const Vec3 cg{p.center[0] + rc[0], p.center[1] + rc[1], p.center[2] + rc[2]};
      Solid s;
      s.center = frame_from_global.apply(cg);
      s.axes = axes;
      s.half = {(part.hi[0] - part.lo[0]) * 0.5 * th.l, (part.hi[1] - part.lo[1]) * 0.5 * th.w,
                (part.hi[2] - part.lo[2]) * 0.5 * th.h};
      s.thing = static_cast<int>(k);
      s.color = part.color;
      s.reflectivity = part.reflectivity;
      out.push_back(s);
    }
  }
  if (include_ego) {
    const Rigid frame_from_ego = frame_from_global * ego_to_global;
    for (const EgoBodyPart& b : kEgoBodyParts) {
      Solid s;
      s.center = frame_from_ego.apply({b.center_x, 0.0, (b.z0 + b.z1) / 2});
      s.axes = frame_from_ego.R;
      s.half = {b.length / 2, b.width / 2, (b.z1 - b.z0) / 2};
      s.thing = kEgoBody;
      out.push_back(s);
    }
  }
  return out;
}

}  // namespace bevkd::core::synth
