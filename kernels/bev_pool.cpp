#include "kernels/bev_pool.h"

#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include <cmath>
#include <vector>

#include "kernels/detail/check.h"
#include "kernels/detail/grid_math.h"
#ifdef BEVKD_WITH_CUDA
#include "kernels/cuda/ops.h"
#endif

namespace bevkd::kernels {
namespace {

constexpr const char* kBevPoolOp = "bev_pool";

detail::Grid3 make_grid3(const BevGrid& g) {
  BEVKD_CHECK(g.valid(), kBevPoolOp, ": no grid given (an empty BevGrid)");
  detail::Grid3 out{};
  out.lo[0] = static_cast<float>(g.x_min());
  out.lo[1] = static_cast<float>(g.y_min());
  out.lo[2] = static_cast<float>(g.z_min());
  out.size[0] = static_cast<float>(g.dx);
  out.size[1] = static_cast<float>(g.dy);
  out.size[2] = static_cast<float>(g.z_max() - g.z_min());
  out.n[0] = static_cast<int32_t>(g.W);
  out.n[1] = static_cast<int32_t>(g.H);
  out.n[2] = 1;
  return out;
}

torch::Tensor int_tensor(const std::vector<int32_t>& v) {
  return torch::from_blob(const_cast<int32_t*>(v.data()), {static_cast<int64_t>(v.size())}, torch::kInt32).clone();
}

// The reference: cells in parallel; a stable counting sort by cell (sequential, O(P + cells));
// the feature-row order read off directly, since the points of one feature row are its D depth
// bins and the point index grows with the depth bin.
BevPoolGeometry prepare_cpu(const torch::Tensor& points, const detail::Grid3& g, BevPoolGeometry geom) {
  const int64_t N = geom.num_cams, D = geom.depth_bins, HW = geom.feat_h * geom.feat_w;
  const int64_t P = geom.batch * N * D * HW;
  const int64_t H = geom.grid_h, W = geom.grid_w, num_cells = geom.batch * H * W;
  const float* xyz = points.data_ptr<float>();

  std::vector<int32_t> key(P);
  at::parallel_for(0, P, 16384, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      int32_t cx, cy, cz;
      const float* q = xyz + 3 * p;
      key[p] = detail::grid_cell(g, q[0], q[1], q[2], &cx, &cy, &cz)
                   ? static_cast<int32_t>((p / (N * D * HW) * H + cy) * W + cx)
                   : -1;
    }
  });
  auto feat_row = [&](int64_t p) { return static_cast<int32_t>(p / (D * HW) * HW + p % HW); };

  std::vector<int64_t> offset(num_cells + 1, 0);
  for (int64_t p = 0; p < P; ++p)
    if (key[p] >= 0) ++offset[key[p] + 1];
  for (int64_t c = 0; c < num_cells; ++c) offset[c + 1] += offset[c];
  const int64_t K = offset[num_cells];

  const auto i32 = torch::TensorOptions().dtype(torch::kInt32);
  geom.ranks_depth = torch::empty({K}, i32);
  geom.ranks_feat = torch::empty({K}, i32);
  geom.ranks_bev = torch::empty({K}, i32);
  int32_t* rd = geom.ranks_depth.data_ptr<int32_t>();
  int32_t* rf = geom.ranks_feat.data_ptr<int32_t>();
  int32_t* rb = geom.ranks_bev.data_ptr<int32_t>();
  std::vector<int64_t> cursor(offset.begin(), offset.end() - 1);
  for (int64_t p = 0; p < P; ++p) {
    if (key[p] < 0) continue;
    const int64_t pos = cursor[key[p]]++;
    rd[pos] = static_cast<int32_t>(p);
    rf[pos] = feat_row(p);
    rb[pos] = key[p];
  }
  std::vector<int32_t> starts, lengths;
  for (int64_t c = 0; c < num_cells; ++c) {
    if (offset[c + 1] == offset[c]) continue;
    starts.push_back(static_cast<int32_t>(offset[c]));
    lengths.push_back(static_cast<int32_t>(offset[c + 1] - offset[c]));
  }

