// Small helpers shared by the entries_*.cpp files: parameter checks that name the key, and the
// box conversion of per-sample inputs.
#pragma once

#include <torch/types.h>

#include <cmath>
#include <string>
#include <vector>

#include "train/probe/box_convention.h"
#include "train/probe/params.h"
#include "train/probe/registry.h"

namespace bevkd::train::probe {

// A number parameter with a range check: refuses (exit 2) outside [lo, hi] / (lo, hi).
// A finite number (refused by key otherwise).
inline double finite_param(const Params& p, const std::string& key) {
  const double v = p.number(key);
  if (!std::isfinite(v)) p.refuse(key, "expected a finite number");
  return v;
}

inline double number_in(const Params& p, const std::string& key, double lo, double hi, bool open = false) {
  const double v = p.number(key);
  const bool ok = std::isfinite(v) && (open ? (v > lo && v < hi) : (v >= lo && v <= hi));
  if (!ok) p.refuse(key, cat("expected a value in ", open ? "(" : "[", lo, ", ", hi, open ? ")" : "]"));
  return v;
}

inline int64_t integer_at_least(const Params& p, const std::string& key, int64_t lo) {
  const int64_t v = p.integer(key);
  if (v < lo) p.refuse(key, cat("expected an integer >= ", lo));
  return v;
}

// A value that the contract fixes: "0 only", "true only".
inline void require_number(const Params& p, const std::string& key, double only) {
  if (p.number(key) != only) p.refuse(key, cat(only, " only"));
}
inline void require_bool(const Params& p, const std::string& key, bool only) {
  if (p.boolean(key) != only) p.refuse(key, cat(only ? "true" : "false", " only"));
}
inline void require_string(const Params& p, const std::string& key, const std::string& only) {
  if (p.string(key) != only) p.refuse(key, cat("\"", only, "\" only"));
}

// A list of min_size..max_size finite numbers.
inline std::vector<double> finite_numbers(const Params& p, const std::string& key, size_t min_size, size_t max_size) {
  const std::vector<double> v = p.numbers(key, min_size, max_size);
  for (double x : v)
    if (!std::isfinite(x)) p.refuse(key, "expected finite entries");
  return v;
}

// A list of 2 (or 3, as mmdet3d configs carry z) positive numbers: the x and y entries.
inline std::array<double, 2> positive_xy(const Params& p, const std::string& key) {
  const std::vector<double> v = p.numbers(key, 2, 3);
  for (double x : v)
    if (!(std::isfinite(x) && x > 0)) p.refuse(key, "expected positive entries");
  return {v[0], v[1]};
}

// Inputs that must be present exactly when `needed` (the spec's "iff Cs≠C"); `why` says which
// sizes decided, e.g. "Cs = 64 != C = 256". Throws UsageError naming the first offending input.
inline void require_inputs_iff(const ProbeInputs& in, const std::vector<std::string>& names, bool needed,
                               const std::string& why) {
  for (const std::string& n : names) {
    BEVKD_PROBE_CHECK(!needed || in.has(n), "input ", n, ": missing (", why, ")");
    BEVKD_PROBE_CHECK(needed || !in.has(n), "input ", n, ": extra (", why, ")");
  }
}

// The per-sample boxes of a case, converted from mmdet3d v0.17 to DESIGN.md's Box.
inline std::vector<torch::Tensor> bevkd_boxes(const std::vector<torch::Tensor>& v017) {
  std::vector<torch::Tensor> out;
  for (const torch::Tensor& b : v017) out.push_back(v017_boxes_to_bevkd(b));
  return out;
}

}  // namespace bevkd::train::probe
