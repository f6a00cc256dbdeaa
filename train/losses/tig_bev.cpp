#include "train/losses/tig_bev.h"

#include <torch/nn/functional/conv.h>
#include <torch/nn/functional/normalization.h>
#include <torch/nn/functional/vision.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "base/error.h"
#include "train/losses/loss_util.h"

namespace bevkd::train::losses {

namespace F = torch::nn::functional;

// ---- inner depth ------------------------------------------------------------------------

int64_t TigInnerDepthOptions::num_bins() const {
  const double start = dbound[0], stop = dbound[1], step = dbound[2];
  BEVKD_CHECK(std::isfinite(start) && std::isfinite(stop) && std::isfinite(step) && step > 0 && stop > start,
              "tig_inner_depth: dbound [", start, ", ", stop, ", ", step,
              "] is not a non-empty range [start, stop) with a positive step");
  return static_cast<int64_t>(std::ceil((stop - start) / step));
}

torch::Tensor tig_inner_depth_loss(const torch::Tensor& depth_logits, const torch::Tensor& depth_gt,
                                   const torch::Tensor& fg_gt, const TigInnerDepthOptions& opts) {
  constexpr const char* kLoss = "tig_inner_depth";
  check_float_tensor(depth_logits, kLoss, "depth_logits", 4, "[B*N,D,h,w]");
  check_float_tensor(depth_gt, kLoss, "depth_gt", 4, "[B,N,h,w]");
  check_int_tensor(fg_gt, kLoss, "fg_gt", 4, "[B,N,h,w]");
  const int64_t B = fg_gt.size(0), N = fg_gt.size(1), h = fg_gt.size(2), w = fg_gt.size(3);
  const int64_t D = opts.num_bins();
  BEVKD_CHECK(depth_gt.sizes() == fg_gt.sizes(), kLoss, ": input depth_gt has shape ", shape_str(depth_gt),
              ", expected [B,N,h,w]=", shape_str(fg_gt), " (the shape of fg_gt)");
  BEVKD_CHECK(depth_logits.size(0) == B * N && depth_logits.size(1) == D && depth_logits.size(2) == h &&
                  depth_logits.size(3) == w,
              kLoss, ": input depth_logits has shape ", shape_str(depth_logits), ", expected [B*N,D,h,w]=[", B * N,
              ",", D, ",", h, ",", w, "] (D = bins of dbound [", opts.dbound[0], ", ", opts.dbound[1], ", ",
              opts.dbound[2], "))");
  const int64_t BN = B * N, HW = h * w;
  if (BN == 0 || HW == 0) return connected_zero(depth_logits);

  const auto dtype = depth_logits.scalar_type();
  const auto fg = fg_gt.to(depth_logits.device(), torch::kLong).reshape({BN, HW});
  const int64_t K = fg.max().item<int64_t>();
  BEVKD_CHECK(fg.min().item<int64_t>() >= 0, kLoss, ": input fg_gt holds a negative box id, expected 0 (background) ",
              "or 1-based box ids");
  if (K == 0) return connected_zero(depth_logits);

  const auto bins = torch::arange(opts.dbound[0], opts.dbound[1], opts.dbound[2], depth_logits.options())
                        .view({1, D, 1, 1});
  const auto prob = torch::softmax(depth_logits, 1);
  const auto d_hat = (prob * bins).sum(1).reshape({BN, HW});  // expected depth (m)
  const auto gt = depth_gt.detach().to(depth_logits.device(), dtype).reshape({BN, HW});

  // Reference pixel of every (image, box): the member pixel with the smallest |d_hat - d_gt|,
  // the first in row-major order on ties (argmin returns the first minimum).
  const auto ids = torch::arange(1, K + 1, fg.options()).view({1, K, 1});
  const auto member = fg.unsqueeze(1) == ids;  // [BN, K, HW]
  const auto d_const = d_hat.detach();
  const auto err = (d_const - gt).abs().unsqueeze(1).expand({BN, K, HW});
  const auto inf = torch::full({}, std::numeric_limits<double>::infinity(), err.options());
  const auto ref_index = torch::where(member, err, inf).argmin(2);  // [BN, K]
  const auto ref_pred = d_const.gather(1, ref_index);                // [BN, K]
  const auto ref_gt = gt.gather(1, ref_index);

  const auto pos = fg > 0;
  const auto box_of_pixel = (fg - 1).clamp_min(0);
  const auto diff = (d_hat - ref_pred.gather(1, box_of_pixel)) - (gt - ref_gt.gather(1, box_of_pixel));
  const auto num_pos = pos.sum().clamp_min(1).to(dtype);
  return (diff.square() * pos.to(dtype)).sum() / num_pos * opts.weight;
}

void rasterize_depth_points(const float* uvd, const int32_t* box_id, int64_t num_points,
                            const std::array<double, 9>& A, int64_t image_height, int64_t image_width,
                            const DepthRasterOptions& opts, float* depth_out, int64_t* fg_out) {
  BEVKD_CHECK(opts.stride >= 1, "depth raster: stride ", opts.stride, ", expected >= 1");
  BEVKD_CHECK(image_height >= 0 && image_width >= 0, "depth raster: image size ", image_height, "x", image_width,
              " (HxW), expected non-negative");
  BEVKD_CHECK(opts.max_depth > opts.min_depth, "depth raster: depth range [", opts.min_depth, ", ", opts.max_depth,
              ") is empty");
  for (double a : A) BEVKD_CHECK(std::isfinite(a), "depth raster: pixel transform has a non-finite entry");
  BEVKD_CHECK(A[6] == 0.0 && A[7] == 0.0 && A[8] == 1.0, "depth raster: pixel transform's last row is [", A[6], ", ",
              A[7], ", ", A[8], "], expected [0, 0, 1] (an affine image augmentation)");
  const int64_t h = image_height / opts.stride, w = image_width / opts.stride;
  const auto stride = static_cast<double>(opts.stride);
  std::vector<int64_t> winner(static_cast<size_t>(h * w), -1);
  for (int64_t p = 0; p < num_points; ++p) {
    BEVKD_CHECK(box_id[p] >= -1, "depth raster: depth/box_id[", p, "] = ", box_id[p],
                ", expected -1 (no box) or a row of gt/boxes");
    const double u = uvd[3 * p], v = uvd[3 * p + 1], d = uvd[3 * p + 2];
    if (!std::isfinite(u) || !std::isfinite(v) || !std::isfinite(d)) continue;
    if (!(d >= opts.min_depth && d < opts.max_depth)) continue;
    const double u2 = A[0] * u + A[1] * v + A[2];
    const double v2 = A[3] * u + A[4] * v + A[5];
    const double col = std::nearbyint(u2 / stride);  // default rounding mode: half to even
    const double row = std::nearbyint(v2 / stride);
    if (!(col >= 0 && col < static_cast<double>(w) && row >= 0 && row < static_cast<double>(h))) continue;
    const int64_t cell = static_cast<int64_t>(row) * w + static_cast<int64_t>(col);
    int64_t& best = winner[static_cast<size_t>(cell)];
    if (best < 0 || d < uvd[3 * best + 2]) best = p;
  }
  for (int64_t c = 0; c < h * w; ++c) {
    const int64_t p = winner[static_cast<size_t>(c)];
    depth_out[c] = p < 0 ? 0.0f : uvd[3 * p + 2];
    fg_out[c] = p < 0 ? 0 : static_cast<int64_t>(box_id[p]) + 1;
  }
}

DepthRaster rasterize_depth_points(const torch::Tensor& uvd, const torch::Tensor& box_id,
                                   const std::array<double, 9>& pixel_transform, int64_t image_height,
                                   int64_t image_width, const DepthRasterOptions& opts) {
  BEVKD_CHECK(uvd.defined() && uvd.dim() == 2 && uvd.size(1) == 3, "depth raster: depth/uvd has shape ",
              shape_str(uvd), ", expected [P,3]");
  BEVKD_CHECK(box_id.defined() && box_id.dim() == 1 && box_id.size(0) == uvd.size(0),
              "depth raster: depth/box_id has shape ", shape_str(box_id), ", expected [P]=[", uvd.size(0), "]");
  BEVKD_CHECK(opts.stride >= 1, "depth raster: stride ", opts.stride, ", expected >= 1");
  const auto pts = uvd.to(torch::kCPU, torch::kFloat32).contiguous();
  const auto ids = box_id.to(torch::kCPU, torch::kInt32).contiguous();
  const int64_t h = std::max<int64_t>(image_height, 0) / opts.stride;
  const int64_t w = std::max<int64_t>(image_width, 0) / opts.stride;
  DepthRaster out{torch::empty({h, w}, torch::kFloat32), torch::empty({h, w}, torch::kLong)};
  rasterize_depth_points(pts.data_ptr<float>(), ids.data_ptr<int32_t>(), pts.size(0), pixel_transform, image_height,
                         image_width, opts, out.depth.data_ptr<float>(), out.fg.data_ptr<int64_t>());
  return out;
}

// ---- inner feature ----------------------------------------------------------------------

namespace {

// torch.linspace(start[k], end[k], n) for every k, in float32, evaluated as ATen's scalar CPU
// kernel does: start + step*i for i < n/2, end - step*(n-1-i) otherwise. [K] -> [K, n].
torch::Tensor linspace_rows(const torch::Tensor& start, const torch::Tensor& end, int64_t n) {
  const auto idx = torch::arange(n, start.options());
  const auto step = ((end - start) / static_cast<float>(n - 1)).unsqueeze(1);
  const auto lo = start.unsqueeze(1) + step * idx.unsqueeze(0);
  const auto hi = end.unsqueeze(1) - step * (static_cast<float>(n - 1) - idx).unsqueeze(0);
  return torch::where((idx < static_cast<float>(n / 2)).unsqueeze(0), lo, hi);
}

bool is_empty_boxes(const torch::Tensor& b) { return !b.defined() || b.numel() == 0; }

}  // namespace

torch::Tensor tig_box_corners(const torch::Tensor& boxes, double enlarge_width) {
  return box_bev_corners(boxes, enlarge_width > 0 ? enlarge_width : 0.0);
}

torch::Tensor tig_keypoint_lattice(const torch::Tensor& corners, int64_t n) {
  BEVKD_CHECK(n >= 2, "tig_inner_feature: sample_num ", n, ", expected >= 2");
  BEVKD_CHECK(corners.defined() && corners.dim() == 3 && corners.size(1) == 4 && corners.size(2) == 2,
              "tig_inner_feature: corners have shape ", shape_str(corners), ", expected [K,4,2]");
  const auto c = corners.to(torch::kFloat32);
  const auto p0x = c.select(2, 0).select(1, 0), p0y = c.select(2, 1).select(1, 0);
  const auto p1x = c.select(2, 0).select(1, 1), p1y = c.select(2, 1).select(1, 1);
  const auto p2x = c.select(2, 0).select(1, 2), p2y = c.select(2, 1).select(1, 2);
  const auto zero = torch::zeros_like(p0x);
  // Upstream get_gt_sample_grid: raw lattice along p0->p1 (columns, x) and p0->p2 (rows, y)
  // plus offsets linspace(0, p2x - p0x) over rows and linspace(0, p1y - p0y) over columns.
  const auto raw_x = linspace_rows(p0x, p1x, n).unsqueeze(1);           // [K, 1, n]
  const auto raw_y = linspace_rows(p0y, p2y, n).unsqueeze(2);           // [K, n, 1]
  const auto off_x = linspace_rows(zero, -(p0x - p2x), n).unsqueeze(2);  // [K, n, 1]
  const auto off_y = linspace_rows(zero, -(p0y - p1y), n).unsqueeze(1);  // [K, 1, n]
  const int64_t K = c.size(0);
  const auto gx = (raw_x + off_x).expand({K, n, n});
  const auto gy = (raw_y + off_y).expand({K, n, n});
  return torch::stack({gx, gy}, 3);
}

LssGridParams LssGridParams::of(const BevGrid& grid) {
  BEVKD_CHECK(grid.valid(), "tig_inner_feature: the LSS grid is empty (no BevGrid given)");
  LssGridParams p;
  p.bx = {grid.x_center(0), grid.y_center(0)};
  p.dx = {grid.dx, grid.dy};
  p.nx = {grid.W, grid.H};
  return p;
}

torch::Tensor tig_normalize_lss(const torch::Tensor& lattice, const LssGridParams& lss) {
  BEVKD_CHECK(lss.nx[0] >= 2 && lss.nx[1] >= 2 && lss.dx[0] > 0 && lss.dx[1] > 0,
              "tig_inner_feature: LSS grid dx [", lss.dx[0], ", ", lss.dx[1], "], nx [", lss.nx[0], ", ", lss.nx[1],
              "], expected positive cells and nx >= 2");
  const auto opt = lattice.options().dtype(torch::kFloat32);
  std::vector<torch::Tensor> axes;
  for (int a = 0; a < 2; ++a) {
    // The same float32 steps as upstream: bx, dx float32 tensors, nx - 1 an integer tensor.
    const auto bx = torch::full({}, static_cast<float>(lss.bx[a]), opt);
    const auto dx = torch::full({}, static_cast<float>(lss.dx[a]), opt);
    const auto origin = bx - dx / 2.0;
    const auto g = ((lattice.select(3, a).to(torch::kFloat32) - origin) / dx / static_cast<float>(lss.nx[a] - 1)) *
                       2.0 -
                   1.0;
    axes.push_back(g.clamp(-1.0, 1.0));
  }
  return torch::stack(axes, 3);
}

torch::Tensor tig_normalize_exact(const torch::Tensor& lattice, const BevGrid& grid) {
  std::vector<torch::Tensor> axes;
  for (int a = 0; a < 2; ++a) {
    const double lo = grid.range[a], hi = grid.range[a + 3];
    const auto g = (lattice.select(3, a).to(torch::kFloat64) - lo) / (hi - lo) * 2.0 - 1.0;
    axes.push_back(g.clamp(-1.0, 1.0).to(torch::kFloat32));
  }
  return torch::stack(axes, 3);
}

torch::Tensor tig_sample_keypoints(const torch::Tensor& map, const std::vector<torch::Tensor>& grids) {
  BEVKD_CHECK(static_cast<int64_t>(grids.size()) == map.size(0), "tig_inner_feature: ", grids.size(),
              " key-point grids for a batch of ", map.size(0));
  std::vector<torch::Tensor> rows;
  int64_t n = 0;
  for (size_t b = 0; b < grids.size(); ++b) {
    const auto& g = grids[b];
    n = g.size(1);
    const int64_t K = g.size(0);
    if (K == 0) continue;
    const auto grid = g.to(map.device(), map.scalar_type()).reshape({1, K * n, n, 2});
    const auto s = F::grid_sample(map.slice(0, static_cast<int64_t>(b), static_cast<int64_t>(b) + 1), grid,
                                  F::GridSampleFuncOptions()
                                      .mode(torch::kBilinear)
                                      .padding_mode(torch::kZeros)
                                      .align_corners(false));  // [1, C, K*n, n]
    rows.push_back(s.view({map.size(1), K, n, n}).permute({1, 0, 2, 3}));
  }
  if (rows.empty()) return torch::zeros({0, map.size(1), n, n}, map.options());
  return torch::cat(rows, 0);
}

namespace {

// mean_{rows} sum_j (normalize(G_s) - normalize(G_t))^2 over [K, R, R] Gram matrices.
torch::Tensor gram_rows_loss(const torch::Tensor& gs, const torch::Tensor& gt) {
  const auto opts = F::NormalizeFuncOptions().p(2).dim(2).eps(1e-12);
  return (F::normalize(gs, opts) - F::normalize(gt, opts)).square().sum(-1).mean();
}

void check_keypoints(const torch::Tensor& fs, const torch::Tensor& ft) {
  check_float_tensor(fs, "tig_inner_feature", "student key points", 4, "[K,Cs,n,n]");
  BEVKD_CHECK(ft.defined() && ft.dim() == 4 && ft.size(0) == fs.size(0) && ft.size(2) == fs.size(2) &&
                  ft.size(3) == fs.size(3),
              "tig_inner_feature: teacher key points have shape ", shape_str(ft), ", expected [K,C,n,n] with K, n of ",
              shape_str(fs));
}

}  // namespace

torch::Tensor tig_inter_keypoint_loss(const torch::Tensor& fs, const torch::Tensor& ft) {
  check_keypoints(fs, ft);
  const int64_t K = fs.size(0), N = fs.size(2) * fs.size(3);
  if (K == 0) return connected_zero(fs);
  const auto s = fs.reshape({K, fs.size(1), N});
  const auto t = ft.detach().to(fs.scalar_type()).reshape({K, ft.size(1), N});
  return gram_rows_loss(torch::bmm(s.transpose(1, 2), s), torch::bmm(t.transpose(1, 2), t));
}

torch::Tensor tig_inter_channel_loss(const torch::Tensor& fs_embedded, const torch::Tensor& ft) {
  check_keypoints(fs_embedded, ft);
  BEVKD_CHECK(fs_embedded.size(1) == ft.size(1), "tig_inner_feature: embedded student key points have ",
              fs_embedded.size(1), " channels, the teacher's ", ft.size(1));
  const int64_t K = fs_embedded.size(0), N = fs_embedded.size(2) * fs_embedded.size(3);
  if (K == 0) return connected_zero(fs_embedded);
  const auto s = fs_embedded.reshape({K, fs_embedded.size(1), N});
  const auto t = ft.detach().to(fs_embedded.scalar_type()).reshape({K, ft.size(1), N});
  return gram_rows_loss(torch::bmm(s, s.transpose(1, 2)), torch::bmm(t, t.transpose(1, 2)));
}

TigInnerFeatureLoss tig_inner_feature_loss(const torch::Tensor& s_bev, const torch::Tensor& t_bev,
                                           const std::vector<torch::Tensor>& boxes, const torch::Tensor& embed_w,
                                           const torch::Tensor& embed_b, const TigInnerFeatureOptions& opts) {
  constexpr const char* kLoss = "tig_inner_feature";
  check_float_tensor(s_bev, kLoss, "s_bev", 4, "[B,Cs,H,W]");
  BEVKD_CHECK(t_bev.defined() && t_bev.dim() == 4 && t_bev.size(0) == s_bev.size(0) &&
                  torch::isFloatingType(t_bev.scalar_type()),
              kLoss, ": input t_bev has shape ", shape_str(t_bev), ", expected [B,C,H',W'] with B=", s_bev.size(0));
  const int64_t B = s_bev.size(0), Cs = s_bev.size(1), C = t_bev.size(1);
  BEVKD_CHECK(embed_w.defined() && embed_w.dim() == 4 && embed_w.size(0) == C && embed_w.size(1) == Cs &&
                  embed_w.size(2) == 1 && embed_w.size(3) == 1,
              kLoss, ": input embed_w has shape ", shape_str(embed_w), ", expected [C,Cs,1,1]=[", C, ",", Cs, ",1,1]");
  BEVKD_CHECK(embed_b.defined() && embed_b.dim() == 1 && embed_b.size(0) == C, kLoss, ": input embed_b has shape ",
              shape_str(embed_b), ", expected [C]=[", C, "]");
  BEVKD_CHECK(static_cast<int64_t>(boxes.size()) == B, kLoss, ": ", boxes.size(), " box sets for a batch of ", B,
              " (one [K_b,9] tensor per sample, K_b may be 0)");
  if (opts.exact) {
    BEVKD_CHECK(opts.student_grid.H == s_bev.size(2) && opts.student_grid.W == s_bev.size(3), kLoss,
                ": exact sampling: s_bev is ", s_bev.size(2), "x", s_bev.size(3), " (HxW), its grid ",
                opts.student_grid.describe());
    BEVKD_CHECK(opts.teacher_grid.H == t_bev.size(2) && opts.teacher_grid.W == t_bev.size(3), kLoss,
                ": exact sampling: t_bev is ", t_bev.size(2), "x", t_bev.size(3), " (HxW), its grid ",
                opts.teacher_grid.describe());
  }

  std::vector<torch::Tensor> grid_s, grid_t;
  int64_t K = 0;
  for (int64_t b = 0; b < B; ++b) {
    const auto& bx = boxes[static_cast<size_t>(b)];
    torch::Tensor lattice;
    if (is_empty_boxes(bx)) {
      lattice = torch::zeros({0, opts.sample_num, opts.sample_num, 2}, torch::kFloat32);
    } else {
      BEVKD_CHECK(bx.dim() == 2 && bx.size(1) >= 7, kLoss, ": boxes of sample ", b, " have shape ", shape_str(bx),
                  ", expected [K,9] (x, y, z, l, w, h, yaw, vx, vy)");
      lattice = tig_keypoint_lattice(tig_box_corners(bx, opts.enlarge_width), opts.sample_num);
      K += bx.size(0);
    }
    if (opts.exact) {
      grid_s.push_back(tig_normalize_exact(lattice, opts.student_grid));
      grid_t.push_back(tig_normalize_exact(lattice, opts.teacher_grid));
    } else {
      grid_s.push_back(tig_normalize_lss(lattice, opts.lss));
    }
  }
  if (K == 0) return {connected_zero(s_bev), connected_zero(s_bev)};

  const auto t_map = t_bev.detach().to(s_bev.device(), s_bev.scalar_type());
  const auto fs = tig_sample_keypoints(s_bev, grid_s);
  const auto ft = tig_sample_keypoints(t_map, opts.exact ? grid_t : grid_s);
  const auto fs_embedded = F::conv2d(fs, embed_w.to(fs.scalar_type()), F::Conv2dFuncOptions().bias(embed_b.to(fs.scalar_type())));
  return {tig_inter_keypoint_loss(fs, ft) * opts.inter_keypoint_weight,
          tig_inter_channel_loss(fs_embedded, ft) * opts.inter_channel_weight};
}

TigInnerFeatureImpl::TigInnerFeatureImpl(int64_t student_channels, int64_t teacher_channels,
                                         TigInnerFeatureOptions opts)
    : opts_(std::move(opts)) {
  BEVKD_CHECK(student_channels > 0 && teacher_channels > 0, "tig_inner_feature: channels ", student_channels, " -> ",
              teacher_channels, ", expected positive");
  embed = register_module(
      "embed", torch::nn::Conv2d(torch::nn::Conv2dOptions(student_channels, teacher_channels, 1).bias(true)));
}

TigInnerFeatureLoss TigInnerFeatureImpl::forward(const torch::Tensor& s_bev, const torch::Tensor& t_bev,
                                                 const std::vector<torch::Tensor>& boxes) {
  return tig_inner_feature_loss(s_bev, t_bev, boxes, embed->weight, embed->bias, opts_);
}

}  // namespace bevkd::train::losses
