// Rotated IoU against analytic cases and an independent polygon reference (vertex collection
// plus convex hull, not clipping); NMS against a brute-force greedy reference.
#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "kernels/iou.h"
#include "kernels/nms.h"
#include "tests/kernels/test_util.h"

namespace bevkd::kernels {
namespace {

using test::all_close;
using test::same;

// ---- independent reference --------------------------------------------------------------

using test::box_corners_ccw;
using test::cross;
using V2 = test::Pt;

bool inside(V2 p, const std::vector<V2>& poly) {
  for (size_t i = 0; i < poly.size(); ++i)
    if (cross(poly[i], poly[(i + 1) % poly.size()], p) < -1e-12) return false;
  return true;
}

// Area of the convex hull (Andrew's monotone chain).
double hull_area(std::vector<V2> p) {
  if (p.size() < 3) return 0;
  std::sort(p.begin(), p.end(), [](V2 a, V2 b) { return a.x < b.x || (a.x == b.x && a.y < b.y); });
  std::vector<V2> h(2 * p.size());
  size_t k = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    while (k >= 2 && cross(h[k - 2], h[k - 1], p[i]) <= 0) --k;
    h[k++] = p[i];
  }
  for (size_t i = p.size() - 1, t = k + 1; i-- > 0;) {
    while (k >= t && cross(h[k - 2], h[k - 1], p[i]) <= 0) --k;
    h[k++] = p[i];
  }
  double a = 0;
  for (size_t i = 0; i + 1 < k; ++i) a += h[i].x * h[i + 1].y - h[i + 1].x * h[i].y;
  return std::abs(a) / 2;
}

// The intersection polygon's vertices are the corners of each rectangle inside the other and
// the crossings of their edges; its area is their hull's.
double ref_intersection(const double* a, const double* b) {
  const auto pa = box_corners_ccw(a), pb = box_corners_ccw(b);
  std::vector<V2> pts;
  for (const V2& p : pa)
    if (inside(p, pb)) pts.push_back(p);
  for (const V2& p : pb)
    if (inside(p, pa)) pts.push_back(p);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) {
      const V2 p = pa[i], q = pa[(i + 1) % 4], r = pb[j], s = pb[(j + 1) % 4];
      const double d = (q.x - p.x) * (s.y - r.y) - (q.y - p.y) * (s.x - r.x);
      if (std::abs(d) < 1e-14) continue;
      const double t = ((r.x - p.x) * (s.y - r.y) - (r.y - p.y) * (s.x - r.x)) / d;
      const double u = ((r.x - p.x) * (q.y - p.y) - (r.y - p.y) * (q.x - p.x)) / d;
      if (t >= 0 && t <= 1 && u >= 0 && u <= 1) pts.push_back({p.x + t * (q.x - p.x), p.y + t * (q.y - p.y)});
    }
  return hull_area(pts);
}

double ref_iou(const double* a, const double* b, bool three_d) {
  double inter = ref_intersection(a, b);
  double va = a[3] * a[4], vb = b[3] * b[4];
  if (three_d) {
    const double dz =
        std::max(0.0, std::min(a[2] + a[5] / 2, b[2] + b[5] / 2) - std::max(a[2] - a[5] / 2, b[2] - b[5] / 2));
    inter *= dz;
    va *= a[5];
    vb *= b[5];
  }
  return inter / (va + vb - inter);
}

torch::Tensor ref_iou_matrix(const torch::Tensor& a, const torch::Tensor& b, bool three_d) {
  const torch::Tensor x = a.to(torch::kFloat64).contiguous(), y = b.to(torch::kFloat64).contiguous();
  torch::Tensor out = torch::empty({a.size(0), b.size(0)}, torch::kFloat64);
  for (int64_t i = 0; i < a.size(0); ++i)
    for (int64_t j = 0; j < b.size(0); ++j)
      out[i][j] = ref_iou(x.data_ptr<double>() + i * x.size(1), y.data_ptr<double>() + j * y.size(1), three_d);
  return out;
}

torch::Tensor random_boxes(int64_t n, double spread, uint64_t seed) { return test::random_boxes(n, spread, 4.5, seed); }

// ---- IoU --------------------------------------------------------------------------------

torch::Tensor box(double x, double y, double z, double l, double w, double h, double yaw) {
  return torch::tensor({{x, y, z, l, w, h, yaw}}, torch::kFloat64);
}

