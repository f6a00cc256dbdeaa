#include "kernels/voxelize.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <unordered_map>

#include "kernels/detail/check.h"
#include "kernels/detail/grid_math.h"
#ifdef BEVKD_WITH_CUDA
#include "kernels/cuda/ops.h"
#endif

namespace bevkd::kernels {
namespace {

constexpr const char* kVoxelizeOp = "voxelize";
constexpr int64_t kDenseTableMaxCells = int64_t{1} << 24;  // 64 MiB of int32 at most

detail::Grid3 make_grid(const VoxelizeOptions& o) {
  const auto n = o.grid_size();
  detail::Grid3 g{};
  const double size[3] = {o.grid.dx, o.grid.dy, o.voxel_z > 0 ? o.voxel_z : o.grid.z_max() - o.grid.z_min()};
  for (int a = 0; a < 3; ++a) {
    g.lo[a] = static_cast<float>(o.grid.range[a]);
    g.size[a] = static_cast<float>(size[a]);
    g.n[a] = static_cast<int32_t>(n[a]);
  }
  return g;
}

// The reference: cells in parallel, then one pass in input order that numbers voxels by
// first appearance and hands out slots, then the copy in parallel.
Voxels voxelize_cpu(const torch::Tensor& points, const VoxelizeOptions& opts, const detail::Grid3& g) {
  const int64_t P = points.size(0), F = points.size(1);
  const float* pts = points.data_ptr<float>();
  const int64_t num_cells = int64_t{g.n[0]} * g.n[1] * g.n[2];

  std::vector<int64_t> cell(P);
  at::parallel_for(0, P, 16384, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float* p = pts + i * F;
      int32_t cx, cy, cz;
      cell[i] = detail::grid_cell(g, p[0], p[1], p[2], &cx, &cy, &cz) ? detail::grid_linear(g, cx, cy, cz) : -1;
    }
  });

  const bool dense = num_cells <= kDenseTableMaxCells;
  std::vector<int32_t> table(dense ? num_cells : 0, -1);
  std::unordered_map<int64_t, int32_t> sparse_table;
  std::vector<int64_t> voxel_cell;
  std::vector<int32_t> count;
  voxel_cell.reserve(static_cast<size_t>(std::min(opts.max_voxels, P)));
  std::vector<int32_t> voxel_of(P, -1), slot_of(P, -1);
  for (int64_t i = 0; i < P; ++i) {
    const int64_t c = cell[i];
    if (c < 0) continue;
    int32_t v;
    if (dense) {
      v = table[c];
    } else {
      auto it = sparse_table.find(c);
      v = it == sparse_table.end() ? -1 : it->second;
    }
    if (v < 0) {
      if (static_cast<int64_t>(voxel_cell.size()) >= opts.max_voxels) continue;
      v = static_cast<int32_t>(voxel_cell.size());
      if (dense) {
        table[c] = v;
      } else {
        sparse_table.emplace(c, v);
      }
      voxel_cell.push_back(c);
      count.push_back(0);
    }
    if (count[v] < opts.max_points_per_voxel) {
      voxel_of[i] = v;
      slot_of[i] = count[v]++;
    }
  }

  const int64_t V = static_cast<int64_t>(voxel_cell.size());
  const int64_t M = opts.max_points_per_voxel;
  Voxels out;
  out.voxels = torch::zeros({V, M, F}, points.options());
  out.coords = torch::empty({V, 3}, points.options().dtype(torch::kInt32));
  out.num_points = torch::empty({V}, points.options().dtype(torch::kInt32));
  float* vox = out.voxels.data_ptr<float>();
  at::parallel_for(0, P, 16384, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      if (voxel_of[i] < 0) continue;
      std::copy(pts + i * F, pts + (i + 1) * F, vox + (voxel_of[i] * M + slot_of[i]) * F);
    }
  });
  int32_t* coords = out.coords.data_ptr<int32_t>();
  int32_t* num = out.num_points.data_ptr<int32_t>();
  for (int64_t v = 0; v < V; ++v) {
    const int64_t c = voxel_cell[v];
    coords[3 * v + 0] = static_cast<int32_t>(c / (int64_t{g.n[0]} * g.n[1]));
    coords[3 * v + 1] = static_cast<int32_t>((c / g.n[0]) % g.n[1]);
    coords[3 * v + 2] = static_cast<int32_t>(c % g.n[0]);
    num[v] = count[v];
  }
  return out;
}

}  // namespace

