#include "core/json_config.h"

#include <cmath>
#include <limits>

namespace bevkd::core {

namespace {
std::string shown(const nlohmann::json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}
}  // namespace

JsonFields::JsonFields(const nlohmann::json& j, std::string source, std::string path)
    : j_(j), source_(std::move(source)), path_(std::move(path)) {
  BEVKD_CHECK(j_.is_object(), source_, ": ", path_.empty() ? std::string("the document") : "field " + path_,
              " must be a JSON object, found ", shown(j_));
}

JsonFields JsonFields::object(const std::string& key) {
  seen_.insert(key);
  static const nlohmann::json kEmpty = nlohmann::json::object();
  if (!j_.contains(key)) return JsonFields(kEmpty, source_, field(key));
  return JsonFields(j_.at(key), source_, field(key));
}

void JsonFields::finish() const {
  for (auto it = j_.begin(); it != j_.end(); ++it)
    BEVKD_CHECK(seen_.count(it.key()) != 0, source_, ": unknown field ", field(it.key()));
}

void JsonFields::type_error(const nlohmann::json& v, const std::string& f, const char* expected) const {
  BEVKD_FAIL(source_, ": field ", f, ": expected ", expected, ", found ", shown(v));
}

void JsonFields::read(const nlohmann::json& v, const std::string& f, bool& out) const {
  if (!v.is_boolean()) type_error(v, f, "true or false");
  out = v.get<bool>();
}

void JsonFields::read(const nlohmann::json& v, const std::string& f, int64_t& out) const {
  if (v.is_number_integer()) {
    out = v.get<int64_t>();
    return;
  }
  // 3.0 is accepted as 3; 3.5 is not.
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) {
      out = static_cast<int64_t>(d);
      return;
    }
  }
  type_error(v, f, "an integer");
}

void JsonFields::read(const nlohmann::json& v, const std::string& f, int& out) const {
  int64_t x = 0;
  read(v, f, x);
  if (x < std::numeric_limits<int>::min() || x > std::numeric_limits<int>::max()) type_error(v, f, "a 32-bit integer");
  out = static_cast<int>(x);
}

void JsonFields::read(const nlohmann::json& v, const std::string& f, double& out) const {
  if (!v.is_number()) type_error(v, f, "a number");
  out = v.get<double>();
}

void JsonFields::read(const nlohmann::json& v, const std::string& f, std::string& out) const {
  if (!v.is_string()) type_error(v, f, "a string");
  out = v.get<std::string>();
}

nlohmann::json parse_json(const std::string& text, const std::string& source) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    BEVKD_FAIL(source, ": invalid JSON: ", e.what());
  }
}

}  // namespace bevkd::core
