// Which implementations of the kernels/ ops exist in this build.
//
// Every op in kernels/ dispatches on the device of its tensor arguments: CPU tensors run the
// parallel CPU implementation (at::parallel_for; the reference), CUDA tensors run the CUDA
// twin, which exists only when bevkd was configured with -DBEVKD_WITH_CUDA=ON. All tensor
// arguments of one call must be on the same device; results come back on that device.
#pragma once

namespace bevkd::kernels {

// True when the CUDA twins were compiled in (BEVKD_WITH_CUDA).
bool cuda_compiled();

// True when the CUDA twins were compiled in and LibTorch sees at least one CUDA device.
bool cuda_available();

}  // namespace bevkd::kernels