VoxelizeOptions VoxelizeOptions::pillars(const BevGrid& grid, int64_t max_points_per_voxel, int64_t max_voxels) {
  VoxelizeOptions o;
  o.grid = grid;
  o.voxel_z = 0;
  o.max_points_per_voxel = max_points_per_voxel;
  o.max_voxels = max_voxels;
  return o;
}

std::array<int64_t, 3> VoxelizeOptions::grid_size() const {
  BEVKD_CHECK(grid.valid(), kVoxelizeOp, ": no grid given (VoxelizeOptions::grid is empty)");
  BEVKD_CHECK(std::isfinite(voxel_z) && voxel_z >= 0, kVoxelizeOp, ": voxel_z must be >= 0 (0 = pillars), found ", voxel_z);
  std::array<int64_t, 3> n{grid.W, grid.H, 1};
  if (voxel_z > 0) {
    const double cells = (grid.z_max() - grid.z_min()) / voxel_z;
    n[2] = std::llround(cells);
    BEVKD_CHECK(n[2] >= 1 && std::abs(cells - static_cast<double>(n[2])) <=
                                 BevGrid::kCellTolerance * std::max<double>(1, static_cast<double>(n[2])),
                kVoxelizeOp, ": the z range (", grid.z_max() - grid.z_min(), " m) is not a whole number of ", voxel_z,
                " m voxels (", cells, ")");
  }
  BEVKD_CHECK(n[0] * n[1] * n[2] < (int64_t{1} << 31), kVoxelizeOp, ": the grid has ", n[0], " x ", n[1], " x ", n[2],
              " cells, more than 2^31 - 1");
  BEVKD_CHECK(max_points_per_voxel >= 1, kVoxelizeOp, ": max_points_per_voxel must be >= 1, found ", max_points_per_voxel);
  BEVKD_CHECK(max_voxels >= 1, kVoxelizeOp, ": max_voxels must be >= 1, found ", max_voxels);
  return n;
}

Voxels voxelize(const torch::Tensor& points, const VoxelizeOptions& opts) {
  detail::check_arg(
      points.defined() && points.dim() == 2 && points.size(1) >= 3 && points.scalar_type() == torch::kFloat32, kVoxelizeOp,
      "points", "[P, F >= 3] float32 (x, y, z, features...)", points);
  BEVKD_CHECK(points.size(0) < (int64_t{1} << 31), kVoxelizeOp, ": ", points.size(0), " points, more than 2^31 - 1");
  const detail::Grid3 g = make_grid(opts);
  const torch::Tensor pts = points.contiguous();
  if (pts.is_cuda()) {
#ifdef BEVKD_WITH_CUDA
    return cuda::voxelize(pts, opts, g);
#else
    detail::fail_no_cuda(kVoxelizeOp, pts);
#endif
  }
  detail::check_arg(pts.is_cpu(), kVoxelizeOp, "points", "on the CPU or a CUDA device", pts);
  return voxelize_cpu(pts, opts, g);
}

Voxels voxelize_batch(const std::vector<torch::Tensor>& clouds, const VoxelizeOptions& opts) {
  BEVKD_CHECK(!clouds.empty(), "voxelize_batch: the batch holds no point cloud");
  std::vector<torch::Tensor> voxels, coords, num;
  for (size_t b = 0; b < clouds.size(); ++b) {
    const std::string name = cat("clouds[", b, "]");
    detail::check_same_device("voxelize_batch", "clouds[0]", clouds[0], name.c_str(), clouds[b]);
    BEVKD_CHECK(clouds[b].dim() == 2 && clouds[0].dim() == 2 && clouds[b].size(1) == clouds[0].size(1),
                "voxelize_batch: ", name, " is ", detail::describe(clouds[b]), " but clouds[0] is ",
                detail::describe(clouds[0]), "; every cloud needs the same features");
    Voxels v = voxelize(clouds[b], opts);
    voxels.push_back(v.voxels);
    coords.push_back(
        torch::cat({torch::full({v.coords.size(0), 1}, static_cast<int64_t>(b), v.coords.options()), v.coords}, 1));
    num.push_back(v.num_points);
  }
  return {torch::cat(voxels, 0), torch::cat(coords, 0), torch::cat(num, 0)};
}

}  // namespace bevkd::kernels
