#include "kernels/iou.h"

#include <ATen/Parallel.h>

#include "kernels/detail/box_math.h"
#include "kernels/detail/check.h"
#ifdef BEVKD_WITH_CUDA
#include "kernels/cuda/ops.h"
#endif

namespace bevkd::kernels {
namespace {

void check_boxes(const char* op, const char* name, const torch::Tensor& t) {
  detail::check_arg(t.defined() && t.dim() == 2 && (t.size(1) == 7 || t.size(1) == 9) && detail::is_float(t), op, name,
                    "[N, 7] or [N, 9] float32/float64 (x, y, z, l, w, h, yaw[, vx, vy])", t);
}

torch::Tensor iou_cpu(const torch::Tensor& a, const torch::Tensor& b, detail::OverlapKind kind, bool aligned) {
  const int64_t N = a.size(0), M = b.size(0), sa = a.size(1), sb = b.size(1);
  torch::Tensor out = aligned ? torch::empty({N}, a.options()) : torch::empty({N, M}, a.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "iou_cpu", [&] {
    const scalar_t* pa = a.data_ptr<scalar_t>();
    const scalar_t* pb = b.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    const int64_t total = aligned ? N : N * M;
    at::parallel_for(0, total, 256, [&](int64_t k0, int64_t k1) {
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t i = aligned ? k : k / M, j = aligned ? k : k % M;
        const scalar_t* x = pa + i * sa;
        const scalar_t* y = pb + j * sb;
        o[k] = static_cast<scalar_t>(detail::box_overlap(kind, x, y));
      }
    });
  });
  return out;
}

torch::Tensor iou_any(const char* op, const torch::Tensor& a, const torch::Tensor& b, detail::OverlapKind kind,
                      bool aligned) {
  check_boxes(op, "a", a);
  check_boxes(op, "b", b);
  BEVKD_CHECK(a.scalar_type() == b.scalar_type(), op, ": a is ", detail::describe(a), " but b is ", detail::describe(b),
              "; both need the same dtype");
  detail::check_same_device(op, "a", a, "b", b);
  if (aligned)
    BEVKD_CHECK(a.size(0) == b.size(0), op, ": the aligned form needs as many boxes in b as in a, found ", a.size(0),
                " and ", b.size(0));
  const torch::Tensor ac = a.contiguous(), bc = b.contiguous();
  if (ac.is_cuda()) {
#ifdef BEVKD_WITH_CUDA
    return cuda::iou(ac, bc, kind, aligned);
#else
    detail::fail_no_cuda(op, ac);
#endif
  }
  return iou_cpu(ac, bc, kind, aligned);
}

}  // namespace

using detail::OverlapKind;

torch::Tensor bev_iou(const torch::Tensor& a, const torch::Tensor& b) {
  return iou_any("bev_iou", a, b, OverlapKind::kBevIou, false);
}
torch::Tensor iou_3d(const torch::Tensor& a, const torch::Tensor& b) {
  return iou_any("iou_3d", a, b, OverlapKind::kIou3d, false);
}
torch::Tensor bev_giou(const torch::Tensor& a, const torch::Tensor& b) {
  return iou_any("bev_giou", a, b, OverlapKind::kBevGiou, false);
}
torch::Tensor bev_iou_aligned(const torch::Tensor& a, const torch::Tensor& b) {
  return iou_any("bev_iou_aligned", a, b, OverlapKind::kBevIou, true);
}
torch::Tensor iou_3d_aligned(const torch::Tensor& a, const torch::Tensor& b) {
  return iou_any("iou_3d_aligned", a, b, OverlapKind::kIou3d, true);
}
torch::Tensor bev_giou_aligned(const torch::Tensor& a, const torch::Tensor& b) {
  return iou_any("bev_giou_aligned", a, b, OverlapKind::kBevGiou, true);
}

}  // namespace bevkd::kernels
