#include "core/synth/world.h"

#include <algorithm>
#include <cmath>

#include "base/math.h"
#include "core/nuscenes_vocab.h"

namespace bevkd::core::synth {
namespace {

Rgb scale(Rgb c, double f) {
  auto ch = [f](std::uint8_t v) { return static_cast<std::uint8_t>(std::clamp(v * f, 0.0, 255.0)); };
  return {ch(c.r), ch(c.g), ch(c.b)};
}

Part part(std::array<float, 3> lo, std::array<float, 3> hi, Rgb color, float reflectivity) {
  return {lo, hi, color, reflectivity};
}

// Class colours: one hue per detection class (so a camera model can tell them apart),
// varied in brightness per instance.
constexpr Rgb kCarColor{40, 90, 200};
constexpr Rgb kTruckColor{170, 40, 40};
constexpr Rgb kConstructionColor{230, 190, 20};
constexpr Rgb kBusColor{40, 160, 80};
constexpr Rgb kTrailerColor{130, 90, 50};
constexpr Rgb kMotorcycleColor{190, 40, 160};
constexpr Rgb kBicycleColor{20, 190, 200};
constexpr Rgb kPedestrianColor{120, 60, 170};
constexpr Rgb kConeColor{255, 110, 0};
constexpr Rgb kBarrierWhite{232, 232, 232};
constexpr Rgb kBarrierRed{210, 35, 35};
constexpr Rgb kDark{45, 45, 50};
constexpr Rgb kSkin{220, 180, 150};
constexpr Rgb kMetal{150, 150, 155};

std::vector<Part> car_parts(Rgb c) {
  return {part({-0.5f, -0.5f, -0.5f}, {0.5f, 0.5f, 0.05f}, c, 0.35f),
          part({-0.32f, -0.44f, 0.05f}, {0.22f, 0.44f, 0.5f}, scale(c, 0.5), 0.15f)};
}
std::vector<Part> truck_parts(Rgb c) {
  return {part({0.22f, -0.5f, -0.5f}, {0.5f, 0.5f, 0.3f}, c, 0.35f),
          part({-0.5f, -0.5f, -0.35f}, {0.2f, 0.5f, 0.5f}, scale(c, 1.25), 0.4f),
          part({-0.5f, -0.4f, -0.5f}, {0.22f, 0.4f, -0.35f}, kDark, 0.1f)};
}
std::vector<Part> bus_parts(Rgb c) {
  return {part({-0.5f, -0.5f, -0.5f}, {0.5f, 0.5f, 0.1f}, c, 0.35f),
          part({-0.48f, -0.5f, 0.1f}, {0.5f, 0.5f, 0.42f}, scale(c, 0.45), 0.15f),
          part({-0.5f, -0.5f, 0.42f}, {0.5f, 0.5f, 0.5f}, c, 0.35f)};
}
std::vector<Part> trailer_parts(Rgb c) {
  return {part({-0.5f, -0.5f, -0.25f}, {0.5f, 0.5f, 0.5f}, c, 0.3f),
          part({-0.45f, -0.45f, -0.5f}, {-0.1f, 0.45f, -0.25f}, kDark, 0.1f)};
}
std::vector<Part> construction_parts(Rgb c) {
  return {part({-0.5f, -0.5f, -0.5f}, {0.5f, 0.5f, -0.05f}, c, 0.4f),
          part({-0.15f, -0.45f, -0.05f}, {0.25f, 0.2f, 0.5f}, scale(c, 0.75), 0.3f),
          part({0.25f, -0.1f, -0.05f}, {0.5f, 0.1f, 0.35f}, c, 0.4f)};
}
std::vector<Part> pedestrian_parts(Rgb c) {
  return {part({-0.3f, -0.35f, -0.5f}, {0.3f, 0.35f, -0.05f}, kDark, 0.15f),
          part({-0.4f, -0.5f, -0.05f}, {0.4f, 0.5f, 0.35f}, c, 0.25f),
          part({-0.25f, -0.25f, 0.35f}, {0.25f, 0.25f, 0.5f}, kSkin, 0.2f)};
}
std::vector<Part> cycle_parts(Rgb c, bool rider) {
  if (!rider) return {part({-0.5f, -0.3f, -0.5f}, {0.5f, 0.3f, 0.5f}, c, 0.3f)};
  return {part({-0.5f, -0.2f, -0.5f}, {0.5f, 0.2f, -0.1f}, c, 0.3f),
          part({-0.25f, -0.5f, -0.1f}, {0.15f, 0.5f, 0.35f}, scale(kPedestrianColor, 0.8), 0.25f),
          part({-0.12f, -0.25f, 0.35f}, {0.08f, 0.25f, 0.5f}, kSkin, 0.2f)};
}
std::vector<Part> barrier_parts() {
  return {part({-0.5f, -0.5f, -0.5f}, {0.5f, 0.5f, 0.25f}, kBarrierWhite, 0.8f),
          part({-0.5f, -0.5f, 0.25f}, {0.5f, 0.5f, 0.5f}, kBarrierRed, 0.9f)};
}
std::vector<Part> cone_parts() {
  return {part({-0.5f, -0.5f, -0.5f}, {0.5f, 0.5f, -0.42f}, kConeColor, 0.9f),
          part({-0.32f, -0.32f, -0.42f}, {0.32f, 0.32f, 0.0f}, kConeColor, 0.9f),
          part({-0.25f, -0.25f, 0.0f}, {0.25f, 0.25f, 0.15f}, kBarrierWhite, 1.0f),
          part({-0.17f, -0.17f, 0.15f}, {0.17f, 0.17f, 0.5f}, kConeColor, 0.9f)};
}

// Size with a clamped Gaussian spread.
double jitter(Rng& rng, double mean, double sd) {
  return std::clamp(rng.normal(mean, sd), mean - 2.5 * sd, mean + 2.5 * sd);
}

// Rectangles already taken in road coordinates (static objects only; moving traffic keeps to
// its lanes and never meets them by construction).
class Occupancy {
 public:
  bool free(double s0, double s1, double d0, double d1) const {
    for (const auto& r : rects_)
      if (s0 < r[1] && r[0] < s1 && d0 < r[3] && r[2] < d1) return false;
    return true;
  }
  void take(double s0, double s1, double d0, double d1) { rects_.push_back({s0, s1, d0, d1}); }

