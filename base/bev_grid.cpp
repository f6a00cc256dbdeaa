#include "base/bev_grid.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "base/error.h"

namespace bevkd {

namespace {

// The one rounding rule: round(extent / cell), refused unless within kCellTolerance of a whole number.
std::int64_t cells(double lo, double hi, double cell, char axis, std::string_view where) {
  const double n = (hi - lo) / cell;
  const double r = std::round(n);
  BEVKD_CHECK(r >= 1 && std::abs(n - r) <= BevGrid::kCellTolerance * std::max(1.0, r), where, ": the extent ",
              hi - lo, " m on axis ", axis, " is not a whole number of ", cell, " m cells (", n, ")");
  return static_cast<std::int64_t>(r);
}

}  // namespace

BevGrid BevGrid::make(const std::array<double, 6>& range, double dx, double dy, std::string_view where) {
  for (int k = 0; k < 6; ++k) BEVKD_CHECK(std::isfinite(range[k]), where, ": range[", k, "] is ", range[k]);
  for (int k = 0; k < 3; ++k)
    BEVKD_CHECK(range[k] < range[k + 3], where, ": range min ", range[k], " is not below max ", range[k + 3],
                " on axis ", "xyz"[k]);
  BEVKD_CHECK(std::isfinite(dx) && dx > 0 && std::isfinite(dy) && dy > 0, where,
              ": cell size must be positive, found ", dx, " x ", dy);
  BevGrid g;
  g.range = range;
  g.dx = dx;
  g.dy = dy;
  g.W = cells(range[0], range[3], dx, 'x', where);
  g.H = cells(range[1], range[4], dy, 'y', where);
  return g;
}

void BevGrid::validate(std::string_view where) const {
  const BevGrid g = make(range, dx, dy, where);
  BEVKD_CHECK(g.H == H && g.W == W, where, ": BEV grid shape is ", H, "x", W,
              " (HxW) but its range and cell size give ", g.H, "x", g.W);
}

bool BevGrid::cell_of(double x, double y, std::int64_t* row, std::int64_t* col) const {
  const double c = std::floor(col_of(x)), r = std::floor(row_of(y));
  if (!(c >= 0 && c < static_cast<double>(W) && r >= 0 && r < static_cast<double>(H))) return false;
  *row = static_cast<std::int64_t>(r);
  *col = static_cast<std::int64_t>(c);
  return true;
}

BevGrid BevGrid::coarsened(std::int64_t stride) const {
  BEVKD_CHECK(stride >= 1 && H % stride == 0 && W % stride == 0, "BEV grid ", describe(),
              " cannot be coarsened by stride ", stride);
  return make(range, dx * static_cast<double>(stride), dy * static_cast<double>(stride));
}

BevGrid BevGrid::with_cell(double new_dx, double new_dy) const { return make(range, new_dx, new_dy); }

bool BevGrid::same_range(const BevGrid& o) const {
  for (int k = 0; k < 6; ++k)
    if (std::abs(range[k] - o.range[k]) > kSameTolerance) return false;
  return true;
}

bool BevGrid::same_as(const BevGrid& o) const {
  return same_range(o) && std::abs(dx - o.dx) <= kSameTolerance && std::abs(dy - o.dy) <= kSameTolerance &&
         H == o.H && W == o.W;
}

std::int64_t BevGrid::coarser_by(const BevGrid& finer) const {
  if (!valid() || !finer.valid() || !same_range(finer)) return 0;
  if (finer.H % H != 0 || finer.W % W != 0) return 0;
  const std::int64_t r = finer.H / H;
  return finer.W / W == r ? r : 0;
}

std::string BevGrid::describe() const {
  return cat("range [", range[0], ", ", range[1], ", ", range[2], ", ", range[3], ", ", range[4], ", ", range[5],
             "], cell ", dx, "x", dy, " m, ", H, "x", W, " (HxW)");
}

nlohmann::json BevGrid::to_json() const {
  return nlohmann::json{{"range", range}, {"cell_size", {dx, dy}}, {"shape", {H, W}}};
}

BevGrid BevGrid::from_json(const nlohmann::json& j, std::string_view where) {
  BevGrid g;
  try {
    BEVKD_CHECK(j.is_object() && j.size() == 3, where, ": expected exactly the keys range, cell_size, shape");
    g.range = j.at("range").get<std::array<double, 6>>();
    const auto cell = j.at("cell_size").get<std::array<double, 2>>();
    const auto shape = j.at("shape").get<std::array<std::int64_t, 2>>();
    g.dx = cell[0];
    g.dy = cell[1];
    g.H = shape[0];
    g.W = shape[1];
  } catch (const std::exception& e) {
    BEVKD_FAIL(where, ": a BEV grid must be {\"range\": [6 numbers], \"cell_size\": [dx, dy], \"shape\": [H, W]}, found ",
               j.dump().substr(0, 200), " (", e.what(), ")");
  }
  g.validate(where);
  return g;
}

// An empty grid (a config field still to be derived, e.g. a student's grid from the shards) is null.
nlohmann::json to_config_json(const BevGrid& g) { return g.valid() ? g.to_json() : nlohmann::json(); }

void from_config_json(const nlohmann::json& j, BevGrid& g, const std::string& where) {
  if (j.is_null()) {
    g = BevGrid{};
    return;
  }
  if (j.is_object() && !j.contains("shape") && j.size() == 2) {
    try {
      const auto range = j.at("range").get<std::array<double, 6>>();
      const auto cell = j.at("cell_size").get<std::array<double, 2>>();
      g = BevGrid::make(range, cell[0], cell[1], where);
      return;
    } catch (const nlohmann::json::exception& e) {
      BEVKD_FAIL(where, ": a BEV grid must be {\"range\": [6 numbers], \"cell_size\": [dx, dy]}, found ",
                 j.dump().substr(0, 200), " (", e.what(), ")");
    }
  }
  g = BevGrid::from_json(j, where);
}

}  // namespace bevkd
