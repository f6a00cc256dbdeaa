// The command-line side of configuration as data (base/config.h): every field of a config struct
// that names a flag in its fields() list becomes a CLI11 option bound to the field, and every
// command takes `--config FILE` (JSON). Precedence: defaults < the --config file < flags given on
// the command line. Header-only, included by the mains alone (CLI11 is header-only).
//
//   FitConfig cfg;
//   auto* sub = app.add_subcommand("fit", "...");
//   config::bind(sub, cfg);                            // --config + every flag of cfg.fields()
//   config::preload(sub, cfg, argc, argv);             // loads --config FILE into cfg, if given
//   app.parse(argc, argv);                             // flags override the file
//   cfg.validate();                                    // required fields are checked here, not by CLI11
//
// Flags of a nested struct (v.nested(key, obj, prefix)) are bound with the prefix spliced in
// ("--view-" + "rotation" for a field flagged "--rotation"); a nested struct given no prefix has
// no flags (it is set through --config only).
#pragma once

#include <CLI/CLI.hpp>

#include <array>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "base/config.h"

namespace bevkd::config {

namespace detail {
template <typename T>
struct is_std_vector : std::false_type {};
template <typename T>
struct is_std_vector<std::vector<T>> : std::true_type {};
template <typename T>
struct is_std_array : std::false_type {};
template <typename T, std::size_t N>
struct is_std_array<std::array<T, N>> : std::true_type {};

// Types CLI11 parses: numbers, bools, strings and vectors/arrays of them. Other field types
// (grids, enums, nested lists) are set through --config only.
template <typename T>
constexpr bool is_cli_scalar = std::is_arithmetic_v<T> || std::is_same_v<T, std::string>;
template <typename T>
struct is_cli_type : std::bool_constant<is_cli_scalar<T>> {};
template <typename T>
struct is_cli_type<std::vector<T>> : std::bool_constant<is_cli_scalar<T>> {};
template <typename T, std::size_t N>
struct is_cli_type<std::array<T, N>> : std::bool_constant<is_cli_scalar<T>> {};

// "--rotation,-r" with prefix "view-" -> "--view-rotation"; "!--no-x" -> "!--no-view-x" is not
// meaningful, so prefixed negations keep their name after the prefix: "!--view-no-x".
inline std::string prefixed_flags(const std::string& flags, const std::string& prefix) {
  if (prefix.empty()) return flags;
  std::string out, name;
  std::size_t start = 0;
  while (start <= flags.size()) {
    const std::size_t comma = flags.find(',', start);
    name = flags.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    std::string bang;
    if (!name.empty() && name[0] == '!') {
      bang = "!";
      name = name.substr(1);
    }
    if (name.rfind("--", 0) == 0) {
      if (!out.empty()) out += ",";
      out += bang + "--" + prefix + name.substr(2);
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}
}  // namespace detail

class BindCli {
 public:
  explicit BindCli(CLI::App* app, std::string prefix = "") : app_(app), prefix_(std::move(prefix)) {}

  template <typename T>
  void operator()(const char* key, T& value, const char* flag = nullptr, const char* help = nullptr) {
    if (flag == nullptr || *flag == '\0') return;
    if constexpr (!detail::is_cli_type<T>::value) {
      BEVKD_FAIL("configuration field ", key, " has a flag but a type the command line cannot hold");
    } else {
      bind_option(flag, value, help);
    }
  }
  template <typename T>
  void nested(const char* /*key*/, T& obj, const char* flag_prefix = nullptr) {
    if (flag_prefix == nullptr) return;
    BindCli sub(app_, prefix_ + flag_prefix);
    obj.fields(sub);
  }
  template <typename F>
  void group(const char* /*key*/, F&& body) {
    body();
  }

 private:
  template <typename T>
  void bind_option(const char* flag, T& value, const char* help) {
    const std::string names = detail::prefixed_flags(flag, prefix_);
    const std::string text = help == nullptr ? "" : help;
    if constexpr (std::is_same_v<T, bool>) {
      app_->add_flag(names, value, text);
    } else if constexpr (detail::is_std_vector<T>::value) {
      auto* o = app_->add_option(names, value, text);
      if constexpr (std::is_same_v<typename T::value_type, std::string>) o->delimiter(',');
    } else if constexpr (detail::is_std_array<T>::value) {
      app_->add_option(names, value, text)->capture_default_str();  // CLI11 takes N values for std::array<T, N>
    } else {
      app_->add_option(names, value, text)->capture_default_str();
    }
  }

  CLI::App* app_;
  std::string prefix_;
};

// Registers only `--config FILE` on `cmd` (for commands whose flags are bound by hand).
inline void bind_config_option(CLI::App* cmd) {
  static std::string ignored;  // --config is consumed by preload(); CLI11 only has to accept it
  cmd->add_option("--config", ignored,
                  "JSON configuration file (e.g. a run's saved resolved configuration); flags given on the "
                  "command line override it; unknown keys are refused");
}

// Registers `--config FILE` and every flagged field of `cfg` on `cmd`.
template <typename T>
void bind(CLI::App* cmd, T& cfg) {
  bind_config_option(cmd);
  BindCli b(cmd);
  cfg.fields(b);
}

// The argument of `--config FILE` / `--config=FILE` in argv, or "" (only tokens after the
// subcommand `sub` when it is given, e.g. "fit-teacher").
inline std::string config_argument(int argc, char** argv, const std::string& sub = "") {
  int first = 1;
  if (!sub.empty()) {
    first = argc;
    for (int i = 1; i < argc; ++i)
      if (sub == argv[i]) {
        first = i + 1;
        break;
      }
  }
  std::string path;
  for (int i = first; i < argc; ++i) {
    if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc) path = argv[i + 1];
    if (std::strncmp(argv[i], "--config=", 9) == 0) path = argv[i] + 9;
  }
  return path;
}

// Before app.parse(): when argv selects `cmd` (the app itself, or one of its subcommands) and
// holds `--config FILE`, loads FILE into cfg (strictly: unknown keys are refused by name).
template <typename T>
void preload(CLI::App* cmd, T& cfg, int argc, char** argv) {
  const bool is_sub = cmd->get_parent() != nullptr;
  if (is_sub) {
    bool chosen = false;
    for (int i = 1; i < argc && !chosen; ++i) chosen = cmd->get_name() == argv[i];
    if (!chosen) return;
  }
  const std::string path = config_argument(argc, argv, is_sub ? cmd->get_name() : "");
  if (!path.empty()) load_file(path, cfg);
}

}  // namespace bevkd::config
