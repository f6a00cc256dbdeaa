// CUDA BEV pooling: raw kernels for the point -> cell keys and the pooling passes; the
// interval structure is built with LibTorch's stable sort and unique_consecutive on the device.
#include "kernels/cuda/launch_util.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/raw_ops.h"

namespace bevkd::kernels::cuda {
namespace {

// (starts, lengths) of the runs of equal values in a sorted 1-D tensor, int32.
std::pair<torch::Tensor, torch::Tensor> runs(const torch::Tensor& sorted) {
  const torch::Tensor counts = std::get<2>(torch::unique_consecutive(sorted, false, true));
  const torch::Tensor starts = counts.cumsum(0) - counts;
  return {starts.to(torch::kInt32).contiguous(), counts.to(torch::kInt32).contiguous()};
}

}  // namespace

BevPoolGeometry bev_pool_prepare(const torch::Tensor& points, const detail::Grid3& grid, BevPoolGeometry geom) {
  const c10::cuda::CUDAGuard guard(points.device());
  const int64_t D = geom.depth_bins, HW = geom.feat_h * geom.feat_w;
  const int64_t P = points.numel() / 3;
  const int32_t invalid = static_cast<int32_t>(geom.batch * geom.grid_h * geom.grid_w);
  torch::Tensor key = torch::empty({P}, points.options().dtype(torch::kInt32));
  check_launch(cuda_raw::bev_pool_cells(points.data_ptr<float>(), P, geom.num_cams * D * HW, grid, invalid,
                                        key.data_ptr<int32_t>(), current_stream(points)),
               "bev_pool_prepare");

  // By cell, ties in point order (the stable sort of keys given in point order).
  const auto by_cell = key.sort(/*stable=*/true, /*dim=*/0, /*descending=*/false);
  const int64_t K = (key < invalid).sum().item<int64_t>();
  const torch::Tensor rd = std::get<1>(by_cell).slice(0, 0, K);
  const torch::Tensor rb = std::get<0>(by_cell).slice(0, 0, K);
  auto feat_row = [&](const torch::Tensor& p) { return p.div(D * HW, "floor") * HW + p.remainder(HW); };
  geom.ranks_depth = rd.to(torch::kInt32).contiguous();
  geom.ranks_feat = feat_row(rd).to(torch::kInt32).contiguous();
  geom.ranks_bev = rb.contiguous();
  std::tie(geom.interval_starts, geom.interval_lengths) = runs(rb);

  // By feature row, ties in point order: stable sort of the kept points taken in point order.
  const torch::Tensor kept = (key < invalid).nonzero().squeeze(1);
  const auto by_row = feat_row(kept).sort(/*stable=*/true, /*dim=*/0, /*descending=*/false);
  const torch::Tensor frd = kept.index_select(0, std::get<1>(by_row));
  geom.feat_ranks_depth = frd.to(torch::kInt32).contiguous();
  geom.feat_ranks_feat = std::get<0>(by_row).to(torch::kInt32).contiguous();
  geom.feat_ranks_bev = key.index_select(0, frd).contiguous();
  std::tie(geom.feat_interval_starts, geom.feat_interval_lengths) = runs(std::get<0>(by_row));
  return geom;
}

torch::Tensor bev_pool_forward(const torch::Tensor& depth, const torch::Tensor& feat, const BevPoolGeometry& geom) {
  const c10::cuda::CUDAGuard guard(depth.device());
  const int64_t C = feat.size(4), B = geom.batch, H = geom.grid_h, W = geom.grid_w;
  torch::Tensor out = torch::zeros({B * H * W, C}, feat.options());
  AT_DISPATCH_FLOATING_TYPES(feat.scalar_type(), "bev_pool_cuda", [&] {
    check_launch(cuda_raw::bev_pool_interval_sums<scalar_t>(
                     depth.data_ptr<scalar_t>(), geom.ranks_depth.data_ptr<int32_t>(), feat.data_ptr<scalar_t>(),
                     geom.ranks_feat.data_ptr<int32_t>(), geom.ranks_bev.data_ptr<int32_t>(),
                     geom.interval_starts.data_ptr<int32_t>(), geom.interval_lengths.data_ptr<int32_t>(),
                     geom.interval_starts.size(0), C, out.data_ptr<scalar_t>(), current_stream(depth)),
                 "bev_pool");
  });
  return out.view({B, H, W, C}).permute({0, 3, 1, 2}).contiguous();
}

std::pair<torch::Tensor, torch::Tensor> bev_pool_backward(const torch::Tensor& grad_out_cl, const torch::Tensor& depth,
                                                          const torch::Tensor& feat, const BevPoolGeometry& geom,
                                                          bool need_depth, bool need_feat) {
  const c10::cuda::CUDAGuard guard(depth.device());
  const cudaStream_t stream = current_stream(depth);
  const int64_t C = feat.size(4);
  torch::Tensor grad_depth, grad_feat;
  AT_DISPATCH_FLOATING_TYPES(feat.scalar_type(), "bev_pool_backward_cuda", [&] {
    if (need_depth) {
      grad_depth = torch::zeros_like(depth);
      check_launch(cuda_raw::bev_pool_backward_depth<scalar_t>(
                       grad_out_cl.data_ptr<scalar_t>(), feat.data_ptr<scalar_t>(),
                       geom.ranks_depth.data_ptr<int32_t>(), geom.ranks_feat.data_ptr<int32_t>(),
                       geom.ranks_bev.data_ptr<int32_t>(), geom.num_kept(), C, grad_depth.data_ptr<scalar_t>(), stream),
                   "bev_pool backward");
    }
    if (need_feat) {
      grad_feat = torch::zeros_like(feat);
      check_launch(
          cuda_raw::bev_pool_interval_sums<scalar_t>(
              depth.data_ptr<scalar_t>(), geom.feat_ranks_depth.data_ptr<int32_t>(), grad_out_cl.data_ptr<scalar_t>(),
              geom.feat_ranks_bev.data_ptr<int32_t>(), geom.feat_ranks_feat.data_ptr<int32_t>(),
              geom.feat_interval_starts.data_ptr<int32_t>(), geom.feat_interval_lengths.data_ptr<int32_t>(),
              geom.feat_interval_starts.size(0), C, grad_feat.data_ptr<scalar_t>(), stream),
          "bev_pool backward");
    }
  });
  return {grad_depth, grad_feat};
}

}  // namespace bevkd::kernels::cuda
