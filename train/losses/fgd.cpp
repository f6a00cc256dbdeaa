#include "train/losses/fgd.h"

#include <torch/nn/functional/conv.h>
#include <torch/nn/functional/normalization.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/normalization.h>

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "train/losses/loss_util.h"

namespace bevkd::train::losses {

namespace F = torch::nn::functional;

FgdMasks fgd_masks(const std::vector<torch::Tensor>& boxes, const std::array<double, 2>& img_shape, int64_t H,
                   int64_t W, const torch::TensorOptions& options) {
  BEVKD_CHECK(img_shape[0] > 0 && img_shape[1] > 0, "fgd: img_shape [", img_shape[0], ", ", img_shape[1],
              "], expected positive [h, w]");
  BEVKD_CHECK(H > 0 && W > 0, "fgd: map size ", H, "x", W, ", expected positive");
  const int64_t N = static_cast<int64_t>(boxes.size());
  // Built on the CPU in float (upstream's area is float32 whatever the features' dtype).
  auto fg = torch::zeros({N, H, W}, torch::kFloat32);
  auto acc = fg.accessor<float, 3>();
  const auto img_h = static_cast<float>(img_shape[0]), img_w = static_cast<float>(img_shape[1]);
  const auto fH = static_cast<float>(H), fW = static_cast<float>(W);
  for (int64_t i = 0; i < N; ++i) {
    const auto& b = boxes[static_cast<size_t>(i)];
    if (!b.defined() || b.numel() == 0) continue;
    BEVKD_CHECK(b.dim() == 2 && b.size(1) == 4 && torch::isFloatingType(b.scalar_type()), "fgd: input gt_boxes_b", i,
                " has shape ", shape_str(b), ", expected [n,4] (x1, y1, x2, y2 in pixels)");
    const auto bc = b.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    const float* p = bc.data_ptr<float>();
    for (int64_t j = 0; j < bc.size(0); ++j) {
      const float x1 = p[4 * j] / img_w * fW, y1 = p[4 * j + 1] / img_h * fH;
      const float x2 = p[4 * j + 2] / img_w * fW, y2 = p[4 * j + 3] / img_h * fH;
      if (!(std::isfinite(x1) && std::isfinite(y1) && std::isfinite(x2) && std::isfinite(y2))) continue;
      const auto wmin = static_cast<int64_t>(std::floor(x1)), wmax = static_cast<int64_t>(std::ceil(x2));
      const auto hmin = static_cast<int64_t>(std::floor(y1)), hmax = static_cast<int64_t>(std::ceil(y2));
      // Unclipped extents (upstream's int32 arithmetic); an empty extent marks nothing.
      const int64_t rows = hmax + 1 - hmin, cols = wmax + 1 - wmin;
      if (rows <= 0 || cols <= 0) continue;
      const float area = (1.0f / static_cast<float>(rows)) / static_cast<float>(cols);
      const int64_t r0 = std::max<int64_t>(hmin, 0), r1 = std::min<int64_t>(hmax + 1, H);
      const int64_t c0 = std::max<int64_t>(wmin, 0), c1 = std::min<int64_t>(wmax + 1, W);
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) acc[i][r][c] = std::max(acc[i][r][c], area);
    }
  }
  const auto fg_out = fg.to(options);
  auto bg = (fg_out <= 0).to(options.dtype());
  const auto count = bg.sum({1, 2}, /*keepdim=*/true);
  bg = torch::where(count > 0, bg / count.clamp_min(1), bg);
  return {fg_out, bg};
}

torch::Tensor fgd_cell_boxes(const torch::Tensor& boxes, const BevGrid& grid) {
  const auto corners = box_bev_corners(boxes);  // [K, 4, 2] float32
  const auto lo = std::get<0>(corners.min(1)), hi = std::get<0>(corners.max(1));
  const auto x_min = static_cast<float>(grid.range[0]), y_min = static_cast<float>(grid.range[1]);
  const auto dx = static_cast<float>(grid.dx), dy = static_cast<float>(grid.dy);
  return torch::stack({(lo.select(1, 0) - x_min) / dx, (lo.select(1, 1) - y_min) / dy, (hi.select(1, 0) - x_min) / dx,
                       (hi.select(1, 1) - y_min) / dy},
                      1);
}

