// Internal to core/eval (included only by .cpp files that parse JSON): helpers around
// simdjson's On-Demand API that turn its error codes into bevkd::Error messages naming the
// file and the JSON path, and read numbers the way Python's json module does (NaN, Infinity
// and -Infinity literals are accepted as values; whether a field may hold them is the caller's
// decision).
#pragma once

#include <simdjson.h>

#include <cmath>
#include <limits>
#include <string>
#include <string_view>

#include "base/error.h"

namespace bevkd::core::eval::json_detail {

namespace od = simdjson::ondemand;

// "<source>: <path>: <what>" — the prefix of every parse error.
template <typename... Args>
[[noreturn]] void fail_at(const std::string& source, const std::string& path, Args&&... what) {
  throw ::bevkd::Error(::bevkd::cat(source, ": ", path.empty() ? std::string("(top level)") : path,
                                    ": ", std::forward<Args>(what)...));
}

inline void check(simdjson::error_code e, const std::string& source, const std::string& path,
                  std::string_view expected) {
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

// A short excerpt of a raw token for messages.
inline std::string excerpt(std::string_view raw) {
  while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\n' || raw.back() == '\r' || raw.back() == '\t'))
    raw.remove_suffix(1);
  if (raw.size() > 40) return std::string(raw.substr(0, 40)) + "...";
  return std::string(raw);
}

// Reads a number; Python's NaN / Infinity / -Infinity literals give the IEEE values. Anything
// else is an error naming the path and what was found.
inline double get_number(od::value v, const std::string& source, const std::string& path) {
  double d = 0;
  const auto e = v.get_double().get(d);
  if (e == simdjson::SUCCESS) return d;
  std::string_view raw = v.raw_json_token();
  while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\n' || raw.back() == '\r' || raw.back() == '\t'))
    raw.remove_suffix(1);
  if (raw == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (raw == "Infinity") return std::numeric_limits<double>::infinity();
  if (raw == "-Infinity") return -std::numeric_limits<double>::infinity();
  if (e == simdjson::INCORRECT_TYPE) fail_at(source, path, "expected a number, found ", type_name(v), " ", excerpt(raw));
  fail_at(source, path, "expected a number, found ", excerpt(raw), " (", simdjson::error_message(e), ")");
}

inline std::string get_string(od::value v, const std::string& source, const std::string& path) {
  std::string_view s;
  const auto e = v.get_string().get(s);
  if (e == simdjson::INCORRECT_TYPE)
    fail_at(source, path, "expected a string, found ", type_name(v), " ", excerpt(v.raw_json_token()));
  check(e, source, path, "a string");
  return std::string(s);
}

inline od::object get_object(od::value v, const std::string& source, const std::string& path) {
  od::object o;
  const auto e = v.get_object().get(o);
  if (e == simdjson::INCORRECT_TYPE) fail_at(source, path, "expected an object, found ", type_name(v));
  check(e, source, path, "an object");
  return o;
}

inline od::array get_array(od::value v, const std::string& source, const std::string& path) {
  od::array a;
  const auto e = v.get_array().get(a);
  if (e == simdjson::INCORRECT_TYPE) fail_at(source, path, "expected an array, found ", type_name(v));
  check(e, source, path, "an array");
  return a;
}

// Reads a JSON array of exactly `n` numbers into out[0..n).
inline void get_numbers(od::value v, double* out, std::size_t n, const std::string& source,
                        const std::string& path) {
  od::array a = get_array(v, source, path);
  std::size_t k = 0;
  for (auto el : a) {
    od::value ev;
    check(el.get(ev), source, path, "an array element");
    if (k < n) out[k] = get_number(ev, source, cat(path, "[", k, "]"));
    ++k;
  }
  if (k != n) fail_at(source, path, "expected ", n, " numbers, found ", k);
}

}  // namespace bevkd::core::eval::json_detail
