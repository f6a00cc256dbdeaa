// Pillar scatter onto the BEV canvas and its gradient (a gather). See kernels/scatter.h.
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/raw_ops.h"

namespace bevkd::kernels::cuda_raw {
namespace {

// One thread per (pillar, channel); consecutive threads read consecutive channels.
template <typename T>
__global__ void scatter_forward_kernel(const T* __restrict__ features, const int32_t* __restrict__ coords, int64_t V,
                                       int64_t C, int64_t H, int64_t W, T* __restrict__ out) {
  const int64_t k = global_index();
  if (k >= V * C) return;
  const int64_t v = k / C, c = k % C;
  const int32_t* co = coords + 4 * v;
  atomicAdd(out + ((co[0] * C + c) * H + co[2]) * W + co[3], features[k]);
}

template <typename T>
__global__ void scatter_backward_kernel(const T* __restrict__ grad_out, const int32_t* __restrict__ coords, int64_t V,
                                        int64_t C, int64_t H, int64_t W, T* __restrict__ grad) {
  const int64_t k = global_index();
  if (k >= V * C) return;
  const int64_t v = k / C, c = k % C;
  const int32_t* co = coords + 4 * v;
  grad[k] = grad_out[((co[0] * C + c) * H + co[2]) * W + co[3]];
}

}  // namespace

template <typename T>
cudaError_t scatter_forward(const T* features, const int32_t* coords, int64_t V, int64_t C, int64_t H, int64_t W,
                            T* out, cudaStream_t stream) {
  if (V * C == 0) return cudaSuccess;
  scatter_forward_kernel<T><<<blocks_for(V * C), kThreads, 0, stream>>>(features, coords, V, C, H, W, out);
  return cudaGetLastError();
}

template <typename T>
cudaError_t scatter_backward(const T* grad_out, const int32_t* coords, int64_t V, int64_t C, int64_t H, int64_t W,
                             T* grad, cudaStream_t stream) {
  if (V * C == 0) return cudaSuccess;
  scatter_backward_kernel<T><<<blocks_for(V * C), kThreads, 0, stream>>>(grad_out, coords, V, C, H, W, grad);
  return cudaGetLastError();
}

template cudaError_t scatter_forward<float>(const float*, const int32_t*, int64_t, int64_t, int64_t, int64_t, float*,
                                            cudaStream_t);
template cudaError_t scatter_forward<double>(const double*, const int32_t*, int64_t, int64_t, int64_t, int64_t, double*,
                                             cudaStream_t);
template cudaError_t scatter_backward<float>(const float*, const int32_t*, int64_t, int64_t, int64_t, int64_t, float*,
                                             cudaStream_t);
template cudaError_t scatter_backward<double>(const double*, const int32_t*, int64_t, int64_t, int64_t, int64_t,
                                              double*, cudaStream_t);

}  // namespace bevkd::kernels::cuda_raw
