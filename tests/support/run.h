// Running the project's binaries from tests: their paths come from CMake ($<TARGET_FILE:...>,
// generated into binaries.cpp), never from a hard-coded build layout.
#pragma once

#include <string>

namespace bevkd::testing {

// The built binary of a target: "bevkd-precompute", "bevkd-inspect", "bevkd-eval",
// "bevkd-synth", "bevkd-train". Throws bevkd::Error for a target this build does not have.
std::string binary(const std::string& target);

struct CommandResult {
  int status = -1;     // exit code; 128 + signal when killed by a signal
  std::string output;  // stdout (+ stderr unless stdout_only)
};
// Runs a shell command.
CommandResult run_command(const std::string& command, bool stdout_only = false);

}  // namespace bevkd::testing
