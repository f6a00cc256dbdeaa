# CUDA for kernels/, included by the top-level CMakeLists.txt when BEVKD_WITH_CUDA=ON and by
# kernels/CMakeLists.txt for BEVKD_CUDA_COMPILE_CHECK=ON.
#
#  * finds nvcc (CMAKE_CUDA_COMPILER, $CUDACXX, PATH, then /usr/local/cuda/bin/nvcc), enables the
#    CUDA language and finds the toolkit (CUDA::cudart);
#  * BEVKD_CUDA_ARCHITECTURES (default 80;90: A100, H100/H200) is what the kernels are built for;
#  * with BEVKD_WITH_CUDA, requires that find_package(Torch) found a CUDA-enabled LibTorch and
#    collects its CUDA libraries in BEVKD_TORCH_CUDA_LIBRARIES. Debian's libtorch-dev is
#    CPU-only; on a GPU machine use the LibTorch inside an installed PyTorch:
#      cmake -DBEVKD_WITH_CUDA=ON \
#            -DCMAKE_PREFIX_PATH="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')"
include_guard(GLOBAL)

set(BEVKD_CUDA_ARCHITECTURES "80;90" CACHE STRING "CUDA architectures of the kernels (CUDA_ARCHITECTURES syntax)")

include(CheckLanguage)
if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS "/usr/local/cuda/bin/nvcc")
  find_program(BEVKD_NVCC_ON_PATH nvcc)
  if(NOT BEVKD_NVCC_ON_PATH)
    set(CMAKE_CUDA_COMPILER "/usr/local/cuda/bin/nvcc" CACHE FILEPATH "CUDA compiler")
  endif()
endif()
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  message(FATAL_ERROR "bevkd: BEVKD_WITH_CUDA / BEVKD_CUDA_COMPILE_CHECK need nvcc, and none was found "
                      "(set CMAKE_CUDA_COMPILER or CUDACXX, or put nvcc on PATH)")
endif()
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES ${BEVKD_CUDA_ARCHITECTURES})
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)

if(BEVKD_WITH_CUDA)
  # A CUDA LibTorch defines the imported targets torch_cuda / c10_cuda (Caffe2Targets.cmake) and
  # C10_CUDA_LIBRARY (TorchConfig.cmake); a CPU-only one defines none of them.
  set(BEVKD_TORCH_CUDA_LIBRARIES "")
  foreach(lib torch_cuda c10_cuda)
    if(TARGET ${lib})
      list(APPEND BEVKD_TORCH_CUDA_LIBRARIES ${lib})
    endif()
  endforeach()
  if(C10_CUDA_LIBRARY AND NOT TARGET c10_cuda)
    list(APPEND BEVKD_TORCH_CUDA_LIBRARIES "${C10_CUDA_LIBRARY}")
  endif()
  if(NOT BEVKD_TORCH_CUDA_LIBRARIES)
    message(FATAL_ERROR
      "bevkd: BEVKD_WITH_CUDA=ON needs a CUDA-enabled LibTorch, but the one found (Torch_DIR=${Torch_DIR}) "
      "is CPU-only. Point CMake at the LibTorch inside an installed PyTorch: "
      "-DCMAKE_PREFIX_PATH=\"$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')\"")
  endif()
  message(STATUS "bevkd: CUDA kernels for architectures ${BEVKD_CUDA_ARCHITECTURES}; LibTorch CUDA libraries: "
                 "${BEVKD_TORCH_CUDA_LIBRARIES}")
endif()
