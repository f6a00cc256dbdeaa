#include "train/probe/params.h"

#include <cmath>
#include <filesystem>
#include <limits>

#include "base/fs.h"

namespace bevkd::train::probe {

ParamSpec ParamSpec::with_default(std::string key, nlohmann::json value, std::string doc) {
  return ParamSpec{std::move(key), std::move(value), false, std::move(doc)};
}
ParamSpec ParamSpec::required(std::string key, std::string doc) {
  return ParamSpec{std::move(key), std::nullopt, false, std::move(doc)};
}
ParamSpec ParamSpec::derived(std::string key, std::string doc) {
  return ParamSpec{std::move(key), nlohmann::json(nullptr), false, std::move(doc)};
}
ParamSpec ParamSpec::ignored_key(std::string key, std::string doc) {
  return ParamSpec{std::move(key), nlohmann::json(nullptr), true, std::move(doc)};
}

Params Params::read(const std::string& path, const std::vector<ParamSpec>& specs) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return from_json(nlohmann::json::object(), specs);
  std::string text;
  try {
    text = read_file(path);
  } catch (const Error& e) {
    throw UsageError(cat("params.json: ", e.what()));
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(cat("params.json: ", path, " is not valid JSON (", e.what(), ")"));
  }
  return from_json(j, specs);
}

Params Params::from_json(const nlohmann::json& j, const std::vector<ParamSpec>& specs) {
  BEVKD_PROBE_CHECK(j.is_object(), "params.json: expected one JSON object, found ", j.type_name());
  Params p;
  std::string known;
  for (const ParamSpec& s : specs) known += (known.empty() ? "" : ", ") + s.key;
  for (const auto& [key, value] : j.items()) {
    bool declared = false;
    for (const ParamSpec& s : specs) declared = declared || s.key == key;
    BEVKD_PROBE_CHECK(declared, "params.json: key ", key,
                      ": unknown for this loss (its keys: ", known.empty() ? "none" : known, ")");
  }
  for (const ParamSpec& s : specs) {
    if (s.ignored) continue;
    if (j.contains(s.key)) {
      p.values_[s.key] = j.at(s.key);
      p.given_[s.key] = true;
    } else {
      BEVKD_PROBE_CHECK(s.default_value.has_value(), "params.json: key ", s.key, ": missing (required, no default)");
      p.values_[s.key] = *s.default_value;
    }
  }
  return p;
}

bool Params::has_value(const std::string& key) const {
  auto it = values_.find(key);
  return it != values_.end() && !it->second.is_null();
}

const nlohmann::json& Params::value(const std::string& key) const {
  auto it = values_.find(key);
  BEVKD_ASSERT(it != values_.end(), "parameter '", key, "' read but not declared (or declared ignored)");
  return it->second;
}

const nlohmann::json& Params::raw(const std::string& key) const { return value(key); }

void Params::type_error(const std::string& key, const char* expected) const {
  throw UsageError(cat("params.json: key ", key, ": ", value(key).dump(), " is not ", expected));
}

void Params::refuse(const std::string& key, const std::string& why) const {
  throw UsageError(cat("params.json: key ", key, ": ", value(key).dump(), " is not allowed (", why, ")"));
}

double Params::number(const std::string& key) const {
  const nlohmann::json& v = value(key);
  if (!v.is_number()) type_error(key, "a number");
  return v.get<double>();
}

int64_t Params::integer(const std::string& key) const {
  const nlohmann::json& v = value(key);
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::abs(d) < 9e15) return static_cast<int64_t>(d);
  }
  type_error(key, "an integer");
}

bool Params::boolean(const std::string& key) const {
  const nlohmann::json& v = value(key);
  if (!v.is_boolean()) type_error(key, "true or false");
  return v.get<bool>();
}

std::string Params::string(const std::string& key) const {
  const nlohmann::json& v = value(key);
  if (!v.is_string()) type_error(key, "a string");
  return v.get<std::string>();
}

std::vector<double> Params::numbers(const std::string& key, size_t min_size, size_t max_size) const {
  const nlohmann::json& v = value(key);
  const std::string expected = min_size == max_size ? cat("a list of ", min_size, " numbers")
                                                    : cat("a list of ", min_size, " to ", max_size, " numbers");
  if (!v.is_array() || v.size() < min_size || v.size() > max_size) type_error(key, expected.c_str());
  std::vector<double> out;
  for (const auto& x : v) {
    if (!x.is_number()) type_error(key, expected.c_str());
    out.push_back(x.get<double>());
  }
  return out;
}

std::vector<int64_t> Params::integers(const std::string& key, size_t min_size, size_t max_size) const {
  const std::vector<double> d = numbers(key, min_size, max_size);
  std::vector<int64_t> out;
  for (double x : d) {
    if (!(std::isfinite(x) && x == std::floor(x) && std::abs(x) < 9e15))
      type_error(key,
                 cat("a list of ", min_size == max_size ? cat(min_size) : cat(min_size, " to ", max_size), " integers")
                     .c_str());
    out.push_back(static_cast<int64_t>(x));
  }
  return out;
}

}  // namespace bevkd::train::probe
