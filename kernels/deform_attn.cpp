#include "kernels/deform_attn.h"

#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include <array>

#include "kernels/detail/check.h"
#include "kernels/detail/deform_attn_math.h"
#ifdef BEVKD_WITH_CUDA
#include "kernels/cuda/ops.h"
#endif

namespace bevkd::kernels {
namespace {

constexpr const char* kDeformAttnOp = "deform_attn";

using detail::DeformAttnShape;

DeformAttnShape shape_of(const torch::Tensor& value, int64_t H, int64_t W, const torch::Tensor& locations) {
  return {value.size(0), H, W, value.size(2), value.size(3), locations.size(1), locations.size(3)};
}

// One task per (batch, query) row; each writes only its own output row.
torch::Tensor forward_cpu(const torch::Tensor& value, const torch::Tensor& loc, const torch::Tensor& attn,
                          const DeformAttnShape& s) {
  torch::Tensor out = torch::zeros({s.B, s.Q, s.M * s.Dh}, value.options());
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "deform_attn_cpu", [&] {
    const scalar_t* v = value.data_ptr<scalar_t>();
    const scalar_t* l = loc.data_ptr<scalar_t>();
    const scalar_t* a = attn.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    at::parallel_for(0, s.B * s.Q, 16, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t b = r / s.Q;
        for (int64_t m = 0; m < s.M; ++m) {
          scalar_t* orow = o + (r * s.M + m) * s.Dh;
          for (int64_t k = 0; k < s.K; ++k) {
            const int64_t p = (r * s.M + m) * s.K + k;
            const auto t = detail::bilinear_taps<scalar_t>(l[2 * p], l[2 * p + 1], s.H, s.W);
            const scalar_t ak = a[p];
            for (int c = 0; c < 4; ++c) {
              if (t.cell[c] < 0) continue;
              const scalar_t f = ak * t.w[c];
              const scalar_t* vrow = v + detail::value_offset(s, b, t.cell[c], m);
              for (int64_t d = 0; d < s.Dh; ++d) orow[d] += f * vrow[d];
            }
          }
        }
      }
    });
  });
  return out;
}

// One task per (batch, head): it owns value-gradient slice [b, :, m, :] and adds into it in
// query order (deterministic); it also writes the location and weight gradients of its
// (b, ·, m, ·) points, which no other task touches.
std::array<torch::Tensor, 3> backward_cpu(const torch::Tensor& grad_out, const torch::Tensor& value,
                                          const torch::Tensor& loc, const torch::Tensor& attn,
                                          const DeformAttnShape& s) {
  torch::Tensor gv = torch::zeros_like(value), gl = torch::zeros_like(loc), ga = torch::zeros_like(attn);
  AT_DISPATCH_FLOATING_TYPES(value.scalar_type(), "deform_attn_backward_cpu", [&] {
    const scalar_t* g = grad_out.data_ptr<scalar_t>();
    const scalar_t* v = value.data_ptr<scalar_t>();
    const scalar_t* l = loc.data_ptr<scalar_t>();
    const scalar_t* a = attn.data_ptr<scalar_t>();
    scalar_t* gvp = gv.data_ptr<scalar_t>();
    scalar_t* glp = gl.data_ptr<scalar_t>();
    scalar_t* gap = ga.data_ptr<scalar_t>();
    at::parallel_for(0, s.B * s.M, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t task = t0; task < t1; ++task) {
        const int64_t b = task / s.M, m = task % s.M;
        for (int64_t q = 0; q < s.Q; ++q) {
          const int64_t row = b * s.Q + q;
          const scalar_t* grow = g + (row * s.M + m) * s.Dh;
          for (int64_t k = 0; k < s.K; ++k) {
            const int64_t p = (row * s.M + m) * s.K + k;
            const auto t = detail::bilinear_taps<scalar_t>(l[2 * p], l[2 * p + 1], s.H, s.W);
            const scalar_t ak = a[p];
            scalar_t g_attn = 0, g_px = 0, g_py = 0;
            for (int c = 0; c < 4; ++c) {
              if (t.cell[c] < 0) continue;
              const int64_t off = detail::value_offset(s, b, t.cell[c], m);
              const scalar_t* vrow = v + off;
              scalar_t* gvrow = gvp + off;
              const scalar_t f = ak * t.w[c];
              scalar_t dot = 0;
              for (int64_t d = 0; d < s.Dh; ++d) {
                dot += grow[d] * vrow[d];
                gvrow[d] += f * grow[d];
              }
              g_attn += t.w[c] * dot;
              g_px += t.dw_dpx[c] * dot;
              g_py += t.dw_dpy[c] * dot;
            }
            gap[p] = g_attn;
            glp[2 * p] = ak * g_px * static_cast<scalar_t>(s.W);
            glp[2 * p + 1] = ak * g_py * static_cast<scalar_t>(s.H);
          }
        }
      }
    });
  });
  return {gv, gl, ga};
}

