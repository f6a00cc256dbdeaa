// Rectangular linear assignment (the problem scipy.optimize.linear_sum_assignment solves), for
// the Hungarian matchings of the distillation losses (BEVDistill's instance distillation,
// spec/losses.md §3.2; FD3D's distillation head, §6).
//
//   cost [rows x cols], row-major float64, any shape (0 rows or 0 columns included).
//   Finds k = min(rows, cols) pairs (r_i, c_i), every row and every column used at most once,
//   minimising Σ cost[r_i, c_i]. Pairs are returned sorted by row, as scipy returns them.
//
// Algorithm: shortest augmenting paths with dual variables (Jonker & Volgenant 1987, in the
// rectangular form of Crouse, "On implementing 2D rectangular assignment algorithms", IEEE TAES
// 2016 — the method scipy ≥ 1.4 uses): one Dijkstra-like search per row over reduced costs
// cost[i][j] - u[i] - v[j] ≥ 0, O(rows² · cols). When rows > cols the transposed problem is
// solved. Ties are broken deterministically the way that method breaks them (columns are scanned
// from the last to the first; among equal path lengths an unassigned column wins), so on costs
// with ties the matching is the one scipy returns for the same float64 matrix in practice; the
// total cost is optimal in every case.
//
// Errors: a non-finite entry (NaN, ±inf) throws bevkd::Error naming `what`, the entry and its
// value (scipy refuses NaN and -inf too; +inf "forbidden" pairs are not supported: callers of
// the losses never need them).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace bevkd::core::nn {

struct Assignment {
  std::vector<int64_t> rows;  // ascending
  std::vector<int64_t> cols;  // cols[i] is matched to rows[i]
  double total_cost = 0.0;    // Σ cost[rows[i], cols[i]]
};

// cost: rows*cols float64 values, row-major. `what` names the matrix in error messages
// ("bevdistill_box_distill layer 2 sample 0 cost").
Assignment linear_sum_assignment(const double* cost, int64_t rows, int64_t cols,
                                 const std::string& what = "assignment cost");
Assignment linear_sum_assignment(const std::vector<double>& cost, int64_t rows, int64_t cols,
                                 const std::string& what = "assignment cost");

}  // namespace bevkd::core::nn
