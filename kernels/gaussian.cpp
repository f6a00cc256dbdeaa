#include "kernels/gaussian.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <vector>

#include "kernels/detail/check.h"
#include "kernels/detail/gaussian_math.h"
#ifdef BEVKD_WITH_CUDA
#include "kernels/cuda/ops.h"
#endif

namespace bevkd::kernels {
namespace {

constexpr const char* kGaussianOp = "gaussian_heatmaps";

detail::GaussianGrid make_grid(const GaussianOptions& o) {
  BEVKD_CHECK(std::isfinite(o.min_overlap) && o.min_overlap > 0 && o.min_overlap < 1, kGaussianOp,
              ": min_overlap must be in (0, 1), found ", o.min_overlap);
  BEVKD_CHECK(o.min_radius >= 0 && o.min_radius <= 10000, kGaussianOp, ": min_radius must be in [0, 10000], found ",
              o.min_radius);
  BEVKD_CHECK(o.grid.valid(), kGaussianOp, ": no grid given (GaussianOptions::grid is empty)");
  BEVKD_CHECK(o.out_size_factor >= 1, kGaussianOp, ": out_size_factor must be >= 1, found ", o.out_size_factor);
  detail::GaussianGrid g{};
  g.x_min = static_cast<float>(o.grid.x_min());
  g.y_min = static_cast<float>(o.grid.y_min());
  g.voxel_x = static_cast<float>(o.grid.dx / static_cast<double>(o.out_size_factor));
  g.voxel_y = static_cast<float>(o.grid.dy / static_cast<double>(o.out_size_factor));
  g.out_size_factor = static_cast<float>(o.out_size_factor);
  g.width = static_cast<int32_t>(o.grid.W);
  g.height = static_cast<int32_t>(o.grid.H);
  g.min_radius = static_cast<int32_t>(o.min_radius);
  g.consts = detail::make_radius_consts(o.min_overlap);
  return g;
}

struct Stamp {
  int32_t cx, cy, radius;
};

// boxes [N, S] float32 contiguous; labels [N] int64 contiguous or undefined (all in map 0).
torch::Tensor draw_cpu(const torch::Tensor& boxes, const torch::Tensor& labels, int64_t K,
                       const detail::GaussianGrid& g) {
  const int64_t N = boxes.size(0), S = boxes.size(1), H = g.height, W = g.width;
  const float* b = boxes.data_ptr<float>();
  const int64_t* lab = labels.defined() ? labels.data_ptr<int64_t>() : nullptr;
  std::vector<std::vector<Stamp>> per_class(K);
  for (int64_t i = 0; i < N; ++i) {
    Stamp s;
    if (detail::gaussian_box_setup(b + i * S, g, &s.cx, &s.cy, &s.radius)) per_class[lab ? lab[i] : 0].push_back(s);
  }
  torch::Tensor out = torch::zeros({K, H, W}, boxes.options());
  float* o = out.data_ptr<float>();
  // One task per heat-map row: max-merge is order independent, and no two tasks share a row.
  // A typical scene stamps a few thousand cells: less than a thread start-up costs.
  int64_t stamped = 0;
  for (const auto& stamps : per_class)
    for (const Stamp& s : stamps) stamped += (2 * int64_t{s.radius} + 1) * (2 * int64_t{s.radius} + 1);
  const int64_t grain = stamped < (int64_t{1} << 16) ? K * H : 16;
  at::parallel_for(0, K * H, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t k = r / H, y = r % H;
      float* row = o + r * W;
      for (const Stamp& s : per_class[k]) {
        const int64_t dy = y - s.cy;
        if (dy < -s.radius || dy > s.radius) continue;
        const int64_t x0 = std::max<int64_t>(0, s.cx - s.radius), x1 = std::min<int64_t>(W - 1, s.cx + s.radius);
        for (int64_t x = x0; x <= x1; ++x) {
          const float v = detail::gaussian_kernel_value(static_cast<int>(x - s.cx), static_cast<int>(dy), s.radius);
          if (v > row[x]) row[x] = v;
        }
      }
    }
  });
  return out;
}

torch::Tensor draw_any(const torch::Tensor& boxes, const torch::Tensor& labels, int64_t K, const GaussianOptions& opts,
                       const char* op) {
  detail::check_arg(boxes.defined() && boxes.dim() == 2 && (boxes.size(1) == 7 || boxes.size(1) == 9) &&
                        boxes.scalar_type() == torch::kFloat32,
                    op, "boxes", "[N, 7] or [N, 9] float32 (x, y, z, l, w, h, yaw[, vx, vy])", boxes);
  const detail::GaussianGrid g = make_grid(opts);
  const torch::Tensor bx = boxes.contiguous();
  if (bx.is_cuda()) {
#ifdef BEVKD_WITH_CUDA
    return cuda::gaussian_draw(bx, labels, K, g);
#else
    detail::fail_no_cuda(op, bx);
#endif
  }
  return draw_cpu(bx, labels, K, g);
}

}  // namespace

