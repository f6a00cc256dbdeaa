#include "kernels/cuda/launch_util.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/raw_ops.h"

namespace bevkd::kernels::cuda {

torch::Tensor gaussian_draw(const torch::Tensor& boxes, const torch::Tensor& labels, int64_t K,
                            const detail::GaussianGrid& grid) {
  const c10::cuda::CUDAGuard guard(boxes.device());
  torch::Tensor heat = torch::zeros({K, grid.height, grid.width}, boxes.options());
  check_launch(cuda_raw::gaussian_draw(boxes.data_ptr<float>(), boxes.size(0), boxes.size(1),
                                       labels.defined() ? labels.data_ptr<int64_t>() : nullptr, grid,
                                       heat.data_ptr<float>(), current_stream(boxes)),
               "gaussian_heatmaps");
  return heat;
}

}  // namespace bevkd::kernels::cuda