 private:
  std::vector<std::array<double, 4>> rects_;
};

class Builder {
 public:
  Builder(Rng& rng, SceneWorld& w, double s_lo, double s_hi) : rng_(rng), w_(w), s_lo_(s_lo), s_hi_(s_hi) {}

  int annotated() const { return annotated_; }

  Thing make(const std::string& category, double w, double l, double h) {
    Thing t;
    t.category = category;
    t.label = class_from_category(category);
    t.w = w, t.l = l, t.h = h;
    const double tilt = category.rfind("human", 0) == 0 ? 0.02 : 0.01;
    t.pitch = std::clamp(rng_.normal(0, tilt), -2.5 * tilt, 2.5 * tilt);
    t.roll = std::clamp(rng_.normal(0, tilt), -2.5 * tilt, 2.5 * tilt);
    return t;
  }

  void add(Thing t) {
    if (t.annotated()) ++annotated_;
    w_.things.push_back(std::move(t));
  }

  // Static placement at lateral offset d, s uniform in [s0, s1]; footprint along s / d
  // follows the heading (0 / pi along the road, +-pi/2 across it). Returns false if no free
  // spot was found.
  bool place_static(Thing t, double d, double s0, double s1, double heading_offset, double margin = 0.4) {
    const bool across = std::abs(std::sin(heading_offset)) > 0.7;
    const double ext_s = across ? t.w : t.l, ext_d = across ? t.l : t.w;
    for (int attempt = 0; attempt < 30; ++attempt) {
      const double s = rng_.uniform(s0, s1);
      if (!occ_.free(s - ext_s / 2 - margin, s + ext_s / 2 + margin, d - ext_d / 2 - margin, d + ext_d / 2 + margin))
        continue;
      occ_.take(s - ext_s / 2 - margin, s + ext_s / 2 + margin, d - ext_d / 2 - margin, d + ext_d / 2 + margin);
      t.motion = {s, d, 0.0, heading_offset};
      add(std::move(t));
      return true;
    }
    return false;
  }
  void take(double s0, double s1, double d0, double d1) { occ_.take(s0, s1, d0, d1); }

