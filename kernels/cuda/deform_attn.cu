// Single-scale deformable attention sampling, forward and backward. The sampling taps are
// kernels/detail/deform_attn_math.h, shared with the CPU reference. See kernels/deform_attn.h.
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/raw_ops.h"
#include "kernels/detail/deform_attn_math.h"

namespace bevkd::kernels::cuda_raw {
namespace {

constexpr int kWarp = 32;

// One thread per output element (b, q, m, d); consecutive threads read consecutive channels
// of the same value rows.
template <typename T>
__global__ void deform_attn_forward_kernel(const T* __restrict__ value, const T* __restrict__ loc,
                                           const T* __restrict__ attn, detail::DeformAttnShape s, T* __restrict__ out) {
  const int64_t i = global_index();
  if (i >= s.B * s.Q * s.M * s.Dh) return;
  const int64_t d = i % s.Dh, bqm = i / s.Dh;  // bqm = (b·Q + q)·M + m
  const int64_t m = bqm % s.M, b = bqm / (s.M * s.Q);
  T acc = 0;
  for (int64_t k = 0; k < s.K; ++k) {
    const int64_t p = bqm * s.K + k;
    const auto t = detail::bilinear_taps<T>(loc[2 * p], loc[2 * p + 1], s.H, s.W);
    const T ak = attn[p];
    for (int c = 0; c < 4; ++c) {
      if (t.cell[c] < 0) continue;
      acc += ak * t.w[c] * value[detail::value_offset(s, b, t.cell[c], m) + d];
    }
  }
  out[i] = acc;
}

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int off = kWarp / 2; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
  return v;
}

// One warp per sampling point p = ((b·Q + q)·M + m)·K + k; lane j handles channels j, j + 32, …
// It adds a·w_c·grad_out into the value gradient at the four corners (atomicAdd) and reduces
// the dot products <grad_out, value corner> over the channels for the weight and location
// gradients (written by lane 0).
template <typename T>
__global__ void deform_attn_backward_kernel(const T* __restrict__ grad_out, const T* __restrict__ value,
                                            const T* __restrict__ loc, const T* __restrict__ attn,
                                            detail::DeformAttnShape s, T* __restrict__ grad_value,
                                            T* __restrict__ grad_loc, T* __restrict__ grad_attn) {
  const int64_t gid = global_index();
  const int64_t p = gid / kWarp;
  const int lane = static_cast<int>(gid % kWarp);
  if (p >= s.B * s.Q * s.M * s.K) return;  // whole warps leave together (blockDim is a multiple of 32)
  const int64_t bqm = p / s.K;
  const int64_t m = bqm % s.M, b = bqm / (s.M * s.Q);
  const auto t = detail::bilinear_taps<T>(loc[2 * p], loc[2 * p + 1], s.H, s.W);
  const T ak = attn[p];
  const T* grow = grad_out + bqm * s.Dh;
  T g_attn = 0, g_px = 0, g_py = 0;
  for (int c = 0; c < 4; ++c) {
    if (t.cell[c] < 0) continue;
    const int64_t off = detail::value_offset(s, b, t.cell[c], m);
    const T f = ak * t.w[c];
    T dot = 0;
    for (int64_t d = lane; d < s.Dh; d += kWarp) {
      const T g = grow[d];
      dot += g * value[off + d];
      atomicAdd(grad_value + off + d, f * g);
    }
    g_attn += t.w[c] * dot;
    g_px += t.dw_dpx[c] * dot;
    g_py += t.dw_dpy[c] * dot;
  }
  g_attn = warp_sum(g_attn);
  g_px = warp_sum(g_px);
  g_py = warp_sum(g_py);
  if (lane == 0) {
    grad_attn[p] = g_attn;
    grad_loc[2 * p] = ak * g_px * static_cast<T>(s.W);
    grad_loc[2 * p + 1] = ak * g_py * static_cast<T>(s.H);
  }
}

}  // namespace

template <typename T>
cudaError_t deform_attn_forward(const T* value, const T* locations, const T* weights, detail::DeformAttnShape s, T* out,
                                cudaStream_t stream) {
  const int64_t total = s.B * s.Q * s.M * s.Dh;
  if (total == 0) return cudaSuccess;
  deform_attn_forward_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(value, locations, weights, s, out);
  return cudaGetLastError();
}

template <typename T>
cudaError_t deform_attn_backward(const T* grad_out, const T* value, const T* locations, const T* weights,
                                 detail::DeformAttnShape s, T* grad_value, T* grad_locations, T* grad_weights,
                                 cudaStream_t stream) {
  const int64_t points = s.B * s.Q * s.M * s.K;
  if (points == 0) return cudaSuccess;
  static_assert(kThreads % kWarp == 0, "blocks must hold whole warps");
  deform_attn_backward_kernel<T><<<blocks_for(points * kWarp), kThreads, 0, stream>>>(
      grad_out, value, locations, weights, s, grad_value, grad_locations, grad_weights);
  return cudaGetLastError();
}

template cudaError_t deform_attn_forward<float>(const float*, const float*, const float*, detail::DeformAttnShape,
                                                float*, cudaStream_t);
template cudaError_t deform_attn_forward<double>(const double*, const double*, const double*, detail::DeformAttnShape,
                                                 double*, cudaStream_t);
template cudaError_t deform_attn_backward<float>(const float*, const float*, const float*, const float*,
                                                 detail::DeformAttnShape, float*, float*, float*, cudaStream_t);
template cudaError_t deform_attn_backward<double>(const double*, const double*, const double*, const double*,
                                                  detail::DeformAttnShape, double*, double*, double*, cudaStream_t);

}  // namespace bevkd::kernels::cuda_raw
