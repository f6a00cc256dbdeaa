// BEV pooling (BEVPoolv2-style): point -> cell keys for the launcher's sort, and interval sums
// for the forward (over cells) and the feature gradient (over feature rows) — no atomics, so the
// result is deterministic. See kernels/bev_pool.h.
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/raw_ops.h"

namespace bevkd::kernels::cuda_raw {
namespace {

__global__ void bev_pool_cells_kernel(const float* __restrict__ points, int64_t P, int64_t per_batch, detail::Grid3 g,
                                      int32_t invalid, int32_t* __restrict__ key) {
  const int64_t p = global_index();
  if (p >= P) return;
  const float* q = points + 3 * p;
  int32_t cx, cy, cz;
  key[p] = detail::grid_cell(g, q[0], q[1], q[2], &cx, &cy, &cz)
               ? static_cast<int32_t>((p / per_batch * g.n[1] + cy) * g.n[0] + cx)
               : invalid;
}

template <typename T>
__global__ void interval_sums_kernel(const T* __restrict__ a, const int32_t* __restrict__ ia, const T* __restrict__ m,
                                     const int32_t* __restrict__ im, const int32_t* __restrict__ out_row,
                                     const int32_t* __restrict__ starts, const int32_t* __restrict__ lengths, int64_t I,
                                     int64_t C, T* __restrict__ out) {
  const int64_t t = global_index();
  if (t >= I * C) return;
  const int64_t i = t / C, c = t % C;
  const int32_t s = starts[i], e = s + lengths[i];
  T acc = 0;
  for (int32_t k = s; k < e; ++k) acc += a[ia[k]] * m[static_cast<int64_t>(im[k]) * C + c];
  out[static_cast<int64_t>(out_row[s]) * C + c] = acc;
}

// One warp per kept point: lanes stride over channels, then a fixed shuffle tree.
template <typename T>
__global__ void bev_pool_backward_depth_kernel(const T* __restrict__ grad, const T* __restrict__ feat,
                                               const int32_t* __restrict__ rd, const int32_t* __restrict__ rf,
                                               const int32_t* __restrict__ rb, int64_t K, int64_t C,
                                               T* __restrict__ grad_depth) {
  const int64_t k = global_index() / 32;
  const int lane = threadIdx.x % 32;
  if (k >= K) return;
  const T* g = grad + static_cast<int64_t>(rb[k]) * C;
  const T* f = feat + static_cast<int64_t>(rf[k]) * C;
  T acc = 0;
  for (int64_t c = lane; c < C; c += 32) acc += g[c] * f[c];
  for (int offset = 16; offset > 0; offset /= 2) acc += __shfl_down_sync(0xffffffffu, acc, offset);
  if (lane == 0) grad_depth[rd[k]] = acc;
}

}  // namespace

cudaError_t bev_pool_cells(const float* points, int64_t num_points, int64_t points_per_batch, detail::Grid3 grid,
                           int32_t invalid, int32_t* key, cudaStream_t stream) {
  if (num_points == 0) return cudaSuccess;
  bev_pool_cells_kernel<<<blocks_for(num_points), kThreads, 0, stream>>>(points, num_points, points_per_batch, grid,
                                                                         invalid, key);
  return cudaGetLastError();
}

template <typename T>
cudaError_t bev_pool_interval_sums(const T* a, const int32_t* ia, const T* m, const int32_t* im, const int32_t* out_row,
                                   const int32_t* starts, const int32_t* lengths, int64_t num_intervals, int64_t C,
                                   T* out, cudaStream_t stream) {
  if (num_intervals * C == 0) return cudaSuccess;
  interval_sums_kernel<T><<<blocks_for(num_intervals * C), kThreads, 0, stream>>>(a, ia, m, im, out_row, starts,
                                                                                  lengths, num_intervals, C, out);
  return cudaGetLastError();
}

template <typename T>
cudaError_t bev_pool_backward_depth(const T* grad_cl, const T* feat, const int32_t* ranks_depth,
                                    const int32_t* ranks_feat, const int32_t* ranks_bev, int64_t num_kept, int64_t C,
                                    T* grad_depth, cudaStream_t stream) {
  if (num_kept == 0) return cudaSuccess;
  bev_pool_backward_depth_kernel<T><<<blocks_for(num_kept * 32), kThreads, 0, stream>>>(
      grad_cl, feat, ranks_depth, ranks_feat, ranks_bev, num_kept, C, grad_depth);
  return cudaGetLastError();
}

#define BEVKD_INSTANTIATE_BEV_POOL(T)                                                                                 \
  template cudaError_t bev_pool_interval_sums<T>(const T*, const int32_t*, const T*, const int32_t*, const int32_t*,  \
                                                 const int32_t*, const int32_t*, int64_t, int64_t, T*, cudaStream_t); \
  template cudaError_t bev_pool_backward_depth<T>(const T*, const T*, const int32_t*, const int32_t*, const int32_t*, \
                                                  int64_t, int64_t, T*, cudaStream_t);
BEVKD_INSTANTIATE_BEV_POOL(float)
BEVKD_INSTANTIATE_BEV_POOL(double)
#undef BEVKD_INSTANTIATE_BEV_POOL

}  // namespace bevkd::kernels::cuda_raw