  // A convoy in one lane: every member moves at `speed` (signed, m/s along s), so the gaps
  // stay constant; members are spread over the region at mid-scene. `forbidden` is an
  // interval of s (at t = 0) that must stay clear (the ego in its own lane).
  void convoy(std::vector<Thing> members, double d, double speed, double heading_offset, double min_gap,
              double forbid0 = 1e9, double forbid1 = -1e9) {
    const double mid = w_.duration / 2;
    std::vector<std::pair<double, Thing>> placed;
    for (Thing& t : members) placed.emplace_back(rng_.uniform(s_lo_, s_hi_), std::move(t));
    std::sort(placed.begin(), placed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    double last_end = -1e18;
    for (auto& [s_mid, t] : placed) {
      double s = std::max(s_mid, last_end + min_gap + t.l / 2);
      double s_at0 = s - speed * mid;
      if (s_at0 + t.l / 2 > forbid0 && s_at0 - t.l / 2 < forbid1) {  // jump over the ego
        s_at0 = forbid1 + t.l / 2;
        s = s_at0 + speed * mid;
      }
      if (s > s_hi_ + 20) break;
      last_end = s + t.l / 2;
      t.motion = {s_at0, d, speed, heading_offset};
      add(std::move(t));
    }
  }

  Rng& rng() { return rng_; }

 private:
  Rng& rng_;
  SceneWorld& w_;
  double s_lo_, s_hi_;
  Occupancy occ_;
  int annotated_ = 0;
};

Rgb vary(Rng& rng, Rgb c) { return scale(c, rng.uniform(0.8, 1.15)); }

}  // namespace

Vec3 Road::point(double s, double d) const {
  const double th = heading_at(s);
  const double nx = -std::sin(th), ny = std::cos(th);
  double cx, cy;
  if (std::abs(curvature) < 1e-12) {
    cx = origin[0] + s * std::cos(heading);
    cy = origin[1] + s * std::sin(heading);
  } else {
    cx = origin[0] + (std::sin(th) - std::sin(heading)) / curvature;
    cy = origin[1] + (std::cos(heading) - std::cos(th)) / curvature;
  }
  return {cx + d * nx, cy + d * ny, 0.0};
}

void Road::to_sd(double x, double y, double* s, double* d) const {
  const double tx = std::cos(heading), ty = std::sin(heading);
  if (std::abs(curvature) < 1e-12) {
    const double dx = x - origin[0], dy = y - origin[1];
    *s = dx * tx + dy * ty;
    *d = -dx * ty + dy * tx;
    return;
  }
  // Centre of curvature C = origin + n0 / curvature; point = C + (d - r) n(theta).
  const double r = 1.0 / curvature;
  const double cx = origin[0] - ty * r, cy = origin[1] + tx * r;
  const double gx = x - cx, gy = y - cy;
  const double dist = std::sqrt(gx * gx + gy * gy);
  const double sign = r > 0 ? 1.0 : -1.0;
  *d = r - sign * dist;
  // n = -sign * (g - C) / |g - C| = (-sin theta, cos theta).
  const double nx = -sign * gx / dist, ny = -sign * gy / dist;
  const double theta = std::atan2(-nx, ny);
  double dth = std::remainder(theta - heading, 2 * kPi);
  *s = dth / curvature;
}

ThingPose pose_at(const Road& road, const Thing& thing, double t) {
  const Motion& m = thing.motion;
  const double s = m.s0 + m.speed * t;
  ThingPose p;
  p.center = road.point(s, m.d);
  p.center[2] = thing.h / 2;
  p.yaw = wrap_angle(road.heading_at(s) + m.heading_offset);
  p.rotation = Quat::from_yaw(p.yaw) * Quat::from_axis_angle({0, 1, 0}, thing.pitch) *
               Quat::from_axis_angle({1, 0, 0}, thing.roll);
  const double th = road.heading_at(s);
  const double v = m.speed * (1.0 - road.curvature * m.d);
  p.velocity = {v * std::cos(th), v * std::sin(th), 0.0};
  return p;
}

Rigid ego_pose_at(const SceneWorld& world, double t) {
  const double s = world.ego.s0 + world.ego.speed * t;
  Vec3 pos = world.road.point(s, world.ego.d);
  pos[2] = 0.0;  // real ego poses have z = 0
  const double yaw = world.road.heading_at(s);
  const double pitch = 0.004 * std::sin(2.1 * t + 0.3), roll = 0.003 * std::sin(1.7 * t + 1.1);
  const Quat q = Quat::from_yaw(yaw) * Quat::from_axis_angle({0, 1, 0}, pitch) * Quat::from_axis_angle({1, 0, 0}, roll);
  return Rigid::from_pose(pos, q);
}

SceneWorld make_scene_world(Rng& rng, int objects, double duration) {
  SceneWorld w;
  w.duration = duration;
  // Global placement: every ego pose keeps >= 70 m from the global axes (the map masks start at
  // the origin and the devkit crops 40 m * sqrt(2) around a pose: map_mask.h), within a few
  // hundred metres so that a mask at 0.1 m per pixel stays a few thousand pixels wide.
  const double lo = 70.0 + 9.0 * duration + 10.0;  // the ego drives at most 9 m/s
  w.road.origin = {rng.uniform(lo, lo + 200), rng.uniform(lo, lo + 200), 0.0};
  w.road.heading = rng.uniform(-kPi, kPi);
  if (rng.chance(0.5)) w.road.curvature = (rng.chance(0.5) ? 1 : -1) * rng.uniform(1.0 / 600, 1.0 / 250);
  w.ego.speed = rng.chance(0.15) ? 0.0 : rng.uniform(3.0, 9.0);
  w.ego.d = -1.75;
  const double sun_az = rng.uniform(-kPi, kPi), sun_el = rng.uniform(0.5, 1.2);
  w.sun = {std::cos(sun_el) * std::cos(sun_az), std::cos(sun_el) * std::sin(sun_az), std::sin(sun_el)};

  const double s_lo = -75.0, s_hi = w.ego.speed * duration + 75.0;
  Builder b(rng, w, s_lo, s_hi);
  const int n = std::max(objects, 0);
  auto count = [&](double frac, int min_count) {
    return std::max(n >= 20 ? min_count : 0, static_cast<int>(std::lround(frac * n)));
  };

  // ---- construction zone: the outer lane of one side is closed by a row of barriers with a
  // taper of cones at both ends; a construction vehicle and a worker stand inside ----
  const double zone_side = rng.chance(0.5) ? 1.0 : -1.0;
  const int n_barrier = count(0.08, 2), n_cone = count(0.08, 2);
  if (n_barrier + n_cone > 0) {
    const int taper = (n_cone + 1) / 2;
    const double row = n_barrier * 2.8;
    const double len = row + 2 * (taper * 3.0) + 2.0;
    const double zs = rng.uniform(s_lo + 20, std::max(s_lo + 21, s_hi - len - 10));
    const double row_start = zs + taper * 3.0 + 1.0;
    for (int i = 0; i < n_barrier; ++i) {
      Thing t = b.make("movable_object.barrier", jitter(rng, 2.5, 0.2), jitter(rng, 0.5, 0.06), jitter(rng, 0.98, 0.08));
      t.parts = barrier_parts();
      t.motion = {row_start + 1.4 + i * 2.8, zone_side * 3.9, 0.0, kPi / 2};
      b.add(std::move(t));
    }
    for (int i = 0; i < n_cone; ++i) {
      Thing t = b.make("movable_object.trafficcone", jitter(rng, 0.41, 0.04), jitter(rng, 0.41, 0.04), jitter(rng, 0.9, 0.1));
      t.parts = cone_parts();
      // Taper from the lane's outer edge to the barrier row, before and after the row.
      const bool before = i < taper;
      const int k = before ? i : i - taper;
      const double frac = taper > 1 ? static_cast<double>(k) / (taper - 1) : 1.0;
      const double s = before ? zs + k * 3.0 : row_start + row + 1.0 + (taper - 1 - k) * 3.0;
      t.motion = {s, zone_side * (6.3 - 2.4 * frac), 0.0, rng.uniform(-kPi, kPi)};
      b.add(std::move(t));
    }
    if (n >= 10) {
      Thing cv = b.make("vehicle.construction", jitter(rng, 2.6, 0.15), jitter(rng, 6.4, 0.8), jitter(rng, 3.2, 0.3));
      cv.parts = construction_parts(vary(rng, kConstructionColor));
      cv.attribute = attribute_index("vehicle.parked");
      // Clear of the barrier row (|d| <= 4.15 with a thick barrier): |d| >= 4.35.
      cv.motion = {row_start + 1.0 + cv.l / 2, zone_side * (4.35 + cv.w / 2), 0.0, zone_side > 0 ? kPi : 0.0};
      const double cv_end = row_start + 1.0 + cv.l;
      b.add(std::move(cv));
      if (cv_end + 2.0 < row_start + row) {
        Thing worker = b.make("human.pedestrian.construction_worker", jitter(rng, 0.67, 0.06), jitter(rng, 0.73, 0.08),
                              jitter(rng, 1.77, 0.08));
        worker.parts = pedestrian_parts(Rgb{255, 150, 20});
        worker.attribute = attribute_index("pedestrian.standing");
        worker.motion = {rng.uniform(cv_end + 1.0, row_start + row - 0.5), zone_side * 5.5, 0.0, rng.uniform(-kPi, kPi)};
        b.add(std::move(worker));
      }
    }
    b.take(zs - 1, zs + len + 1, zone_side > 0 ? 3.5 : -7.0, zone_side > 0 ? 7.0 : -3.5);
  }

  // ---- lane traffic: every lane is a convoy at one speed; the zone side's outer lane is closed ----
  struct Lane {
    double d, speed, heading;
    std::vector<Thing> members;
  };
  auto lane_speed = [&](double p_stopped, double lo, double hi) { return rng.chance(p_stopped) ? 0.0 : rng.uniform(lo, hi); };
  std::vector<Lane> lanes;
  lanes.push_back({-1.75, w.ego.speed, 0.0, {}});  // the ego's lane: same speed as the ego
  lanes.push_back({1.75, -lane_speed(0.1, 4.0, 12.0), kPi, {}});
  lanes.push_back({-zone_side * 5.25, 0.0, zone_side > 0 ? 0.0 : kPi, {}});  // the open outer lane
  lanes.back().speed = (zone_side > 0 ? 1.0 : -1.0) * lane_speed(0.15, 3.0, 12.0);
  auto vehicle_attr = [](double speed) { return attribute_index(std::abs(speed) > 0.2 ? "vehicle.moving" : "vehicle.stopped"); };
  auto new_car = [&](double speed) {
    Thing t = b.make("vehicle.car", jitter(rng, 1.95, 0.12), jitter(rng, 4.6, 0.35), jitter(rng, 1.7, 0.12));
    t.parts = car_parts(vary(rng, kCarColor));
    t.attribute = vehicle_attr(speed);
    return t;
  };
  const int n_car = count(0.28, 3), n_truck = count(0.06, 1), n_bus = count(0.04, 1), n_trailer = count(0.03, 1);
  const int n_moto = count(0.04, 1), n_bike = count(0.05, 1), n_ped = count(0.2, 2);
  const int n_moving_car = n_car * 6 / 10;
  for (int i = 0; i < n_moving_car; ++i) {
    Lane& lane = lanes[rng.uniform_int(static_cast<int>(lanes.size()))];
    lane.members.push_back(new_car(lane.speed));
  }
  for (int i = 0; i < n_truck; ++i) {
    Thing t = b.make("vehicle.truck", jitter(rng, 2.5, 0.2), jitter(rng, 6.9, 1.0), jitter(rng, 2.9, 0.3));
    t.parts = truck_parts(vary(rng, kTruckColor));
    if (rng.chance(0.4)) {
      t.attribute = attribute_index("vehicle.parked");
      b.place_static(std::move(t), (rng.chance(0.5) ? 1 : -1) * 8.3, s_lo, s_hi, rng.chance(0.5) ? 0.0 : kPi);
    } else {
      Lane& lane = lanes[rng.uniform_int(2)];  // inner lanes (wide vehicles)
      t.attribute = vehicle_attr(lane.speed);
      lane.members.push_back(std::move(t));
    }
  }
  for (int i = 0; i < n_bus; ++i) {
    const bool bendy = rng.chance(0.2);
    Thing t = b.make(bendy ? "vehicle.bus.bendy" : "vehicle.bus.rigid", jitter(rng, 2.95, 0.1),
                     bendy ? jitter(rng, 18.0, 0.5) : jitter(rng, 11.0, 0.8), jitter(rng, 3.4, 0.15));
    t.parts = bus_parts(vary(rng, kBusColor));
    Lane& lane = lanes[rng.uniform_int(2)];
    t.attribute = vehicle_attr(lane.speed);
    lane.members.push_back(std::move(t));
  }
  for (int i = 0; i < n_moto; ++i) {
    const bool parked = rng.chance(0.35);
    Thing t = b.make("vehicle.motorcycle", jitter(rng, 0.77, 0.08), jitter(rng, 2.1, 0.15),
                     parked ? jitter(rng, 1.2, 0.08) : jitter(rng, 1.6, 0.08));
    t.parts = cycle_parts(vary(rng, kMotorcycleColor), !parked);
    t.attribute = attribute_index(parked ? "cycle.without_rider" : "cycle.with_rider");
    if (parked) {
      b.place_static(std::move(t), (rng.chance(0.5) ? 1 : -1) * 8.0, s_lo, s_hi, rng.chance(0.5) ? 0.0 : kPi);
    } else {
      lanes[2].members.push_back(std::move(t));
    }
  }
  for (Lane& lane : lanes) {
    if (&lane == &lanes[0]) {
      // The ego occupies about [-2.6, 3.8] m of its lane around s = ego.s0 and moves with it.
      b.convoy(std::move(lane.members), lane.d, lane.speed, lane.heading, rng.uniform(5, 10), -6.0, 8.0);
    } else {
      b.convoy(std::move(lane.members), lane.d, lane.speed, lane.heading, rng.uniform(5, 12));
    }
  }

  // ---- parked vehicles and trailers in the parking strips ----
  for (int i = n_moving_car; i < n_car; ++i) {
    Thing t = new_car(0.0);
    t.attribute = attribute_index("vehicle.parked");
    b.place_static(std::move(t), (rng.chance(0.5) ? 1 : -1) * 8.25, s_lo, s_hi, rng.chance(0.5) ? 0.0 : kPi);
  }
  for (int i = 0; i < n_trailer; ++i) {
    Thing t = b.make("vehicle.trailer", jitter(rng, 2.9, 0.15), jitter(rng, 11.0, 1.5), jitter(rng, 3.8, 0.25));
    t.parts = trailer_parts(vary(rng, kTrailerColor));
    t.attribute = attribute_index("vehicle.parked");
    b.place_static(std::move(t), (rng.chance(0.5) ? 1 : -1) * 8.35, s_lo, s_hi, rng.chance(0.5) ? 0.0 : kPi);
  }
  {  // an emergency vehicle (ignored category) parked now and then
    if (n >= 20 && rng.chance(0.5)) {
      const bool police = rng.chance(0.6);
      Thing t = police ? b.make("vehicle.emergency.police", 1.95, 4.8, 1.6) : b.make("vehicle.emergency.ambulance", 2.2, 5.9, 2.6);
      t.parts = police ? car_parts(Rgb{235, 235, 235}) : truck_parts(Rgb{240, 240, 240});
      t.attribute = attribute_index("vehicle.parked");
      b.place_static(std::move(t), (rng.chance(0.5) ? 1 : -1) * 8.25, s_lo, s_hi, 0.0);
    }
  }

  // ---- cyclists riding along the edge of the side without the construction zone ----
  std::vector<Thing> riders, parked_bikes;
  for (int i = 0; i < n_bike; ++i) {
    const bool riding = rng.chance(0.5);
    Thing t = b.make("vehicle.bicycle", jitter(rng, 0.6, 0.06), jitter(rng, 1.7, 0.1),
                     riding ? jitter(rng, 1.7, 0.08) : jitter(rng, 1.1, 0.06));
    t.parts = cycle_parts(vary(rng, kBicycleColor), riding);
    t.attribute = attribute_index(riding ? "cycle.with_rider" : "cycle.without_rider");
    (riding ? riders : parked_bikes).push_back(std::move(t));
  }
  const double bike_side = -zone_side;  // traffic keeps right: d < 0 rides towards +s
  b.convoy(std::move(riders), bike_side * 6.65, -bike_side * rng.uniform(3.0, 6.0), bike_side > 0 ? kPi : 0.0,
           rng.uniform(4, 10));
  for (Thing& t : parked_bikes)
    b.place_static(std::move(t), (rng.chance(0.5) ? 1 : -1) * 9.9, s_lo, s_hi, rng.chance(0.5) ? 0.0 : kPi, 0.2);

  // ---- bicycle racks with parked bicycles inside (the eval's bike-rack filter) ----
  if (n >= 20) {
    const double side = rng.chance(0.5) ? 1 : -1;
    Thing rack = b.make("static_object.bicycle_rack", 2.0, 4.5, 1.1);
    rack.parts = {part({-0.5f, -0.5f, -0.5f}, {0.5f, -0.42f, 0.5f}, kMetal, 0.6f),
                  part({-0.5f, 0.42f, -0.5f}, {0.5f, 0.5f, 0.5f}, kMetal, 0.6f),
                  part({-0.5f, -0.5f, -0.5f}, {0.5f, 0.5f, -0.45f}, kMetal, 0.6f)};
    const double d = side * 13.6;
    for (int attempt = 0; attempt < 20; ++attempt) {
      const double s = rng.uniform(s_lo + 10, s_hi - 10);
      // Reserve the rack footprint (place_static with a fixed s).
      if (!b.place_static(rack, d, s, s, 0.0, 0.3)) continue;
      const int bikes = 2 + rng.uniform_int(2);
      for (int k = 0; k < bikes; ++k) {
        Thing bike = b.make("vehicle.bicycle", jitter(rng, 0.6, 0.05), jitter(rng, 1.7, 0.08), jitter(rng, 1.05, 0.05));
        bike.parts = cycle_parts(vary(rng, kBicycleColor), false);
        bike.attribute = attribute_index("cycle.without_rider");
        bike.motion = {s - 1.5 + 1.0 * k, d, 0.0, kPi / 2};
        b.add(std::move(bike));
      }
      break;
    }
  }

  // ---- pedestrians: walking sub-lanes on both sidewalks, standing / sitting ones ----
  const int n_walk = n_ped * 7 / 10;
  const double walk_lanes[6] = {-10.6, -11.4, -12.2, 10.6, 11.4, 12.2};
  double walk_speed[6];
  for (double& v : walk_speed) v = (rng.chance(0.5) ? 1 : -1) * rng.uniform(0.8, 1.6);
  std::vector<std::vector<Thing>> walkers(6);
  auto new_ped = [&](bool moving) {
    const double r = rng.uniform();
    const bool child = r < 0.1, police = r > 0.95;
    Thing t = b.make(child ? "human.pedestrian.child" : police ? "human.pedestrian.police_officer" : "human.pedestrian.adult",
                     jitter(rng, child ? 0.5 : 0.67, 0.05), jitter(rng, child ? 0.55 : 0.73, 0.06),
                     child ? jitter(rng, 1.2, 0.08) : jitter(rng, 1.75, 0.08));
    t.parts = pedestrian_parts(police ? Rgb{30, 40, 120} : vary(rng, kPedestrianColor));
    t.attribute = attribute_index(moving ? "pedestrian.moving" : "pedestrian.standing");
    return t;
  };
  for (int i = 0; i < n_walk; ++i) walkers[rng.uniform_int(6)].push_back(new_ped(true));
  if (n >= 20) {  // a stroller and a dog walking with the pedestrians
    Thing stroller = b.make("human.pedestrian.stroller", 0.6, 0.9, 1.05);
    stroller.parts = {part({-0.5f, -0.5f, -0.2f}, {0.5f, 0.5f, 0.5f}, Rgb{30, 50, 90}, 0.2f),
                      part({-0.45f, -0.4f, -0.5f}, {0.45f, 0.4f, -0.2f}, kDark, 0.1f)};
    walkers[rng.uniform_int(6)].push_back(std::move(stroller));
    Thing dog = b.make("animal", 0.35, 0.9, 0.6);
    dog.parts = {part({-0.5f, -0.5f, -0.1f}, {0.25f, 0.5f, 0.5f}, Rgb{120, 80, 40}, 0.2f),
                 part({-0.4f, -0.35f, -0.5f}, {0.2f, 0.35f, -0.1f}, Rgb{100, 65, 30}, 0.2f),
                 part({0.25f, -0.4f, 0.1f}, {0.5f, 0.4f, 0.5f}, Rgb{120, 80, 40}, 0.2f)};
    walkers[rng.uniform_int(6)].push_back(std::move(dog));
  }
  for (int k = 0; k < 6; ++k)
    b.convoy(std::move(walkers[k]), walk_lanes[k], walk_speed[k], walk_speed[k] > 0 ? 0.0 : kPi, 1.0);
  for (int i = n_walk; i < n_ped; ++i) {
    Thing t = new_ped(false);
    const bool sitting = rng.chance(0.15);
    if (sitting) {
      t.h = jitter(rng, 1.1, 0.05);
      t.l = jitter(rng, 0.9, 0.05);
      t.attribute = attribute_index("pedestrian.sitting_lying_down");
    }
    const double side = rng.chance(0.5) ? 1 : -1;
    b.place_static(std::move(t), side * (rng.chance(0.5) ? 9.75 : 13.1), s_lo, s_hi, rng.uniform(-kPi, kPi), 0.15);
  }

  // ---- other ignored categories: bins (pushable_pullable) and debris ----
  if (n >= 20) {
    Thing bin = b.make("movable_object.pushable_pullable", 0.6, 0.7, 1.1);
    bin.parts = {part({-0.5f, -0.5f, -0.5f}, {0.5f, 0.5f, 0.5f}, Rgb{40, 110, 40}, 0.3f)};
    b.place_static(std::move(bin), (rng.chance(0.5) ? 1 : -1) * 9.75, s_lo, s_hi, rng.uniform(-kPi, kPi), 0.2);
    Thing debris = b.make("movable_object.debris", 0.8, 1.0, 0.3);
    debris.parts = {part({-0.5f, -0.5f, -0.5f}, {0.5f, 0.5f, 0.5f}, Rgb{110, 100, 85}, 0.2f)};
    b.place_static(std::move(debris), (rng.chance(0.5) ? 1 : -1) * 8.0, s_lo, s_hi, rng.uniform(-kPi, kPi), 0.3);
  }

  // ---- fill up with parked cars to the requested count ----
  for (int guard = 0; b.annotated() < n && guard < 4 * n; ++guard) {
    Thing t = new_car(0.0);
    t.attribute = attribute_index("vehicle.parked");
    b.place_static(std::move(t), (rng.chance(0.5) ? 1 : -1) * 8.25, s_lo, s_hi, rng.chance(0.5) ? 0.0 : kPi);
  }

  // ---- background: poles and trees at the curb, buildings behind the sidewalks ----
  for (double side : {-1.0, 1.0}) {
    for (double s = s_lo - 30 + rng.uniform(0, 10); s < s_hi + 30; s += rng.uniform(12, 25)) {
      Thing t;
      const bool tree = rng.chance(0.5);
      t.w = tree ? 2.6 : 0.3, t.l = tree ? 2.6 : 0.3, t.h = tree ? rng.uniform(5, 8) : rng.uniform(5, 7);
      if (tree) {
        t.parts = {part({-0.06f, -0.06f, -0.5f}, {0.06f, 0.06f, 0.0f}, Rgb{100, 70, 40}, 0.2f),
                   part({-0.5f, -0.5f, -0.1f}, {0.5f, 0.5f, 0.5f}, Rgb{50, 120, 50}, 0.15f)};
      } else {
        t.parts = {part({-0.5f, -0.5f, -0.5f}, {0.5f, 0.5f, 0.5f}, kMetal, 0.4f)};
      }
      b.place_static(std::move(t), side * (tree ? 15.0 : 9.7), s - 1, s + 1, 0.0, 0.1);
    }
    for (double s = s_lo - 40; s < s_hi + 40;) {
      Thing t;
      t.l = rng.uniform(8, 30), t.w = rng.uniform(8, 15), t.h = rng.uniform(5, 20);
      const double g = rng.uniform(170, 230);
      const Rgb c{static_cast<std::uint8_t>(g), static_cast<std::uint8_t>(g * rng.uniform(0.85, 1.0)),
                  static_cast<std::uint8_t>(g * rng.uniform(0.7, 0.95))};
      t.parts = {part({-0.5f, -0.5f, -0.5f}, {0.5f, 0.5f, 0.5f}, c, 0.3f)};
      const double front = rng.uniform(16.5, 20.0);
      t.motion = {s + t.l / 2, side * (front + t.w / 2), 0.0, 0.0};
      s += t.l + rng.uniform(2, 10);
      b.add(std::move(t));
    }
  }
  return w;
}

}  // namespace bevkd::core::synth
