// Gaussian heat maps (spec/losses.md §2): one block per box draws its clipped window; overlaps
// max-merge through atomicMax on the float bits (valid for non-negative floats), which is
// order independent, so the result equals the CPU reference. See kernels/gaussian.h.
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/raw_ops.h"

namespace bevkd::kernels::cuda_raw {
namespace {

__global__ void gaussian_draw_kernel(const float* __restrict__ boxes, int64_t N, int64_t S,
                                     const int64_t* __restrict__ labels, detail::GaussianGrid g,
                                     float* __restrict__ heat) {
  const int64_t i = blockIdx.x;
  if (i >= N) return;
  int32_t cx, cy, r;
  if (!detail::gaussian_box_setup(boxes + i * S, g, &cx, &cy, &r)) return;
  const int64_t label = labels ? labels[i] : 0;
  const int64_t x0 = cx - r > 0 ? cx - r : 0, x1 = cx + r < g.width - 1 ? cx + r : g.width - 1;
  const int64_t y0 = cy - r > 0 ? cy - r : 0, y1 = cy + r < g.height - 1 ? cy + r : g.height - 1;
  const int64_t w = x1 - x0 + 1, n = w * (y1 - y0 + 1);
  float* map = heat + label * g.height * g.width;
  for (int64_t t = threadIdx.x; t < n; t += blockDim.x) {
    const int64_t x = x0 + t % w, y = y0 + t / w;
    const float v = detail::gaussian_kernel_value(static_cast<int>(x - cx), static_cast<int>(y - cy), r);
    atomicMax(reinterpret_cast<int*>(map + y * g.width + x), __float_as_int(v));
  }
}

}  // namespace

cudaError_t gaussian_draw(const float* boxes, int64_t num_boxes, int64_t box_stride, const int64_t* labels,
                          detail::GaussianGrid grid, float* heat, cudaStream_t stream) {
  if (num_boxes == 0) return cudaSuccess;
  gaussian_draw_kernel<<<static_cast<unsigned int>(num_boxes), 128, 0, stream>>>(boxes, num_boxes, box_stride, labels,
                                                                                 grid, heat);
  return cudaGetLastError();
}

}  // namespace bevkd::kernels::cuda_raw
