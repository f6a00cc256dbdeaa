#include "train/losses/fd3d.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "base/error.h"

namespace bevkd::train::losses {
namespace {

namespace F = torch::nn::functional;

bool is_float(const torch::Tensor& t) {
  return t.defined() && (t.scalar_type() == torch::kFloat32 || t.scalar_type() == torch::kFloat64);
}

std::string describe(const torch::Tensor& t) {
  return t.defined() ? cat(t.sizes(), " ", t.scalar_type(), " on ", t.device()) : std::string("an undefined tensor");
}

void check_bev(const char* op, const char* name, const torch::Tensor& t) {
  BEVKD_CHECK(is_float(t) && t.dim() == 4, op, ": ", name, " must be [B, C, H, W] float32/float64, found ",
              describe(t));
}

void check_mask(const char* op, const char* name, const torch::Tensor& m, const torch::Tensor& s) {
  BEVKD_CHECK(is_float(m) && m.dim() == 4 && m.size(0) == s.size(0) && m.size(1) == 1 && m.size(2) == s.size(2) &&
                  m.size(3) == s.size(3),
              op, ": ", name, " must be [B, 1, H, W] float on s's grid = [", s.size(0), ", 1, ", s.size(2), ", ",
              s.size(3), "], found ", describe(m));
}

}  // namespace

// ---- SMGD --------------------------------------------------------------------------------

void Fd3dSmgdOptions::validate() const {
  BEVKD_CHECK(std::isfinite(tau) && tau > 0, "fd3d SMGD options: tau must be > 0, found ", tau);
  BEVKD_CHECK(mask_ratio >= 0 && mask_ratio <= 1, "fd3d SMGD options: mask_ratio must be in [0, 1], found ",
              mask_ratio);
  BEVKD_CHECK(std::isfinite(weight) && weight >= 0, "fd3d SMGD options: weight must be >= 0, found ", weight);
}

torch::Tensor fd3d_instance_mask(const std::vector<torch::Tensor>& focal_boxes, const BevGrid& grid,
                                 const torch::TensorOptions& options) {
  const int64_t B = static_cast<int64_t>(focal_boxes.size()), H = grid.H, W = grid.W;
  BEVKD_CHECK(B >= 1, "fd3d_instance_mask: no samples (focal_boxes is empty)");
  torch::Tensor mask = torch::ones({B, 1, H, W}, torch::kFloat64);
  auto m = mask.accessor<double, 4>();
  for (int64_t b = 0; b < B; ++b) {
    const torch::Tensor& fb = focal_boxes[b];
    BEVKD_CHECK(is_float(fb) && fb.dim() == 2 && (fb.size(1) == 7 || fb.size(1) == 9), "fd3d_instance_mask: sample ", b,
                ": focal boxes must be [N, 7] or [N, 9] float (x, y, z, l, w, h, yaw[, vx, vy]), found ", describe(fb));
    const torch::Tensor boxes = fb.detach().to(torch::kCPU, torch::kFloat64).contiguous();
    const auto bx = boxes.accessor<double, 2>();
    for (int64_t n = 0; n < boxes.size(0); ++n) {
      const double x = bx[n][0], y = bx[n][1], hl = 0.5 * bx[n][3], hw = 0.5 * bx[n][4], yaw = bx[n][6];
      if (!(hl > 0 && hw > 0 && std::isfinite(x) && std::isfinite(y) && std::isfinite(hl) && std::isfinite(hw) &&
            std::isfinite(yaw)))
        continue;  // no footprint
      const double c = std::cos(yaw), s = std::sin(yaw), reach = std::hypot(hl, hw);
      // cells whose centre may lie within `reach` of the box centre
      const int64_t j0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(grid.col_of(x - reach) - 0.5)));
      const int64_t j1 = std::min<int64_t>(W - 1, static_cast<int64_t>(std::ceil(grid.col_of(x + reach) - 0.5)));
      const int64_t i0 = std::max<int64_t>(0, static_cast<int64_t>(std::floor(grid.row_of(y - reach) - 0.5)));
      const int64_t i1 = std::min<int64_t>(H - 1, static_cast<int64_t>(std::ceil(grid.row_of(y + reach) - 0.5)));
      for (int64_t i = i0; i <= i1; ++i)
        for (int64_t j = j0; j <= j1; ++j) {
          const double dx = grid.x_center(j) - x, dy = grid.y_center(i) - y;
          if (std::abs(c * dx + s * dy) <= hl && std::abs(-s * dx + c * dy) <= hw) m[b][0][i][j] = 0;
        }
    }
  }
  return mask.to(options);
}

