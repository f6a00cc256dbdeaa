// base/bev_grid.h: the one BEV grid — DESIGN.md's cell convention, the one rounding rule and
// tolerance, grid relations, JSON round trips and the errors.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "base/bev_grid.h"
#include "tests/support/expect_error.h"

namespace bevkd {
namespace {

TEST(BevGrid, CellsFollowDesignConvention) {
  const BevGrid g = BevGrid::make({-51.2, -51.2, -5, 51.2, 51.2, 3}, 0.8);
  EXPECT_EQ(g.H, 128);
  EXPECT_EQ(g.W, 128);
  EXPECT_NEAR(g.x_center(0), -50.8, 1e-9);
  EXPECT_NEAR(g.y_center(127), 50.8, 1e-9);
  int64_t r = -1, c = -1;
  ASSERT_TRUE(g.cell_of(-51.2, 51.1, &r, &c));
  EXPECT_EQ(c, 0);
  EXPECT_EQ(r, 127);
  EXPECT_FALSE(g.cell_of(51.2, 0, &r, &c));  // x_max is outside (half-open)
  EXPECT_FALSE(g.cell_of(-51.21, 0, &r, &c));
  const BevGrid a = BevGrid::make({-51.2, -51.2, -5, 51.2, 51.2, 3}, 0.2);
  EXPECT_EQ(a.W, 512);
  EXPECT_TRUE(a.coarsened(4).same_as(g));
  EXPECT_FALSE(a.same_as(g));
  EXPECT_TRUE(a.same_range(g));
  EXPECT_EQ(g.coarser_by(a), 4);
  EXPECT_EQ(a.coarser_by(g), 0);
  EXPECT_EQ(g.coarser_by(BevGrid::make({-50, -50, -5, 50, 50, 3}, 0.5)), 0);  // another range
  const BevGrid rect = BevGrid::make({0, -10, -2, 40, 10, 2}, 0.5, 0.25);
  EXPECT_EQ(rect.W, 80);
  EXPECT_EQ(rect.H, 80);
  EXPECT_FALSE(BevGrid{}.valid());
}

TEST(BevGrid, OneRoundingRuleAndTolerance) {
  // 102.4 / 0.8 is 127.99999999999999 in double: within the tolerance, 128 cells.
  EXPECT_EQ(BevGrid::make({-51.2, -51.2, -5, 51.2, 51.2, 3}, 0.8).W, 128);
  EXPECT_ERROR_WITH(BevGrid::make({0, 0, 0, 10.0001, 10, 1}, 1.0), "the extent 10.0001 m on axis x is not a whole number of 1 m cells");
}

TEST(BevGrid, RejectsBadValuesWithMessage) {
  EXPECT_ERROR_WITH(BevGrid::make({-51.2, -51.2, -5, 51.2, 51.2, 3}, 0.7), "is not a whole number of 0.7 m cells");
  EXPECT_ERROR_WITH(BevGrid::make({1, 0, 0, 0, 1, 1}, 0.5), "range min 1 is not below max 0 on axis x");
  EXPECT_ERROR_WITH(BevGrid::make({0, 0, 0, 1, 1, 1}, -0.5), "cell size must be positive, found -0.5 x -0.5");
  EXPECT_ERROR_WITH(BevGrid::make({0, 0, 0, NAN, 1, 1}, 0.5), "range[3] is nan");
  EXPECT_ERROR_WITH(BevGrid::make({-51.2, -51.2, -5, 51.2, 51.2, 3}, 0.8).coarsened(3), "cannot be coarsened by stride 3");
  EXPECT_ERROR_WITH(BevGrid::make({1, 0, 0, 0, 1, 1}, 0.5, "student grid"), "student grid: range min 1 is not below");
}

TEST(BevGrid, JsonRoundTripAndStoredShapeCheck) {
  const BevGrid g = BevGrid::make({-25.6, -12.8, -3, 25.6, 12.8, 1}, 0.4, 0.8);
  EXPECT_TRUE(BevGrid::from_json(g.to_json(), "test").same_as(g));
  nlohmann::json bad = g.to_json();
  bad["shape"] = {32, 129};
  EXPECT_ERROR_WITH(BevGrid::from_json(bad, "shard s.h5"), "shard s.h5: BEV grid shape is 32x129 (HxW) but its range and cell size give 32x128");
  EXPECT_ERROR_WITH(BevGrid::from_json(nlohmann::json{{"range", {1, 2}}}, "m.json"), "m.json: a BEV grid must be");
  // Configuration input may omit the derived shape.
  BevGrid c;
  from_config_json(nlohmann::json{{"range", {-25.6, -12.8, -3, 25.6, 12.8, 1}}, {"cell_size", {0.4, 0.8}}}, c, "cfg");
  EXPECT_TRUE(c.same_as(g));
}

}  // namespace
}  // namespace bevkd