float gaussian_radius(float height, float width, double min_overlap) {
  return detail::gaussian_radius_f32(height, width, detail::make_radius_consts(min_overlap));
}

void draw_gaussian(torch::Tensor& heatmap, int64_t center_x, int64_t center_y, int64_t radius) {
  detail::check_arg(heatmap.defined() && heatmap.dim() == 2 && heatmap.scalar_type() == torch::kFloat32 &&
                        heatmap.is_cpu() && heatmap.is_contiguous(),
                    "draw_gaussian", "heatmap", "[H, W] float32, contiguous, on the CPU", heatmap);
  const int64_t H = heatmap.size(0), W = heatmap.size(1);
  BEVKD_CHECK(center_x >= 0 && center_x < W && center_y >= 0 && center_y < H, "draw_gaussian: centre (", center_x, ", ",
              center_y, ") is outside the ", W, " x ", H, " map");
  BEVKD_CHECK(radius >= 0 && radius <= 10000, "draw_gaussian: radius must be in [0, 10000], found ", radius);
  float* o = heatmap.data_ptr<float>();
  for (int64_t y = std::max<int64_t>(0, center_y - radius); y <= std::min(H - 1, center_y + radius); ++y)
    for (int64_t x = std::max<int64_t>(0, center_x - radius); x <= std::min(W - 1, center_x + radius); ++x) {
      const float v = detail::gaussian_kernel_value(static_cast<int>(x - center_x), static_cast<int>(y - center_y),
                                                    static_cast<int>(radius));
      if (v > o[y * W + x]) o[y * W + x] = v;
    }
}

torch::Tensor gaussian_heatmaps(const torch::Tensor& boxes, const torch::Tensor& labels, int64_t num_classes,
                                const GaussianOptions& opts) {
  BEVKD_CHECK(num_classes >= 1, kGaussianOp, ": num_classes must be >= 1, found ", num_classes);
  detail::check_arg(labels.defined() && labels.dim() == 1 && detail::is_integer(labels) && boxes.defined() &&
                        labels.size(0) == boxes.size(0),
                    kGaussianOp, "labels", "[N] integer class ids with N = boxes.size(0)", labels);
  detail::check_same_device(kGaussianOp, "boxes", boxes, "labels", labels);
  const torch::Tensor lab = labels.to(torch::kInt64).contiguous();
  if (lab.numel() > 0) {
    const torch::Tensor bad = (lab < 0) | (lab >= num_classes);
    if (bad.any().item<bool>()) {
      const int64_t i = bad.nonzero()[0][0].item<int64_t>();
      BEVKD_FAIL(kGaussianOp, ": labels[", i, "] is ", lab[i].item<int64_t>(), ", outside [0, ", num_classes, ")");
    }
  }
  return draw_any(boxes, lab, num_classes, opts, kGaussianOp);
}

torch::Tensor gaussian_radii(const torch::Tensor& boxes, const GaussianOptions& opts) {
  detail::check_arg(boxes.defined() && boxes.dim() == 2 && (boxes.size(1) == 7 || boxes.size(1) == 9) &&
                        boxes.scalar_type() == torch::kFloat32,
                    "gaussian_radii", "boxes", "[N, 7] or [N, 9] float32 (x, y, z, l, w, h, yaw[, vx, vy])", boxes);
  const detail::GaussianGrid g = make_grid(opts);
  const torch::Tensor bx = boxes.to(torch::kCPU).contiguous();
  const int64_t N = bx.size(0), S = bx.size(1);
  torch::Tensor out = torch::empty({N}, torch::TensorOptions().dtype(torch::kInt64));
  const float* b = bx.data_ptr<float>();
  int64_t* r = out.data_ptr<int64_t>();
  for (int64_t i = 0; i < N; ++i) r[i] = detail::gaussian_box_radius(b + i * S, g);
  return out.to(boxes.device());
}

torch::Tensor gaussian_mask(const torch::Tensor& boxes, const GaussianOptions& opts) {
  return draw_any(boxes, torch::Tensor(), 1, opts, "gaussian_mask")[0];
}

}  // namespace bevkd::kernels
