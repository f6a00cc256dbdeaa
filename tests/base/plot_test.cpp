#include "tests/support/expect_error.h"
#include "base/plot.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "base/error.h"

namespace bevkd {
namespace {

// Rows and columns of all pixels of colour c.
struct Hits {
  int n = 0, min_x = 1 << 30, max_x = -1, min_y = 1 << 30, max_y = -1;
};
Hits find(const Canvas& c, Rgb col, int x0 = 0, int x1 = -1) {
  Hits h;
  if (x1 < 0) x1 = c.width() - 1;
  for (int y = 0; y < c.height(); ++y)
    for (int x = x0; x <= x1; ++x)
      if (c.get(x, y) == col) {
        ++h.n;
        h.min_x = std::min(h.min_x, x);
        h.max_x = std::max(h.max_x, x);
        h.min_y = std::min(h.min_y, y);
        h.max_y = std::max(h.max_y, y);
      }
  return h;
}

// The plot frame: the rows / columns where a long run of pixels is black.
void frame(const Canvas& c, int* left, int* right, int* top, int* bottom) {
  auto row_black = [&](int y) {
    for (int x = c.width() / 2 - 40; x <= c.width() / 2 + 40; ++x)
      if (!(c.get(x, y) == colors::kBlack)) return false;
    return true;
  };
  auto col_black = [&](int x) {
    for (int y = c.height() / 2 - 30; y <= c.height() / 2 + 30; ++y)
      if (!(c.get(x, y) == colors::kBlack)) return false;
    return true;
  };
  *top = *bottom = *left = *right = -1;
  for (int y = 0; y < c.height(); ++y)
    if (row_black(y)) {
      if (*top < 0) *top = y;
      *bottom = y;
    }
  for (int x = 0; x < c.width(); ++x)
    if (col_black(x)) {
      if (*left < 0) *left = x;
      *right = x;
    }
}

TEST(Plot, NiceTicksAndLabels) {
  const auto t = nice_ticks(0, 1, 5);
  ASSERT_EQ(t.size(), 6u);
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(t[i], 0.2 * i, 1e-12);
  EXPECT_EQ(nice_ticks(-3, 17, 4), (std::vector<double>{0, 5, 10, 15}));  // 20 / 4 -> step 5
  EXPECT_EQ(nice_ticks(1, 1, 5).size(), 0u);
  EXPECT_EQ(format_tick(0.2, 0.2), "0.2");
  EXPECT_EQ(format_tick(15, 5), "15");
  EXPECT_EQ(format_tick(0.05, 0.05), "0.05");
  EXPECT_EQ(format_tick(1e-5, 0), "1e-05");
  EXPECT_EQ(format_tick(2e6, 1e6), "2e+06");
}

TEST(Plot, SeriesLandWhereTheAxesSay) {
  LinePlotOptions o;
  o.width = 400;
  o.height = 300;
  o.title = "test";
  o.x = {"x", 0.0, 1.0, false};
  o.y = {"y", 0.0, 1.0, false};
  o.legend = LegendPosition::kNone;
  LinePlot p(o);
  // y = 0.5 over x in [0, 1], red; and a blue diagonal with a NaN gap in the middle.
  p.add_series({"half", {0, 1}, {0.5, 0.5}, colors::kRed, 1});
  p.add_series({"diag", {0, 0.4, NAN, 0.6, 1}, {0, 0.4, NAN, 0.6, 1}, colors::kBlue, 1});
  const Canvas c = p.render();
  int left, right, top, bottom;
  frame(c, &left, &right, &top, &bottom);
  ASSERT_GT(right - left, 200);
  ASSERT_GT(bottom - top, 150);
  const Hits red = find(c, colors::kRed);
  ASSERT_GT(red.n, 0);
  EXPECT_NEAR((red.min_y + red.max_y) / 2.0, (top + bottom) / 2.0, 1.5);
  EXPECT_LE(red.max_y - red.min_y, 1);
  EXPECT_NEAR(red.min_x, left, 1);
  EXPECT_NEAR(red.max_x, right, 1);
  // The diagonal runs from the bottom-left to the top-right corner, with no pixel between
  // x = 0.4 and x = 0.6 (the NaN gap).
  const int gap0 = static_cast<int>(left + 0.45 * (right - left)), gap1 = static_cast<int>(left + 0.55 * (right - left));
  EXPECT_EQ(find(c, colors::kBlue, gap0, gap1).n, 0);
  const Hits blue = find(c, colors::kBlue);
  EXPECT_NEAR(blue.min_x, left, 1);
  EXPECT_NEAR(blue.max_y, bottom, 1);
  EXPECT_NEAR(blue.max_x, right, 1);
  EXPECT_NEAR(blue.min_y, top, 1);
}

TEST(Plot, LogAxisMakesPowersAStraightLine) {
  LinePlotOptions o;
  o.width = 400;
  o.height = 300;
  o.y.log = true;
  o.legend = LegendPosition::kTopRight;
  LinePlot p(o);
  std::vector<double> x, y;
  for (int i = 0; i <= 30; ++i) {
    x.push_back(i / 10.0);
    y.push_back(std::pow(10.0, i / 10.0));  // 1 .. 1000: a straight line on a log axis
  }
  p.add_series({"loss", x, y, colors::kGreen, 1});
  const Canvas c = p.render();
  int left, right, top, bottom;
  frame(c, &left, &right, &top, &bottom);
  // Halfway in x (x = 1.5) the line is halfway up (log10 y = 1.5 of 0..3), not near the bottom.
  const int mid_x = (left + right) / 2;
  int row = -1;
  for (int yy = top + 1; yy < bottom; ++yy)
    if (c.get(mid_x, yy) == colors::kGreen) row = yy;
  ASSERT_GE(row, 0);
  EXPECT_NEAR(row, (top + bottom) / 2.0, 3);
  // The legend swatch is drawn in the series colour inside the top-right corner.
  EXPECT_GT(find(c, colors::kGreen, right - 150, right).n, 0);
}

TEST(Plot, ErrorsNameTheSeries) {
  LinePlot p;
  try {
    p.add_series({"loss", {1, 2}, {1}, std::nullopt});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "line plot series \"loss\": 2 x values but 1 y values");
  }
  LinePlotOptions o;
  o.y.log = true;
  o.y.min = -1.0;
  LinePlot neg(o);
  neg.add_series({"a", {0, 1}, {1, 2}, std::nullopt});
  EXPECT_ERROR_WITH(neg.render(), "a log axis needs positive bounds, found [-1");
}

TEST(Plot, WritesAPng) {
  LinePlot p;
  p.add_series({"a", {0, 1, 2}, {3, 1, 2}, std::nullopt, 2, true, true});
  p.add_reference_line({ReferenceLine::kHorizontal, 1.5, colors::kGrey, "ref"});
  const std::string path = std::string(BEVKD_BINARY_DIR) + "/tests/base/plot_test.png";
  p.save_png(path);
  const Canvas back = load_png(path);
  EXPECT_EQ(back.width(), 800);
  EXPECT_EQ(back.height(), 560);
}

}  // namespace
}  // namespace bevkd
