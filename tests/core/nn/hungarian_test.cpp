// core/nn/hungarian: the rectangular assignment solver against brute force over every
// assignment (square, wide, tall, with ties), hand-worked cases, and its error messages.
#include "core/nn/hungarian.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <set>
#include <vector>

#include "base/error.h"
#include "tests/support/expect_error.h"

namespace bevkd::core::nn {
namespace {

// Minimum over every way of giving each of the min(rows, cols) smaller-side items a distinct
// partner: enumerate injective maps from the smaller side into the larger one.
double brute_force_min(const std::vector<double>& c, int64_t rows, int64_t cols) {
  const bool wide = rows <= cols;
  const int64_t n = wide ? rows : cols, m = wide ? cols : rows;
  auto at = [&](int64_t small, int64_t large) { return wide ? c[small * cols + large] : c[large * cols + small]; };
  double best = std::numeric_limits<double>::infinity();
  std::vector<int64_t> pick(n);
  std::vector<char> used(m, 0);
  std::function<void(int64_t, double)> rec = [&](int64_t k, double sum) {
    if (k == n) {
      best = std::min(best, sum);
      return;
    }
    for (int64_t j = 0; j < m; ++j) {
      if (used[j]) continue;
      used[j] = 1;
      rec(k + 1, sum + at(k, j));
      used[j] = 0;
    }
  };
  rec(0, 0.0);
  return n == 0 ? 0.0 : best;
}

void expect_valid(const Assignment& a, const std::vector<double>& c, int64_t rows, int64_t cols) {
  const size_t k = static_cast<size_t>(std::min(rows, cols));
  ASSERT_EQ(a.rows.size(), k);
  ASSERT_EQ(a.cols.size(), k);
  std::set<int64_t> rs(a.rows.begin(), a.rows.end()), cs(a.cols.begin(), a.cols.end());
  EXPECT_EQ(rs.size(), k);
  EXPECT_EQ(cs.size(), k);
  EXPECT_TRUE(std::is_sorted(a.rows.begin(), a.rows.end()));
  double sum = 0;
  for (size_t i = 0; i < k; ++i) {
    ASSERT_GE(a.rows[i], 0);
    ASSERT_LT(a.rows[i], rows);
    ASSERT_GE(a.cols[i], 0);
    ASSERT_LT(a.cols[i], cols);
    sum += c[a.rows[i] * cols + a.cols[i]];
  }
  EXPECT_DOUBLE_EQ(sum, a.total_cost);
}

TEST(Hungarian, MatchesBruteForceOnRandomMatrices) {
  std::mt19937_64 rng(12);
  std::uniform_real_distribution<double> real(-3.0, 5.0);
  int cases = 0;
  for (int64_t rows = 1; rows <= 6; ++rows)
    for (int64_t cols = 1; cols <= 6; ++cols)
      for (int rep = 0; rep < 6; ++rep) {
        std::vector<double> c(rows * cols);
        for (double& x : c) x = real(rng);
        const Assignment a = linear_sum_assignment(c, rows, cols);
        expect_valid(a, c, rows, cols);
        EXPECT_NEAR(a.total_cost, brute_force_min(c, rows, cols), 1e-12) << rows << " x " << cols << " rep " << rep;
        ++cases;
      }
  EXPECT_EQ(cases, 216);
}

TEST(Hungarian, MatchesBruteForceWithTies) {
  // Entries from {0, 1, 2}: many optimal assignments; the total must still be the minimum,
  // and the same matrix must give the same assignment every time.
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> small(0, 2);
  for (int64_t rows = 1; rows <= 7; ++rows)
    for (int64_t cols = 1; cols <= 7; ++cols)
      for (int rep = 0; rep < 4; ++rep) {
        std::vector<double> c(rows * cols);
        for (double& x : c) x = small(rng);
        const Assignment a = linear_sum_assignment(c, rows, cols);
        expect_valid(a, c, rows, cols);
        EXPECT_DOUBLE_EQ(a.total_cost, brute_force_min(c, rows, cols)) << rows << " x " << cols;
        const Assignment again = linear_sum_assignment(c, rows, cols);
        EXPECT_EQ(again.rows, a.rows);
        EXPECT_EQ(again.cols, a.cols);
      }
}

TEST(Hungarian, HandWorkedCases) {
  {
    // The scipy documentation example: rows 0,1,2 -> cols 1,0,2, cost 1 + 2 + 2 = 5.
    const std::vector<double> c{4, 1, 3, 2, 0, 5, 3, 2, 2};
    const Assignment a = linear_sum_assignment(c, 3, 3);
    EXPECT_EQ(a.rows, (std::vector<int64_t>{0, 1, 2}));
    EXPECT_EQ(a.cols, (std::vector<int64_t>{1, 0, 2}));
    EXPECT_DOUBLE_EQ(a.total_cost, 5.0);
  }
  {
    // Wide (2 x 4): row 0 prefers col 3 (cost 0), row 1 col 1 (cost 1); cols 0 and 2 unused.
    const std::vector<double> c{5, 4, 9, 0, 7, 1, 8, 3};
    const Assignment a = linear_sum_assignment(c, 2, 4);
    EXPECT_EQ(a.rows, (std::vector<int64_t>{0, 1}));
    EXPECT_EQ(a.cols, (std::vector<int64_t>{3, 1}));
    EXPECT_DOUBLE_EQ(a.total_cost, 1.0);
  }
  {
    // Tall (4 x 2), the transpose of the case above: the pairs come back sorted by row.
    const std::vector<double> c{5, 7, 4, 1, 9, 8, 0, 3};
    const Assignment a = linear_sum_assignment(c, 4, 2);
    EXPECT_EQ(a.rows, (std::vector<int64_t>{1, 3}));
    EXPECT_EQ(a.cols, (std::vector<int64_t>{1, 0}));
    EXPECT_DOUBLE_EQ(a.total_cost, 1.0);
  }
  {
    // Greedy fails here: row 0's cheapest column (0) must go to row 1, whose other column costs
    // 100. Optimum: (0,1) + (1,0) = 2 + 1 = 3, not (0,0) + (1,1) = 0 + 100.
    const std::vector<double> c{0, 2, 1, 100};
    const Assignment a = linear_sum_assignment(c, 2, 2);
    EXPECT_EQ(a.cols, (std::vector<int64_t>{1, 0}));
    EXPECT_DOUBLE_EQ(a.total_cost, 3.0);
  }
  {
    // Negative and large costs.
    const std::vector<double> c{-1e9, 1.0, 2.0, -1e9};
    const Assignment a = linear_sum_assignment(c, 2, 2);
    EXPECT_EQ(a.cols, (std::vector<int64_t>{0, 1}));
  }
  {
    // All equal: the diagonal, deterministically (a free column ends the search; columns are
    // scanned from the last, so the tie rule decides).
    const std::vector<double> c(9, 1.0);
    const Assignment a = linear_sum_assignment(c, 3, 3);
    expect_valid(a, c, 3, 3);
    EXPECT_DOUBLE_EQ(a.total_cost, 3.0);
  }
}

TEST(Hungarian, EmptyMatrices) {
  for (auto [r, c] : {std::pair<int64_t, int64_t>{0, 0}, {0, 5}, {5, 0}}) {
    const Assignment a = linear_sum_assignment(std::vector<double>(r * c, 1.0), r, c);
    EXPECT_TRUE(a.rows.empty());
    EXPECT_TRUE(a.cols.empty());
    EXPECT_EQ(a.total_cost, 0.0);
  }
}

TEST(Hungarian, RefusesNonFiniteCostsNamingTheEntry) {
  std::vector<double> c{1, 2, 3, 4, 5, 6};
  c[4] = std::nan("");
  EXPECT_ERROR_WITH(linear_sum_assignment(c, 2, 3, "layer 1 sample 0 cost"),
                    "layer 1 sample 0 cost: entry [1, 1] of the 2 x 3 matrix is nan, expected a finite cost");
  c[4] = std::numeric_limits<double>::infinity();
  EXPECT_ERROR_WITH(linear_sum_assignment(c, 2, 3), "assignment cost: entry [1, 1]", "is inf");
  c[4] = -std::numeric_limits<double>::infinity();
  EXPECT_ERROR_WITH(linear_sum_assignment(c, 2, 3), "assignment cost: entry [1, 1]", "is -inf");
  EXPECT_ERROR_WITH(linear_sum_assignment(std::vector<double>(5, 0.0), 2, 3), "assignment cost: 5");
}

}  // namespace
}  // namespace bevkd::core::nn
