#include "kernels/cuda/launch_util.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/raw_ops.h"

namespace bevkd::kernels::cuda {

torch::Tensor deform_attn_forward(const torch::Tensor& value, const torch::Tensor& locations,
                                  const torch::Tensor& weights, const detail::DeformAttnShape& s) {
  const c10::cuda::CUDAGuard guard(value.device());
  torch::Tensor out = torch::empty({s.B, s.Q, s.M * s.Dh}, value.options());
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "deform_attn_cuda", [&] {
    check_launch(cuda_raw::deform_attn_forward<scalar_t>(value.data_ptr<scalar_t>(), locations.data_ptr<scalar_t>(),
                                                         weights.data_ptr<scalar_t>(), s, out.data_ptr<scalar_t>(),
                                                         current_stream(value)),
                 "deform_attn");
  });
  return out;
}

std::array<torch::Tensor, 3> deform_attn_backward(const torch::Tensor& grad_out, const torch::Tensor& value,
                                                  const torch::Tensor& locations, const torch::Tensor& weights,
                                                  const detail::DeformAttnShape& s) {
  const c10::cuda::CUDAGuard guard(value.device());
  torch::Tensor gv = torch::zeros_like(value), gl = torch::empty_like(locations), ga = torch::empty_like(weights);
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "deform_attn_backward_cuda", [&] {
    check_launch(cuda_raw::deform_attn_backward<scalar_t>(grad_out.data_ptr<scalar_t>(), value.data_ptr<scalar_t>(),
                                                          locations.data_ptr<scalar_t>(), weights.data_ptr<scalar_t>(),
                                                          s, gv.data_ptr<scalar_t>(), gl.data_ptr<scalar_t>(),
                                                          ga.data_ptr<scalar_t>(), current_stream(value)),
                 "deform_attn backward");
  });
  return {gv, gl, ga};
}

}  // namespace bevkd::kernels::cuda
