#include "kernels/cuda/launch_util.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/raw_ops.h"

namespace bevkd::kernels::cuda {

std::array<torch::Tensor, 4> depth_resolve(const torch::Tensor& points, const torch::Tensor& cams,
                                           const torch::Tensor& boxes, const detail::ProjectionParams& params) {
  const c10::cuda::CUDAGuard guard(points.device());
  const cudaStream_t stream = current_stream(points);
  const int64_t Ncam = cams.size(0), P = points.size(0), F = points.size(1);
  const auto opts = points.options();
  // All bits set = detail::kNoDepthKey.
  torch::Tensor keys = torch::full({Ncam, params.out_h, params.out_w}, -1, opts.dtype(torch::kInt64));
  const auto* cam_ptr = reinterpret_cast<const detail::Camera*>(cams.data_ptr<double>());
  auto* key_ptr = reinterpret_cast<unsigned long long*>(keys.data_ptr<int64_t>());
  check_launch(cuda_raw::depth_keys(points.data_ptr<float>(), P, F, cam_ptr, Ncam, params, key_ptr, stream),
               "project_depth");
  torch::Tensor depth = torch::zeros({Ncam, params.out_h, params.out_w}, opts);
  torch::Tensor box_id = torch::full({Ncam, params.out_h, params.out_w}, -1, opts.dtype(torch::kInt32));
  torch::Tensor uvd = torch::zeros({Ncam, params.out_h, params.out_w, 3}, opts);
  torch::Tensor valid = torch::zeros({Ncam, params.out_h, params.out_w}, opts.dtype(torch::kBool));
  const int64_t G = boxes.defined() ? boxes.size(0) : 0;
  check_launch(cuda_raw::depth_resolve(points.data_ptr<float>(), F, cam_ptr, Ncam, params, key_ptr,
                                       G > 0 ? boxes.data_ptr<float>() : nullptr, G, G > 0 ? boxes.size(1) : 0,
                                       depth.data_ptr<float>(), box_id.data_ptr<int32_t>(), uvd.data_ptr<float>(),
                                       valid.data_ptr<bool>(), stream),
               "project_depth");
  return {depth, box_id, uvd, valid};
}

}  // namespace bevkd::kernels::cuda
