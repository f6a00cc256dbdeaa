// Tensor-level entry points of the CUDA twins (internal to kernels/, only compiled with
// BEVKD_WITH_CUDA). The public functions in kernels/*.h check every argument and call these
// for CUDA tensors; these run on the tensor's device and LibTorch's current stream, allocate
// their outputs and scratch through LibTorch, and launch the raw kernels of raw_ops.h.
#pragma once

#include <torch/types.h>

#include <array>
#include <utility>

#include "kernels/bev_pool.h"
#include "kernels/detail/box_math.h"
#include "kernels/detail/deform_attn_math.h"
#include "kernels/detail/gaussian_math.h"
#include "kernels/detail/grid_math.h"
#include "kernels/detail/projection_math.h"
#include "kernels/voxelize.h"

namespace bevkd::kernels::cuda {

// points [P, F] float32 contiguous.
Voxels voxelize(const torch::Tensor& points, const VoxelizeOptions& opts, const detail::Grid3& grid);

// features [V, C] float contiguous, coords [V, 4] int32 contiguous (validated).
torch::Tensor scatter_forward(const torch::Tensor& features, const torch::Tensor& coords, int64_t B, int64_t H,
                              int64_t W);
// grad_out [B, C, H, W] contiguous -> [V, C].
torch::Tensor scatter_backward(const torch::Tensor& grad_out, const torch::Tensor& coords);

// points [B, N, D, Hf, Wf, 3] float32 contiguous; geom has its shape fields filled.
BevPoolGeometry bev_pool_prepare(const torch::Tensor& points, const detail::Grid3& grid, BevPoolGeometry geom);
torch::Tensor bev_pool_forward(const torch::Tensor& depth, const torch::Tensor& feat, const BevPoolGeometry& geom);
// grad_out_cl [B, H, W, C] contiguous -> (grad depth or undefined, grad feat or undefined).
std::pair<torch::Tensor, torch::Tensor> bev_pool_backward(const torch::Tensor& grad_out_cl, const torch::Tensor& depth,
                                                          const torch::Tensor& feat, const BevPoolGeometry& geom,
                                                          bool need_depth, bool need_feat);

// boxes [N, 7|9] float32 contiguous; labels [N] int64 contiguous or undefined -> [K, H, W].
torch::Tensor gaussian_draw(const torch::Tensor& boxes, const torch::Tensor& labels, int64_t K,
                            const detail::GaussianGrid& grid);

// a [N, 7|9], b [M, 7|9] contiguous, same float dtype -> [N, M] or (aligned) [N] of `kind`.
torch::Tensor iou(const torch::Tensor& a, const torch::Tensor& b, detail::OverlapKind kind, bool aligned);

// boxes [K, S] contiguous in rank order, group [K] int64, threshold [K] float64 ->
// [K, ceil(K / 64)] int64 bit rows (bit j of row i: candidate i suppresses candidate j > i).
torch::Tensor nms_mask(const torch::Tensor& boxes, const torch::Tensor& group, const torch::Tensor& threshold,
                       bool circle);

// points [P, F] float32, cams [Ncam, 21] float64 (detail::Camera), boxes undefined or [G, S]
// float32 -> {depth [Ncam, Ho, Wo] float32, box_id int32, uvd [Ncam, Ho, Wo, 3] float32, valid bool}.
std::array<torch::Tensor, 4> depth_resolve(const torch::Tensor& points, const torch::Tensor& cams,
                                           const torch::Tensor& boxes, const detail::ProjectionParams& params);

// value [B, H·W, M, Dh], locations [B, Q, M, K, 2], weights [B, Q, M, K], all contiguous, one
// float dtype, sizes s -> out [B, Q, M·Dh].
torch::Tensor deform_attn_forward(const torch::Tensor& value, const torch::Tensor& locations,
                                  const torch::Tensor& weights, const detail::DeformAttnShape& s);
// grad_out [B, Q, M·Dh] contiguous -> {grad value, grad locations, grad weights}; the value
// gradient is summed with atomicAdd (order not deterministic).
std::array<torch::Tensor, 3> deform_attn_backward(const torch::Tensor& grad_out, const torch::Tensor& value,
                                                  const torch::Tensor& locations, const torch::Tensor& weights,
                                                  const detail::DeformAttnShape& s);

}  // namespace bevkd::kernels::cuda