  const int64_t R = geom.batch * N * HW;  // feature rows
  std::vector<int32_t> row_count(R);
  at::parallel_for(0, R, 4096, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t base = r / HW * D * HW + r % HW;
      int32_t n = 0;
      for (int64_t d = 0; d < D; ++d) n += key[base + d * HW] >= 0;
      row_count[r] = n;
    }
  });
  std::vector<int64_t> row_offset(R + 1, 0);
  std::vector<int32_t> fstarts, flengths;
  for (int64_t r = 0; r < R; ++r) {
    row_offset[r + 1] = row_offset[r] + row_count[r];
    if (row_count[r] > 0) {
      fstarts.push_back(static_cast<int32_t>(row_offset[r]));
      flengths.push_back(row_count[r]);
    }
  }
  geom.feat_ranks_depth = torch::empty({K}, i32);
  geom.feat_ranks_feat = torch::empty({K}, i32);
  geom.feat_ranks_bev = torch::empty({K}, i32);
  int32_t* frd = geom.feat_ranks_depth.data_ptr<int32_t>();
  int32_t* frf = geom.feat_ranks_feat.data_ptr<int32_t>();
  int32_t* frb = geom.feat_ranks_bev.data_ptr<int32_t>();
  at::parallel_for(0, R, 4096, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t base = r / HW * D * HW + r % HW;
      int64_t pos = row_offset[r];
      for (int64_t d = 0; d < D; ++d) {
        const int64_t p = base + d * HW;
        if (key[p] < 0) continue;
        frd[pos] = static_cast<int32_t>(p);
        frf[pos] = static_cast<int32_t>(r);
        frb[pos] = key[p];
        ++pos;
      }
    }
  });

  geom.interval_starts = int_tensor(starts);
  geom.interval_lengths = int_tensor(lengths);
  geom.feat_interval_starts = int_tensor(fstarts);
  geom.feat_interval_lengths = int_tensor(flengths);
  return geom;
}

// For every interval [s, s + len): out[out_row[s]·C + c] = sum over k of a[ia[k]] · m[im[k]·C + c].
// The forward is (a, m) = (depth, feat rows) over the cell intervals; the feature gradient is
// (depth, gradient rows) over the feature-row intervals. One task per interval, so every
// output row is written by one thread in a fixed order.
template <typename T>
void interval_sums(const T* a, const int32_t* ia, const T* m, const int32_t* im, const int32_t* out_row,
                   const torch::Tensor& starts, const torch::Tensor& lengths, int64_t C, T* out) {
  const int32_t* st = starts.data_ptr<int32_t>();
  const int32_t* len = lengths.data_ptr<int32_t>();
  at::parallel_for(0, starts.size(0), 64, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      T* o = out + int64_t{out_row[st[i]]} * C;
      for (int64_t k = st[i]; k < st[i] + len[i]; ++k) {
        const T w = a[ia[k]];
        const T* row = m + int64_t{im[k]} * C;
        for (int64_t c = 0; c < C; ++c) o[c] += w * row[c];
      }
    }
  });
}

torch::Tensor forward_cpu(const torch::Tensor& depth, const torch::Tensor& feat, const BevPoolGeometry& geom) {
  const int64_t C = feat.size(4), B = geom.batch, H = geom.grid_h, W = geom.grid_w;
  torch::Tensor out = torch::zeros({B * H * W, C}, feat.options());
  AT_DISPATCH_FLOATING_TYPES(feat.scalar_type(), "bev_pool_cpu", [&] {
    interval_sums(depth.data_ptr<scalar_t>(), geom.ranks_depth.data_ptr<int32_t>(), feat.data_ptr<scalar_t>(),
                  geom.ranks_feat.data_ptr<int32_t>(), geom.ranks_bev.data_ptr<int32_t>(), geom.interval_starts,
                  geom.interval_lengths, C, out.data_ptr<scalar_t>());
  });
  return out.view({B, H, W, C}).permute({0, 3, 1, 2}).contiguous();
}

