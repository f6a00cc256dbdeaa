#include "core/eval/numpy_ops.h"

#include <cmath>

#include "base/error.h"

namespace bevkd::core::eval::np {

namespace {

// numpy's pairwise_sum for float64 (numpy/core/src/umath/loops_utils.h.src, PW_BLOCKSIZE 128).
double pairwise_sum(const double* a, std::size_t n) {
  if (n < 8) {
    double res = -0.0;  // numpy starts at -0.0 so that a sum of -0.0 values stays -0.0
    for (std::size_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    std::size_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  std::size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

}  // namespace

double sum(const double* a, std::size_t n) { return n == 0 ? 0.0 : pairwise_sum(a, n); }

double mean(const double* a, std::size_t n) {
  if (n == 0) return std::nan("");
  return sum(a, n) / static_cast<double>(n);
}

double nanmean(const std::vector<double>& a) {
  std::vector<double> zeroed(a.size());
  std::size_t count = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const bool nan = std::isnan(a[i]);
    zeroed[i] = nan ? 0.0 : a[i];
    count += nan ? 0 : 1;
  }
  if (count == 0) return std::nan("");
  return sum(zeroed) / static_cast<double>(count);
}

std::vector<double> linspace(double start, double stop, int num) {
  BEVKD_CHECK(num >= 0, "linspace: num must be non-negative, found ", num);
  std::vector<double> y(static_cast<std::size_t>(num));
  if (num == 0) return y;
  if (num == 1) {
    y[0] = start;
    return y;
  }
  const double step = (stop - start) / static_cast<double>(num - 1);
  for (int k = 0; k < num; ++k) y[static_cast<std::size_t>(k)] = static_cast<double>(k) * step + start;
  y.back() = stop;
  return y;
}

std::vector<double> interp(const std::vector<double>& x, const std::vector<double>& xp,
                           const std::vector<double>& fp, std::optional<double> left,
                           std::optional<double> right) {
  BEVKD_CHECK(!xp.empty(), "interp: xp is empty");
  BEVKD_CHECK(xp.size() == fp.size(), "interp: xp has ", xp.size(), " values but fp has ", fp.size());
  const std::size_t n = xp.size();
  const double lval = left ? *left : fp.front();
  const double rval = right ? *right : fp.back();
  std::vector<double> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double xv = x[i];
    if (std::isnan(xv)) {
      out[i] = xv;
      continue;
    }
    if (xv < xp[0]) {
      out[i] = lval;
      continue;
    }
    if (xv > xp[n - 1]) {
      out[i] = rval;
      continue;
    }
    // Last j with xp[j] <= xv (upper bound - 1); xp[0] <= xv holds here.
    std::size_t lo = 0, hi = n;
    while (lo < hi) {
      const std::size_t mid = lo + (hi - lo) / 2;
      if (xv >= xp[mid]) lo = mid + 1;
      else hi = mid;
    }
    const std::size_t j = lo - 1;
    if (j == n - 1 || xp[j] == xv) {
      out[i] = fp[j];
      continue;
    }
    const double slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
    double r = slope * (xv - xp[j]) + fp[j];
    if (std::isnan(r)) {  // numpy: "if we get nan in one direction, try the other"
      r = slope * (xv - xp[j + 1]) + fp[j + 1];
      if (std::isnan(r) && fp[j] == fp[j + 1]) r = fp[j];
    }
    out[i] = r;
  }
  return out;
}

std::vector<double> cummean(const std::vector<double>& x) {
  std::size_t nan_count = 0;
  for (double v : x) nan_count += std::isnan(v) ? 1 : 0;
  if (nan_count == x.size()) return std::vector<double>(x.size(), 1.0);
  std::vector<double> out(x.size());
  double running = 0.0;  // numpy.nancumsum: NaNs count as 0
  long long count = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isnan(x[i])) {
      running += x[i];
      ++count;
    }
    out[i] = count != 0 ? running / static_cast<double>(count) : 0.0;
  }
  return out;
}

double python_mod(double a, double b) {
  double m = std::fmod(a, b);
  if (m != 0.0) {
    if ((b < 0) != (m < 0)) m += b;
  } else {
    m = std::copysign(0.0, b);
  }
  return m;
}

long long python_round(double v) { return static_cast<long long>(std::nearbyint(v)); }

}  // namespace bevkd::core::eval::np
