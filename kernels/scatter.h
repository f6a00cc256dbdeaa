// Scatter of pillar (or voxel) features onto the dense BEV canvas — PointPillars' pseudo
// image (mmdet3d PointPillarsScatter), differentiable with respect to the features.
#pragma once

#include <torch/types.h>

#include <cstdint>

namespace bevkd::kernels {

// features: [V, C] float32 or float64, one row per pillar.
// coords:   [V, 4] int32 (batch, z, y, x) cell indices as voxelize_batch returns them; z must
//           be 0 (pillars), batch in [0, batch_size), y in [0, height), x in [0, width).
// Returns the canvas [batch_size, C, height, width] (row <-> y, column <-> x), 0 where no pillar
// falls; pillars sharing a cell are summed. Gradients flow to `features` (a gather of the
// canvas gradient). Throws bevkd::Error naming the first out-of-range row of coords.
torch::Tensor scatter_to_bev(const torch::Tensor& features, const torch::Tensor& coords, int64_t batch_size,
                             int64_t height, int64_t width);

}  // namespace bevkd::kernels