TEST(Iou, AnalyticCases) {
  const torch::Tensor a = box(10, -3, 0.5, 4, 2, 1.5, 0.7);
  EXPECT_NEAR(bev_iou(a, a).item<double>(), 1.0, 1e-12);  // identical
  EXPECT_NEAR(iou_3d(a, a).item<double>(), 1.0, 1e-12);
  EXPECT_EQ(bev_iou(a, box(20, -3, 0.5, 4, 2, 1.5, 0.7)).item<double>(), 0.0);            // disjoint
  EXPECT_NEAR(bev_iou(a, box(10, -3, 0.5, 2, 1, 1.5, 0.7)).item<double>(), 0.25, 1e-12);  // contained
  const torch::Tensor square = box(0, 0, 0, 2, 2, 1, 0);
  EXPECT_NEAR(bev_iou(square, box(0, 0, 0, 2, 2, 1, M_PI / 4)).item<double>(), 1 / std::sqrt(2.0), 1e-12);  // 45°
  EXPECT_NEAR(bev_iou(square, box(1, 0, 0, 2, 2, 1, 0)).item<double>(), 1.0 / 3.0, 1e-12);  // half overlap
  EXPECT_NEAR(bev_iou(box(0, 0, 0, 4, 2, 1, 0), box(0, 0, 0, 2, 4, 1, M_PI / 2)).item<double>(), 1.0, 1e-12);
  EXPECT_NEAR(iou_3d(square, box(0, 0, 0.5, 2, 2, 1, 0)).item<double>(), 1.0 / 3.0, 1e-12);  // z half overlap
  EXPECT_EQ(iou_3d(square, box(0, 0, 1.5, 2, 2, 1, 0)).item<double>(), 0.0);                 // stacked
  EXPECT_EQ(bev_iou(square, box(0, 0, 0, 0, 2, 1, 0)).item<double>(), 0.0);                  // degenerate
}

TEST(Iou, RandomBoxesMatchThePolygonReference) {
  const torch::Tensor a = random_boxes(40, 3.0, 41), b = random_boxes(35, 3.0, 42).slice(1, 0, 7);
  const torch::Tensor bev = bev_iou(a, b), vol = iou_3d(a, b);
  ASSERT_EQ(bev.sizes(), torch::IntArrayRef({40, 35}));
  EXPECT_GT((bev > 0).sum().item<int64_t>(), 300);  // mostly overlapping pairs
  EXPECT_TRUE(all_close(bev, ref_iou_matrix(a, b, false), 0, test::kF64Tol));
  EXPECT_TRUE(all_close(vol, ref_iou_matrix(a, b, true), 0, test::kF64Tol));
  const torch::Tensor af = a.to(torch::kFloat32), bf = b.to(torch::kFloat32);
  EXPECT_EQ(bev_iou(af, bf).scalar_type(), torch::kFloat32);
  EXPECT_TRUE(all_close(bev_iou(af, bf), ref_iou_matrix(af, bf, false), 0, test::kF32AbsTol));
}

TEST(Iou, AlignedIsTheDiagonal) {
  const torch::Tensor a = random_boxes(50, 2.0, 43), b = random_boxes(50, 2.0, 44);
  EXPECT_TRUE(all_close(bev_iou_aligned(a, b), bev_iou(a, b).diagonal(), 0, 0));
  EXPECT_TRUE(all_close(iou_3d_aligned(a, b), iou_3d(a, b).diagonal(), 0, 0));
}

TEST(Iou, RejectsBadInput) {
  EXPECT_ERROR_WITH(
      bev_iou(torch::zeros({5, 8}), torch::zeros({3, 7})),
      "bev_iou: a must be [N, 7] or [N, 9] float32/float64 (x, y, z, l, w, h, yaw[, vx, vy]), found [5, 8] "
      "float32 on cpu");
  EXPECT_ERROR_WITH(iou_3d(torch::zeros({5, 7}), torch::zeros({3, 7}, torch::kFloat64)),
                     "iou_3d: a is [5, 7] float32 on cpu but b is [3, 7] float64 on cpu; both need the same dtype");
  EXPECT_ERROR_WITH(bev_iou_aligned(torch::zeros({5, 7}), torch::zeros({4, 7})),
                    "bev_iou_aligned: the aligned form needs as many boxes in b as in a, found 5 and 4");
}

// ---- NMS --------------------------------------------------------------------------------

std::vector<int64_t> ref_nms(const torch::Tensor& boxes, const torch::Tensor& scores, const torch::Tensor& groups,
                             bool circle, const std::vector<double>& thr, int64_t pre, int64_t post) {
  const int64_t n = boxes.size(0);
  const torch::Tensor b = boxes.to(torch::kFloat64).contiguous();
  const torch::Tensor sd = scores.to(torch::kFloat64);
  const auto s = sd.accessor<double, 1>();
  std::vector<int64_t> g(n, 0);
  for (int64_t i = 0; groups.defined() && i < n; ++i) g[i] = groups[i].item<int64_t>();
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return s[x] != s[y] ? s[x] > s[y] : x < y; });
  std::map<int64_t, int64_t> seen, kept_per_group;
  std::vector<int64_t> cand;
  for (int64_t i : order)
    if (pre <= 0 || seen[g[i]]++ < pre) cand.push_back(i);
  std::vector<bool> gone(n, false);
  std::vector<int64_t> kept;
  for (size_t a = 0; a < cand.size(); ++a) {
    const int64_t i = cand[a];
    if (gone[i] || (post > 0 && kept_per_group[g[i]] >= post)) continue;
    ++kept_per_group[g[i]];
    kept.push_back(i);
    const double t = thr.size() == 1 ? thr[0] : thr[g[i]];
    for (size_t c = a + 1; c < cand.size(); ++c) {
      const int64_t j = cand[c];
      if (g[j] != g[i]) continue;
      const double* bi = b.data_ptr<double>() + i * b.size(1);
      const double* bj = b.data_ptr<double>() + j * b.size(1);
      const bool hit = circle ? (bi[0] - bj[0]) * (bi[0] - bj[0]) + (bi[1] - bj[1]) * (bi[1] - bj[1]) <= t
                              : ref_iou(bi, bj, false) > t;
      if (hit) gone[j] = true;
    }
  }
  return kept;
}

