#include "kernels/backend.h"

#include <torch/cuda.h>

namespace bevkd::kernels {

bool cuda_compiled() {
#ifdef BEVKD_WITH_CUDA
  return true;
#else
  return false;
#endif
}

bool cuda_available() { return cuda_compiled() && torch::cuda::is_available(); }

}  // namespace bevkd::kernels
