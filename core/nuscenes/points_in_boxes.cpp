#include "core/nuscenes/points_in_boxes.h"

#include <algorithm>
#include <cmath>

namespace bevkd::core::nusc {
namespace {

// A box as centre, frame axes (columns of R: box x, y, z in the points' frame) and half sizes.
struct Oriented {
  Vec3 c;
  Mat3 r;
  double hl, hw, hh;  // half length (x), width (y), height (z)

  bool contains(double px, double py, double pz) const {
    const double dx = px - c[0], dy = py - c[1], dz = pz - c[2];
    // Local coordinates: R^T (p - c).
    const double lx = r.m[0][0] * dx + r.m[1][0] * dy + r.m[2][0] * dz;
    const double ly = r.m[0][1] * dx + r.m[1][1] * dy + r.m[2][1] * dz;
    const double lz = r.m[0][2] * dx + r.m[1][2] * dy + r.m[2][2] * dz;
    return std::abs(lx) <= hl && std::abs(ly) <= hw && std::abs(lz) <= hh;
  }
  double radius() const { return std::sqrt(hl * hl + hw * hw + hh * hh); }
};

Oriented oriented(const NuscBox& b) {
  return {b.translation, b.rotation.to_matrix(), b.size[1] / 2, b.size[0] / 2, b.size[2] / 2};
}
Oriented oriented(const Box& b) { return {{b.x, b.y, b.z}, Mat3::rot_z(b.yaw), b.l / 2.0, b.w / 2.0, b.h / 2.0}; }

// Boxes bucketed by their x-y bounding square on a uniform grid.
class Buckets {
 public:
  explicit Buckets(const std::vector<Oriented>& boxes) : boxes_(boxes) {
    if (boxes.empty()) return;
    x0_ = y0_ = 1e300;
    double x1 = -1e300, y1 = -1e300;
    for (const Oriented& b : boxes) {
      const double r = b.radius();
      x0_ = std::min(x0_, b.c[0] - r), y0_ = std::min(y0_, b.c[1] - r);
      x1 = std::max(x1, b.c[0] + r), y1 = std::max(y1, b.c[1] + r);
    }
    cell_ = 2.0;
    // Keep the grid below ~1M cells for boxes spread over a large area.
    while ((x1 - x0_) / cell_ * (y1 - y0_) / cell_ > 1e6) cell_ *= 2;
    nx_ = static_cast<int>((x1 - x0_) / cell_) + 1;
    ny_ = static_cast<int>((y1 - y0_) / cell_) + 1;
    std::vector<std::vector<std::int32_t>> cells(static_cast<std::size_t>(nx_) * static_cast<std::size_t>(ny_));
    for (std::size_t k = 0; k < boxes.size(); ++k) {
      const Oriented& b = boxes[k];
      const double r = b.radius();
      const int i0 = cell_x(b.c[0] - r), i1 = cell_x(b.c[0] + r), j0 = cell_y(b.c[1] - r), j1 = cell_y(b.c[1] + r);
      for (int j = j0; j <= j1; ++j)
        for (int i = i0; i <= i1; ++i) cells[static_cast<std::size_t>(j) * nx_ + i].push_back(static_cast<std::int32_t>(k));
    }
    offsets_.assign(cells.size() + 1, 0);
    for (std::size_t c = 0; c < cells.size(); ++c) offsets_[c + 1] = offsets_[c] + static_cast<std::int32_t>(cells[c].size());
    ids_.reserve(static_cast<std::size_t>(offsets_.back()));
    for (const auto& c : cells) ids_.insert(ids_.end(), c.begin(), c.end());
  }

  // Calls fn(box index) for every box containing the point, in ascending box order.
  template <typename Fn>
  void for_each_containing(double px, double py, double pz, Fn&& fn) const {
    if (boxes_.empty() || !(px >= x0_ && py >= y0_)) return;
    const double fx = (px - x0_) / cell_, fy = (py - y0_) / cell_;
    if (!(fx < nx_ && fy < ny_)) return;
    const std::size_t c = static_cast<std::size_t>(static_cast<int>(fy)) * nx_ + static_cast<std::size_t>(static_cast<int>(fx));
    for (std::int32_t k = offsets_[c]; k < offsets_[c + 1]; ++k)
      if (boxes_[ids_[k]].contains(px, py, pz)) fn(ids_[k]);
  }

 private:
  int cell_x(double x) const { return std::clamp(static_cast<int>((x - x0_) / cell_), 0, nx_ - 1); }
  int cell_y(double y) const { return std::clamp(static_cast<int>((y - y0_) / cell_), 0, ny_ - 1); }

  const std::vector<Oriented>& boxes_;
  double x0_ = 0, y0_ = 0, cell_ = 1;
  int nx_ = 0, ny_ = 0;
  std::vector<std::int32_t> offsets_, ids_;  // ids per cell, ascending within a cell
};

template <typename B>
std::vector<std::int32_t> count_impl(const float* points, std::size_t n, std::size_t stride, const std::vector<B>& boxes) {
  std::vector<Oriented> ob;
  ob.reserve(boxes.size());
  for (const B& b : boxes) ob.push_back(oriented(b));
  const Buckets buckets(ob);
  std::vector<std::int32_t> counts(boxes.size(), 0);
  for (std::size_t i = 0; i < n; ++i) {
    const float* p = points + i * stride;
    buckets.for_each_containing(p[0], p[1], p[2], [&](std::int32_t k) { ++counts[k]; });
  }
  return counts;
}

}  // namespace

bool point_in_nusc_box(const NuscBox& b, const Vec3& p) { return oriented(b).contains(p[0], p[1], p[2]); }

std::vector<std::int32_t> count_points_in_boxes(const float* points, std::size_t n, std::size_t stride,
                                                const std::vector<NuscBox>& boxes) {
  return count_impl(points, n, stride, boxes);
}

std::vector<std::int32_t> count_points_in_boxes(const float* points, std::size_t n, std::size_t stride,
                                                const std::vector<Box>& boxes) {
  return count_impl(points, n, stride, boxes);
}

std::vector<std::int32_t> box_index_of_points(const float* points, std::size_t n, std::size_t stride,
                                              const std::vector<Box>& boxes) {
  std::vector<Oriented> ob;
  ob.reserve(boxes.size());
  for (const Box& b : boxes) ob.push_back(oriented(b));
  const Buckets buckets(ob);
  std::vector<std::int32_t> out(n, -1);
  for (std::size_t i = 0; i < n; ++i) {
    const float* p = points + i * stride;
    buckets.for_each_containing(p[0], p[1], p[2], [&](std::int32_t k) {
      if (out[i] < 0) out[i] = k;
    });
  }
  return out;
}

}  // namespace bevkd::core::nusc
