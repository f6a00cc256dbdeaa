// Configuration as data (STYLE.md habit 3, DESIGN.md "Configuration"): every configuration struct
// lists its fields ONCE, in a member template
//
//   struct FitConfig {
//     std::string dataroot;
//     int64_t epochs = 20;
//     BevAugmentConfig augmentation;
//     template <class V> void fields(V& v) {
//       v("dataroot", dataroot, "--dataroot", "nuScenes-format dataset root");
//       v("epochs", epochs, "--epochs", "training epochs");
//       v.nested("augmentation", augmentation);            // a struct with its own fields()
//       v.group("runtime", [&] { v("threads", threads, "--threads"); });  // a JSON object over flat members
//     }
//   };
//
// and that one list serves JSON output (to_json), strict JSON input (from_json: absent keys keep
// their defaults, unknown keys are refused by name, wrong types name the dotted path), the
// comparison of two configurations (first_difference) and the command line (base/config_cli.h:
// every field with a flag becomes a CLI11 option; `--config FILE` loads a JSON file first and
// flags override it). A resolved configuration written with to_json() is read back by
// from_json() unchanged, so any run's saved configuration reproduces it with --config.
//
// Field types: bool, int, int64_t, uint64_t, double, std::string, std::vector<T>, std::array<T, N>
// of those, nested structs with fields() (v.nested), and any type T with the ADL pair
//   nlohmann::json to_config_json(const T&);
//   void from_config_json(const nlohmann::json&, T&, const std::string& where);
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/error.h"

namespace bevkd::config {

using nlohmann::json;

// Parses `text` as JSON; throws bevkd::Error naming `source` and the parser's message.
json parse(const std::string& text, const std::string& source);
// Reads and parses a JSON file; errors name the file.
json read_file(const std::string& path);

// The dotted path of the first key where `a` and `b` differ ("" when equal), with both values:
// `views.count (stored 2, given 1)`. Arrays are compared element-wise (`data.splits[1]`); a key
// present on one side only counts as different. `a_name` / `b_name` label the two sides.
std::string first_difference(const json& a, const json& b, const char* a_name = "stored",
                             const char* b_name = "given");

// A JSON value shortened for messages (at most 60 characters).
std::string shown(const json& v);

// Strict reading of one JSON object: get() reads an optional field into a typed value (keeping
// the default when absent), require() a mandatory one, finish() throws if the object holds a key
// nobody read. Errors name the source and the dotted path:
//   "fit.json: field augmentation.scale_range[1]: expected a number, found \"x\"".
class JsonFields {
 public:
  JsonFields(const json& j, std::string source, std::string path = "");

  bool has(const std::string& key) const { return j_.contains(key); }
  template <typename T>
  void get(const std::string& key, T& out) {
    seen_.insert(key);
    if (j_.contains(key)) read(j_.at(key), field(key), out);
  }
  template <typename T>
  void require(const std::string& key, T& out) {
    BEVKD_CHECK(j_.contains(key), source_, ": field ", field(key), " is missing");
    get(key, out);
  }
  // A nested object (an empty one if absent; an error if present and not an object).
  JsonFields object(const std::string& key);
  // Marks a key as known without reading it.
  void skip(const std::string& key) { seen_.insert(key); }
  void finish() const;