// grad_out_cl: [B, H, W, C] contiguous.
std::pair<torch::Tensor, torch::Tensor> backward_cpu(const torch::Tensor& grad_out_cl, const torch::Tensor& depth,
                                                     const torch::Tensor& feat, const BevPoolGeometry& geom,
                                                     bool need_depth, bool need_feat) {
  const int64_t C = feat.size(4);
  torch::Tensor grad_depth, grad_feat;
  AT_DISPATCH_FLOATING_TYPES(feat.scalar_type(), "bev_pool_backward_cpu", [&] {
    const scalar_t* go = grad_out_cl.data_ptr<scalar_t>();
    const scalar_t* dp = depth.data_ptr<scalar_t>();
    const scalar_t* fp = feat.data_ptr<scalar_t>();
    if (need_depth) {
      grad_depth = torch::zeros_like(depth);
      scalar_t* gd = grad_depth.data_ptr<scalar_t>();
      const int32_t* rd = geom.ranks_depth.data_ptr<int32_t>();
      const int32_t* rf = geom.ranks_feat.data_ptr<int32_t>();
      const int32_t* rb = geom.ranks_bev.data_ptr<int32_t>();
      at::parallel_for(0, geom.num_kept(), 1024, [&](int64_t k0, int64_t k1) {
        for (int64_t k = k0; k < k1; ++k) {
          const scalar_t* g = go + int64_t{rb[k]} * C;
          const scalar_t* f = fp + int64_t{rf[k]} * C;
          scalar_t s = 0;
          for (int64_t c = 0; c < C; ++c) s += g[c] * f[c];
          gd[rd[k]] = s;
        }
      });
    }
    if (need_feat) {
      grad_feat = torch::zeros_like(feat);
      interval_sums(dp, geom.feat_ranks_depth.data_ptr<int32_t>(), go, geom.feat_ranks_bev.data_ptr<int32_t>(),
                    geom.feat_ranks_feat.data_ptr<int32_t>(), geom.feat_interval_starts, geom.feat_interval_lengths, C,
                    grad_feat.data_ptr<scalar_t>());
    }
  });
  return {grad_depth, grad_feat};
}

void save_geometry(torch::autograd::AutogradContext* ctx, const BevPoolGeometry& g) {
  auto& s = ctx->saved_data;
  s["batch"] = g.batch;
  s["num_cams"] = g.num_cams;
  s["depth_bins"] = g.depth_bins;
  s["feat_h"] = g.feat_h;
  s["feat_w"] = g.feat_w;
  s["grid_h"] = g.grid_h;
  s["grid_w"] = g.grid_w;
  s["ranks_depth"] = g.ranks_depth;
  s["ranks_feat"] = g.ranks_feat;
  s["ranks_bev"] = g.ranks_bev;
  s["feat_ranks_depth"] = g.feat_ranks_depth;
  s["feat_ranks_feat"] = g.feat_ranks_feat;
  s["feat_ranks_bev"] = g.feat_ranks_bev;
  s["feat_interval_starts"] = g.feat_interval_starts;
  s["feat_interval_lengths"] = g.feat_interval_lengths;
}

BevPoolGeometry load_geometry(torch::autograd::AutogradContext* ctx) {
  auto& s = ctx->saved_data;
  BevPoolGeometry g;
  g.batch = s["batch"].toInt();
  g.num_cams = s["num_cams"].toInt();
  g.depth_bins = s["depth_bins"].toInt();
  g.feat_h = s["feat_h"].toInt();
  g.feat_w = s["feat_w"].toInt();
  g.grid_h = s["grid_h"].toInt();
  g.grid_w = s["grid_w"].toInt();
  g.ranks_depth = s["ranks_depth"].toTensor();
  g.ranks_feat = s["ranks_feat"].toTensor();
  g.ranks_bev = s["ranks_bev"].toTensor();
  g.feat_ranks_depth = s["feat_ranks_depth"].toTensor();
  g.feat_ranks_feat = s["feat_ranks_feat"].toTensor();
  g.feat_ranks_bev = s["feat_ranks_bev"].toTensor();
  g.feat_interval_starts = s["feat_interval_starts"].toTensor();
  g.feat_interval_lengths = s["feat_interval_lengths"].toTensor();
  return g;
}

class BevPoolFunction : public torch::autograd::Function<BevPoolFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& depth,
                               const torch::Tensor& feat, const BevPoolGeometry& geom) {
    ctx->save_for_backward({depth, feat});
    save_geometry(ctx, geom);
    if (depth.is_cuda()) {
#ifdef BEVKD_WITH_CUDA
      return cuda::bev_pool_forward(depth, feat, geom);
#else
      detail::fail_no_cuda(kBevPoolOp, depth);
#endif
    }
    return forward_cpu(depth, feat, geom);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &depth = saved[0], &feat = saved[1];
    const BevPoolGeometry geom = load_geometry(ctx);
    const torch::Tensor go = grads[0].permute({0, 2, 3, 1}).contiguous();  // [B, H, W, C]
    const bool need_depth = ctx->needs_input_grad(0), need_feat = ctx->needs_input_grad(1);
    std::pair<torch::Tensor, torch::Tensor> g;
    if (go.is_cuda()) {
#ifdef BEVKD_WITH_CUDA
      g = cuda::bev_pool_backward(go, depth, feat, geom, need_depth, need_feat);
#else
      detail::fail_no_cuda(kBevPoolOp, go);
#endif
    } else {
      g = backward_cpu(go, depth, feat, geom, need_depth, need_feat);
    }
    return {g.first, g.second, torch::Tensor()};
  }
};

}  // namespace