torch::Tensor fd3d_selective_mask(const torch::Tensor& instance_mask, const torch::Tensor& u, double mask_ratio) {
  BEVKD_CHECK(is_float(instance_mask) && instance_mask.dim() == 4 && instance_mask.size(1) == 1,
              "fd3d_selective_mask: instance_mask must be [B, 1, H, W] float, found ", describe(instance_mask));
  BEVKD_CHECK(is_float(u) && u.sizes() == instance_mask.sizes(), "fd3d_selective_mask: u must be float with shape ",
              instance_mask.sizes(), " (instance_mask's), found ", describe(u));
  const torch::Tensor drawn_keep = (u.detach() >= mask_ratio).to(instance_mask.scalar_type());
  return torch::maximum(instance_mask.detach(), drawn_keep.to(instance_mask.device()));
}

Fd3dGeneratorImpl::Fd3dGeneratorImpl(int64_t student_channels, int64_t teacher_channels, bool upsample)
    : upsample_(upsample) {
  BEVKD_CHECK(student_channels >= 1 && teacher_channels >= 1, "fd3d generator: channel counts must be >= 1, found ",
              student_channels, " -> ", teacher_channels);
  if (upsample)
    deconv1_ = register_module(
        "deconv1", torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(student_channels, teacher_channels, 3)
                                                  .stride(2)
                                                  .padding(1)
                                                  .output_padding(1)));
  else
    conv1_ = register_module(
        "conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(student_channels, teacher_channels, 3).padding(1)));
  conv2_ = register_module(
      "conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(teacher_channels, teacher_channels, 3).padding(1)));
}

torch::Tensor Fd3dGeneratorImpl::forward(const torch::Tensor& x) {
  const torch::Tensor h = upsample_ ? deconv1_->forward(x) : conv1_->forward(x);
  return conv2_->forward(torch::relu(h));
}

torch::Tensor fd3d_smgd_kl(const torch::Tensor& generated, const torch::Tensor& t, double tau, double weight) {
  check_bev("fd3d SMGD", "generated", generated);
  BEVKD_CHECK(t.sizes() == generated.sizes() && t.scalar_type() == generated.scalar_type(),
              "fd3d SMGD: t must match the generated features ", describe(generated), ", found ", describe(t));
  BEVKD_CHECK(std::isfinite(tau) && tau > 0, "fd3d SMGD: tau must be > 0, found ", tau);
  const int64_t B = generated.size(0), C = generated.size(1), HW = generated.size(2) * generated.size(3);
  const torch::Tensor log_s = torch::log_softmax(generated.reshape({B, C, HW}) / tau, -1);
  const torch::Tensor log_t = torch::log_softmax(t.detach().reshape({B, C, HW}) / tau, -1);
  const torch::Tensor kl = (log_t.exp() * (log_t - log_s)).sum();
  return weight * tau * tau / static_cast<double>(C) * kl / static_cast<double>(B);
}

torch::Tensor fd3d_smgd(const torch::Tensor& s, const torch::Tensor& t, const torch::Tensor& instance_mask,
                        const torch::Tensor& u, Fd3dGenerator& generator, const Fd3dSmgdOptions& opts) {
  opts.validate();
  check_bev("fd3d SMGD", "s", s);
  check_bev("fd3d SMGD", "t", t);
  check_mask("fd3d SMGD", "instance_mask", instance_mask, s);
  check_mask("fd3d SMGD", "u", u, s);
  const torch::Tensor keep = fd3d_selective_mask(instance_mask, u, opts.mask_ratio).to(s.options());
  const torch::Tensor generated = generator->forward(s * keep);
  BEVKD_CHECK(generated.sizes() == t.sizes(), "fd3d SMGD: the generator turns s ", s.sizes(), " into ",
              generated.sizes(), " but t is ", t.sizes(),
              (generator->upsample() ? "" : " (a student grid half the teacher's needs upsample = true)"));
  return fd3d_smgd_kl(generated, t, opts.tau, opts.weight);
}

// ---- QFD ---------------------------------------------------------------------------------

Fd3dQfdOptions Fd3dQfdOptions::from_grid(const BevGrid& grid) {
  Fd3dQfdOptions o;
  o.bev_range = {grid.range[0], grid.range[1], grid.range[3], grid.range[4]};
  return o;
}

void Fd3dQfdOptions::validate() const {
  for (const double v : bev_range)
    BEVKD_CHECK(std::isfinite(v), "fd3d QFD options: bev_range must be finite, found ", v);
  BEVKD_CHECK(bev_range[2] > bev_range[0] && bev_range[3] > bev_range[1],
              "fd3d QFD options: bev_range must be [x_min, y_min, x_max, y_max] with min < max, found [", bev_range[0],
              ", ", bev_range[1], ", ", bev_range[2], ", ", bev_range[3], "]");
  BEVKD_CHECK(std::isfinite(weight) && weight >= 0, "fd3d QFD options: weight must be >= 0, found ", weight);
  BEVKD_CHECK(range_eps > 0, "fd3d QFD options: range_eps must be > 0, found ", range_eps);
}

torch::Tensor fd3d_qfd(const torch::Tensor& s, const torch::Tensor& t, const std::vector<torch::Tensor>& positions,
                       const torch::nn::Conv2d& adaptor, const Fd3dQfdOptions& opts) {
  constexpr const char* kOp = "fd3d QFD";
  opts.validate();
  check_bev(kOp, "s", s);
  check_bev(kOp, "t", t);
  const int64_t B = s.size(0), C = t.size(1);
  BEVKD_CHECK(t.size(0) == B && t.scalar_type() == s.scalar_type() && t.device() == s.device(), kOp, ": t ",
              describe(t), " does not go with s ", describe(s), " (same batch, dtype and device needed)");
  BEVKD_CHECK(static_cast<int64_t>(positions.size()) == B, kOp, ": ", positions.size(),
              " samples of focal positions for a batch of ", B);
  torch::Tensor as = s;
  if (adaptor.is_empty()) {
    BEVKD_CHECK(s.size(1) == C, kOp, ": s has ", s.size(1), " channels and t ", C,
                "; an adaptor (1x1 conv) is needed when they differ");
  } else {
    BEVKD_CHECK(adaptor->options.in_channels() == s.size(1) && adaptor->options.out_channels() == C, kOp,
                ": the adaptor maps ", adaptor->options.in_channels(), " -> ", adaptor->options.out_channels(),
                " channels, expected ", s.size(1), " -> ", C);
    as = adaptor.ptr()->forward(s);  // the holder is const, the module is not
  }
  const auto sample_opts =
      F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(false);
  const double x0 = opts.bev_range[0], y0 = opts.bev_range[1];
  const double sx = 2.0 / (opts.bev_range[2] - x0), sy = 2.0 / (opts.bev_range[3] - y0);
  torch::Tensor total = torch::zeros({}, s.options());
  int64_t num_focal = 0;
  for (int64_t b = 0; b < B; ++b) {
    const torch::Tensor& p = positions[b];
    BEVKD_CHECK(is_float(p) && p.dim() == 4 && p.size(3) == 2, kOp, ": sample ", b,
                ": positions must be [N, M, K, 2] float (x, y in metres), found ", describe(p));
    const int64_t N = p.size(0), MK = p.size(1) * p.size(2);
    if (N == 0) continue;
    BEVKD_CHECK(MK > 0, kOp, ": sample ", b, ": positions ", p.sizes(), " hold no sampling point per query");
    const torch::Tensor pos = p.detach().to(s.options());
    const torch::Tensor gx = (pos.select(-1, 0) - x0) * sx - 1, gy = (pos.select(-1, 1) - y0) * sy - 1;
    const torch::Tensor grid = torch::stack({gx, gy}, -1).reshape({1, N, MK, 2});
    // [1, C, N, MK] -> [N, MK, C]
    const torch::Tensor fs = F::grid_sample(as.slice(0, b, b + 1), grid, sample_opts).squeeze(0).permute({1, 2, 0});
    const torch::Tensor ft =
        F::grid_sample(t.detach().slice(0, b, b + 1), grid, sample_opts).squeeze(0).permute({1, 2, 0});
    auto normalise = [&](const torch::Tensor& f) {
      const torch::Tensor lo = torch::amin(f, {1, 2}, true), hi = torch::amax(f, {1, 2}, true);
      return (f - lo) / (hi - lo).clamp_min(opts.range_eps);
    };
    total = total + (normalise(fs) - normalise(ft)).pow(2).sum();
    num_focal += N;
  }
  if (num_focal == 0) return torch::zeros({}, s.options());
  return opts.weight * total / static_cast<double>(num_focal);
}

}  // namespace bevkd::train::losses
