// BEVKD_HD marks the small inline functions that the CPU implementation (.cpp) and the CUDA
// twin (.cu) share, so that both devices evaluate exactly the same expressions. Internal to
// kernels/: public headers never include device code.
//
// Bit-identical results across devices also need the same rounding: nvcc compiles the .cu
// files that use these functions with --fmad=false (no fused multiply-add contraction), and
// the host code is built without FMA contraction (see kernels/CMakeLists.txt).
#pragma once

#if defined(__CUDACC__)
#define BEVKD_HD __host__ __device__ __forceinline__
#else
#define BEVKD_HD inline
#endif
