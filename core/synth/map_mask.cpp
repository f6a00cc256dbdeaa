#include "core/synth/map_mask.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "base/error.h"

namespace bevkd::core::synth {
namespace {

// Fills a convex quadrilateral given in pixel coordinates (x right, y down), scanline by
// scanline: a pixel is set when its centre is inside.
void fill_quad(GrayImage& img, const std::array<std::array<double, 2>, 4>& q) {
  double y_min = q[0][1], y_max = q[0][1];
  for (const auto& p : q) {
    y_min = std::min(y_min, p[1]);
    y_max = std::max(y_max, p[1]);
  }
  const int r0 = std::max(0, static_cast<int>(std::ceil(y_min - 0.5)));
  const int r1 = std::min(img.height - 1, static_cast<int>(std::floor(y_max - 0.5)));
  for (int r = r0; r <= r1; ++r) {
    const double y = r + 0.5;
    double x_lo = 1e300, x_hi = -1e300;
    for (int k = 0; k < 4; ++k) {
      const auto& a = q[k];
      const auto& b = q[(k + 1) % 4];
      if ((a[1] <= y && b[1] > y) || (b[1] <= y && a[1] > y)) {
        const double x = a[0] + (y - a[1]) * (b[0] - a[0]) / (b[1] - a[1]);
        x_lo = std::min(x_lo, x);
        x_hi = std::max(x_hi, x);
      }
    }
    if (x_lo > x_hi) continue;
    const int c0 = std::max(0, static_cast<int>(std::ceil(x_lo - 0.5)));
    const int c1 = std::min(img.width - 1, static_cast<int>(std::floor(x_hi - 0.5)));
    if (c0 <= c1)
      std::fill(img.pixels.begin() + static_cast<std::ptrdiff_t>(r) * img.width + c0,
                img.pixels.begin() + static_cast<std::ptrdiff_t>(r) * img.width + c1 + 1, std::uint8_t{255});
  }
}

}  // namespace

GrayImage make_map_mask(const std::vector<MapRoad>& roads, const std::vector<Vec3>& ego_positions) {
  BEVKD_CHECK(!ego_positions.empty(), "map mask: no ego poses to cover");
  double x_max = 0, y_max = 0;
  for (const Vec3& p : ego_positions) {
    BEVKD_CHECK(p[0] >= kMapMarginM && p[1] >= kMapMarginM, "map mask: ego pose (", p[0], ", ", p[1],
                ") m lies closer than ", kMapMarginM, " m to the global axes; the mask starts at the origin");
    x_max = std::max(x_max, p[0]);
    y_max = std::max(y_max, p[1]);
  }
  GrayImage img;
  img.width = static_cast<int>(std::ceil((x_max + kMapMarginM) / kMapResolution));
  img.height = static_cast<int>(std::ceil((y_max + kMapMarginM) / kMapResolution));
  img.pixels.assign(static_cast<std::size_t>(img.width) * static_cast<std::size_t>(img.height), 0);
  const double H = img.height;
  const auto px = [&](const Vec3& p) { return std::array<double, 2>{p[0] / kMapResolution, H - p[1] / kMapResolution}; };
  constexpr double kStep = 1.0;  // m of centreline per quad (curvature >= 250 m radius: < 1 mm of chord error)
  const double half = Road::kSidewalkOuter;
  for (const MapRoad& m : roads)
    for (double s = m.s_lo; s < m.s_hi; s += kStep) {
      const double s1 = std::min(s + kStep + 0.05, m.s_hi);  // a small overlap: no seams between quads
      fill_quad(img, {px(m.road.point(s, -half)), px(m.road.point(s1, -half)), px(m.road.point(s1, half)),
                      px(m.road.point(s, half))});
    }
  return img;
}

bool on_mask(const GrayImage& mask, double x, double y) {
  // MapMask.to_pixel_coords: np.round of (x / res, H - y / res), numpy's round-half-to-even.
  constexpr double kScale = 1.0 / kMapResolution;  // the devkit's transform_matrix entries
  const long c = std::lrint(kScale * x);
  const long r = std::lrint(-kScale * y + static_cast<double>(mask.height));
  if (c < 0 || r < 0 || c >= mask.width || r >= mask.height) return false;
  return mask.pixels[static_cast<std::size_t>(r) * static_cast<std::size_t>(mask.width) + static_cast<std::size_t>(c)] > 0;
}

}  // namespace bevkd::core::synth