FgdMasks fgd_masks_bev(const std::vector<torch::Tensor>& boxes, const BevGrid& grid,
                       const torch::TensorOptions& options) {
  std::vector<torch::Tensor> cells;
  cells.reserve(boxes.size());
  for (size_t b = 0; b < boxes.size(); ++b) {
    const auto& bx = boxes[b];
    if (!bx.defined() || bx.numel() == 0) {
      cells.emplace_back();
      continue;
    }
    BEVKD_CHECK(bx.dim() == 2 && bx.size(1) >= 7, "fgd: boxes of sample ", b, " have shape ", shape_str(bx),
                ", expected [K,9] (x, y, z, l, w, h, yaw, vx, vy)");
    cells.push_back(fgd_cell_boxes(bx.detach().to(torch::kCPU), grid));
  }
  return fgd_masks(cells, {static_cast<double>(grid.H), static_cast<double>(grid.W)}, grid.H, grid.W, options);
}

std::pair<torch::Tensor, torch::Tensor> fgd_attention(const torch::Tensor& x, double temp) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const auto value = x.abs();
  const auto fea_map = value.mean(1, /*keepdim=*/true);
  const auto spatial = (static_cast<double>(H * W) * torch::softmax((fea_map / temp).view({N, -1}), 1)).view({N, H, W});
  const auto channel_map = value.mean(2).mean(2);
  const auto channel = static_cast<double>(C) * torch::softmax(channel_map / temp, 1);
  return {spatial, channel};
}

torch::Tensor fgd_global_context(const torch::Tensor& x, const FgdGlobalContextParams& p) {
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  const auto dt = x.scalar_type();
  const auto logits = F::conv2d(x, p.conv_mask_w.to(dt), F::Conv2dFuncOptions().bias(p.conv_mask_b.to(dt)));
  const auto weights = torch::softmax(logits.view({N, 1, HW}), 2).unsqueeze(-1);       // [N, 1, HW, 1]
  const auto context = torch::matmul(x.view({N, C, HW}).unsqueeze(1), weights).view({N, C, 1, 1});
  auto a = F::conv2d(context, p.add_w1.to(dt), F::Conv2dFuncOptions().bias(p.add_b1.to(dt)));
  a = F::layer_norm(a, F::LayerNormFuncOptions({a.size(1), 1, 1}).weight(p.ln_w.to(dt)).bias(p.ln_b.to(dt)).eps(1e-5));
  a = torch::relu(a);
  a = F::conv2d(a, p.add_w2.to(dt), F::Conv2dFuncOptions().bias(p.add_b2.to(dt)));
  return x + a;
}

namespace {

void check_shape(const torch::Tensor& p, const char* name, c10::IntArrayRef shape) {
  BEVKD_CHECK(p.defined() && p.sizes() == shape, "fgd: input ", name, " has shape ", shape_str(p), ", expected ",
              shape);
}

void check_gc(const FgdGlobalContextParams& p, int64_t C, const char* side) {
  const int64_t h = C / 2;
  const std::string s(side);
  check_shape(p.conv_mask_w, ("conv_mask_" + s + "_w").c_str(), {1, C, 1, 1});
  check_shape(p.conv_mask_b, ("conv_mask_" + s + "_b").c_str(), {1});
  check_shape(p.add_w1, ("add_" + s + "_w1").c_str(), {h, C, 1, 1});
  check_shape(p.add_b1, ("add_" + s + "_b1").c_str(), {h});
  check_shape(p.ln_w, ("add_" + s + "_ln_w").c_str(), {h, 1, 1});
  check_shape(p.ln_b, ("add_" + s + "_ln_b").c_str(), {h, 1, 1});
  check_shape(p.add_w2, ("add_" + s + "_w2").c_str(), {C, h, 1, 1});
  check_shape(p.add_b2, ("add_" + s + "_b2").c_str(), {C});
}

}  // namespace

