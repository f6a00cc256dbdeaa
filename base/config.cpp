#include "base/config.h"

#include <cmath>
#include <limits>

#include "base/fs.h"

namespace bevkd::config {

json parse(const std::string& text, const std::string& source) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    BEVKD_FAIL(source, ": invalid JSON: ", e.what());
  }
}

json read_file(const std::string& path) {
  BEVKD_CHECK(path_exists(path), "configuration file ", path, " does not exist");
  return parse(bevkd::read_file(path), path);
}

std::string shown(const json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

namespace {

std::string walk(const json& a, const json& b, const std::string& path, const char* an, const char* bn) {
  const auto label = [&](const std::string& k) { return path.empty() ? k : path + "." + k; };
  if (a.is_object() && b.is_object()) {
    for (auto it = a.begin(); it != a.end(); ++it) {
      if (!b.contains(it.key())) return cat(label(it.key()), " (", an, " ", shown(it.value()), ", ", bn, ": absent)");
      std::string d = walk(it.value(), b.at(it.key()), label(it.key()), an, bn);
      if (!d.empty()) return d;
    }
    for (auto it = b.begin(); it != b.end(); ++it)
      if (!a.contains(it.key())) return cat(label(it.key()), " (", an, ": absent, ", bn, " ", shown(it.value()), ")");
    return "";
  }
  if (a.is_array() && b.is_array() && a.size() == b.size()) {
    for (std::size_t i = 0; i < a.size(); ++i) {
      std::string d = walk(a[i], b[i], cat(path, "[", i, "]"), an, bn);
      if (!d.empty()) return d;
    }
    return "";
  }
  if (a == b) return "";
  return cat(path.empty() ? "<root>" : path, " (", an, " ", shown(a), ", ", bn, " ", shown(b), ")");
}

}  // namespace

std::string first_difference(const json& a, const json& b, const char* a_name, const char* b_name) {
  return walk(a, b, "", a_name, b_name);
}

JsonFields::JsonFields(const json& j, std::string source, std::string path)
    : j_(j), source_(std::move(source)), path_(std::move(path)) {
  BEVKD_CHECK(j_.is_object(), source_, ": ", path_.empty() ? std::string("the document") : "field " + path_,
              " must be a JSON object, found ", shown(j_));
}

JsonFields JsonFields::object(const std::string& key) {
  seen_.insert(key);
  static const json kEmpty = json::object();
  if (!j_.contains(key)) return JsonFields(kEmpty, source_, field(key));
  return JsonFields(j_.at(key), source_, field(key));
}

void JsonFields::finish() const {
  for (auto it = j_.begin(); it != j_.end(); ++it)
    BEVKD_CHECK(seen_.count(it.key()) != 0, source_, ": unknown field ", field(it.key()));
}

void JsonFields::type_error(const json& v, const std::string& f, const char* expected) const {
  BEVKD_FAIL(source_, ": field ", f, ": expected ", expected, ", found ", shown(v));
}

void JsonFields::read(const json& v, const std::string& f, bool& out) const {
  if (!v.is_boolean()) type_error(v, f, "true or false");
  out = v.get<bool>();
}

void JsonFields::read(const json& v, const std::string& f, std::int64_t& out) const {
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      type_error(v, f, "a 64-bit signed integer");
    out = v.get<std::int64_t>();
    return;
  }
  // 3.0 is accepted as 3; 3.5 is not.
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) {
      out = static_cast<std::int64_t>(d);
      return;
    }
  }
  type_error(v, f, "an integer");
}

void JsonFields::read(const json& v, const std::string& f, std::uint64_t& out) const {
  if (v.is_number_unsigned()) {
    out = v.get<std::uint64_t>();
    return;
  }
  std::int64_t x = 0;
  read(v, f, x);
  if (x < 0) type_error(v, f, "a non-negative integer");
  out = static_cast<std::uint64_t>(x);
}

void JsonFields::read(const json& v, const std::string& f, int& out) const {
  std::int64_t x = 0;
  read(v, f, x);
  if (x < std::numeric_limits<int>::min() || x > std::numeric_limits<int>::max()) type_error(v, f, "a 32-bit integer");
  out = static_cast<int>(x);
}

void JsonFields::read(const json& v, const std::string& f, double& out) const {
  if (!v.is_number()) type_error(v, f, "a number");
  out = v.get<double>();
}

void JsonFields::read(const json& v, const std::string& f, std::string& out) const {
  if (!v.is_string()) type_error(v, f, "a string");
  out = v.get<std::string>();
}

}  // namespace bevkd::config
