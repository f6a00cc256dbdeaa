#include "tests/support/run.h"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <map>

#include "base/error.h"

namespace bevkd::testing {

// Defined in the generated binaries.cpp.
const std::map<std::string, std::string>& built_binaries();

std::string binary(const std::string& target) {
  const auto& m = built_binaries();
  const auto it = m.find(target);
  BEVKD_CHECK(it != m.end(), "test: this build has no binary ", target);
  return it->second;
}

CommandResult run_command(const std::string& command, bool stdout_only) {
  CommandResult r;
  FILE* p = ::popen((command + (stdout_only ? " 2>/dev/null" : " 2>&1")).c_str(), "r");
  BEVKD_CHECK(p != nullptr, "test: cannot run ", command);
  std::array<char, 4096> buf;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int status = ::pclose(p);
  if (WIFEXITED(status)) r.status = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) r.status = 128 + WTERMSIG(status);
  return r;
}

}  // namespace bevkd::testing
