// loss-probe's params.json (spec/loss_probe.md "Case directory"): one JSON object of numbers,
// lists, strings and booleans, read strictly against the parameters a loss declares.
//
//   * a key the loss does not declare is refused by name (exit 2);
//   * a declared key with a default takes it when absent; a key declared without a default is
//     required; a key declared `ignored` is accepted and never read;
//   * typed accessors refuse a value of the wrong type naming the key, and refuse() lets a loss
//     refuse a value the contract does not allow ("key score_reweight: false is not allowed").
// No params.json means {}. Every refusal is a probe::UsageError (exit 2) whose message starts
// "params.json: key <key>: ...".
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"

namespace bevkd::train::probe {

// Bad use of loss-probe (exit code 2): unknown loss, unknown/missing/extra input or parameter,
// wrong rank/shape/dtype, disagreeing sizes, a value the contract does not allow, an
// unreadable file. The message names the input or key.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& msg) : Error(msg) {}
};

#define BEVKD_PROBE_CHECK(cond, ...)                                                 \
  do {                                                                               \
    if (!(cond)) throw ::bevkd::train::probe::UsageError(::bevkd::cat(__VA_ARGS__)); \
  } while (0)

// One declared parameter.
struct ParamSpec {
  std::string key;
  // The default (a JSON value; null for "derived from the inputs"); nullopt: required.
  std::optional<nlohmann::json> default_value;
  bool ignored = false;  // accepted and not used
  std::string doc;       // one line for --list

  static ParamSpec with_default(std::string key, nlohmann::json value, std::string doc = "");
  static ParamSpec required(std::string key, std::string doc = "");
  // Optional without a fixed default: the loss derives the value when absent (listed as null).
  static ParamSpec derived(std::string key, std::string doc = "");
  static ParamSpec ignored_key(std::string key, std::string doc = "");
};

class Params {
 public:
  Params() = default;
  // Reads `path` (a params.json; absent file = {}) against `specs`. Throws UsageError for
  // invalid JSON, a non-object, an unknown key or a missing required key.
  static Params read(const std::string& path, const std::vector<ParamSpec>& specs);
  // The same from a JSON value (tests; in-memory use).
  static Params from_json(const nlohmann::json& j, const std::vector<ParamSpec>& specs);

  // True when the user gave the key (not a default).
  bool given(const std::string& key) const { return given_.count(key) > 0; }
  // True when the key has a non-null value (given or defaulted).
  bool has_value(const std::string& key) const;

  double number(const std::string& key) const;
  // A number with an integral value (8 and 8.0 both read as 8).
  int64_t integer(const std::string& key) const;
  bool boolean(const std::string& key) const;
  std::string string(const std::string& key) const;
  // A list of numbers with min_size..max_size entries.
  std::vector<double> numbers(const std::string& key, size_t min_size, size_t max_size) const;
  std::vector<int64_t> integers(const std::string& key, size_t min_size, size_t max_size) const;
  const nlohmann::json& raw(const std::string& key) const;

  // Throws UsageError "params.json: key <key>: <value> is not allowed (<why>)".
  [[noreturn]] void refuse(const std::string& key, const std::string& why) const;

 private:
  const nlohmann::json& value(const std::string& key) const;
  [[noreturn]] void type_error(const std::string& key, const char* expected) const;

  std::map<std::string, nlohmann::json> values_;
  std::map<std::string, bool> given_;
};

}  // namespace bevkd::train::probe
