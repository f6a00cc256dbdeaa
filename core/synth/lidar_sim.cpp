#include "core/synth/lidar_sim.h"

#include <algorithm>
#include <cmath>

#include "base/math.h"
#include "core/synth/solids.h"

namespace bevkd::core::synth {
namespace {

// Ray (from the origin, direction d) against a solid: entry distance and the entry face's
// normal (sensor frame), or false.
bool hit_solid(const Solid& s, const Vec3& o_local, const Vec3& d, double* t_hit, Vec3* normal) {
  // Direction in the solid's frame: axes^T d.
  const Mat3& a = s.axes;
  const double dl[3] = {a.m[0][0] * d[0] + a.m[1][0] * d[1] + a.m[2][0] * d[2],
                        a.m[0][1] * d[0] + a.m[1][1] * d[1] + a.m[2][1] * d[2],
                        a.m[0][2] * d[0] + a.m[1][2] * d[1] + a.m[2][2] * d[2]};
  double t0 = 0.0, t1 = 1e30;
  int axis = -1;
  double sign = 0;
  for (int k = 0; k < 3; ++k) {
    if (std::abs(dl[k]) < 1e-12) {
      if (std::abs(o_local[k]) > s.half[k]) return false;
      continue;
    }
    double ta = (-s.half[k] - o_local[k]) / dl[k], tb = (s.half[k] - o_local[k]) / dl[k];
    double sg = -1;  // entering through the -half face
    if (ta > tb) std::swap(ta, tb), sg = 1;
    if (ta > t0) t0 = ta, axis = k, sign = sg;
    t1 = std::min(t1, tb);
    if (t0 > t1) return false;
  }
  if (axis < 0) return false;  // origin inside the solid
  *t_hit = t0;
  *normal = {a.m[0][axis] * sign, a.m[1][axis] * sign, a.m[2][axis] * sign};
  return true;
}

}  // namespace

double ground_reflectivity(const Road& road, double x, double y) {
  double s = 0, d = 0;
  road.to_sd(x, y, &s, &d);
  const double ad = std::abs(d);
  if (ad < 0.12) return 0.45;                                                       // centre line
  if (std::abs(ad - 3.5) < 0.08 && std::fmod(std::fmod(s, 9.0) + 9.0, 9.0) < 3.0) return 0.45;  // lane dashes
  if (std::abs(ad - 7.0) < 0.1) return 0.45;                                        // edge lines
  if (ad < 9.5) return 0.05;                                                        // asphalt
  if (ad < 14.6) return 0.12;                                                       // sidewalk
  return 0.08;                                                                      // grass
}

std::vector<float> simulate_lidar(const SceneWorld& world, double t, const Rigid& lidar_to_global,
                                  const Rigid& ego_to_global, const LidarSpec& spec, Rng& rng) {
  const Rigid global_to_lidar = lidar_to_global.inverse();
  const std::vector<Solid> solids = solids_at(world, t, global_to_lidar, spec.max_range + 5, true, ego_to_global);
  const int na = spec.azimuth_steps;
  // Bucket the solids by the azimuth columns they span.
  std::vector<std::vector<int>> columns(static_cast<std::size_t>(na));
  std::vector<Vec3> origin_local(solids.size());
  for (std::size_t k = 0; k < solids.size(); ++k) {
    const Solid& s = solids[k];
    const Mat3 at = s.axes.transpose();
    const Vec3 o = at * Vec3{-s.center[0], -s.center[1], -s.center[2]};
    origin_local[k] = o;
    const double cx = s.center[0], cy = s.center[1];
    const double rad = std::sqrt(s.half[0] * s.half[0] + s.half[1] * s.half[1] + s.half[2] * s.half[2]);
    const double dist = std::sqrt(cx * cx + cy * cy);
    int a0 = 0, a1 = na - 1;
    if (dist > rad) {
      const double c = std::atan2(cy, cx), half = std::asin(std::min(1.0, rad / dist));
      a0 = static_cast<int>(std::floor((c - half + kPi) / (2 * kPi) * na));
      a1 = static_cast<int>(std::floor((c + half + kPi) / (2 * kPi) * na));
    }
    for (int a = a0; a <= a1; ++a) columns[static_cast<std::size_t>(((a % na) + na) % na)].push_back(static_cast<int>(k));
  }
  // Ground plane z_global = 0 in the LiDAR frame: n . p = -t_z with n = R^T e_z.
  const Vec3 n{lidar_to_global.R.m[2][0], lidar_to_global.R.m[2][1], lidar_to_global.R.m[2][2]};
  const double tz = lidar_to_global.t[2];
  std::vector<float> out;
  out.reserve(static_cast<std::size_t>(na) * static_cast<std::size_t>(spec.beams) * 5 / 2);
  const double el0 = spec.elevation_min_deg * kPi / 180, el1 = spec.elevation_max_deg * kPi / 180;
  std::vector<double> cos_el(spec.beams), sin_el(spec.beams);
  for (int b = 0; b < spec.beams; ++b) {
    const double el = spec.beams > 1 ? el0 + (el1 - el0) * b / (spec.beams - 1) : 0.0;
    cos_el[b] = std::cos(el), sin_el[b] = std::sin(el);
  }
  for (int a = 0; a < na; ++a) {
    const double az = -kPi + (a + 0.5) * 2 * kPi / na;
    const double ca = std::cos(az), sa = std::sin(az);
    const std::vector<int>& cand = columns[static_cast<std::size_t>(a)];
    for (int b = 0; b < spec.beams; ++b) {
      const Vec3 d{cos_el[b] * ca, cos_el[b] * sa, sin_el[b]};
      double best = 1e30;
      Vec3 normal{0, 0, 1};
      int hit = -1;  // -1 ground, >= 0 solid index
      const double nd = n[0] * d[0] + n[1] * d[1] + n[2] * d[2];
      if (nd < -1e-9) {
        best = -tz / nd;
        normal = n;
      }
      for (int k : cand) {
        double th;
        Vec3 nn;
        if (hit_solid(solids[k], origin_local[k], d, &th, &nn) && th < best) best = th, normal = nn, hit = k;
      }
      if (best > spec.max_range || best < 0.3) continue;
      if (hit >= 0 && solids[hit].thing == kEgoBody) continue;
      if (rng.uniform() < spec.dropout) continue;
      const double r = best + spec.range_noise * rng.approx_normal();
      const double x = d[0] * r, y = d[1] * r, z = d[2] * r;
      double refl;
      if (hit >= 0) {
        refl = solids[hit].reflectivity;
      } else {
        const Vec3 g = lidar_to_global.apply({d[0] * best, d[1] * best, d[2] * best});
        refl = ground_reflectivity(world.road, g[0], g[1]);
      }
      const double cos_inc = std::abs(normal[0] * d[0] + normal[1] * d[1] + normal[2] * d[2]);
      const double intensity = std::clamp(std::round(255.0 * refl * (0.3 + 0.7 * cos_inc) + 1.5 * rng.approx_normal()), 0.0, 255.0);
      out.push_back(static_cast<float>(x));
      out.push_back(static_cast<float>(y));
      out.push_back(static_cast<float>(z));
      out.push_back(static_cast<float>(intensity));
      out.push_back(static_cast<float>(b));
    }
  }
  return out;
}

}  // namespace bevkd::core::synth