torch::Tensor forward_any(const torch::Tensor& value, const torch::Tensor& loc, const torch::Tensor& attn,
                          const DeformAttnShape& s) {
  if (value.is_cuda()) {
#ifdef BEVKD_WITH_CUDA
    return cuda::deform_attn_forward(value, loc, attn, s);
#else
    detail::fail_no_cuda(kDeformAttnOp, value);
#endif
  }
  return forward_cpu(value, loc, attn, s);
}

std::array<torch::Tensor, 3> backward_any(const torch::Tensor& grad_out, const torch::Tensor& value,
                                          const torch::Tensor& loc, const torch::Tensor& attn,
                                          const DeformAttnShape& s) {
  if (value.is_cuda()) {
#ifdef BEVKD_WITH_CUDA
    return cuda::deform_attn_backward(grad_out, value, loc, attn, s);
#else
    detail::fail_no_cuda(kDeformAttnOp, value);
#endif
  }
  return backward_cpu(grad_out, value, loc, attn, s);
}

class DeformAttnFunction : public torch::autograd::Function<DeformAttnFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& value,
                               const torch::Tensor& locations, const torch::Tensor& weights, int64_t H, int64_t W) {
    ctx->save_for_backward({value, locations, weights});
    ctx->saved_data["H"] = H;
    ctx->saved_data["W"] = W;
    return forward_any(value, locations, weights, shape_of(value, H, W, locations));
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const int64_t H = ctx->saved_data["H"].toInt(), W = ctx->saved_data["W"].toInt();
    const auto [gv, gl, ga] =
        backward_any(grads[0].contiguous(), saved[0], saved[1], saved[2], shape_of(saved[0], H, W, saved[1]));
    return {gv, gl, ga, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor deform_attn(const torch::Tensor& value, int64_t height, int64_t width, const torch::Tensor& locations,
                          const torch::Tensor& weights) {
  detail::check_arg(value.defined() && value.dim() == 4 && detail::is_float(value), kDeformAttnOp, "value",
                    "[B, H·W, M, Dh] float32 or float64", value);
  BEVKD_CHECK(height >= 1 && width >= 1 && value.size(1) == height * width, kDeformAttnOp, ": value has ", value.size(1),
              " cells along dim 1 but the map is ", height, " x ", width, " (", height * width, " cells)");
  const int64_t B = value.size(0), M = value.size(2);
  detail::check_arg(locations.defined() && locations.dim() == 5 && locations.size(0) == B && locations.size(2) == M &&
                        locations.size(4) == 2,
                    kDeformAttnOp, "locations", "[B, Q, M, K, 2] with B and M of value", locations);
  const int64_t Q = locations.size(1), K = locations.size(3);
  detail::check_arg(weights.defined() && weights.dim() == 4 && weights.size(0) == B && weights.size(1) == Q &&
                        weights.size(2) == M && weights.size(3) == K,
                    kDeformAttnOp, "weights", "[B, Q, M, K] with B, Q, M, K of locations", weights);
  BEVKD_CHECK(locations.scalar_type() == value.scalar_type() && weights.scalar_type() == value.scalar_type(), kDeformAttnOp,
              ": value, locations and weights need one dtype, found ", detail::describe(value), ", ",
              detail::describe(locations), ", ", detail::describe(weights));
  detail::check_same_device(kDeformAttnOp, "value", value, "locations", locations);
  detail::check_same_device(kDeformAttnOp, "value", value, "weights", weights);
  return DeformAttnFunction::apply(value.contiguous(), locations.contiguous(), weights.contiguous(), height, width);
}

torch::Tensor deform_attn_value_from_bev(const torch::Tensor& bev, int64_t heads) {
  detail::check_arg(bev.defined() && bev.dim() == 4, "deform_attn_value_from_bev", "bev", "[B, C, H, W]", bev);
  BEVKD_CHECK(heads >= 1 && bev.size(1) % heads == 0, "deform_attn_value_from_bev: ", bev.size(1),
              " channels do not split into ", heads, " heads");
  const int64_t B = bev.size(0), C = bev.size(1), H = bev.size(2), W = bev.size(3);
  return bev.reshape({B, C, H * W}).transpose(1, 2).reshape({B, H * W, heads, C / heads}).contiguous();
}

}  // namespace bevkd::kernels
