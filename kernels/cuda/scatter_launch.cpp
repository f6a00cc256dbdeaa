#include "kernels/cuda/launch_util.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/raw_ops.h"

namespace bevkd::kernels::cuda {

torch::Tensor scatter_forward(const torch::Tensor& features, const torch::Tensor& coords, int64_t B, int64_t H,
                              int64_t W) {
  const c10::cuda::CUDAGuard guard(features.device());
  const int64_t V = features.size(0), C = features.size(1);
  torch::Tensor out = torch::zeros({B, C, H, W}, features.options());
  AT_DISPATCH_FLOATING_TYPES(features.scalar_type(), "scatter_to_bev_cuda", [&] {
    check_launch(cuda_raw::scatter_forward<scalar_t>(features.data_ptr<scalar_t>(), coords.data_ptr<int32_t>(), V, C, H,
                                                     W, out.data_ptr<scalar_t>(), current_stream(features)),
                 "scatter_to_bev");
  });
  return out;
}

torch::Tensor scatter_backward(const torch::Tensor& grad_out, const torch::Tensor& coords) {
  const c10::cuda::CUDAGuard guard(grad_out.device());
  const int64_t V = coords.size(0), C = grad_out.size(1), H = grad_out.size(2), W = grad_out.size(3);
  torch::Tensor grad = torch::empty({V, C}, grad_out.options());
  AT_DISPATCH_FLOATING_TYPES(grad_out.scalar_type(), "scatter_to_bev_backward_cuda", [&] {
    check_launch(cuda_raw::scatter_backward<scalar_t>(grad_out.data_ptr<scalar_t>(), coords.data_ptr<int32_t>(), V, C,
                                                      H, W, grad.data_ptr<scalar_t>(), current_stream(grad_out)),
                 "scatter_to_bev");
  });
  return grad;
}

}  // namespace bevkd::kernels::cuda
