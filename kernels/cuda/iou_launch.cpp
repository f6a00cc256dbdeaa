#include "kernels/cuda/launch_util.h"
#include "kernels/cuda/ops.h"
#include "kernels/cuda/raw_ops.h"

namespace bevkd::kernels::cuda {

torch::Tensor iou(const torch::Tensor& a, const torch::Tensor& b, detail::OverlapKind kind, bool aligned) {
  const c10::cuda::CUDAGuard guard(a.device());
  const int64_t N = a.size(0), M = b.size(0);
  torch::Tensor out = aligned ? torch::empty({N}, a.options()) : torch::empty({N, M}, a.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "iou_cuda", [&] {
    check_launch(cuda_raw::iou<scalar_t>(a.data_ptr<scalar_t>(), N, a.size(1), b.data_ptr<scalar_t>(), M, b.size(1),
                                         kind, aligned, out.data_ptr<scalar_t>(), current_stream(a)),
                 kind == detail::OverlapKind::kIou3d     ? "iou_3d"
                 : kind == detail::OverlapKind::kBevGiou ? "bev_giou"
                                                         : "bev_iou");
  });
  return out;
}

torch::Tensor nms_mask(const torch::Tensor& boxes, const torch::Tensor& group, const torch::Tensor& threshold,
                       bool circle) {
  const c10::cuda::CUDAGuard guard(boxes.device());
  // Circle NMS reads x, y only; the shared-memory stage holds at most 9 values per box.
  const torch::Tensor b = circle ? boxes.slice(1, 0, 2).contiguous() : boxes.contiguous();
  const int64_t K = b.size(0), words = (K + 63) / 64;
  torch::Tensor mask = torch::zeros({K, words}, boxes.options().dtype(torch::kInt64));
  AT_DISPATCH_FLOATING_TYPES(b.scalar_type(), "nms_mask_cuda", [&] {
    check_launch(cuda_raw::nms_mask<scalar_t>(
                     b.data_ptr<scalar_t>(), K, b.size(1), group.data_ptr<int64_t>(), threshold.data_ptr<double>(),
                     circle, reinterpret_cast<uint64_t*>(mask.data_ptr<int64_t>()), words, current_stream(b)),
                 circle ? "circle_nms" : "nms_bev");
  });
  return mask;
}

}  // namespace bevkd::kernels::cuda
