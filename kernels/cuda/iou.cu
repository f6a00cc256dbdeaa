// Rotated BEV / 3D IoU, BEV GIoU and the NMS suppression mask. The geometry is
// kernels/detail/box_math.h, shared with the CPU reference (double arithmetic, compiled with
// --fmad=false so both devices round alike). See kernels/iou.h and kernels/nms.h.
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/raw_ops.h"
#include "kernels/detail/box_math.h"

namespace bevkd::kernels::cuda_raw {
namespace {

constexpr int kNmsBlock = 64;  // boxes per mask word

template <typename T>
__global__ void iou_kernel(const T* __restrict__ a, int64_t N, int64_t sa, const T* __restrict__ b, int64_t M,
                           int64_t sb, detail::OverlapKind kind, bool aligned, T* __restrict__ out) {
  const int64_t k = global_index();
  if (k >= (aligned ? N : N * M)) return;
  const int64_t i = aligned ? k : k / M, j = aligned ? k : k % M;
  const T* x = a + i * sa;
  const T* y = b + j * sb;
  out[k] = static_cast<T>(detail::box_overlap(kind, x, y));
}

// Block (row block r, column block c): thread t compares box r·64 + t with the (up to) 64
// boxes of column block c, staged in shared memory. Blocks below the diagonal do nothing.
template <typename T>
__global__ void nms_mask_kernel(const T* __restrict__ boxes, int64_t K, int64_t S, const int64_t* __restrict__ group,
                                const double* __restrict__ threshold, bool circle, uint64_t* __restrict__ mask,
                                int64_t words) {
  const int64_t row_block = blockIdx.y, col_block = blockIdx.x;
  if (col_block < row_block) return;
  const int64_t row0 = row_block * kNmsBlock, col0 = col_block * kNmsBlock;
  const int64_t rows = K - row0 < kNmsBlock ? K - row0 : kNmsBlock;
  const int64_t cols = K - col0 < kNmsBlock ? K - col0 : kNmsBlock;
  __shared__ T col_boxes[kNmsBlock * 9];
  __shared__ int64_t col_group[kNmsBlock];
  if (threadIdx.x < cols) {
    for (int64_t s = 0; s < S; ++s) col_boxes[threadIdx.x * S + s] = boxes[(col0 + threadIdx.x) * S + s];
    col_group[threadIdx.x] = group[col0 + threadIdx.x];
  }
  __syncthreads();
  if (threadIdx.x >= rows) return;
  const int64_t i = row0 + threadIdx.x;
  const T* bi = boxes + i * S;
  const int64_t gi = group[i];
  const double thr = threshold[i];
  uint64_t bits = 0;
  for (int64_t c = row_block == col_block ? threadIdx.x + 1 : 0; c < cols; ++c) {
    if (col_group[c] != gi) continue;
    const T* bj = col_boxes + c * S;
    const bool suppress = circle ? detail::centres_within(bi, bj, thr) : detail::bev_iou(bi, bj) > thr;
    if (suppress) bits |= uint64_t{1} << c;
  }
  mask[i * words + col_block] = bits;
}

}  // namespace

template <typename T>
cudaError_t iou(const T* a, int64_t n, int64_t stride_a, const T* b, int64_t m, int64_t stride_b,
                detail::OverlapKind kind, bool aligned, T* out, cudaStream_t stream) {
  const int64_t total = aligned ? n : n * m;
  if (total == 0) return cudaSuccess;
  iou_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(a, n, stride_a, b, m, stride_b, kind, aligned, out);
  return cudaGetLastError();
}

template <typename T>
cudaError_t nms_mask(const T* boxes, int64_t num_boxes, int64_t stride, const int64_t* group, const double* threshold,
                     bool circle, uint64_t* mask, int64_t words, cudaStream_t stream) {
  if (num_boxes == 0) return cudaSuccess;
  if (stride > 9) return cudaErrorInvalidValue;  // the shared-memory stage holds up to 9 values per box
  const dim3 blocks(static_cast<unsigned int>(words), static_cast<unsigned int>(words));
  nms_mask_kernel<T><<<blocks, kNmsBlock, 0, stream>>>(boxes, num_boxes, stride, group, threshold, circle, mask, words);
  return cudaGetLastError();
}

template cudaError_t iou<float>(const float*, int64_t, int64_t, const float*, int64_t, int64_t, detail::OverlapKind,
                                bool, float*, cudaStream_t);
template cudaError_t iou<double>(const double*, int64_t, int64_t, const double*, int64_t, int64_t, detail::OverlapKind,
                                 bool, double*, cudaStream_t);
template cudaError_t nms_mask<float>(const float*, int64_t, int64_t, const int64_t*, const double*, bool, uint64_t*,
                                     int64_t, cudaStream_t);
template cudaError_t nms_mask<double>(const double*, int64_t, int64_t, const int64_t*, const double*, bool, uint64_t*,
                                      int64_t, cudaStream_t);

}  // namespace bevkd::kernels::cuda_raw
