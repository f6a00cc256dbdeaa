#include "core/synth/radar_sim.h"

#include <algorithm>
#include <cmath>

#include "base/math.h"
#include "core/nuscenes_vocab.h"

namespace bevkd::core::synth {
namespace {

// Detections per frame and RCS (dBsm) of a thing.
void radar_profile(const Thing& th, Rng& rng, int* count, double* rcs) {
  const std::string& c = th.category;
  if (c.empty()) {  // background: buildings return clutter, thin poles rarely
    *count = th.l > 5 ? rng.uniform_int(3) : (rng.chance(0.2) ? 1 : 0);
    *rcs = rng.uniform(10, 25);
    return;
  }
  const double area = th.l * th.h;
  if (c.rfind("vehicle.", 0) == 0 && th.w > 1.2) {
    *count = 1 + rng.uniform_int(area > 15 ? 5 : 3);
    *rcs = rng.uniform(area > 15 ? 15 : 3, area > 15 ? 28 : 15);
  } else if (c == "vehicle.bicycle" || c == "vehicle.motorcycle") {
    *count = rng.chance(0.6) ? 1 : 0;
    *rcs = rng.uniform(-5, 5);
  } else if (c.rfind("human.", 0) == 0 || c == "animal") {
    *count = rng.chance(0.4) ? 1 : 0;
    *rcs = rng.uniform(-10, 0);
  } else {
    *count = rng.chance(0.3) ? 1 : 0;
    *rcs = rng.uniform(-8, 5);
  }
}

}  // namespace

std::vector<nusc::RadarPoint> simulate_radar(const SceneWorld& world, double t, const Rigid& radar_to_global,
                                             const Vec3& ego_velocity, bool long_range, Rng& rng) {
  const Rigid global_to_radar = radar_to_global.inverse();
  const double max_range = long_range ? 150.0 : 80.0, fov = (long_range ? 55.0 : 65.0) * kPi / 180;
  std::vector<nusc::RadarPoint> out;
  std::int16_t id = 0;
  for (const Thing& th : world.things) {
    const ThingPose p = pose_at(world.road, th, t);
    const Vec3 c = global_to_radar.apply(p.center);
    const double range = std::hypot(c[0], c[1]);
    if (range < 0.5 || range > max_range || std::abs(std::atan2(c[1], c[0])) > fov) continue;
    int count = 0;
    double rcs = 0;
    radar_profile(th, rng, &count, &rcs);
    if (range > 60) count = std::min(count, 1);
    // The box in the radar frame: heading and half sizes in x-y.
    const Vec3 hx = global_to_radar.apply_dir({std::cos(p.yaw), std::sin(p.yaw), 0.0});
    const double cyaw = hx[0], syaw = hx[1];
    for (int k = 0; k < count; ++k) {
      // A point on the face nearest the radar, pulled 15 % inside the box.
      const double lx = -(cyaw * c[0] + syaw * c[1]), ly = -(-syaw * c[0] + cyaw * c[1]);  // radar in box frame
      double px = std::clamp(lx, -th.l / 2, th.l / 2), py = std::clamp(ly, -th.w / 2, th.w / 2);
      px = 0.85 * px + rng.uniform(-0.1, 0.1) * th.l, py = 0.85 * py + rng.uniform(-0.1, 0.1) * th.w;
      px = std::clamp(px, -0.45 * th.l, 0.45 * th.l), py = std::clamp(py, -0.45 * th.w, 0.45 * th.w);
      const double x = c[0] + cyaw * px - syaw * py, y = c[1] + syaw * px + cyaw * py;
      const double r = std::hypot(x, y);
      const double ux = x / r, uy = y / r;
      // Radial velocities in the radar frame: relative (raw) and ego-compensated.
      const Vec3 v_obj = global_to_radar.apply_dir(p.velocity);
      const Vec3 v_ego = global_to_radar.apply_dir(ego_velocity);
      const double rad_comp = v_obj[0] * ux + v_obj[1] * uy;
      const double rad_raw = (v_obj[0] - v_ego[0]) * ux + (v_obj[1] - v_ego[1]) * uy;
      nusc::RadarPoint rp;
      rp.x = static_cast<float>(x + rng.normal(0, 0.1));
      rp.y = static_cast<float>(y + rng.normal(0, 0.1));
      rp.z = 0.0f;
      const double speed = std::hypot(p.velocity[0], p.velocity[1]);
      rp.dyn_prop = static_cast<std::int8_t>(speed > 0.5 ? (rad_comp < -0.5 ? 2 : 0) : 1);
      rp.id = id++;
      rp.rcs = static_cast<float>(rcs + rng.normal(0, 1.0));
      rp.vx = static_cast<float>(rad_raw * ux), rp.vy = static_cast<float>(rad_raw * uy);
      rp.vx_comp = static_cast<float>(rad_comp * ux), rp.vy_comp = static_cast<float>(rad_comp * uy);
      rp.is_quality_valid = 1;
      rp.ambig_state = 3;
      rp.invalid_state = 0;
      rp.x_rms = static_cast<std::int8_t>(rng.uniform_int(20));
      rp.y_rms = static_cast<std::int8_t>(rng.uniform_int(20));
      rp.pdh0 = 1;
      rp.vx_rms = rp.vy_rms = 17;
      // Some detections the devkit's default filter drops.
      const double bad = rng.uniform();
      if (bad < 0.04) rp.invalid_state = static_cast<std::int8_t>(1 + rng.uniform_int(16));
      else if (bad < 0.07) rp.ambig_state = static_cast<std::int8_t>(rng.uniform_int(3));
      out.push_back(rp);
    }
  }
  return out;
}

}  // namespace bevkd::core::synth
