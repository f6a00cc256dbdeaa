// Rotated-box geometry shared by the CPU and CUDA implementations of iou.h (IoU, GIoU), nms.h and
// depth_projection.h. All arithmetic is double: box coordinates of ~50 m and sizes of a few
// centimetres keep full relative precision, and both devices round identically.
//
// Box layout (DESIGN.md): x, y, z, l, w, h, yaw[, vx, vy] — geometric centre, l along the
// heading, w across it, h up, yaw counter-clockwise from +x. Callers pass a pointer to the
// first of at least 7 values; the velocity is ignored.
#pragma once

#include <math.h>

#include "kernels/detail/hd.h"

namespace bevkd::kernels::detail {

struct Pt {
  double x, y;
};

// Twice the signed area of triangle (o, a, b): > 0 when b lies left of the line o -> a.
BEVKD_HD double cross(Pt o, Pt a, Pt b) { return (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x); }

// The 4 corners of a BEV rectangle, counter-clockwise, relative to (ox, oy).
BEVKD_HD void rect_corners(double cx, double cy, double l, double w, double yaw, double ox, double oy, Pt out[4]) {
  const double c = cos(yaw), s = sin(yaw);
  const double hl = 0.5 * l, hw = 0.5 * w;
  const double lx[4] = {hl, -hl, -hl, hl};
  const double ly[4] = {hw, hw, -hw, -hw};
  for (int k = 0; k < 4; ++k) {
    out[k].x = (cx - ox) + (c * lx[k] - s * ly[k]);
    out[k].y = (cy - oy) + (s * lx[k] + c * ly[k]);
  }
}

// Sutherland-Hodgman step: the part of convex polygon `in` (n vertices) on the left of, or on,
// the directed line a -> b. Returns the vertex count written to `out` (at most n + 1).
BEVKD_HD int clip_left_of(const Pt* in, int n, Pt a, Pt b, Pt* out) {
  int m = 0;
  for (int i = 0; i < n; ++i) {
    const Pt p = in[i];
    const Pt q = in[(i + 1) % n];
    const double dp = cross(a, b, p), dq = cross(a, b, q);
    if (dp >= 0) out[m++] = p;
    if ((dp > 0 && dq < 0) || (dp < 0 && dq > 0)) {
      const double t = dp / (dp - dq);
      out[m].x = p.x + t * (q.x - p.x);
      out[m].y = p.y + t * (q.y - p.y);
      ++m;
    }
  }
  return m;
}

// Area of a simple polygon (shoelace), non-negative.
BEVKD_HD double polygon_area(const Pt* p, int n) {
  double a = 0;
  for (int i = 0; i < n; ++i) {
    const Pt u = p[i], v = p[(i + 1) % n];
    a += u.x * v.y - u.y * v.x;
  }
  return fabs(0.5 * a);
}

// Exact intersection area of the BEV footprints of two boxes (convex clipping of b's rectangle
// by the 4 edges of a's). Zero when either footprint is degenerate (l or w <= 0).
template <typename T>
BEVKD_HD double bev_intersection_area(const T* a, const T* b) {
  const double al = a[3], aw = a[4], bl = b[3], bw = b[4];
  if (!(al > 0 && aw > 0 && bl > 0 && bw > 0)) return 0;
  const double ox = a[0], oy = a[1];  // work relative to a's centre
  const double dx = double(b[0]) - ox, dy = double(b[1]) - oy;
  const double reach = 0.5 * (sqrt(al * al + aw * aw) + sqrt(bl * bl + bw * bw));
  if (dx * dx + dy * dy > reach * reach) return 0;  // circumcircles apart
  Pt pa[4], buf0[16], buf1[16];
  rect_corners(a[0], a[1], al, aw, a[6], ox, oy, pa);
  rect_corners(b[0], b[1], bl, bw, b[6], ox, oy, buf0);
  Pt* cur = buf0;
  Pt* nxt = buf1;
  int n = 4;
  for (int k = 0; k < 4 && n > 0; ++k) {
    n = clip_left_of(cur, n, pa[k], pa[(k + 1) % 4], nxt);
    Pt* t = cur;
    cur = nxt;
    nxt = t;
  }
  return n >= 3 ? polygon_area(cur, n) : 0.0;
}

BEVKD_HD double clamp_unit(double v) { return v < 0 ? 0.0 : (v > 1 ? 1.0 : v); }

// Rotated BEV IoU: intersection / union of the footprints; 0 when the union is empty.
template <typename T>
BEVKD_HD double bev_iou(const T* a, const T* b) {
  const double inter = bev_intersection_area(a, b);
  const double uni = double(a[3]) * a[4] + double(b[3]) * b[4] - inter;
  return uni > 0 ? clamp_unit(inter / uni) : 0.0;
}

// 3D IoU: BEV intersection x z-overlap / union volume (z is the box's geometric centre).
template <typename T>
BEVKD_HD double iou_3d(const T* a, const T* b) {
  const double a_lo = double(a[2]) - 0.5 * a[5], a_hi = double(a[2]) + 0.5 * a[5];
  const double b_lo = double(b[2]) - 0.5 * b[5], b_hi = double(b[2]) + 0.5 * b[5];
  const double lo = a_lo > b_lo ? a_lo : b_lo, hi = a_hi < b_hi ? a_hi : b_hi;
  const double dz = hi > lo ? hi - lo : 0.0;
  const double inter = dz > 0 ? bev_intersection_area(a, b) * dz : 0.0;
  const double va = double(a[3]) * a[4] * a[5], vb = double(b[3]) * b[4] * b[5];
  const double uni = va + vb - inter;
  return uni > 0 ? clamp_unit(inter / uni) : 0.0;
}

// Area of the convex hull of n <= 8 points (Andrew's monotone chain; p is sorted in place).
BEVKD_HD double convex_hull_area(Pt* p, int n) {
  for (int i = 1; i < n; ++i) {  // insertion sort by (x, y)
    const Pt v = p[i];
    int j = i - 1;
    while (j >= 0 && (p[j].x > v.x || (p[j].x == v.x && p[j].y > v.y))) {
      p[j + 1] = p[j];
      --j;
    }
    p[j + 1] = v;
  }
  Pt h[16];
  int k = 0;
  for (int i = 0; i < n; ++i) {  // lower chain
    while (k >= 2 && cross(h[k - 2], h[k - 1], p[i]) <= 0) --k;
    h[k++] = p[i];
  }
  for (int i = n - 2, t = k + 1; i >= 0; --i) {  // upper chain
    while (k >= t && cross(h[k - 2], h[k - 1], p[i]) <= 0) --k;
    h[k++] = p[i];
  }
  return k >= 4 ? polygon_area(h, k - 1) : 0.0;  // h[k - 1] repeats h[0]
}

// Generalized IoU of the BEV footprints (Rezatofighi et al. 2019, with the rotated rectangles'
// smallest enclosing convex shape): IoU − (area(C) − area(A ∪ B)) / area(C), C the convex hull
// of both rectangles' 8 corners. In [−1, 1]; −1 when either footprint is degenerate (l or
// w <= 0, or NaN), the value of two infinitely distant boxes.
template <typename T>
BEVKD_HD double bev_giou(const T* a, const T* b) {
  const double al = a[3], aw = a[4], bl = b[3], bw = b[4];
  if (!(al > 0 && aw > 0 && bl > 0 && bw > 0)) return -1.0;
  const double inter = bev_intersection_area(a, b);
  const double uni = al * aw + bl * bw - inter;
  Pt p[8];
  rect_corners(a[0], a[1], al, aw, a[6], a[0], a[1], p);  // relative to a's centre
  rect_corners(b[0], b[1], bl, bw, b[6], a[0], a[1], p + 4);
  double hull = convex_hull_area(p, 8);
  if (hull < uni) hull = uni;  // equal up to rounding when one box contains the other
  const double iou = clamp_unit(inter / uni);
  return iou - (hull - uni) / hull;
}

// Which overlap measure iou.h's ops compute (shared by the CPU loop and the CUDA kernel).
enum class OverlapKind : int { kBevIou = 0, kIou3d = 1, kBevGiou = 2 };

template <typename T>
BEVKD_HD double box_overlap(OverlapKind kind, const T* a, const T* b) {
  switch (kind) {
    case OverlapKind::kIou3d:
      return iou_3d(a, b);
    case OverlapKind::kBevGiou:
      return bev_giou(a, b);
    default:
      return bev_iou(a, b);
  }
}

// CenterPoint's circle-NMS test: squared centre distance (in the boxes' dtype, as upstream's
// float32 numpy) <= dist2.
template <typename T>
BEVKD_HD bool centres_within(const T* a, const T* b, double dist2) {
  const T dx = a[0] - b[0], dy = a[1] - b[1];
  return static_cast<double>(dx * dx + dy * dy) <= dist2;
}

// Point inside a box, faces included (the devkit's points_in_box; same test as
// core/geometry.h point_in_box).
template <typename T>
BEVKD_HD bool point_in_box(double px, double py, double pz, const T* b) {
  const double c = cos(double(b[6])), s = sin(double(b[6]));
  const double dx = px - b[0], dy = py - b[1], dz = pz - b[2];
  const double lx = c * dx + s * dy;
  const double ly = -s * dx + c * dy;
  return fabs(lx) <= 0.5 * b[3] && fabs(ly) <= 0.5 * b[4] && fabs(dz) <= 0.5 * b[5];
}

}  // namespace bevkd::kernels::detail
