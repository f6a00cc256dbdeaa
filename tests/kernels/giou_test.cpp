// Rotated BEV GIoU against hand-worked cases, an exact brute-force reference (the hull as the
// set of corner pairs with every other corner on their left: O(n³), no sorting), and areas
// estimated on a fine grid (point in rectangle; point in the hull = point in some triangle of
// corners, Carathéodory), none of which shares code with kernels/detail/box_math.h.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/iou.h"
#include "tests/kernels/test_util.h"

namespace bevkd::kernels {
namespace {

using test::all_close;

using test::box_corners_ccw;
using test::cross;
using P = test::Pt;

// Exact hull area: the directed edge (i, j) is on the counter-clockwise hull when every other
// point lies strictly on its left or on the segment itself; the shoelace terms of those edges
// sum to twice the area. Duplicated points are dropped first.
double brute_hull_area(std::vector<P> pts) {
  std::vector<P> u;
  for (const P& p : pts)
    if (std::none_of(u.begin(), u.end(), [&](const P& q) { return std::abs(p.x - q.x) + std::abs(p.y - q.y) < 1e-12; }))
      u.push_back(p);
  double twice = 0;
  for (size_t i = 0; i < u.size(); ++i)
    for (size_t j = 0; j < u.size(); ++j) {
      if (i == j) continue;
      bool edge = true;
      for (size_t k = 0; k < u.size() && edge; ++k) {
        if (k == i || k == j) continue;
        const double c = cross(u[i], u[j], u[k]);
        if (c > 1e-12) continue;
        if (c < -1e-12) {
          edge = false;
          continue;
        }
        // collinear: only the longest collinear segment counts
        const double t = ((u[k].x - u[i].x) * (u[j].x - u[i].x) + (u[k].y - u[i].y) * (u[j].y - u[i].y)) /
                         ((u[j].x - u[i].x) * (u[j].x - u[i].x) + (u[j].y - u[i].y) * (u[j].y - u[i].y));
        if (t < 0 || t > 1) edge = false;
      }
      if (edge) twice += u[i].x * u[j].y - u[j].x * u[i].y;
    }
  return twice / 2;
}

bool in_rect(P p, const double* b) {
  const double c = std::cos(b[6]), s = std::sin(b[6]);
  const double dx = p.x - b[0], dy = p.y - b[1];
  return std::abs(c * dx + s * dy) <= b[3] / 2 && std::abs(-s * dx + c * dy) <= b[4] / 2;
}

bool in_triangle(P p, P a, P b, P c) {
  const double d1 = cross(a, b, p), d2 = cross(b, c, p), d3 = cross(c, a, p);
  return (d1 >= 0 && d2 >= 0 && d3 >= 0) || (d1 <= 0 && d2 <= 0 && d3 <= 0);
}

// GIoU from areas counted on an n x n grid of cell centres over the corners' bounding box.
double grid_giou(const double* a, const double* b, int n) {
  std::vector<P> pts = box_corners_ccw(a);
  for (const P& p : box_corners_ccw(b)) pts.push_back(p);
  double x0 = 1e9, x1 = -1e9, y0 = 1e9, y1 = -1e9;
  for (const P& p : pts) {
    x0 = std::min(x0, p.x), x1 = std::max(x1, p.x), y0 = std::min(y0, p.y), y1 = std::max(y1, p.y);
  }
  int64_t inter = 0, uni = 0, hull = 0;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      const P p{x0 + (j + 0.5) * (x1 - x0) / n, y0 + (i + 0.5) * (y1 - y0) / n};
      const bool ia = in_rect(p, a), ib = in_rect(p, b);
      inter += ia && ib;
      uni += ia || ib;
      bool h = ia || ib;
      for (size_t u = 0; u < 8 && !h; ++u)
        for (size_t v = u + 1; v < 8 && !h; ++v)
          for (size_t w = v + 1; w < 8 && !h; ++w) h = in_triangle(p, pts[u], pts[v], pts[w]);
      hull += h;
    }
  return double(inter) / uni - double(hull - uni) / hull;
}

// Exact reference: IoU from bev_iou (checked against an independent polygon reference in
// iou_nms_test.cpp), the union from IoU = I / (A + B − I), the hull from brute_hull_area.
double exact_giou(const double* a, const double* b) {
  const torch::Tensor ta = torch::from_blob(const_cast<double*>(a), {1, 7}, torch::kFloat64);
  const torch::Tensor tb = torch::from_blob(const_cast<double*>(b), {1, 7}, torch::kFloat64);
  const double iou = bev_iou(ta, tb).item<double>();
  const double area = a[3] * a[4] + b[3] * b[4];
  const double inter = iou * area / (1 + iou), uni = area - inter;
  std::vector<P> pts = box_corners_ccw(a);
  for (const P& p : box_corners_ccw(b)) pts.push_back(p);
  const double hull = brute_hull_area(pts);
  return iou - (hull - uni) / hull;
}

torch::Tensor box(double x, double y, double l, double w, double yaw) {
  return torch::tensor({{x, y, 0.0, l, w, 1.0, yaw}}, torch::kFloat64);
}

double giou1(const torch::Tensor& a, const torch::Tensor& b) { return bev_giou(a, b).item<double>(); }

TEST(Giou, HandWorkedCases) {
  const torch::Tensor a = box(10, -3, 4, 2, 0.7);
  EXPECT_NEAR(giou1(a, a), 1.0, 1e-12);  // identical
  const torch::Tensor sq = box(0, 0, 2, 2, 0);
  // side by side with a gap of 2: union 8, hull 6 x 2 = 12 -> −4/12
  EXPECT_NEAR(giou1(sq, box(4, 0, 2, 2, 0)), -1.0 / 3.0, 1e-12);
  // diagonal, disjoint: hull (−1,−1) (1,−1) (4,2) (4,4) (2,4) (−1,1) has area 16 -> −8/16
  EXPECT_NEAR(giou1(sq, box(3, 3, 2, 2, 0)), -0.5, 1e-12);
  // touching along an edge: IoU 0, hull = union -> 0
  EXPECT_NEAR(giou1(sq, box(2, 0, 2, 2, 0)), 0.0, 1e-12);
  // half overlap: IoU 1/3, hull 3 x 2 = union
  EXPECT_NEAR(giou1(sq, box(1, 0, 2, 2, 0)), 1.0 / 3.0, 1e-12);
  // contained: IoU 1/4 and the hull is the larger box
  EXPECT_NEAR(giou1(box(1, 1, 4, 2, 0.3), box(1, 1, 2, 1, 0.3)), 0.25, 1e-12);
  // the square and itself turned 45°: intersection the regular octagon 8(√2 − 1), union
  // 16 − 8√2, hull the octagon through (±√2, 0), (±1, ±1), (0, ±√2) of area 4√2
  const double inter = 8 * (std::sqrt(2.0) - 1), uni = 16 - 8 * std::sqrt(2.0), hull = 4 * std::sqrt(2.0);
  EXPECT_NEAR(giou1(sq, box(0, 0, 2, 2, M_PI / 4)), inter / uni - (hull - uni) / hull, 1e-12);
  // a 4 x 2 box and the same turned 90° about its centre: a cross; hull = octagon
  // (±2, ±1), (±1, ±2): area 4·4 − 4·½ = 14; intersection 2 x 2 = 4, union 12
  EXPECT_NEAR(giou1(box(0, 0, 4, 2, 0), box(0, 0, 4, 2, M_PI / 2)), 4.0 / 12 - 2.0 / 14, 1e-12);
  // far apart: tends to −1
  EXPECT_LT(giou1(sq, box(1000, 0, 2, 2, 0.4)), -0.99);
  // degenerate footprints
  EXPECT_EQ(giou1(sq, box(0, 0, 0, 2, 0)), -1.0);
  EXPECT_EQ(giou1(box(0, 0, 2, -1, 0), sq), -1.0);
}

TEST(Giou, RandomBoxesMatchTheBruteForceHull) {
  const torch::Tensor a = test::random_boxes(30, 4.0, 6.0, 61), b = test::random_boxes(25, 4.0, 6.0, 62);
  const torch::Tensor g = bev_giou(a, b);
  ASSERT_EQ(g.sizes(), torch::IntArrayRef({30, 25}));
  torch::Tensor want = torch::empty({30, 25}, torch::kFloat64);
  const torch::Tensor a7 = a.slice(1, 0, 7).contiguous(), b7 = b.slice(1, 0, 7).contiguous();
  for (int64_t i = 0; i < 30; ++i)
    for (int64_t j = 0; j < 25; ++j)
      want[i][j] = exact_giou(a7.data_ptr<double>() + 7 * i, b7.data_ptr<double>() + 7 * j);
  EXPECT_TRUE(all_close(g, want, 0, 1e-10));
  EXPECT_GT((g > 0).sum().item<int64_t>(), 20);      // overlapping pairs
  EXPECT_GT((g < -0.3).sum().item<int64_t>(), 100);  // distant pairs
  // GIoU <= IoU, symmetric, in [−1, 1]
  EXPECT_TRUE((g <= bev_iou(a, b) + 1e-12).all().item<bool>());
  EXPECT_TRUE(all_close(bev_giou(b, a).t(), g, 0, 1e-12));
  EXPECT_TRUE((g >= -1).all().item<bool>());
  // float32 boxes: same values to float32 precision
  const torch::Tensor gf = bev_giou(a.to(torch::kFloat32), b.to(torch::kFloat32));
  EXPECT_EQ(gf.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(all_close(gf, g, 0, 1e-5));
}

TEST(Giou, RandomPairsMatchGridSampledAreas) {
  const torch::Tensor a = test::random_boxes(6, 2.5, 5.0, 63), b = test::random_boxes(6, 2.5, 5.0, 64);
  const torch::Tensor g = bev_giou_aligned(a, b);
  ASSERT_EQ(g.sizes(), torch::IntArrayRef({6}));
  for (int64_t i = 0; i < 6; ++i) {
    const torch::Tensor ai = a[i].contiguous(), bi = b[i].contiguous();
    EXPECT_NEAR(g[i].item<double>(), grid_giou(ai.data_ptr<double>(), bi.data_ptr<double>(), 300), 5e-3) << i;
  }
}

TEST(Giou, AlignedIsTheDiagonal) {
  const torch::Tensor a = test::random_boxes(40, 4.0, 5.0, 65), b = test::random_boxes(40, 4.0, 5.0, 66);
  EXPECT_TRUE(all_close(bev_giou_aligned(a, b), bev_giou(a, b).diagonal(), 0, 0));
  EXPECT_EQ(bev_giou(a.slice(0, 0, 0), b).sizes(), torch::IntArrayRef({0, 40}));
  EXPECT_ERROR_WITH(bev_giou_aligned(a, b.slice(0, 0, 39)),
                     "bev_giou_aligned: the aligned form needs as many boxes in b as in a, found 40 and 39");
  EXPECT_ERROR_WITH(bev_giou(torch::zeros({2, 6}), b), "bev_giou: a must be [N, 7] or [N, 9]");
}

}  // namespace
}  // namespace bevkd::kernels
