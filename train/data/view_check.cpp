#include "train/data/view_check.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <numeric>
#include <ostream>
#include <sstream>

#include "base/error.h"
#include "storage/manifest.h"
#include "train/data/loader.h"

namespace bevkd::train::data {

std::vector<CentreMatch> match_centres(const torch::Tensor& teacher_boxes, const torch::Tensor& teacher_scores,
                                       const torch::Tensor& teacher_labels, const torch::Tensor& gt_centres,
                                       const torch::Tensor& gt_labels, double min_score, double max_distance) {
  const auto tb = teacher_boxes.to(torch::kCPU, torch::kFloat64).contiguous();
  const auto ts = teacher_scores.to(torch::kCPU, torch::kFloat64).contiguous();
  const auto tl = teacher_labels.to(torch::kCPU, torch::kInt64).contiguous();
  const auto gc = gt_centres.to(torch::kCPU, torch::kFloat64).contiguous();
  const auto gl = gt_labels.to(torch::kCPU, torch::kInt64).contiguous();
  const std::int64_t M = tb.size(0), K = gc.size(0);
  BEVKD_CHECK(ts.numel() == M && tl.numel() == M, "match_centres: ", M, " teacher boxes but ", ts.numel(), " scores and ",
              tl.numel(), " labels");
  BEVKD_CHECK(gl.numel() == K, "match_centres: ", K, " GT centres but ", gl.numel(), " labels");
  BEVKD_CHECK((M == 0 || tb.size(1) >= 2) && (K == 0 || gc.size(1) >= 2), "match_centres: boxes need x and y columns");
  const double* t = tb.data_ptr<double>();
  const double* s = ts.data_ptr<double>();
  const std::int64_t* tlab = tl.data_ptr<std::int64_t>();
  const double* g = gc.data_ptr<double>();
  const std::int64_t* glab = gl.data_ptr<std::int64_t>();
  const std::int64_t tw = M ? tb.size(1) : 0, gw = K ? gc.size(1) : 0;

  std::vector<std::int64_t> order;
  for (std::int64_t i = 0; i < M; ++i)
    if (s[i] >= min_score) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) { return s[a] > s[b]; });
  std::vector<bool> taken(static_cast<std::size_t>(K), false);
  std::vector<CentreMatch> out;
  for (const std::int64_t i : order) {
    std::int64_t best = -1;
    double best_d = max_distance;
    for (std::int64_t k = 0; k < K; ++k) {
      if (taken[static_cast<std::size_t>(k)] || glab[k] != tlab[i]) continue;
      const double d = std::hypot(t[i * tw] - g[k * gw], t[i * tw + 1] - g[k * gw + 1]);
      if (d < best_d || (d == best_d && best < 0)) {
        best = k;
        best_d = d;
      }
    }
    if (best < 0) continue;
    taken[static_cast<std::size_t>(best)] = true;
    out.push_back({i, best, best_d});
  }
  return out;
}

void ViewCheckConfig::validate() const {
  BEVKD_CHECK(!shards.empty(), "check-views: --shards is required");
  BEVKD_CHECK(!dataroot.empty(), "check-views: --dataroot is required (the loader reads the images)");
  BEVKD_CHECK(view >= -1, "check-views: view ", view, " must be -1 (all) or a stored view index");
  BEVKD_CHECK(max_samples >= 0, "check-views: max_samples ", max_samples, " must be >= 0");
  BEVKD_CHECK(max_distance > 0 && std::isfinite(max_distance), "check-views: max_distance ", max_distance,
              " must be a positive number of metres");
  BEVKD_CHECK(min_view_ratio >= 0 && min_view_ratio <= 1, "check-views: min_view_ratio ", min_view_ratio,
              " is not in [0, 1]");
  BEVKD_CHECK(threads >= 1, "check-views: threads ", threads, " must be >= 1");
}

double ViewAlignment::fraction_within(const std::vector<double>& d, double limit) {
  if (d.empty()) return std::numeric_limits<double>::quiet_NaN();
  const auto n = std::count_if(d.begin(), d.end(), [&](double x) { return x <= limit; });
  return static_cast<double>(n) / static_cast<double>(d.size());
}

double ViewAlignment::on_gt(double cell, bool with) const {
  if (teacher == 0) return std::numeric_limits<double>::quiet_NaN();
  const auto& d = with ? with_bda : without_bda;
  const auto n = std::count_if(d.begin(), d.end(), [&](double x) { return x <= cell; });
  return static_cast<double>(n) / static_cast<double>(teacher);
}

