#include "kernels/scatter.h"

#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include "kernels/detail/check.h"
#ifdef BEVKD_WITH_CUDA
#include "kernels/cuda/ops.h"
#endif

namespace bevkd::kernels {
namespace {

constexpr const char* kScatterOp = "scatter_to_bev";

// Parallel over channels: every thread owns whole output planes, so no two threads add into
// the same element and the sum order is the pillar order (deterministic).
torch::Tensor forward_cpu(const torch::Tensor& features, const torch::Tensor& coords, int64_t B, int64_t H, int64_t W) {
  const int64_t V = features.size(0), C = features.size(1);
  torch::Tensor out = torch::zeros({B, C, H, W}, features.options());
  const int32_t* co = coords.data_ptr<int32_t>();
  AT_DISPATCH_FLOATING_TYPES(features.scalar_type(), "scatter_to_bev_cpu", [&] {
    const scalar_t* f = features.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    at::parallel_for(0, C, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t v = 0; v < V; ++v) {
        const int64_t b = co[4 * v], y = co[4 * v + 2], x = co[4 * v + 3];
        for (int64_t c = c0; c < c1; ++c) o[((b * C + c) * H + y) * W + x] += f[v * C + c];
      }
    });
  });
  return out;
}

torch::Tensor backward_cpu(const torch::Tensor& grad_out, const torch::Tensor& coords) {
  const int64_t V = coords.size(0), C = grad_out.size(1), H = grad_out.size(2), W = grad_out.size(3);
  torch::Tensor grad = torch::empty({V, C}, grad_out.options());
  const int32_t* co = coords.data_ptr<int32_t>();
  AT_DISPATCH_FLOATING_TYPES(grad_out.scalar_type(), "scatter_to_bev_backward_cpu", [&] {
    const scalar_t* g = grad_out.data_ptr<scalar_t>();
    scalar_t* o = grad.data_ptr<scalar_t>();
    at::parallel_for(0, V, 1024, [&](int64_t v0, int64_t v1) {
      for (int64_t v = v0; v < v1; ++v) {
        const int64_t b = co[4 * v], y = co[4 * v + 2], x = co[4 * v + 3];
        for (int64_t c = 0; c < C; ++c) o[v * C + c] = g[((b * C + c) * H + y) * W + x];
      }
    });
  });
  return grad;
}

torch::Tensor forward_any(const torch::Tensor& features, const torch::Tensor& coords, int64_t B, int64_t H, int64_t W) {
  if (features.is_cuda()) {
#ifdef BEVKD_WITH_CUDA
    return cuda::scatter_forward(features, coords, B, H, W);
#else
    detail::fail_no_cuda(kScatterOp, features);
#endif
  }
  return forward_cpu(features, coords, B, H, W);
}

torch::Tensor backward_any(const torch::Tensor& grad_out, const torch::Tensor& coords) {
  if (grad_out.is_cuda()) {
#ifdef BEVKD_WITH_CUDA
    return cuda::scatter_backward(grad_out, coords);
#else
    detail::fail_no_cuda(kScatterOp, grad_out);
#endif
  }
  return backward_cpu(grad_out, coords);
}

class ScatterFunction : public torch::autograd::Function<ScatterFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& features,
                               const torch::Tensor& coords, int64_t B, int64_t H, int64_t W) {
    ctx->save_for_backward({coords});
    return forward_any(features, coords, B, H, W);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const torch::Tensor coords = ctx->get_saved_variables()[0];
    return {backward_any(grads[0].contiguous(), coords), torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor()};
  }
};

// Range check of every coordinate row (one device -> host copy of 8 numbers when all pass).
void check_coords(const torch::Tensor& coords, int64_t B, int64_t H, int64_t W) {
  if (coords.size(0) == 0) return;
  const torch::Tensor lo =
      torch::tensor({int64_t{0}, int64_t{0}, int64_t{0}, int64_t{0}}, coords.options().dtype(torch::kInt64));
  const torch::Tensor hi = torch::tensor({B, int64_t{1}, H, W}, lo.options());
  const torch::Tensor c = coords.to(torch::kInt64);
  const torch::Tensor bad_rows = ((c < lo) | (c >= hi)).any(1);
  if (!bad_rows.any().item<bool>()) return;
  const int64_t row = bad_rows.nonzero()[0][0].item<int64_t>();
  const torch::Tensor r = c[row].cpu();
  BEVKD_FAIL(kScatterOp, ": coords row ", row, " is (batch ", r[0].item<int64_t>(), ", z ", r[1].item<int64_t>(), ", y ",
             r[2].item<int64_t>(), ", x ", r[3].item<int64_t>(), "), outside the canvas (batch < ", B, ", z = 0, y < ",
             H, ", x < ", W, ")");
}

}  // namespace

torch::Tensor scatter_to_bev(const torch::Tensor& features, const torch::Tensor& coords, int64_t batch_size,
                             int64_t height, int64_t width) {
  detail::check_arg(features.defined() && features.dim() == 2 && detail::is_float(features), kScatterOp, "features",
                    "[V, C] float32 or float64", features);
  detail::check_arg(coords.defined() && coords.dim() == 2 && coords.size(1) == 4 &&
                        coords.scalar_type() == torch::kInt32 && coords.size(0) == features.size(0),
                    kScatterOp, "coords", "[V, 4] int32 (batch, z, y, x) with V = features.size(0)", coords);
  detail::check_same_device(kScatterOp, "features", features, "coords", coords);
  BEVKD_CHECK(batch_size >= 1 && height >= 1 && width >= 1, kScatterOp, ": the canvas must be non-empty, found batch ",
              batch_size, ", height ", height, ", width ", width);
  check_coords(coords, batch_size, height, width);
  return ScatterFunction::apply(features.contiguous(), coords.contiguous(), batch_size, height, width);
}

}  // namespace bevkd::kernels
