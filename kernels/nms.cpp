#include "kernels/nms.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

#include "kernels/detail/box_math.h"
#include "kernels/detail/check.h"
#ifdef BEVKD_WITH_CUDA
#include "kernels/cuda/ops.h"
#endif

namespace bevkd::kernels {
namespace {

// The candidates in rank order (after pre_max_size), with their group and threshold.
struct Candidates {
  std::vector<int64_t> index;  // into the input boxes
  std::vector<int64_t> group;
  std::vector<double> threshold;
};

Candidates rank_candidates(const char* op, const torch::Tensor& scores, const torch::Tensor& groups,
                           const std::vector<double>& thresholds, const NmsOptions& opts) {
  const int64_t N = scores.size(0);
  const torch::Tensor s = scores.to(torch::kCPU, torch::kFloat64).contiguous();
  const double* sp = s.data_ptr<double>();
  for (int64_t i = 0; i < N; ++i) BEVKD_CHECK(!std::isnan(sp[i]), op, ": scores[", i, "] is NaN");
  torch::Tensor g =
      groups.defined() ? groups.to(torch::kCPU, torch::kInt64).contiguous() : torch::zeros({N}, torch::kInt64);
  const int64_t* gp = g.data_ptr<int64_t>();
  if (thresholds.size() > 1)
    for (int64_t i = 0; i < N; ++i)
      BEVKD_CHECK(gp[i] >= 0 && gp[i] < static_cast<int64_t>(thresholds.size()), op, ": groups[", i, "] is ", gp[i],
                  " but thresholds are given for groups 0..", thresholds.size() - 1);

  std::vector<int64_t> order(N);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return sp[a] > sp[b]; });
  Candidates c;
  std::unordered_map<int64_t, int64_t> taken;
  for (int64_t i : order) {
    if (opts.pre_max_size > 0 && taken[gp[i]]++ >= opts.pre_max_size) continue;
    c.index.push_back(i);
    c.group.push_back(gp[i]);
    c.threshold.push_back(thresholds.size() == 1 ? thresholds[0] : thresholds[gp[i]]);
  }
  return c;
}

// Greedy pass over the candidates; `suppress(i)` marks the candidates j > i that kept
// candidate i suppresses. Applies post_max_size per group.
template <typename Suppress>
std::vector<int64_t> greedy(const Candidates& c, const NmsOptions& opts, std::vector<char>& removed,
                            Suppress&& suppress) {
  std::vector<int64_t> kept;
  std::unordered_map<int64_t, int64_t> kept_in_group;
  for (size_t i = 0; i < c.index.size(); ++i) {
    if (removed[i]) continue;
    int64_t& n = kept_in_group[c.group[i]];
    if (opts.post_max_size > 0 && n >= opts.post_max_size) continue;
    ++n;
    kept.push_back(c.index[i]);
    suppress(static_cast<int64_t>(i));
  }
  return kept;
}

std::vector<int64_t> nms_cpu(const torch::Tensor& boxes, const Candidates& c, bool circle, const NmsOptions& opts) {
  const int64_t K = static_cast<int64_t>(c.index.size()), S = boxes.size(1);
  std::vector<char> removed(K, 0);
  std::vector<int64_t> kept;
  AT_DISPATCH_FLOATING_TYPES(boxes.scalar_type(), "nms_cpu", [&] {
    const scalar_t* b = boxes.data_ptr<scalar_t>();
    kept = greedy(c, opts, removed, [&](int64_t i) {
      const scalar_t* bi = b + c.index[i] * S;
      // ~0.3 µs per rotated IoU: threads only pay off for long candidate lists.
      at::parallel_for(i + 1, K, 2048, [&](int64_t j0, int64_t j1) {
        for (int64_t j = j0; j < j1; ++j) {
          if (removed[j] || c.group[j] != c.group[i]) continue;
          const scalar_t* bj = b + c.index[j] * S;
          if (circle ? detail::centres_within(bi, bj, c.threshold[i]) : detail::bev_iou(bi, bj) > c.threshold[i])
            removed[j] = 1;
        }
      });
    });
  });
  return kept;
}

