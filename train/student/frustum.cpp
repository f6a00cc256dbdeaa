#include "train/student/frustum.h"

#include <torch/linalg.h>

#include <cmath>

#include "base/error.h"

namespace bevkd::train::student {

void DepthBins::validate(const std::string& where) const {
  BEVKD_CHECK(std::isfinite(min) && std::isfinite(max) && std::isfinite(step), where,
              ": depth bins min/max/step must be finite");
  BEVKD_CHECK(min > 0, where, ": depth bins min must be > 0 m, got ", min);
  BEVKD_CHECK(max > min, where, ": depth bins max (", max, ") must exceed min (", min, ")");
  BEVKD_CHECK(step > 0, where, ": depth bins step must be > 0, got ", step);
  const double n = (max - min) / step;
  BEVKD_CHECK(std::fabs(n - std::round(n)) < 1e-6, where, ": depth bins [", min, ", ", max, ") are not a whole number of ",
              step, " m steps (", n, ")");
  BEVKD_CHECK(value == "center" || value == "start", where, ": depth bins value is '", value,
              "', expected 'center' or 'start'");
}

int64_t DepthBins::count() const { return static_cast<int64_t>(std::llround((max - min) / step)); }

double DepthBins::value_of(int64_t k) const { return start(k) + (value == "center" ? 0.5 * step : 0.0); }

int64_t DepthBins::index_of(double d) const {
  if (!(d >= min && d < max)) return -1;
  const auto k = static_cast<int64_t>(std::floor((d - min) / step));
  return k < count() ? k : count() - 1;  // d just below max with rounding
}

void FrustumSpec::validate(const std::string& where) const {
  bins.validate(where);
  BEVKD_CHECK(stride >= 1, where, ": stride must be >= 1, got ", stride);
  BEVKD_CHECK(image_height > 0 && image_width > 0 && image_height % stride == 0 && image_width % stride == 0, where,
              ": image ", image_height, "x", image_width, " (HxW) is not a positive multiple of the depth stride ",
              stride);
}

torch::Tensor make_frustum(const FrustumSpec& spec) {
  spec.validate("frustum");
  const int64_t D = spec.bins.count(), h = spec.feat_height(), w = spec.feat_width();
  const double s = static_cast<double>(spec.stride), half = (s - 1.0) / 2.0;
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  auto u = torch::arange(w, opts) * s + half;  // [w]
  auto v = torch::arange(h, opts) * s + half;  // [h]
  std::vector<double> dv(static_cast<size_t>(D));
  for (int64_t k = 0; k < D; ++k) dv[static_cast<size_t>(k)] = spec.bins.value_of(k);
  auto d = torch::tensor(dv, opts);  // [D]
  return torch::stack({u.view({1, 1, w}).expand({D, h, w}), v.view({1, h, 1}).expand({D, h, w}),
                       d.view({D, 1, 1}).expand({D, h, w})},
                      -1)
      .contiguous();
}

torch::Tensor frustum_points(const torch::Tensor& frustum, const torch::Tensor& intrinsics,
                             const torch::Tensor& cam2ego, const torch::Tensor& bda) {
  BEVKD_CHECK(frustum.dim() == 4 && frustum.size(3) == 3, "frustum_points: frustum must be [D, h, w, 3], got ",
              frustum.sizes());
  BEVKD_CHECK(intrinsics.dim() == 4 && intrinsics.size(2) == 3 && intrinsics.size(3) == 3,
              "frustum_points: intrinsics must be [B, N, 3, 3], got ", intrinsics.sizes());
  const int64_t B = intrinsics.size(0), N = intrinsics.size(1);
  BEVKD_CHECK(cam2ego.dim() == 4 && cam2ego.size(0) == B && cam2ego.size(1) == N && cam2ego.size(2) == 4 &&
                  cam2ego.size(3) == 4,
              "frustum_points: cam2ego must be [", B, ", ", N, ", 4, 4] like the intrinsics, got ", cam2ego.sizes());
  BEVKD_CHECK(bda.dim() == 3 && bda.size(0) == B && bda.size(1) == 3 && bda.size(2) == 3,
              "frustum_points: bda must be [", B, ", 3, 3], got ", bda.sizes());
  torch::NoGradGuard no_grad;
  const auto dev = frustum.device();
  auto f64 = [&](const torch::Tensor& t) { return t.detach().to(dev, torch::kFloat64); };
  const auto ak = f64(intrinsics), c2e = f64(cam2ego), b = f64(bda);
  // A K must be invertible; its determinant is fx·fy·det(A) (pixels²), far from 0 for a camera.
  const auto det = torch::linalg::det(ak).abs();
  BEVKD_CHECK(det.min().item<double>() > 1e-9, "frustum_points: a camera's intrinsics (A K) are singular (|det| = ",
              det.min().item<double>(), ")");
  // One 3x3 map and one offset per camera: p' = d · (bda R (AK)^-1) [u, v, 1] + bda t.
  const auto R = c2e.slice(2, 0, 3).slice(3, 0, 3);                 // [B, N, 3, 3]
  const auto t = c2e.slice(2, 0, 3).select(3, 3);                   // [B, N, 3]
  const auto bda_n = b.unsqueeze(1);                                // [B, 1, 3, 3]
  const auto M = torch::matmul(torch::matmul(bda_n, R), torch::linalg::inv(ak));  // [B, N, 3, 3]
  const auto T = torch::matmul(bda_n, t.unsqueeze(-1)).squeeze(-1);              // [B, N, 3]
  const auto fr = frustum.to(torch::kFloat64);
  const auto d = fr.select(3, 2).unsqueeze(-1);                                   // [D, h, w, 1]
  const auto uv1 = torch::cat({fr.slice(3, 0, 2) * d, d}, 3);                     // [D, h, w, 3] = d·[u, v, 1]
  auto pts = torch::einsum("bnij,dhwj->bndhwi", {M, uv1}) + T.view({B, N, 1, 1, 1, 3});  // [B, N, D, h, w, 3]
  return pts.to(torch::kFloat32).contiguous();
}

}  // namespace bevkd::train::student
