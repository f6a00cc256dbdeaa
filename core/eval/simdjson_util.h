// Internal to core/eval (included only by .cpp files that parse JSON): helpers around
// simdjson's On-Demand API that turn its error codes into bevkd::Error messages naming the
// file and the JSON path, and read numbers the way Python's json module does (NaN, Infinity
// and -Infinity literals are accepted as values; whether a field may hold them is the caller's
// decision).
//
// JSON paths are built only when a message needs one: a Path is a chain of small stack objects
// (no allocation), so reading millions of boxes pays nothing for good error messages.
#pragma once

#include <simdjson.h>

#include <cmath>
#include <limits>
#include <string>
#include <string_view>

#include "base/error.h"

namespace bevkd::core::eval::json_detail {

namespace od = simdjson::ondemand;

// A JSON path such as results["<token>"][3].size[1].
class Path {
 public:
  static Path root() { return Path(nullptr, kRoot, {}, 0); }
  // A literal first element, e.g. "results[\"abc\"]".
  static Path raw(std::string_view text) { return Path(nullptr, kRaw, text, 0); }
  // A child refers to its parent: never call these on a temporary.
  Path key(std::string_view k) const& { return Path(this, kKey, k, 0); }
  Path index(std::size_t i) const& { return Path(this, kIndex, {}, i); }
  Path key(std::string_view k) const&& = delete;
  Path index(std::size_t i) const&& = delete;
  // Valid while the Path and the strings it points to live.
  std::string str() const {
    std::string s = parent_ ? parent_->str() : std::string();
    switch (kind_) {
      case kRoot: break;
      case kRaw: s += text_; break;
      case kKey:
        if (!s.empty()) s += '.';
        s += text_;
        break;
      case kIndex: s += cat("[", index_, "]"); break;
    }
    return s;
  }

 private:
  enum Kind { kRoot, kRaw, kKey, kIndex };
  Path(const Path* parent, Kind kind, std::string_view text, std::size_t index)
      : parent_(parent), kind_(kind), text_(text), index_(index) {}
  const Path* parent_;
  Kind kind_;
  std::string_view text_;
  std::size_t index_;
};

// "<source>: <path>: <what>" — the form of every parse error.
template <typename... Args>
[[noreturn]] void fail_at(const std::string& source, const Path& path, Args&&... what) {
  const std::string p = path.str();
  throw ::bevkd::Error(::bevkd::cat(source, ": ", p.empty() ? std::string("(top level)") : p, ": ",
                                    std::forward<Args>(what)...));
}

inline void check(simdjson::error_code e, const std::string& source, const Path& path, std::string_view expected) {
  if (e == simdjson::SUCCESS) return;
  if (e == simdjson::INCORRECT_TYPE) fail_at(source, path, "expected ", expected);
  fail_at(source, path, "invalid JSON while reading ", expected, " (", simdjson::error_message(e), ")");
}

// The JSON type name of a value, for "expected X, found Y" messages.
inline const char* type_name(od::value& v) {
  od::json_type t;
  if (v.type().get(t) != simdjson::SUCCESS) return "an invalid token";
  switch (t) {
    case od::json_type::array: return "an array";
    case od::json_type::object: return "an object";
    case od::json_type::number: return "a number";
    case od::json_type::string: return "a string";
    case od::json_type::boolean: return "a boolean";
    case od::json_type::null: return "null";
  }
  return "an unknown value";
}

inline std::string_view trim_right(std::string_view raw) {
  while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\n' || raw.back() == '\r' || raw.back() == '\t'))
    raw.remove_suffix(1);
  return raw;
}

// A short excerpt of a raw token for messages.
inline std::string excerpt(std::string_view raw) {
  raw = trim_right(raw);
  if (raw.size() > 40) return std::string(raw.substr(0, 40)) + "...";
  return std::string(raw);
}

// Reads a number; Python's NaN / Infinity / -Infinity literals give the IEEE values. Anything
// else is an error naming the path and what was found.
inline double get_number(od::value v, const std::string& source, const Path& path) {
  double d = 0;
  const auto e = v.get_double().get(d);
  if (e == simdjson::SUCCESS) return d;
  const std::string_view raw = trim_right(v.raw_json_token());
  if (raw == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (raw == "Infinity") return std::numeric_limits<double>::infinity();
  if (raw == "-Infinity") return -std::numeric_limits<double>::infinity();
  if (e == simdjson::INCORRECT_TYPE) fail_at(source, path, "expected a number, found ", type_name(v), " ", excerpt(raw));
  fail_at(source, path, "expected a number, found ", excerpt(raw), " (", simdjson::error_message(e), ")");
}

inline std::string_view get_string_view(od::value v, const std::string& source, const Path& path) {
  std::string_view s;
  const auto e = v.get_string().get(s);
  if (e == simdjson::INCORRECT_TYPE)
    fail_at(source, path, "expected a string, found ", type_name(v), " ", excerpt(v.raw_json_token()));
  check(e, source, path, "a string");
  return s;
}

inline std::string get_string(od::value v, const std::string& source, const Path& path) {
  return std::string(get_string_view(v, source, path));
}

inline od::object get_object(od::value v, const std::string& source, const Path& path) {
  od::object o;
  const auto e = v.get_object().get(o);
  if (e == simdjson::INCORRECT_TYPE) fail_at(source, path, "expected an object, found ", type_name(v));
  check(e, source, path, "an object");
  return o;
}

inline od::array get_array(od::value v, const std::string& source, const Path& path) {
  od::array a;
  const auto e = v.get_array().get(a);
  if (e == simdjson::INCORRECT_TYPE) fail_at(source, path, "expected an array, found ", type_name(v));
  check(e, source, path, "an array");
  return a;
}

// Reads a JSON array of exactly `n` numbers into out[0..n).
inline void get_numbers(od::value v, double* out, std::size_t n, const std::string& source, const Path& path) {
  od::array a = get_array(v, source, path);
  std::size_t k = 0;
  for (auto el : a) {
    od::value ev;
    check(el.get(ev), source, path, "an array element");
    if (k < n) out[k] = get_number(ev, source, path.index(k));
    ++k;
  }
  if (k != n) fail_at(source, path, "expected ", n, " numbers, found ", k);
}

}  // namespace bevkd::core::eval::json_detail
