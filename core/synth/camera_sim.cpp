#include "core/synth/camera_sim.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/synth/solids.h"

namespace bevkd::core::synth {
namespace {

struct Color {
  double r, g, b;
};

Color to_color(Rgb c) { return {static_cast<double>(c.r), static_cast<double>(c.g), static_cast<double>(c.b)}; }
Color mix(Color a, Color b, double f) { return {a.r + (b.r - a.r) * f, a.g + (b.g - a.g) * f, a.b + (b.b - a.b) * f}; }

constexpr Color kHaze{200, 210, 222};
constexpr double kHazeDistance = 220.0;  // m

// Fraction of haze at a distance (m): d / (d + kHazeDistance).
inline double haze(double dist) { return dist / (dist + kHazeDistance); }

// A deterministic hash texture in [-1, 1] for a ground cell.
double cell_noise(double x, double y, double cell) {
  const auto ix = static_cast<std::uint64_t>(static_cast<std::int64_t>(std::floor(x / cell)));
  const auto iy = static_cast<std::uint64_t>(static_cast<std::int64_t>(std::floor(y / cell)));
  std::uint64_t h = (ix * 0x9E3779B97F4A7C15ull) ^ (iy * 0xC2B2AE3D27D4EB4Full);
  h ^= h >> 29;
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 32;
  return static_cast<double>(h >> 11) * 0x1.0p-52 - 1.0;
}

// Road coordinates (s, d) of ground points, with the per-road constants hoisted out of the
// per-pixel loop (Road::to_sd recomputes them on every call).
class RoadMapper {
 public:
  explicit RoadMapper(const Road& road) : road_(road), tx_(std::cos(road.heading)), ty_(std::sin(road.heading)) {
    if (road.curvature != 0) {
      r_ = 1.0 / road.curvature;
      cx_ = road.origin[0] - ty_ * r_, cy_ = road.origin[1] + tx_ * r_;
      sign_ = r_ > 0 ? 1.0 : -1.0;
    }
  }
  void to_sd(double x, double y, double* s, double* d) const {
    if (road_.curvature == 0) {
      const double dx = x - road_.origin[0], dy = y - road_.origin[1];
      *s = dx * tx_ + dy * ty_;
      *d = -dx * ty_ + dy * tx_;
      return;
    }
    const double gx = x - cx_, gy = y - cy_;
    const double dist = std::sqrt(gx * gx + gy * gy);
    *d = r_ - sign_ * dist;
    // theta - heading = angle from the start normal to the current one (see Road::to_sd).
    const double nx = -sign_ * gx / dist, ny = -sign_ * gy / dist;  // n(theta)
    const double c = nx * -ty_ + ny * tx_;   // n(theta) . n(heading) = cos(dth)
    const double sn = -nx * tx_ - ny * ty_;  // n(heading) x n(theta) = sin(dth)
    *s = std::atan2(sn, c) / road_.curvature;
  }