#ifdef BEVKD_WITH_CUDA
std::vector<int64_t> nms_cuda(const torch::Tensor& boxes, const Candidates& c, bool circle, const NmsOptions& opts) {
  const int64_t K = static_cast<int64_t>(c.index.size());
  const torch::Tensor index = torch::tensor(c.index, torch::kInt64).to(boxes.device());
  const torch::Tensor group = torch::tensor(c.group, torch::kInt64).to(boxes.device());
  const torch::Tensor thr = torch::tensor(c.threshold, torch::kFloat64).to(boxes.device());
  // [K, ceil(K / 64)] bit rows: bit j of row i set when candidate i would suppress j > i.
  const torch::Tensor mask = cuda::nms_mask(boxes.index_select(0, index).contiguous(), group, thr, circle).cpu();
  const int64_t words = mask.size(1);
  const uint64_t* m = reinterpret_cast<const uint64_t*>(mask.data_ptr<int64_t>());
  std::vector<char> removed(K, 0);
  return greedy(c, opts, removed, [&](int64_t i) {
    for (int64_t j = i + 1; j < K; ++j)
      if ((m[i * words + j / 64] >> (j % 64)) & 1u) removed[j] = 1;
  });
}
#endif

torch::Tensor nms_any(const char* op, const torch::Tensor& boxes, const torch::Tensor& scores, bool circle,
                      const std::vector<double>& thresholds, const NmsOptions& opts, const torch::Tensor& groups) {
  if (circle) {
    detail::check_arg(boxes.defined() && boxes.dim() == 2 && boxes.size(1) >= 2 && detail::is_float(boxes), op, "boxes",
                      "[N, >= 2] float32/float64 (x, y first)", boxes);
  } else {
    detail::check_arg(
        boxes.defined() && boxes.dim() == 2 && (boxes.size(1) == 7 || boxes.size(1) == 9) && detail::is_float(boxes),
        op, "boxes", "[N, 7] or [N, 9] float32/float64 (x, y, z, l, w, h, yaw[, vx, vy])", boxes);
  }
  detail::check_arg(
      scores.defined() && scores.dim() == 1 && scores.size(0) == boxes.size(0) && detail::is_float(scores), op,
      "scores", "[N] float32/float64 with N = boxes.size(0)", scores);
  detail::check_same_device(op, "boxes", boxes, "scores", scores);
  if (groups.defined()) {
    detail::check_arg(groups.dim() == 1 && groups.size(0) == boxes.size(0) && detail::is_integer(groups), op, "groups",
                      "undefined or [N] integer with N = boxes.size(0)", groups);
    detail::check_same_device(op, "boxes", boxes, "groups", groups);
  }
  const Candidates c = rank_candidates(op, scores, groups, thresholds, opts);
  const torch::Tensor bx = boxes.contiguous();
  std::vector<int64_t> kept;
  if (c.index.empty()) {
    // nothing to suppress
  } else if (bx.is_cuda()) {
#ifdef BEVKD_WITH_CUDA
    kept = nms_cuda(bx, c, circle, opts);
#else
    detail::fail_no_cuda(op, bx);
#endif
  } else {
    kept = nms_cpu(bx, c, circle, opts);
  }
  return torch::tensor(kept, torch::kInt64).to(boxes.device());
}

}  // namespace

torch::Tensor nms_bev(const torch::Tensor& boxes, const torch::Tensor& scores, double iou_threshold,
                      const NmsOptions& opts, const torch::Tensor& groups) {
  BEVKD_CHECK(std::isfinite(iou_threshold), "nms_bev: iou_threshold must be finite, found ", iou_threshold);
  return nms_any("nms_bev", boxes, scores, false, {iou_threshold}, opts, groups);
}

torch::Tensor circle_nms(const torch::Tensor& boxes, const torch::Tensor& scores,
                         const std::vector<double>& dist2_thresholds, const NmsOptions& opts,
                         const torch::Tensor& groups) {
  BEVKD_CHECK(!dist2_thresholds.empty(), "circle_nms: no distance threshold given");
  for (size_t g = 0; g < dist2_thresholds.size(); ++g)
    BEVKD_CHECK(std::isfinite(dist2_thresholds[g]) && dist2_thresholds[g] >= 0, "circle_nms: dist2_thresholds[", g,
                "] must be finite and >= 0, found ", dist2_thresholds[g]);
  return nms_any("circle_nms", boxes, scores, true, dist2_thresholds, opts, groups);
}

}  // namespace bevkd::kernels
