// Hard voxelization on the GPU: per-point cells, then (after the launcher's stable sort by
// cell) a copy of each point into its voxel slot. See kernels/voxelize.h for the semantics.
#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/raw_ops.h"

namespace bevkd::kernels::cuda_raw {
namespace {

__global__ void voxel_cells_kernel(const float* __restrict__ points, int64_t P, int64_t F, detail::Grid3 g,
                                   int32_t invalid, int32_t* __restrict__ cells) {
  const int64_t i = global_index();
  if (i >= P) return;
  const float* p = points + i * F;
  int32_t cx, cy, cz;
  cells[i] = detail::grid_cell(g, p[0], p[1], p[2], &cx, &cy, &cz)
                 ? static_cast<int32_t>(detail::grid_linear(g, cx, cy, cz))
                 : invalid;
}

__global__ void voxel_fill_kernel(const float* __restrict__ points, int64_t P, int64_t F, detail::Grid3 g,
                                  int32_t invalid, const int32_t* __restrict__ sorted_cells,
                                  const int64_t* __restrict__ order, const int64_t* __restrict__ seg_id,
                                  const int64_t* __restrict__ seg_start, const int64_t* __restrict__ voxel_of_seg,
                                  int64_t max_points, int64_t max_voxels, float* __restrict__ voxels,
                                  int32_t* __restrict__ coords, int32_t* __restrict__ num_points) {
  const int64_t k = global_index();
  if (k >= P) return;
  const int32_t cell = sorted_cells[k];
  if (cell == invalid) return;
  const int64_t s = seg_id[k];
  const int64_t slot = k - seg_start[s];  // rank of the point in its cell, in input order
  const int64_t v = voxel_of_seg[s];
  if (v >= max_voxels || slot >= max_points) return;
  const float* src = points + order[k] * F;
  float* dst = voxels + (v * max_points + slot) * F;
  for (int64_t f = 0; f < F; ++f) dst[f] = src[f];
  if (slot == 0) {
    const int64_t plane = static_cast<int64_t>(g.n[0]) * g.n[1];
    coords[3 * v + 0] = static_cast<int32_t>(cell / plane);
    coords[3 * v + 1] = static_cast<int32_t>((cell / g.n[0]) % g.n[1]);
    coords[3 * v + 2] = static_cast<int32_t>(cell % g.n[0]);
  }
  atomicAdd(num_points + v, 1);
}

}  // namespace

cudaError_t voxel_cells(const float* points, int64_t num_points, int64_t num_features, detail::Grid3 grid,
                        int32_t invalid, int32_t* cells, cudaStream_t stream) {
  if (num_points == 0) return cudaSuccess;
  voxel_cells_kernel<<<blocks_for(num_points), kThreads, 0, stream>>>(points, num_points, num_features, grid, invalid,
                                                                      cells);
  return cudaGetLastError();
}

cudaError_t voxel_fill(const float* points, int64_t num_points, int64_t num_features, detail::Grid3 grid,
                       int32_t invalid, const int32_t* sorted_cells, const int64_t* order, const int64_t* seg_id,
                       const int64_t* seg_start, const int64_t* voxel_of_seg, int64_t max_points, int64_t max_voxels,
                       float* voxels, int32_t* coords, int32_t* num_points_out, cudaStream_t stream) {
  if (num_points == 0) return cudaSuccess;
  voxel_fill_kernel<<<blocks_for(num_points), kThreads, 0, stream>>>(
      points, num_points, num_features, grid, invalid, sorted_cells, order, seg_id, seg_start, voxel_of_seg, max_points,
      max_voxels, voxels, coords, num_points_out);
  return cudaGetLastError();
}

}  // namespace bevkd::kernels::cuda_raw
