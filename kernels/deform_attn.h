// Single-scale deformable attention sampling: the core of Deformable DETR's ms_deform_attn
// restricted to one feature level ("multi-scale-free", FD3D's distillation head and bevkd's
// query student head). Each query q and head m reads K bilinear samples of the head's value
// map and sums them with its attention weights:
//
//   out[b, q, m·Dh + d] = Σ_k weights[b, q, m, k] · bilinear(value[b, :, m, d], locations[b, q, m, k])
//
// Arguments (float32 or float64, all the same dtype and device):
//   value     [B, H·W, M, Dh]: per head m, a map of Dh channels over the H×W BEV grid, cell
//             (row r ↔ y, column c ↔ x) at flat index r·W + c. A BEV map [B, M·Dh, H, W]
//             becomes this layout with deform_attn_value_from_bev (channel m·Dh + d ↦ head m,
//             channel d).
//   height, width: H and W of the map (H·W = value.size(1)).
//   locations [B, Q, M, K, 2]: (x, y) normalised to [0, 1] over the map's width and height,
//             grid_sample semantics with align_corners=False: pixel x = loc_x·W − ½, so
//             loc = (c + ½)/W is the centre of column c. Points outside the map are allowed;
//             corners outside read 0 (zeros padding), a point a full cell or more outside
//             samples 0 with zero gradient.
//   weights   [B, Q, M, K]: attention weights (usually a softmax over K, not required).
// Returns [B, Q, M·Dh] (head-major channels), same dtype and device.
//
// Differentiable (first order) with respect to value, locations and weights. The CPU backward
// is deterministic (each (batch, head) slice of the value gradient is owned by one thread and
// summed in query order); the CUDA backward adds the value gradient with atomicAdd, so its sum
// order, and the last bits of that gradient, vary from run to run. The locations' gradient is
// the derivative of the bilinear interpolant, which is discontinuous at integer pixel
// coordinates (taken from the right there, as grid_sample does).
#pragma once

#include <torch/types.h>

#include <cstdint>

namespace bevkd::kernels {

torch::Tensor deform_attn(const torch::Tensor& value, int64_t height, int64_t width, const torch::Tensor& locations,
                          const torch::Tensor& weights);

// bev [B, M·Dh, H, W] -> value [B, H·W, M, Dh] (contiguous) for `heads` = M heads.
torch::Tensor deform_attn_value_from_bev(const torch::Tensor& bev, int64_t heads);

}  // namespace bevkd::kernels