  const std::string& source() const { return source_; }
  std::string field(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

  // Typed conversion of one value (public for the visitors below).
  [[noreturn]] void type_error(const json& v, const std::string& f, const char* expected) const;
  void read(const json& v, const std::string& f, bool& out) const;
  void read(const json& v, const std::string& f, int& out) const;
  void read(const json& v, const std::string& f, std::int64_t& out) const;
  void read(const json& v, const std::string& f, std::uint64_t& out) const;
  void read(const json& v, const std::string& f, double& out) const;
  void read(const json& v, const std::string& f, std::string& out) const;
  template <typename T>
  void read(const json& v, const std::string& f, std::vector<T>& out) const {
    if (!v.is_array()) type_error(v, f, "an array");
    std::vector<T> tmp(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) read(v[i], f + "[" + std::to_string(i) + "]", tmp[i]);
    out = std::move(tmp);
  }
  template <typename T, std::size_t N>
  void read(const json& v, const std::string& f, std::array<T, N>& out) const {
    if (!v.is_array() || v.size() != N) type_error(v, f, ("an array of " + std::to_string(N)).c_str());
    for (std::size_t i = 0; i < N; ++i) read(v[i], f + "[" + std::to_string(i) + "]", out[i]);
  }
  template <typename T, typename = decltype(from_config_json(std::declval<const json&>(), std::declval<T&>(),
                                                              std::declval<const std::string&>()))>
  void read(const json& v, const std::string& f, T& out) const {
    from_config_json(v, out, source_ + ": field " + f);
  }

 private:
  const json& j_;
  std::string source_;
  std::string path_;
  std::set<std::string> seen_;
};

namespace detail {
inline json value_json(bool v) { return v; }
inline json value_json(int v) { return v; }
inline json value_json(std::int64_t v) { return v; }
inline json value_json(std::uint64_t v) { return v; }
inline json value_json(double v) { return v; }
inline json value_json(const std::string& v) { return v; }
template <typename T>
json value_json(const std::vector<T>& v);
template <typename T, std::size_t N>
json value_json(const std::array<T, N>& v);
template <typename T, typename = decltype(to_config_json(std::declval<const T&>()))>
json value_json(const T& v) {
  return to_config_json(v);
}
template <typename T>
json value_json(const std::vector<T>& v) {
  json a = json::array();
  for (const auto& x : v) a.push_back(value_json(x));
  return a;
}
template <typename T, std::size_t N>
json value_json(const std::array<T, N>& v) {
  json a = json::array();
  for (const auto& x : v) a.push_back(value_json(x));
  return a;
}
}  // namespace detail

// Visitor writing every field into a JSON object.
class ToJson {
 public:
  ToJson() : stack_{&root_} {}
  template <typename T>
  void operator()(const char* key, const T& value, const char* /*flag*/ = nullptr, const char* /*help*/ = nullptr) {
    (*stack_.back())[key] = detail::value_json(value);
  }
  template <typename T>
  void nested(const char* key, T& obj, const char* /*flag_prefix*/ = nullptr) {
    json& child = (*stack_.back())[key] = json::object();
    stack_.push_back(&child);
    obj.fields(*this);
    stack_.pop_back();
  }
  template <typename F>
  void group(const char* key, F&& body) {
    json& child = (*stack_.back())[key] = json::object();
    stack_.push_back(&child);
    body();
    stack_.pop_back();
  }
  json take() { return std::move(root_); }

 private:
  json root_ = json::object();
  std::vector<json*> stack_;
};

// Visitor reading fields from a JSON object strictly (see JsonFields).
class FromJson {
 public:
  FromJson(const json& j, const std::string& source) { stack_.emplace_back(j, source); }
  template <typename T>
  void operator()(const char* key, T& value, const char* /*flag*/ = nullptr, const char* /*help*/ = nullptr) {
    stack_.back().get(key, value);
  }
  template <typename T>
  void nested(const char* key, T& obj, const char* /*flag_prefix*/ = nullptr) {
    stack_.push_back(stack_.back().object(key));
    obj.fields(*this);
    stack_.back().finish();
    stack_.pop_back();
  }
  template <typename F>
  void group(const char* key, F&& body) {
    stack_.push_back(stack_.back().object(key));
    body();
    stack_.back().finish();
    stack_.pop_back();
  }
  void finish() { stack_.front().finish(); }

 private:
  std::vector<JsonFields> stack_;
};

// The configuration as JSON, every field (the struct's fields() order).
template <typename T>
json to_json(const T& cfg) {
  ToJson w;
  const_cast<T&>(cfg).fields(w);  // ToJson only reads
  return w.take();
}

// Overwrites the fields present in `j` (an object); unknown keys throw naming `source` and the key.
template <typename T>
void from_json(const json& j, T& cfg, const std::string& source) {
  FromJson r(j, source);
  cfg.fields(r);
  r.finish();
}

// from_json of a JSON file.
template <typename T>
void load_file(const std::string& path, T& cfg) {
  from_json(read_file(path), cfg, path);
}

}  // namespace bevkd::config
