// Helpers of the tensor-level launchers (kernels/cuda/*_launch.cpp): device guard, LibTorch's
// current stream, and launch-error checks. Host code only.
#pragma once

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <torch/types.h>

#include "base/error.h"

namespace bevkd::kernels::cuda {

// The stream LibTorch uses for `t`'s device (callers hold a c10::cuda::CUDAGuard for it).
inline cudaStream_t current_stream(const torch::Tensor& t) {
  return c10::cuda::getCurrentCUDAStream(t.device().index()).stream();
}

inline void check_launch(cudaError_t err, const char* op) {
  BEVKD_CHECK(err == cudaSuccess, op, " (CUDA): kernel launch failed: ", cudaGetErrorString(err));
}

}  // namespace bevkd::kernels::cuda