std::vector<int64_t> to_vector(const torch::Tensor& t) {
  const torch::Tensor c = t.cpu().contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

TEST(Nms, RotatedMatchesGreedyReference) {
  const torch::Tensor boxes = random_boxes(300, 12.0, 51);
  torch::manual_seed(52);
  const torch::Tensor scores = (torch::rand({300}, torch::kFloat64) * 20).round() / 20;  // many ties
  const torch::Tensor groups = torch::randint(0, 3, {300}, torch::kInt64);
  for (const auto& [pre, post] : {std::pair<int64_t, int64_t>{0, 0}, {60, 25}}) {
    NmsOptions o;
    o.pre_max_size = pre;
    o.post_max_size = post;
    const auto want = ref_nms(boxes, scores, torch::Tensor(), false, {0.2}, pre, post);
    EXPECT_EQ(to_vector(nms_bev(boxes, scores, 0.2, o)), want) << pre << "/" << post;
    EXPECT_EQ(to_vector(nms_bev(boxes, scores, 0.2, o, groups)),
              ref_nms(boxes, scores, groups, false, {0.2}, pre, post))
        << pre << "/" << post;
    EXPECT_LT(want.size(), 250u);  // something was suppressed
  }
  EXPECT_EQ(to_vector(nms_bev(boxes.to(torch::kFloat32), scores.to(torch::kFloat32), 0.2)),
            ref_nms(boxes.to(torch::kFloat32), scores.to(torch::kFloat32), torch::Tensor(), false, {0.2}, 0, 0));
}

TEST(Nms, CircleMatchesGreedyReference) {
  const torch::Tensor boxes = random_boxes(300, 12.0, 53);
  torch::manual_seed(54);
  const torch::Tensor scores = torch::rand({300}, torch::kFloat64);
  const torch::Tensor groups = torch::randint(0, 3, {300}, torch::kInt32);
  const std::vector<double> thr = {1.0, 4.0, 0.25};
  NmsOptions o;
  o.post_max_size = 30;
  EXPECT_EQ(to_vector(circle_nms(boxes, scores, thr, o, groups)), ref_nms(boxes, scores, groups, true, thr, 0, 30));
  EXPECT_EQ(to_vector(circle_nms(boxes.slice(1, 0, 2), scores, {2.0})),
            ref_nms(boxes, scores, torch::Tensor(), true, {2.0}, 0, 0));
}

TEST(Nms, TiesKeepTheLowerIndexAndGroupsDoNotInteract) {
  const torch::Tensor b = torch::cat({box(0, 0, 0, 4, 2, 1, 0), box(0, 0, 0, 4, 2, 1, 0), box(0.1, 0, 0, 4, 2, 1, 0)});
  const torch::Tensor s = torch::tensor({0.5, 0.5, 0.9}, torch::kFloat64);
  EXPECT_EQ(to_vector(nms_bev(b, s, 0.5)), (std::vector<int64_t>{2}));
  EXPECT_EQ(to_vector(nms_bev(b.slice(0, 0, 2), s.slice(0, 0, 2), 0.5)), (std::vector<int64_t>{0}));
  EXPECT_EQ(to_vector(nms_bev(b, s, 0.5, {}, torch::tensor({0, 1, 2}))), (std::vector<int64_t>{2, 0, 1}));
  EXPECT_EQ(to_vector(nms_bev(b.slice(0, 0, 0), s.slice(0, 0, 0), 0.5)), (std::vector<int64_t>{}));
}

TEST(Nms, RejectsBadInput) {
  const torch::Tensor b = random_boxes(4, 5.0, 55);
  EXPECT_ERROR_WITH(nms_bev(b, torch::tensor({0.1, 0.2, std::nan(""), 0.3}, torch::kFloat64), 0.5),
                     "nms_bev: scores[2] is NaN");
  EXPECT_ERROR_WITH(nms_bev(b, torch::rand({3}, torch::kFloat64), 0.5),
                     "nms_bev: scores must be [N] float32/float64 with N = boxes.size(0), found [3] float64 on cpu");
  EXPECT_ERROR_WITH(circle_nms(b, torch::rand({4}), {1.0, 2.0}, {}, torch::tensor({0, 1, 2, 1})),
                     "circle_nms: groups[2] is 2 but thresholds are given for groups 0..1");
  EXPECT_ERROR_WITH(circle_nms(b, torch::rand({4}), {-1.0}),
                     "circle_nms: dist2_thresholds[0] must be finite and >= 0, found -1");
}

}  // namespace
}  // namespace bevkd::kernels