BevPoolGeometry BevPoolGeometry::to(const torch::Device& device) const {
  BevPoolGeometry g = *this;
  for (torch::Tensor* t :
       {&g.ranks_depth, &g.ranks_feat, &g.ranks_bev, &g.interval_starts, &g.interval_lengths, &g.feat_ranks_depth,
        &g.feat_ranks_feat, &g.feat_ranks_bev, &g.feat_interval_starts, &g.feat_interval_lengths})
    if (t->defined()) *t = t->to(device);
  return g;
}

BevPoolGeometry bev_pool_prepare(const torch::Tensor& points, const BevGrid& grid) {
  detail::check_arg(
      points.defined() && points.dim() == 6 && points.size(5) == 3 && points.scalar_type() == torch::kFloat32,
      "bev_pool_prepare", "points", "[B, N, D, Hf, Wf, 3] float32 (ego-frame xyz)", points);
  BEVKD_CHECK(points.numel() / 3 < (int64_t{1} << 31), "bev_pool_prepare: ", points.numel() / 3,
              " frustum points, more than 2^31 - 1");
  const detail::Grid3 g = make_grid3(grid);
  BevPoolGeometry geom;
  geom.batch = points.size(0);
  geom.num_cams = points.size(1);
  geom.depth_bins = points.size(2);
  geom.feat_h = points.size(3);
  geom.feat_w = points.size(4);
  geom.grid_h = g.n[1];
  geom.grid_w = g.n[0];
  BEVKD_CHECK(geom.batch * geom.grid_h * geom.grid_w < (int64_t{1} << 31), "bev_pool_prepare: ", geom.batch, " x ",
              geom.grid_h, " x ", geom.grid_w, " BEV cells, more than 2^31 - 1");
  const torch::Tensor pts = points.contiguous();
  if (pts.is_cuda()) {
#ifdef BEVKD_WITH_CUDA
    return cuda::bev_pool_prepare(pts, g, std::move(geom));
#else
    detail::fail_no_cuda("bev_pool_prepare", pts);
#endif
  }
  return prepare_cpu(pts, g, std::move(geom));
}

torch::Tensor bev_pool(const torch::Tensor& depth, const torch::Tensor& feat, const BevPoolGeometry& geom) {
  BEVKD_CHECK(geom.ranks_depth.defined(), kBevPoolOp, ": the geometry is empty; build it with bev_pool_prepare");
  const std::string depth_shape = cat("[", geom.batch, ", ", geom.num_cams, ", ", geom.depth_bins, ", ", geom.feat_h,
                                      ", ", geom.feat_w, "] float32 or float64 (the geometry's shape)");
  detail::check_arg(
      depth.defined() && detail::is_float(depth) &&
          depth.sizes() == torch::IntArrayRef({geom.batch, geom.num_cams, geom.depth_bins, geom.feat_h, geom.feat_w}),
      kBevPoolOp, "depth", depth_shape.c_str(), depth);
  const std::string feat_shape = cat("[", geom.batch, ", ", geom.num_cams, ", ", geom.feat_h, ", ", geom.feat_w,
                                     ", C] with depth's dtype (channel-last image features)");
  detail::check_arg(feat.defined() && feat.dim() == 5 && feat.scalar_type() == depth.scalar_type() &&
                        feat.size(0) == geom.batch && feat.size(1) == geom.num_cams && feat.size(2) == geom.feat_h &&
                        feat.size(3) == geom.feat_w && feat.size(4) >= 1,
                    kBevPoolOp, "feat", feat_shape.c_str(), feat);
  detail::check_same_device(kBevPoolOp, "depth", depth, "feat", feat);
  BEVKD_CHECK(geom.device() == depth.device(), kBevPoolOp, ": the geometry is on ", geom.device(), " but depth is on ",
              depth.device(), "; move it with BevPoolGeometry::to");
  return BevPoolFunction::apply(depth.contiguous(), feat.contiguous(), geom);
}

}  // namespace bevkd::kernels
