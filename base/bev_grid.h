// The one BEV grid of bevkd (DESIGN.md "BEV grid"). Kernels' option structs, detection heads and
// their targets, shard headers, manifests and configurations all hold a BevGrid; no module keeps a
// range of its own. There is no default grid: a default-constructed BevGrid is empty (valid() is
// false) and every user must be given one, from a preset, a configuration or a shard header.
//
//   range = [x_min, y_min, z_min, x_max, y_max, z_max]  (m, ego frame of the key frame)
//   cell  = dx x dy                                      (m)
//   shape = H rows (y) x W columns (x);  tensors [.., H, W], row i <-> y, column j <-> x;
//   cell (i, j) has centre x = x_min + (j + 1/2) dx, y = y_min + (i + 1/2) dy.
//
// One rounding rule and one tolerance: an axis has n = round(extent / cell) cells, and the grid
// is refused unless |extent / cell - n| <= kCellTolerance (a fraction of one cell); two grids
// are the same when their ranges and cells agree within kSameTolerance metres and their shapes
// are equal.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace bevkd {

struct BevGrid {
  static constexpr double kCellTolerance = 1e-6;  // of one cell, when counting cells
  static constexpr double kSameTolerance = 1e-6;  // metres, when comparing grids

  std::array<double, 6> range{};  // x_min, y_min, z_min, x_max, y_max, z_max (m)
  double dx = 0, dy = 0;          // cell size (m)
  std::int64_t H = 0, W = 0;      // rows (y), columns (x)

  // Validates (finite, min < max on every axis, positive cells, each extent a whole number of
  // cells) and derives H and W. Throws bevkd::Error naming `where` and the bad value.
  static BevGrid make(const std::array<double, 6>& range, double dx, double dy, std::string_view where = "BEV grid");
  static BevGrid make(const std::array<double, 6>& range, double cell, std::string_view where = "BEV grid") {
    return make(range, cell, cell, where);
  }

  bool valid() const { return H > 0 && W > 0; }
  // Throws bevkd::Error naming `where` unless the fields form the grid make() would build
  // (e.g. a grid read back from a file whose stored shape disagrees with its range and cell).
  void validate(std::string_view where) const;

  double x_min() const { return range[0]; }
  double y_min() const { return range[1]; }
  double z_min() const { return range[2]; }
  double x_max() const { return range[3]; }
  double y_max() const { return range[4]; }
  double z_max() const { return range[5]; }
  double x_center(std::int64_t j) const { return range[0] + (static_cast<double>(j) + 0.5) * dx; }
  double y_center(std::int64_t i) const { return range[1] + (static_cast<double>(i) + 0.5) * dy; }
  // Continuous cell coordinates (column, row) of a point: (x - x_min)/dx, (y - y_min)/dy.
  double col_of(double x) const { return (x - range[0]) / dx; }
  double row_of(double y) const { return (y - range[1]) / dy; }
  // The cell containing (x, y), floor-based; false if outside the grid.
  bool cell_of(double x, double y, std::int64_t* row, std::int64_t* col) const;

  // The same range with cells `stride` times larger (H / stride rows); throws unless H and W
  // are divisible by the stride.
  BevGrid coarsened(std::int64_t stride) const;
  // The same range with another cell size (throws unless the extent is a whole number of them).
  BevGrid with_cell(double dx, double dy) const;

  // Equal range and cells within kSameTolerance and equal shape.
  bool same_as(const BevGrid& o) const;
  // Same range (x, y and z) within kSameTolerance, cells possibly different.
  bool same_range(const BevGrid& o) const;
  // r >= 1 when this grid's cells are exactly r times `finer`'s (same range, H * r == finer.H,
  // W * r == finer.W); 0 otherwise.
  std::int64_t coarser_by(const BevGrid& finer) const;

  // "range [-51.2, -51.2, -5, 51.2, 51.2, 3], cell 0.8x0.8 m, 128x128 (HxW)"
  std::string describe() const;

  // {"range": [6], "cell_size": [dx, dy], "shape": [H, W]}; from_json validates like
  // validate() and names `where` on any error.
  nlohmann::json to_json() const;
  static BevGrid from_json(const nlohmann::json& j, std::string_view where);
};

// Configuration as data (base/config.h): a grid field reads {"range": [...], "cell_size": [dx, dy]}
// with an optional "shape" that must agree (written always).
nlohmann::json to_config_json(const BevGrid& g);
void from_config_json(const nlohmann::json& j, BevGrid& g, const std::string& where);

}  // namespace bevkd