FgdLoss fgd_loss(const torch::Tensor& s, const torch::Tensor& t, const FgdMasks& masks, const FgdParams& params,
                 const FgdOptions& opts) {
  check_float_tensor(s, "fgd", "s", 4, "[N,Cs,H,W]");
  const int64_t N = s.size(0), Cs = s.size(1), H = s.size(2), W = s.size(3);
  BEVKD_CHECK(t.defined() && t.dim() == 4 && t.size(0) == N && t.size(2) == H && t.size(3) == W &&
                  torch::isFloatingType(t.scalar_type()),
              "fgd: input t has shape ", shape_str(t), ", expected [N,C,H,W] with N,H,W = ", N, ",", H, ",", W);
  const int64_t C = t.size(1);
  BEVKD_CHECK(C >= 2, "fgd: the teacher map has ", C, " channels, expected >= 2 (the context block halves them)");
  BEVKD_CHECK(opts.temp > 0, "fgd: temp ", opts.temp, ", expected > 0");
  if (Cs != C) {
    check_shape(params.align_w, "align_w", {C, Cs, 1, 1});
    check_shape(params.align_b, "align_b", {C});
  } else {
    BEVKD_CHECK(!params.align_w.defined() && !params.align_b.defined(), "fgd: input align_w/align_b given but Cs = C = ",
                C, " (the adaptor exists only when the channel counts differ)");
  }
  check_gc(params.gc_s, C, "s");
  check_gc(params.gc_t, C, "t");
  check_shape(masks.fg, "mask_fg", {N, H, W});
  check_shape(masks.bg, "mask_bg", {N, H, W});

  const auto dt = s.scalar_type();
  auto x = s;
  if (Cs != C) x = F::conv2d(x, params.align_w.to(dt), F::Conv2dFuncOptions().bias(params.align_b.to(dt)));
  const auto tt = t.detach().to(s.device(), dt);
  const auto n = static_cast<double>(N);

  const auto [s_att_t, c_att_t] = fgd_attention(tt, opts.temp);
  const auto [s_att_s, c_att_s] = fgd_attention(x, opts.temp);
  const auto mfg = masks.fg.to(s.device(), dt).unsqueeze(1).sqrt();
  const auto mbg = masks.bg.to(s.device(), dt).unsqueeze(1).sqrt();
  const auto sqrt_s = s_att_t.unsqueeze(1).sqrt();
  const auto sqrt_c = c_att_t.unsqueeze(-1).unsqueeze(-1).sqrt();
  const auto fea_t = tt * sqrt_s * sqrt_c;
  const auto fea_s = x * sqrt_s * sqrt_c;

  FgdLoss out;
  out.fg = (fea_s * mfg - fea_t * mfg).square().sum() / n;
  out.bg = (fea_s * mbg - fea_t * mbg).square().sum() / n;
  out.mask = (c_att_s - c_att_t).abs().sum() / n + (s_att_s - s_att_t).abs().sum() / n;
  out.rela = (fgd_global_context(x, params.gc_s) - fgd_global_context(tt, params.gc_t)).square().sum() / n;
  out.loss = opts.alpha * out.fg + opts.beta * out.bg + opts.gamma * out.mask + opts.lambda * out.rela;
  return out;
}

FgdLoss fgd_loss(const torch::Tensor& s, const torch::Tensor& t, const std::vector<torch::Tensor>& boxes_px,
                 const std::array<double, 2>& img_shape, const FgdParams& params, const FgdOptions& opts) {
  check_float_tensor(s, "fgd", "s", 4, "[N,Cs,H,W]");
  BEVKD_CHECK(static_cast<int64_t>(boxes_px.size()) == s.size(0), "fgd: ", boxes_px.size(),
              " box sets for a batch of ", s.size(0), " (one [n_i,4] tensor per sample, n_i may be 0)");
  const auto masks = fgd_masks(boxes_px, img_shape, s.size(2), s.size(3), s.options());
  return fgd_loss(s, t, masks, params, opts);
}

