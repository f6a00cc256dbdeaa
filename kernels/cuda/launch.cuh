// Launch-shape helpers shared by the .cu files (device code only; never included by .cpp).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace bevkd::kernels::cuda_raw {

constexpr int kThreads = 256;

// Blocks of `threads` covering n items (n > 0; at most 2^31 - 1 blocks for n < 2^31 · threads).
inline unsigned int blocks_for(int64_t n, int threads = kThreads) {
  return static_cast<unsigned int>((n + threads - 1) / threads);
}

__device__ __forceinline__ int64_t global_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}

}  // namespace bevkd::kernels::cuda_raw
