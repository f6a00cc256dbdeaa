#include "core/nn/hungarian.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "base/error.h"

namespace bevkd::core::nn {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Solves a problem with n <= m (rows <= columns): cost(i, j) is the cost of row i, column j.
// Returns col_of_row[i] for every row.
class ShortestAugmentingPath {
 public:
  ShortestAugmentingPath(std::vector<double> cost, int64_t n, int64_t m)
      : c_(std::move(cost)),
        n_(n),
        m_(m),
        u_(n, 0.0),
        v_(m, 0.0),
        dist_(m),
        pred_(m, -1),
        col_of_row_(n, -1),
        row_of_col_(m, -1),
        row_seen_(n),
        col_done_(m),
        todo_(m) {}

  std::vector<int64_t> solve() {
    for (int64_t r = 0; r < n_; ++r) add_row(r);
    return col_of_row_;
  }

 private:
  // Dijkstra over reduced costs from the free row r until a free column is reached, then the
  // dual update and the augmentation along the path.
  void add_row(int64_t r) {
    std::fill(row_seen_.begin(), row_seen_.end(), false);
    std::fill(col_done_.begin(), col_done_.end(), false);
    std::fill(dist_.begin(), dist_.end(), kInf);
    // Columns still to settle, scanned from the last list entry; settled ones are swapped out.
    int64_t open = m_;
    for (int64_t k = 0; k < m_; ++k) todo_[k] = m_ - 1 - k;

    double reached = 0.0;  // length of the shortest path settled so far
    int64_t row = r, sink = -1;
    while (sink < 0) {
      row_seen_[row] = true;
      int64_t best = -1;
      double best_dist = kInf;
      for (int64_t k = 0; k < open; ++k) {
        const int64_t j = todo_[k];
        const double d = reached + c_[row * m_ + j] - u_[row] - v_[j];
        if (d < dist_[j]) {
          dist_[j] = d;
          pred_[j] = row;
        }
        // Among equally short paths a free column wins (it ends the search).
        if (dist_[j] < best_dist || (dist_[j] == best_dist && row_of_col_[j] < 0)) {
          best_dist = dist_[j];
          best = k;
        }
      }
      BEVKD_ASSERT(best >= 0 && best_dist < kInf, "finite costs always admit an augmenting path");
      reached = best_dist;
      const int64_t j = todo_[best];
      col_done_[j] = true;
      todo_[best] = todo_[--open];
      if (row_of_col_[j] < 0)
        sink = j;
      else
        row = row_of_col_[j];
    }

    // Duals: keep every reduced cost non-negative and the path's edges tight.
    u_[r] += reached;
    for (int64_t i = 0; i < n_; ++i)
      if (row_seen_[i] && i != r) u_[i] += reached - dist_[col_of_row_[i]];
    for (int64_t j = 0; j < m_; ++j)
      if (col_done_[j]) v_[j] -= reached - dist_[j];

    // Augment: flip the matching along the path from the sink back to r.
    for (int64_t j = sink;;) {
      const int64_t i = pred_[j];
      row_of_col_[j] = i;
      std::swap(col_of_row_[i], j);
      if (i == r) break;
    }
  }

  std::vector<double> c_;
  int64_t n_, m_;
  std::vector<double> u_, v_, dist_;
  std::vector<int64_t> pred_, col_of_row_, row_of_col_;
  std::vector<char> row_seen_, col_done_;
  std::vector<int64_t> todo_;
};

}  // namespace

Assignment linear_sum_assignment(const double* cost, int64_t rows, int64_t cols, const std::string& what) {
  BEVKD_CHECK(rows >= 0 && cols >= 0, what, ": matrix shape ", rows, " x ", cols, " is negative");
  Assignment out;
  if (rows == 0 || cols == 0) return out;
  BEVKD_CHECK(cost != nullptr, what, ": no cost values for a ", rows, " x ", cols, " matrix");
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      const double c = cost[i * cols + j];
      BEVKD_CHECK(std::isfinite(c), what, ": entry [", i, ", ", j, "] of the ", rows, " x ", cols, " matrix is ", c,
                  ", expected a finite cost");
    }

  const bool transpose = rows > cols;
  const int64_t n = transpose ? cols : rows, m = transpose ? rows : cols;
  std::vector<double> c(static_cast<size_t>(n * m));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) (transpose ? c[j * m + i] : c[i * m + j]) = cost[i * cols + j];

  const std::vector<int64_t> col_of_row = ShortestAugmentingPath(std::move(c), n, m).solve();
  if (!transpose) {
    for (int64_t i = 0; i < n; ++i) {
      out.rows.push_back(i);
      out.cols.push_back(col_of_row[i]);
    }
  } else {
    // Rows of the transposed problem are the original columns; order the pairs by original row.
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return col_of_row[a] < col_of_row[b]; });
    for (int64_t j : order) {
      out.rows.push_back(col_of_row[j]);
      out.cols.push_back(j);
    }
  }
  for (size_t k = 0; k < out.rows.size(); ++k) out.total_cost += cost[out.rows[k] * cols + out.cols[k]];
  return out;
}

Assignment linear_sum_assignment(const std::vector<double>& cost, int64_t rows, int64_t cols, const std::string& what) {
  BEVKD_CHECK(rows >= 0 && cols >= 0 && static_cast<int64_t>(cost.size()) == rows * cols, what, ": ", cost.size(),
              " cost values for a ", rows, " x ", cols, " matrix");
  return linear_sum_assignment(cost.data(), rows, cols, what);
}

}  // namespace bevkd::core::nn
