// LiDAR depth projection: every (point, camera) pair proposes its depth key to its cell by
// atomicMin (nearest depth, then lowest point index — order independent), then every cell
// with a winner recomputes the winner's projection and finds its box. See
// kernels/depth_projection.h.
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/raw_ops.h"

namespace bevkd::kernels::cuda_raw {
namespace {

__global__ void depth_keys_kernel(const float* __restrict__ points, int64_t P, int64_t F,
                                  const detail::Camera* __restrict__ cams, int64_t Ncam, detail::ProjectionParams p,
                                  unsigned long long* __restrict__ keys) {
  const int64_t t = global_index();
  if (t >= P * Ncam) return;
  const int64_t i = t / Ncam, n = t % Ncam;
  const float* q = points + i * F;
  float u, v, d;
  int32_t cell;
  if (!detail::project_to_camera(cams[n], p, q[0], q[1], q[2], &u, &v, &d, &cell)) return;
  const int64_t per_cam = static_cast<int64_t>(p.out_h) * p.out_w;
  atomicMin(keys + n * per_cam + cell, static_cast<unsigned long long>(detail::depth_key(d, static_cast<uint32_t>(i))));
}

__global__ void depth_resolve_kernel(const float* __restrict__ points, int64_t F,
                                     const detail::Camera* __restrict__ cams, int64_t Ncam, detail::ProjectionParams p,
                                     const unsigned long long* __restrict__ keys, const float* __restrict__ boxes,
                                     int64_t G, int64_t S, float* __restrict__ depth, int32_t* __restrict__ box_id,
                                     float* __restrict__ uvd, bool* __restrict__ valid) {
  const int64_t c = global_index();
  if (c >= Ncam * p.out_h * p.out_w) return;
  const unsigned long long key = keys[c];
  if (key == detail::kNoDepthKey) return;
  detail::resolve_depth_cell(points, F, cams, p, key, boxes, G, S, c, depth, box_id, uvd, valid);
}

}  // namespace

cudaError_t depth_keys(const float* points, int64_t num_points, int64_t num_features, const detail::Camera* cams,
                       int64_t num_cams, detail::ProjectionParams params, unsigned long long* keys,
                       cudaStream_t stream) {
  if (num_points * num_cams == 0) return cudaSuccess;
  depth_keys_kernel<<<blocks_for(num_points * num_cams), kThreads, 0, stream>>>(points, num_points, num_features, cams,
                                                                                num_cams, params, keys);
  return cudaGetLastError();
}

cudaError_t depth_resolve(const float* points, int64_t num_features, const detail::Camera* cams, int64_t num_cams,
                          detail::ProjectionParams params, const unsigned long long* keys, const float* boxes,
                          int64_t num_boxes, int64_t box_stride, float* depth, int32_t* box_id, float* uvd, bool* valid,
                          cudaStream_t stream) {
  const int64_t cells = num_cams * params.out_h * params.out_w;
  if (cells == 0) return cudaSuccess;
  depth_resolve_kernel<<<blocks_for(cells), kThreads, 0, stream>>>(
      points, num_features, cams, num_cams, params, keys, boxes, num_boxes, box_stride, depth, box_id, uvd, valid);
  return cudaGetLastError();
}

}  // namespace bevkd::kernels::cuda_raw