double ViewAlignment::quantile(std::vector<double> d, double q) {
  if (d.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(d.begin(), d.end());
  const double pos = q * static_cast<double>(d.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, d.size() - 1);
  return d[lo] + (pos - static_cast<double>(lo)) * (d[hi] - d[lo]);
}

namespace {

// One view, replayed by the training loader exactly as bevkd-train replays it.
ViewAlignment check_one_view(const storage::Manifest& manifest, const ViewCheckConfig& cfg, std::int64_t view) {
  LoaderConfig lc;
  lc.batch_size = 4;
  // The boxes do not depend on the images; keep decoding cheap (DCT-scaled, no rotation or flip).
  lc.image.final_size = {32, 32};
  lc.image.resize_range = {0.05, 0.05};
  lc.image.rotation_range = {0, 0};
  lc.image.flip_prob = 0;
  lc.teacher_boxes = true;
  lc.view_policy = "fixed";
  lc.fixed_view = view;
  lc.threads = cfg.threads;
  LoaderSetup setup;
  setup.split = cfg.split;
  setup.train = true;
  Loader loader(manifest, cfg.dataroot, lc, setup);

  ViewAlignment a;
  a.view = view;
  while (auto batch = loader.next()) {
    const Batch b = batch->to(torch::kCPU);
    for (std::int64_t s = 0; s < b.size(); ++s) {
      if (cfg.max_samples > 0 && a.samples >= cfg.max_samples) return a;
      BEVKD_CHECK(b.views[static_cast<std::size_t>(s)] == view, "check-views: the loader replayed view ",
                  b.views[static_cast<std::size_t>(s)], " of ", b.sample_tokens[static_cast<std::size_t>(s)],
                  " instead of view ", view);
      const SampleGt& gt = b.gt[static_cast<std::size_t>(s)];
      const SampleTeacher& t = b.teacher[static_cast<std::size_t>(s)];
      ++a.samples;
      a.gt += gt.boxes.size(0);
      a.teacher += (t.scores >= cfg.min_score).sum().item<std::int64_t>();
      const auto view_centres = gt.boxes.slice(1, 0, 3).to(torch::kFloat64);
      // Control: the same GT rows in the key frame (the view's bda undone).
      const auto bda = b.cameras.bda[s].to(torch::kFloat64);
      const auto key_centres = torch::matmul(view_centres, torch::inverse(bda).t());
      for (const auto& m : match_centres(t.boxes, t.scores, t.labels, view_centres, gt.labels, cfg.min_score,
                                         cfg.max_distance))
        a.with_bda.push_back(m.distance);
      for (const auto& m :
           match_centres(t.boxes, t.scores, t.labels, key_centres, gt.labels, cfg.min_score, cfg.max_distance))
        a.without_bda.push_back(m.distance);
    }
  }
  return a;
}

}  // namespace

ViewCheckResult check_view_alignment(const ViewCheckConfig& cfg) {
  cfg.validate();
  const auto manifest = storage::Manifest::load(storage::Manifest::file_of(cfg.shards));
  ViewCheckResult r;
  r.cell = manifest.grid().dx;
  const std::int64_t count = manifest.num_views();
  BEVKD_CHECK(cfg.view < count, "check-views: view ", cfg.view, " requested but ", cfg.shards, " stores ", count,
              " view(s) per sample (0..", count - 1, ")");
  for (std::int64_t v = cfg.view < 0 ? 0 : cfg.view; v < (cfg.view < 0 ? count : cfg.view + 1); ++v)
    r.views.push_back(check_one_view(manifest, cfg, v));
  r.passed = true;
  const ViewAlignment* key = nullptr;
  for (const auto& a : r.views)
    if (a.view == 0) key = &a;
  for (const auto& a : r.views) {
    if (a.teacher == 0) continue;
    if (a.with_bda.empty() || ViewAlignment::quantile(a.with_bda, 0.5) > r.cell) r.passed = false;
    if (a.view > 0 && key != nullptr && key->teacher > 0 &&
        !(a.on_gt(r.cell) >= cfg.min_view_ratio * key->on_gt(r.cell)))
      r.passed = false;
  }
  return r;
}

void print_view_check(const ViewCheckResult& r, const ViewCheckConfig& cfg, std::ostream& out) {
  out << "check-views: " << cfg.shards << " split " << cfg.split << ", teacher boxes with score >= " << cfg.min_score
      << " matched to GT of their class within " << cfg.max_distance << " m; cell " << r.cell << " m\n";
  out << "                              |       with the view's bda (m)        | without it: the control (m)\n"
      << "view  samples     GT  teacher | matched median   p90 <=1cell  on GT | matched median   p90 <=1cell  on GT\n";
  auto row = [&](const ViewAlignment& a, bool with) {
    const auto& d = with ? a.with_bda : a.without_bda;
    std::ostringstream s;
    s << std::fixed << std::setprecision(2) << std::setw(7) << d.size() << " " << std::setw(6)
      << ViewAlignment::quantile(d, 0.5) << " " << std::setw(5) << ViewAlignment::quantile(d, 0.9) << " "
      << std::setw(6) << 100 * ViewAlignment::fraction_within(d, r.cell) << "% " << std::setw(5)
      << 100 * a.on_gt(r.cell, with) << "%";
    return s.str();
  };
  for (const auto& a : r.views)
    out << std::setw(4) << a.view << "  " << std::setw(7) << a.samples << "  " << std::setw(5) << a.gt << "  "
        << std::setw(7) << a.teacher << " | " << row(a, true) << " | " << row(a, false) << "\n";
  out << "  (<=1cell: matched pairs within one cell; on GT: confident teacher boxes within one cell of a GT box)\n";
  out << "check-views: " << (r.passed ? "PASS" : "FAIL") << " (every view: median matched distance <= one cell; "
      << "views >= 1 keep >= " << 100 * cfg.min_view_ratio << " % of view 0's on-GT fraction)\n";
}

}  // namespace bevkd::train::data
