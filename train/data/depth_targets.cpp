#include "train/data/depth_targets.h"

#include <cmath>
#include <limits>
#include <vector>

namespace bevkd::train::data {

void min_pool_depth(const float* uvd, const std::int32_t* box_id, std::int64_t num_points, const Affine2& a,
                    const DepthPoolOptions& opts, float* depth_out, std::int64_t* box_out) {
  const std::int64_t h = opts.out_height(), w = opts.out_width(), cells = h * w;
  std::vector<float> best(static_cast<std::size_t>(cells), std::numeric_limits<float>::infinity());
  std::vector<std::int64_t> owner(static_cast<std::size_t>(cells), -1);
  for (std::int64_t k = 0; k < num_points; ++k) {
    const float d = uvd[3 * k + 2];
    if (!(d > 0) || !std::isfinite(d)) continue;
    double u, v;
    a.apply(uvd[3 * k], uvd[3 * k + 1], &u, &v);
    const double col = std::floor(u + 0.5), row = std::floor(v + 0.5);
    if (!(col >= 0 && col < static_cast<double>(opts.image_width) && row >= 0 &&
          row < static_cast<double>(opts.image_height)))
      continue;
    const std::int64_t cell = (static_cast<std::int64_t>(row) / opts.stride) * w + static_cast<std::int64_t>(col) / opts.stride;
    if (d < best[static_cast<std::size_t>(cell)]) {  // strict: ties keep the lower index
      best[static_cast<std::size_t>(cell)] = d;
      owner[static_cast<std::size_t>(cell)] = k;
    }
  }
  for (std::int64_t c = 0; c < cells; ++c) {
    const float d = best[static_cast<std::size_t>(c)];
    const bool keep = owner[static_cast<std::size_t>(c)] >= 0 && d >= opts.min_depth && d < opts.max_depth;
    depth_out[c] = keep ? d : 0.0f;
    if (box_out != nullptr)
      box_out[c] = keep && box_id != nullptr ? static_cast<std::int64_t>(box_id[owner[static_cast<std::size_t>(c)]]) + 1 : 0;
  }
}

}  // namespace bevkd::train::data
