#include "train/student/depth_loss.h"

#include <torch/torch.h>

#include "base/error.h"

namespace bevkd::train::student {

namespace {
std::string shape(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}
}  // namespace

DepthLoss depth_loss(const torch::Tensor& depth, const torch::Tensor& target, const DepthBins& bins, double weight) {
  const int64_t D = bins.count();
  BEVKD_CHECK(depth.dim() == 5 && depth.size(2) == D, "depth loss: the depth probabilities must be [B, N, ", D,
              ", h, w] (", D, " bins of ", bins.min, "..", bins.max, " m), got ", shape(depth));
  BEVKD_CHECK(target.dim() == 4 && target.size(0) == depth.size(0) && target.size(1) == depth.size(1) &&
                  target.size(2) == depth.size(3) && target.size(3) == depth.size(4),
              "depth loss: the depth targets ", shape(target), " do not match the depth net's output ", shape(depth),
              " (expected [B, N, h, w]: the loader's depth_stride must equal the student's depth_stride)");
  const auto t = target.to(torch::kFloat32);
  // floor((d - min) / step) for d in [min, max); the last bin absorbs rounding just below max.
  const auto fg = (t >= bins.min) & (t < bins.max);
  const auto bin = ((t - bins.min) / bins.step).floor().clamp(0, static_cast<double>(D - 1)).to(torch::kInt64);
  // Cells as rows: [B * N * h * w, D]; the rows of cells with a point are selected.
  const auto p = depth.to(torch::kFloat32).permute({0, 1, 3, 4, 2}).reshape({-1, D});
  const auto sel = fg.reshape({-1}).nonzero().reshape({-1});
  DepthLoss out;
  out.foreground_cells = sel.numel();
  const auto ps = p.index_select(0, sel);
  const auto y = torch::zeros_like(ps).scatter_(1, bin.reshape({-1}).index_select(0, sel).unsqueeze(1), 1.0);
  const auto log_p = torch::log(ps).clamp_min(-100.0);
  const auto log_q = torch::log(1.0 - ps).clamp_min(-100.0);
  const auto bce = -(y * log_p + (1.0 - y) * log_q);
  out.total = weight * bce.sum() / std::max<double>(1.0, static_cast<double>(out.foreground_cells));
  return out;
}

}  // namespace bevkd::train::student
