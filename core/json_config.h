// Strict reading of typed configuration from JSON (STYLE.md habit 3: typed structs, unknown keys
// rejected). A JsonFields wraps one JSON object; each get() reads an optional field into a typed
// value (leaving the default when absent), require() a mandatory one, and finish() throws if the
// object holds a key nobody read — so a misspelt key is an error, not a silent default.
//
// Errors name the source and the dotted path: "teacher.json: field head.in_channels: expected an
// integer, found \"x\"".
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "base/error.h"

namespace bevkd::core {

class JsonFields {
 public:
  // `source` names the file/origin, `path` the object's dotted path ("" for the root).
  JsonFields(const nlohmann::json& j, std::string source, std::string path = "");

  bool has(const std::string& key) const { return j_.contains(key); }

  // Optional field: keeps `out` unchanged when absent.
  template <typename T>
  void get(const std::string& key, T& out) {
    seen_.insert(key);
    if (!j_.contains(key)) return;
    read(j_.at(key), field(key), out);
  }
  template <typename T>
  void require(const std::string& key, T& out) {
    BEVKD_CHECK(j_.contains(key), source_, ": field ", field(key), " is missing");
    get(key, out);
  }
  // Nested object (must be an object if present; an empty one if absent).
  JsonFields object(const std::string& key);

  // Throws naming the first key that was never read.
  void finish() const;

  const std::string& source() const { return source_; }
  std::string field(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

 private:
  [[noreturn]] void type_error(const nlohmann::json& v, const std::string& field, const char* expected) const;
  void read(const nlohmann::json& v, const std::string& f, bool& out) const;
  void read(const nlohmann::json& v, const std::string& f, int& out) const;
  void read(const nlohmann::json& v, const std::string& f, int64_t& out) const;
  void read(const nlohmann::json& v, const std::string& f, double& out) const;
  void read(const nlohmann::json& v, const std::string& f, std::string& out) const;
  template <typename T>
  void read(const nlohmann::json& v, const std::string& f, std::vector<T>& out) const {
    if (!v.is_array()) type_error(v, f, "an array");
    std::vector<T> tmp(v.size());
    for (size_t i = 0; i < v.size(); ++i) read(v[i], f + "[" + std::to_string(i) + "]", tmp[i]);
    out = std::move(tmp);
  }
  template <typename T, size_t N>
  void read(const nlohmann::json& v, const std::string& f, std::array<T, N>& out) const {
    if (!v.is_array() || v.size() != N) type_error(v, f, ("an array of " + std::to_string(N)).c_str());
    for (size_t i = 0; i < N; ++i) read(v[i], f + "[" + std::to_string(i) + "]", out[i]);
  }

  const nlohmann::json& j_;
  std::string source_;
  std::string path_;
  std::set<std::string> seen_;
};

// Parses `text` as JSON; throws bevkd::Error naming `source` and the parser's message.
nlohmann::json parse_json(const std::string& text, const std::string& source);

}  // namespace bevkd::core
