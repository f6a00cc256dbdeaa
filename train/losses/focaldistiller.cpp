#include "train/losses/focaldistiller.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"

namespace bevkd::train::losses {
namespace {

// Source index of every destination index, as torch's nearest_idx (float32 scale).
torch::Tensor nearest_index(int64_t in, int64_t out, const torch::Device& dev) {
  std::vector<int64_t> idx(out);
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  for (int64_t i = 0; i < out; ++i) {
    if (out == in)
      idx[i] = i;
    else if (out == 2 * in)
      idx[i] = i >> 1;
    else
      idx[i] = std::min(static_cast<int64_t>(std::floor(static_cast<float>(i) * scale)), in - 1);
  }
  return torch::tensor(idx, torch::TensorOptions().dtype(torch::kInt64)).to(dev);
}

}  // namespace

torch::Tensor legacy_nearest_resize(const torch::Tensor& map, int64_t H, int64_t W) {
  BEVKD_CHECK(map.defined() && map.dim() == 4 && map.size(2) >= 1 && map.size(3) >= 1,
              "legacy_nearest_resize: map must be [B, C, h, w] with h, w >= 1, found ",
              map.defined() ? cat(map.sizes()) : std::string("undefined"));
  BEVKD_CHECK(H >= 1 && W >= 1, "legacy_nearest_resize: output size must be positive, found ", H, " x ", W);
  return map.index_select(2, nearest_index(map.size(2), H, map.device()))
      .index_select(3, nearest_index(map.size(3), W, map.device()));
}

torch::Tensor focaldistiller_heat_mask(const std::vector<torch::Tensor>& boxes, const kernels::GaussianOptions& heat_map,
                                       int64_t H, int64_t W) {
  const torch::Tensor m = gaussian_fg_maps(boxes, heat_map).unsqueeze(1);  // [B, 1, h, w]
  if (m.size(0) == 0) return torch::zeros({0, 1, H, W});
  return legacy_nearest_resize(m, H, W);
}

torch::Tensor focaldistiller_bev_l2_heatmap(const torch::Tensor& s, const torch::Tensor& t, const torch::Tensor& mask,
                                            double weight) {
  BEVKD_CHECK(s.defined() && s.dim() == 4 && s.is_floating_point(),
              "focaldistiller_bev_l2_heatmap: student features must be [B, C, H, W] float, found ",
              s.defined() ? cat(s.sizes()) : std::string("undefined"));
  BEVKD_CHECK(t.defined() && t.sizes() == s.sizes() && t.scalar_type() == s.scalar_type(),
              "focaldistiller_bev_l2_heatmap: teacher features must match the student's ", s.sizes(), " ",
              s.scalar_type());
  BEVKD_CHECK(mask.defined() && mask.dim() == 4 && mask.size(0) == s.size(0) && mask.size(1) == 1 &&
                  mask.size(2) == s.size(2) && mask.size(3) == s.size(3),
              "focaldistiller_bev_l2_heatmap: mask must be [B, 1, H, W] = [", s.size(0), ", 1, ", s.size(2), ", ",
              s.size(3), "], found ", mask.defined() ? cat(mask.sizes()) : std::string("undefined"));
  const torch::Tensor m = mask.detach().to(s.scalar_type());
  const torch::Tensor num = (s * m - t.detach() * m).pow(2).sum();
  const torch::Tensor den = m.sum();
  return weight * (num / torch::where(den != 0, den, torch::ones_like(den)));
}

}  // namespace bevkd::train::losses
