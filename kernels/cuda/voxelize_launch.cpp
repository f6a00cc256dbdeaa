// CUDA voxelization: raw kernels for cells and the copy, LibTorch's stable sort in between.
#include "kernels/cuda/launch_util.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/raw_ops.h"

namespace bevkd::kernels::cuda {

Voxels voxelize(const torch::Tensor& points, const VoxelizeOptions& opts, const detail::Grid3& grid) {
  const c10::cuda::CUDAGuard guard(points.device());
  const cudaStream_t stream = current_stream(points);
  const int64_t P = points.size(0), F = points.size(1), M = opts.max_points_per_voxel;
  const auto i32 = points.options().dtype(torch::kInt32);
  const int32_t invalid = grid.n[0] * grid.n[1] * grid.n[2];  // sorts after every real cell
  if (P == 0) return {torch::zeros({0, M, F}, points.options()), torch::zeros({0, 3}, i32), torch::zeros({0}, i32)};

  torch::Tensor cells = torch::empty({P}, i32);
  check_launch(cuda_raw::voxel_cells(points.data_ptr<float>(), P, F, grid, invalid, cells.data_ptr<int32_t>(), stream),
               "voxelize");
  // Points sorted stably by cell: within a cell, input order; runs of equal cells = voxels.
  const auto sorted = cells.sort(/*stable=*/true, /*dim=*/0, /*descending=*/false);
  const torch::Tensor sorted_cells = std::get<0>(sorted).contiguous();
  const torch::Tensor order = std::get<1>(sorted).contiguous();
  const torch::Tensor valid = sorted_cells < invalid;
  const torch::Tensor prev = torch::cat({torch::full({1}, -1, i32), sorted_cells.slice(0, 0, P - 1)});
  const torch::Tensor head = valid & (sorted_cells != prev);
  const torch::Tensor seg_id = (head.to(torch::kInt64).cumsum(0) - 1).contiguous();
  const torch::Tensor seg_start = head.nonzero().squeeze(1).contiguous();
  const int64_t S = seg_start.size(0);
  // Voxels are numbered by the input index of their first point.
  const torch::Tensor first_point = order.index_select(0, seg_start);
  const torch::Tensor by_first = std::get<1>(first_point.sort());
  const torch::Tensor voxel_of_seg =
      torch::empty({S}, first_point.options()).scatter_(0, by_first, torch::arange(S, first_point.options()));
  const int64_t V = std::min(S, opts.max_voxels);

  Voxels out;
  out.voxels = torch::zeros({V, M, F}, points.options());
  out.coords = torch::zeros({V, 3}, i32);
  out.num_points = torch::zeros({V}, i32);
  check_launch(
      cuda_raw::voxel_fill(points.data_ptr<float>(), P, F, grid, invalid, sorted_cells.data_ptr<int32_t>(),
                           order.data_ptr<int64_t>(), seg_id.data_ptr<int64_t>(), seg_start.data_ptr<int64_t>(),
                           voxel_of_seg.data_ptr<int64_t>(), M, V, out.voxels.data_ptr<float>(),
                           out.coords.data_ptr<int32_t>(), out.num_points.data_ptr<int32_t>(), stream),
      "voxelize");
  return out;
}

}  // namespace bevkd::kernels::cuda
