// The raw CUDA kernels of kernels/: plain CUDA on raw device pointers with an explicit stream,
// no LibTorch (so the .cu files compile against the CUDA toolkit alone). Each function launches
// its kernel(s) on `stream` and returns cudaGetLastError(); outputs must be allocated (and,
// where stated, initialised) by the caller. Sizes are element counts; every pointer is device
// memory. Internal to kernels/: only kernels/cuda/*_launch.cpp and *.cu include this.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/detail/box_math.h"
#include "kernels/detail/deform_attn_math.h"
#include "kernels/detail/gaussian_math.h"
#include "kernels/detail/grid_math.h"
#include "kernels/detail/projection_math.h"

namespace bevkd::kernels::cuda_raw {

// ---- voxelize.cu --------------------------------------------------------------------------
// cells[i] = linear cell of point i (z-major), or `invalid` when it falls outside the grid.
cudaError_t voxel_cells(const float* points, int64_t num_points, int64_t num_features, detail::Grid3 grid,
                        int32_t invalid, int32_t* cells, cudaStream_t stream);
// Copies every point into its voxel slot given the points sorted stably by cell:
// sorted_cells [P], order [P] (point index at each sorted position), seg_id [P] (run of equal
// cells at each position, -1 for invalid), seg_start [S] (first position of each run),
// voxel_of_seg [S] (voxel number by first appearance). voxels [max_voxels, max_points, F] and
// num_points [max_voxels] must be zeroed; coords [max_voxels, 3] receives (z, y, x).
cudaError_t voxel_fill(const float* points, int64_t num_points, int64_t num_features, detail::Grid3 grid,
                       int32_t invalid, const int32_t* sorted_cells, const int64_t* order, const int64_t* seg_id,
                       const int64_t* seg_start, const int64_t* voxel_of_seg, int64_t max_points, int64_t max_voxels,
                       float* voxels, int32_t* coords, int32_t* num_points_out, cudaStream_t stream);

// ---- scatter.cu ---------------------------------------------------------------------------
// out [B, C, H, W] must be zeroed; coords [V, 4] (b, z, y, x) validated by the caller.
template <typename T>
cudaError_t scatter_forward(const T* features, const int32_t* coords, int64_t V, int64_t C, int64_t H, int64_t W,
                            T* out, cudaStream_t stream);
// grad [V, C] = grad_out [B, C, H, W] gathered at coords.
template <typename T>
cudaError_t scatter_backward(const T* grad_out, const int32_t* coords, int64_t V, int64_t C, int64_t H, int64_t W,
                             T* grad, cudaStream_t stream);

// ---- bev_pool.cu --------------------------------------------------------------------------
// key[p] = b·H·W + y·W + x for frustum point p (batch b = p / points_per_batch), or `invalid`.
cudaError_t bev_pool_cells(const float* points, int64_t num_points, int64_t points_per_batch, detail::Grid3 grid,
                           int32_t invalid, int32_t* key, cudaStream_t stream);
// For every interval [s, s + len) (one thread per (interval, channel), no atomics):
//   out[out_row[s]·C + c] = sum over k of a[ia[k]] · m[im[k]·C + c].
// The forward is (a, m, out) = (depth, feat, out [B·H·W, C]) over the cell intervals; the
// feature gradient is (depth, grad_cl, grad_feat) over the feature-row intervals. out must be
// zeroed (rows without an interval stay 0).
template <typename T>
cudaError_t bev_pool_interval_sums(const T* a, const int32_t* ia, const T* m, const int32_t* im, const int32_t* out_row,
                                   const int32_t* starts, const int32_t* lengths, int64_t num_intervals, int64_t C,
                                   T* out, cudaStream_t stream);
// grad_depth must be zeroed (points outside the grid keep 0); one warp per kept point.
template <typename T>
cudaError_t bev_pool_backward_depth(const T* grad_cl, const T* feat, const int32_t* ranks_depth,
                                    const int32_t* ranks_feat, const int32_t* ranks_bev, int64_t num_kept, int64_t C,
                                    T* grad_depth, cudaStream_t stream);

// ---- gaussian.cu --------------------------------------------------------------------------
// heat [K, H, W] must be zeroed; labels may be null (all boxes into map 0). One block per box,
// max-merge by atomicMax on the (non-negative) float bits.
cudaError_t gaussian_draw(const float* boxes, int64_t num_boxes, int64_t box_stride, const int64_t* labels,
                          detail::GaussianGrid grid, float* heat, cudaStream_t stream);

// ---- iou.cu -------------------------------------------------------------------------------
// out [N, M] (or [N] when aligned) = overlap `kind` (BEV IoU, 3D IoU, BEV GIoU) of a[i] and
// b[j] (b[i] when aligned).
template <typename T>
cudaError_t iou(const T* a, int64_t n, int64_t stride_a, const T* b, int64_t m, int64_t stride_b,
                detail::OverlapKind kind, bool aligned, T* out, cudaStream_t stream);
// mask [K, words] (words = ceil(K / 64)) must be zeroed; bit j of row i set when box i (rank
// order) suppresses box j > i of the same group.
template <typename T>
cudaError_t nms_mask(const T* boxes, int64_t num_boxes, int64_t stride, const int64_t* group, const double* threshold,
                     bool circle, uint64_t* mask, int64_t words, cudaStream_t stream);

// ---- depth_projection.cu ------------------------------------------------------------------
// keys [Ncam, out_h, out_w] must be filled with detail::kNoDepthKey; atomicMin of depth_key.
cudaError_t depth_keys(const float* points, int64_t num_points, int64_t num_features, const detail::Camera* cams,
                       int64_t num_cams, detail::ProjectionParams params, unsigned long long* keys,
                       cudaStream_t stream);
// For every cell with a key: depth, box_id, uvd and valid. Callers initialise depth/uvd to 0,
// box_id to -1 and valid to false. boxes may be null (num_boxes 0).
cudaError_t depth_resolve(const float* points, int64_t num_features, const detail::Camera* cams, int64_t num_cams,
                          detail::ProjectionParams params, const unsigned long long* keys, const float* boxes,
                          int64_t num_boxes, int64_t box_stride, float* depth, int32_t* box_id, float* uvd, bool* valid,
                          cudaStream_t stream);

// ---- deform_attn.cu ----------------------------------------------------------------------
// value [B, H·W, M, Dh], locations [B, Q, M, K, 2], weights [B, Q, M, K] -> out [B, Q, M·Dh]
// (fully written; one thread per output element, summing its K samples in order).
template <typename T>
cudaError_t deform_attn_forward(const T* value, const T* locations, const T* weights, detail::DeformAttnShape s, T* out,
                                cudaStream_t stream);
// grad_value must be zeroed (atomicAdd); grad_locations and grad_weights are fully written.
// One warp per sampling point (b, q, m, k), lanes over the Dh channels.
template <typename T>
cudaError_t deform_attn_backward(const T* grad_out, const T* value, const T* locations, const T* weights,
                                 detail::DeformAttnShape s, T* grad_value, T* grad_locations, T* grad_weights,
                                 cudaStream_t stream);

}  // namespace bevkd::kernels::cuda_raw
