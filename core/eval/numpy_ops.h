// The few numpy operations the nuScenes devkit's detection evaluation is built from, reproduced
// so that bevkd's numbers match the devkit's to the last bit where the operation order allows
// (spec/nuscenes.md §(d) "Floating point"). Everything here is float64.
//
// Checked against numpy 1.24 (tests/core/eval_numpy_ops_test.cpp runs numpy on the same inputs
// when ${BEVKD_PYTHON} has it).
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

namespace bevkd::core::eval::np {

// numpy.sum of a 1-D float64 array: numpy's pairwise summation (a running sum below 8
// elements, starting from -0.0; 8 interleaved partial sums up to 128 elements; recursive
// halving at multiples of 8 above). Exact for arrays numpy does not buffer (contiguous, no
// casting), which covers every sum in the evaluation.
double sum(const double* a, std::size_t n);
inline double sum(const std::vector<double>& a) { return sum(a.data(), a.size()); }

// numpy.mean: sum(a) / n; NaN for an empty array (numpy warns and returns NaN).
double mean(const double* a, std::size_t n);
inline double mean(const std::vector<double>& a) { return mean(a.data(), a.size()); }

// numpy.nanmean: the sum with NaNs replaced by 0, divided by the number of non-NaN values;
// NaN if all values are NaN.
double nanmean(const std::vector<double>& a);

// numpy.linspace(start, stop, num) with endpoint=True: start + k * ((stop - start) / (num - 1))
// for k < num - 1 and exactly `stop` last. Note that k * 0.01 is not k / 100 in floating point
// (35 * 0.01 = 0.35000000000000003), which decides ties in interp.
std::vector<double> linspace(double start, double stop, int num);

// numpy.interp(x, xp, fp, left, right) for a non-decreasing xp (repeats allowed):
//   x < xp[0] -> left (default fp[0]); x > xp[last] -> right (default fp[last]);
//   otherwise j = last index with xp[j] <= x; x == xp[j] or j == last -> fp[j];
//   else slope * (x - xp[j]) + fp[j], slope = (fp[j+1] - fp[j]) / (xp[j+1] - xp[j]), with
//   numpy's fallbacks when that is NaN. NaN x gives NaN. xp and fp must have the same,
//   non-zero length (bevkd::Error otherwise).
std::vector<double> interp(const std::vector<double>& x, const std::vector<double>& xp,
                           const std::vector<double>& fp, std::optional<double> left = std::nullopt,
                           std::optional<double> right = std::nullopt);

// The devkit's cummean (eval/common/utils.py): NaN-aware cumulative mean — NaNs are skipped,
// positions before the first non-NaN value get 0, and an all-NaN (or empty) input gives all 1.
std::vector<double> cummean(const std::vector<double>& x);

// Python's float modulo a % b (result has the sign of b), as used by the devkit's angle_diff.
double python_mod(double a, double b);

// Python's round() of a float to an integer: round half to even.
long long python_round(double v);

}  // namespace bevkd::core::eval::np
