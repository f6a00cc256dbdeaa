// The semantic-prior map masks bevkd-synth writes as <out>/maps/<token>.png, made like the real
// nuScenes ones so that the devkit's map code works on them (NuScenesExplorer's
// render_ego_centric_map, the underlay of render_sample_data / render_sample):
//   * single-channel 8-bit PNG (colour type 0), 255 = semantic prior (drivable area and
//     sidewalk: |d| <= Road::kSidewalkOuter), 0 = elsewhere;
//   * kMapResolution = 0.1 m per pixel, the devkit's MapMask default; the global origin is the
//     bottom-left corner: pixel column px = x / 0.1, row py = H - y / 0.1 (MapMask.to_pixel_coords);
//   * large enough that the devkit's crop of 40 m * sqrt(2) around every ego pose of the map's
//     logs stays inside the image (kMapMarginM on each side): a 64x64 placeholder made
//     render_ego_centric_map fail with PIL's "tile cannot extend outside image".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/canvas.h"
#include "core/geometry.h"
#include "core/synth/world.h"

namespace bevkd::core::synth {

inline constexpr double kMapResolution = 0.1;  // m per pixel
inline constexpr double kMapMarginM = 60.0;    // >= 40 m * sqrt(2) (the devkit's default crop)

// One scene's road as the mask paints it: the centreline stretch [s_lo, s_hi] (m).
struct MapRoad {
  Road road;
  double s_lo = 0, s_hi = 0;
};

// The mask of one map: the roads painted, sized to cover `ego_positions` (global x, y in m)
// with the margin. Throws bevkd::Error if a pose lies closer than the margin to the global axes
// (the image cannot extend to negative coordinates).
GrayImage make_map_mask(const std::vector<MapRoad>& roads, const std::vector<Vec3>& ego_positions);

// The devkit's MapMask.is_on_mask for one point: inside the image and non-zero at the pixel
// round(x / res), H - round(y / res)... exactly as to_pixel_coords rounds.
bool on_mask(const GrayImage& mask, double x, double y);

}  // namespace bevkd::core::synth
