// Camera simulation: a small z-buffer rasteriser. Sky gradient and a textured ground (asphalt,
// lane markings, parking strips, sidewalks, grass) are computed per pixel from the ray; the
// scene's solids are drawn as flat-shaded boxes (Lambert shading from the scene's sun, distance
// haze) with per-pixel exact depth, so near objects occlude far ones.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "core/geometry.h"
#include "base/rng.h"
#include "core/synth/world.h"

namespace bevkd::core::synth {

struct CameraFrame {
  int width = 0, height = 0;
  std::vector<std::uint8_t> rgb;  // [height, width, 3]
  // Per thing (SceneWorld::things index): pixels where it is the nearest surface, and pixels
  // its solids cover ignoring occlusion (for the visibility level).
  std::vector<int> visible, covered;
};

// Renders one image. `cam_to_global`: OpenCV camera (x right, y down, z forward) -> global;
// K row-major. `noise` adds per-pixel sensor noise.
CameraFrame render_camera(const SceneWorld& world, double t, const Rigid& cam_to_global, const std::array<double, 9>& K,
                          int width, int height, Rng& noise);

}  // namespace bevkd::core::synth
