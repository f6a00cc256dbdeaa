#!/usr/bin/env bash
# Compiles every CUDA source of kernels/ without a GPU and without a CUDA LibTorch:
#  * kernels/cuda/*.cu with nvcc for BEVKD_CUDA_ARCHITECTURES (default 80;90), against the CUDA
#    toolkit only (target bevkd_kernels_cuda);
#  * the tensor-level launchers kernels/cuda/*_launch.cpp and the dispatching sources with
#    BEVKD_WITH_CUDA defined, against this LibTorch's c10/cuda headers and the toolkit's headers
#    (target bevkd_kernels_launch_check; compiled, never linked).
# Build directory: ${BEVKD_CUDA_CHECK_DIR:-build-cuda-check}. nvcc: $CUDACXX, PATH or
# /usr/local/cuda/bin/nvcc. Extra arguments go to CMake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BEVKD_CUDA_CHECK_DIR:-build-cuda-check}"
JOBS="${BEVKD_JOBS:-$(nproc)}"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBEVKD_CUDA_COMPILE_CHECK=ON \
  -DBEVKD_BUILD_TESTS=OFF -DBEVKD_BUILD_BENCH=OFF "$@"
cmake --build "$BUILD_DIR" -j "$JOBS" --target bevkd_kernels_cuda bevkd_kernels_launch_check
echo "cuda_compile_check: every CUDA kernel and launcher of kernels/ compiled"