FgdDistillerImpl::FgdDistillerImpl(int64_t student_channels, int64_t teacher_channels, FgdOptions opts)
    : opts_(opts) {
  BEVKD_CHECK(student_channels > 0 && teacher_channels >= 2, "fgd: channels ", student_channels, " -> ",
              teacher_channels, ", expected a positive student count and >= 2 teacher channels");
  const int64_t C = teacher_channels, h = C / 2;
  using torch::nn::Conv2d;
  using torch::nn::Conv2dOptions;
  if (student_channels != C) {
    align = register_module("align", Conv2d(Conv2dOptions(student_channels, C, 1).bias(true)));
  }
  conv_mask_s = register_module("conv_mask_s", Conv2d(Conv2dOptions(C, 1, 1).bias(true)));
  conv_mask_t = register_module("conv_mask_t", Conv2d(Conv2dOptions(C, 1, 1).bias(true)));
  auto make_add = [&]() {
    return torch::nn::Sequential(Conv2d(Conv2dOptions(C, h, 1).bias(true)),
                                 torch::nn::LayerNorm(torch::nn::LayerNormOptions({h, 1, 1}).eps(1e-5)),
                                 torch::nn::ReLU(), Conv2d(Conv2dOptions(h, C, 1).bias(true)));
  };
  channel_add_conv_s = register_module("channel_add_conv_s", make_add());
  channel_add_conv_t = register_module("channel_add_conv_t", make_add());

  // Upstream reset_parameters: mmcv kaiming_init(mode='fan_in') (normal, ReLU gain, bias 0) for
  // conv_mask_*, constant 0 (weight and bias) for the last conv of each add block.
  torch::NoGradGuard no_grad;
  for (auto* m : {&conv_mask_s, &conv_mask_t}) {
    torch::nn::init::kaiming_normal_((*m)->weight, 0.0, torch::kFanIn, torch::kReLU);
    (*m)->bias.zero_();
  }
  for (auto* seq : {&channel_add_conv_s, &channel_add_conv_t}) {
    auto last = (*seq)->ptr<torch::nn::Conv2dImpl>(3);
    last->weight.zero_();
    last->bias.zero_();
  }
}

FgdParams FgdDistillerImpl::params() const {
  FgdParams p;
  if (align) {
    p.align_w = align->weight;
    p.align_b = align->bias;
  }
  auto gc = [](const torch::nn::Conv2d& mask, const torch::nn::Sequential& add) {
    FgdGlobalContextParams g;
    g.conv_mask_w = mask->weight;
    g.conv_mask_b = mask->bias;
    auto c1 = add->ptr<torch::nn::Conv2dImpl>(0);
    auto ln = add->ptr<torch::nn::LayerNormImpl>(1);
    auto c2 = add->ptr<torch::nn::Conv2dImpl>(3);
    g.add_w1 = c1->weight;
    g.add_b1 = c1->bias;
    g.ln_w = ln->weight;
    g.ln_b = ln->bias;
    g.add_w2 = c2->weight;
    g.add_b2 = c2->bias;
    return g;
  };
  p.gc_s = gc(conv_mask_s, channel_add_conv_s);
  p.gc_t = gc(conv_mask_t, channel_add_conv_t);
  return p;
}

FgdLoss FgdDistillerImpl::forward(const torch::Tensor& s, const torch::Tensor& t, const std::vector<torch::Tensor>& boxes,
                                  const BevGrid& grid) {
  BEVKD_CHECK(s.dim() == 4 && t.dim() == 4, "fgd: maps have shapes ", shape_str(s), " and ", shape_str(t),
              ", expected [N,C,H,W]");
  BEVKD_CHECK(grid.H == t.size(2) && grid.W == t.size(3), "fgd: the teacher map is ", t.size(2), "x", t.size(3),
              " (HxW), its grid ", grid.describe());
  BEVKD_CHECK(static_cast<int64_t>(boxes.size()) == s.size(0), "fgd: ", boxes.size(), " box sets for a batch of ",
              s.size(0));
  const auto x = resize_to(s, t.size(2), t.size(3));
  return fgd_loss(x, t, fgd_masks_bev(boxes, grid, x.options()), params(), opts_);
}

FgdLoss FgdDistillerImpl::forward_pixel_boxes(const torch::Tensor& s, const torch::Tensor& t,
                                              const std::vector<torch::Tensor>& boxes_px,
                                              const std::array<double, 2>& img_shape) {
  BEVKD_CHECK(s.dim() == 4 && t.dim() == 4, "fgd: maps have shapes ", shape_str(s), " and ", shape_str(t),
              ", expected [N,C,H,W]");
  const auto x = resize_to(s, t.size(2), t.size(3));
  return fgd_loss(x, t, boxes_px, img_shape, params(), opts_);
}

}  // namespace bevkd::train::losses