 private:
  const Road& road_;
  double tx_, ty_, r_ = 0, cx_ = 0, cy_ = 0, sign_ = 1;
};

Color ground_color(const RoadMapper& road, double x, double y) {
  double s = 0, d = 0;
  road.to_sd(x, y, &s, &d);
  const double ad = std::abs(d);
  const double n = cell_noise(x, y, 0.5);
  if (ad < 7.0 + 0.1) {
    if (ad < 0.12) return {215, 185, 60};
    if (std::abs(ad - 3.5) < 0.08 && std::fmod(std::fmod(s, 9.0) + 9.0, 9.0) < 3.0) return {225, 225, 225};
    if (std::abs(ad - 7.0) < 0.1) return {225, 225, 225};
    return {72 + 6 * n, 72 + 6 * n, 77 + 6 * n};
  }
  if (ad < 9.5) return {88 + 5 * n, 87 + 5 * n, 90 + 5 * n};
  if (ad < 14.6) {
    const double u = std::fmod(std::fmod(s, 1.5) + 1.5, 1.5), v = std::fmod(ad - 9.5, 1.5);
    const double line = (u < 0.05 || v < 0.05) ? -25 : 0;
    return {165 + 8 * n + line, 160 + 8 * n + line, 150 + 8 * n + line};
  }
  return {78 + 12 * n, 118 + 14 * n, 58 + 10 * n};
}

Color sky_color(double up) {  // up: z of the unit ray direction (global)
  const double f = std::clamp(up / 0.6, 0.0, 1.0);
  return mix(Color{195, 212, 230}, Color{85, 135, 205}, f);
}

}  // namespace

CameraFrame render_camera(const SceneWorld& world, double t, const Rigid& cam_to_global, const std::array<double, 9>& K,
                          int width, int height, Rng& noise) {
  CameraFrame f;
  f.width = width, f.height = height;
  const std::size_t npx = static_cast<std::size_t>(width) * static_cast<std::size_t>(height);
  std::vector<Color> color(npx);
  std::vector<float> depth(npx, std::numeric_limits<float>::infinity());  // camera z, m
  std::vector<int> owner(npx, -1);
  const double fx = K[0], cx = K[2], fy = K[4], cy = K[5];
  const Mat3& R = cam_to_global.R;
  const Vec3 c = cam_to_global.t;

  // Background: ground (with exact depth) and sky.
  const RoadMapper mapper(world.road);
  for (int v = 0; v < height; ++v) {
    for (int u = 0; u < width; ++u) {
      const Vec3 rc{(u + 0.5 - cx) / fx, (v + 0.5 - cy) / fy, 1.0};
      const Vec3 rg = R * rc;  // ray direction (global, not normalised; camera z = 1)
      const std::size_t i = static_cast<std::size_t>(v) * width + u;
      const double norm = std::sqrt(rg[0] * rg[0] + rg[1] * rg[1] + rg[2] * rg[2]);
      if (rg[2] < -1e-6) {
        const double s = -c[2] / rg[2];  // ray parameter = camera depth z
        const double gx = c[0] + s * rg[0], gy = c[1] + s * rg[1];
        const double dist = s * norm;
        color[i] = mix(ground_color(mapper, gx, gy), kHaze, haze(dist));
        depth[i] = static_cast<float>(s);
      } else {
        color[i] = sky_color(rg[2] / norm);
      }
    }
  }

  // Solids, flat-shaded, depth-tested. Faces are drawn as convex polygons clipped at z = 0.05.
  const Rigid global_to_cam = cam_to_global.inverse();
  const std::vector<Solid> solids = solids_at(world, t, global_to_cam, 120.0);
  f.visible.assign(world.things.size(), 0);
  f.covered.assign(world.things.size(), 0);
  std::vector<int> stamp(npx, -1);
  const Vec3 sun = global_to_cam.apply_dir(world.sun);
  for (const Solid& s : solids) {
    if (s.center[2] < -30.0) continue;  // far behind the camera
    const Color base = to_color(s.color);
    for (int axis = 0; axis < 3; ++axis) {
      for (int sign = -1; sign <= 1; sign += 2) {
        const Vec3 n{s.axes.m[0][axis] * sign, s.axes.m[1][axis] * sign, s.axes.m[2][axis] * sign};
        const Vec3 fc{s.center[0] + n[0] * s.half[axis], s.center[1] + n[1] * s.half[axis],
                      s.center[2] + n[2] * s.half[axis]};
        // Back-face culling (camera at the origin).
        if (n[0] * fc[0] + n[1] * fc[1] + n[2] * fc[2] >= 0) continue;
        const int a1 = (axis + 1) % 3, a2 = (axis + 2) % 3;
        const Vec3 e1{s.axes.m[0][a1] * s.half[a1], s.axes.m[1][a1] * s.half[a1], s.axes.m[2][a1] * s.half[a1]};
        const Vec3 e2{s.axes.m[0][a2] * s.half[a2], s.axes.m[1][a2] * s.half[a2], s.axes.m[2][a2] * s.half[a2]};
        Vec3 quad[4] = {{fc[0] - e1[0] - e2[0], fc[1] - e1[1] - e2[1], fc[2] - e1[2] - e2[2]},
                        {fc[0] + e1[0] - e2[0], fc[1] + e1[1] - e2[1], fc[2] + e1[2] - e2[2]},
                        {fc[0] + e1[0] + e2[0], fc[1] + e1[1] + e2[1], fc[2] + e1[2] + e2[2]},
                        {fc[0] - e1[0] + e2[0], fc[1] - e1[1] + e2[1], fc[2] - e1[2] + e2[2]}};
        // Clip against the near plane z >= zn (Sutherland-Hodgman).
        constexpr double zn = 0.05;
        Vec3 poly[8];
        int np = 0;
        for (int k = 0; k < 4; ++k) {
          const Vec3& p = quad[k];
          const Vec3& q = quad[(k + 1) % 4];
          const bool pin = p[2] >= zn, qin = q[2] >= zn;
          if (pin) poly[np++] = p;
          if (pin != qin) {
            const double a = (zn - p[2]) / (q[2] - p[2]);
            poly[np++] = {p[0] + a * (q[0] - p[0]), p[1] + a * (q[1] - p[1]), zn};
          }
        }
        if (np < 3) continue;
        double px[8], py[8];
        double umin = 1e30, umax = -1e30, vmin = 1e30, vmax = -1e30;
        for (int k = 0; k < np; ++k) {
          px[k] = fx * poly[k][0] / poly[k][2] + cx;
          py[k] = fy * poly[k][1] / poly[k][2] + cy;
          umin = std::min(umin, px[k]), umax = std::max(umax, px[k]);
          vmin = std::min(vmin, py[k]), vmax = std::max(vmax, py[k]);
        }
        const int u0 = std::max(0, static_cast<int>(std::floor(umin))), u1 = std::min(width - 1, static_cast<int>(std::ceil(umax)));
        const int v0 = std::max(0, static_cast<int>(std::floor(vmin))), v1 = std::min(height - 1, static_cast<int>(std::ceil(vmax)));
        if (u0 > u1 || v0 > v1) continue;
        // Polygon orientation in the image, for the inside test.
        double area = 0;
        for (int k = 0; k < np; ++k) area += px[k] * py[(k + 1) % np] - px[(k + 1) % np] * py[k];
        if (std::abs(area) < 1e-9) continue;
        const double orient = area > 0 ? 1.0 : -1.0;
        // Plane of the face: n . p = n . fc; depth along a pixel ray r = ((u-cx)/fx, (v-cy)/fy, 1).
        const double plane = n[0] * fc[0] + n[1] * fc[1] + n[2] * fc[2];
        const double shade = 0.45 + 0.55 * std::max(0.0, n[0] * sun[0] + n[1] * sun[1] + n[2] * sun[2]);
        for (int v = v0; v <= v1; ++v) {
          const double pyc = v + 0.5;
          for (int u = u0; u <= u1; ++u) {
            const double pxc = u + 0.5;
            bool inside = true;
            for (int k = 0; k < np && inside; ++k) {
              const int k2 = (k + 1) % np;
              const double e = (px[k2] - px[k]) * (pyc - py[k]) - (py[k2] - py[k]) * (pxc - px[k]);
              inside = e * orient >= 0;
            }
            if (!inside) continue;
            const double rx = (pxc - cx) / fx, ry = (pyc - cy) / fy;
            const double denom = n[0] * rx + n[1] * ry + n[2];
            if (std::abs(denom) < 1e-12) continue;
            const double z = plane / denom;
            if (z < zn) continue;
            const std::size_t i = static_cast<std::size_t>(v) * width + u;
            if (s.thing >= 0 && stamp[i] != s.thing) {
              stamp[i] = s.thing;
              ++f.covered[static_cast<std::size_t>(s.thing)];
            }
            if (z >= depth[i]) continue;
            depth[i] = static_cast<float>(z);
            owner[i] = s.thing;
            const double dist = z * std::sqrt(rx * rx + ry * ry + 1.0);
            color[i] = mix(Color{base.r * shade, base.g * shade, base.b * shade}, kHaze, haze(dist));
          }
        }
      }
    }
  }
  f.rgb.resize(npx * 3);
  for (std::size_t i = 0; i < npx; ++i) {
    if (owner[i] >= 0) ++f.visible[static_cast<std::size_t>(owner[i])];
    // Sensor noise: triangular in [-4, 4] from one draw (cheap, deterministic).
    const std::uint64_t bits = noise.next();
    const double e = static_cast<double>(bits & 0xFFFF) / 8192.0 - static_cast<double>((bits >> 16) & 0xFFFF) / 8192.0;
    f.rgb[3 * i + 0] = static_cast<std::uint8_t>(std::clamp(color[i].r + e, 0.0, 255.0));
    f.rgb[3 * i + 1] = static_cast<std::uint8_t>(std::clamp(color[i].g + e, 0.0, 255.0));
    f.rgb[3 * i + 2] = static_cast<std::uint8_t>(std::clamp(color[i].b + e, 0.0, 255.0));
  }
  return f;
}

}  // namespace bevkd::core::synth
