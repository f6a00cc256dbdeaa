// Helpers of the student tests: a temporary directory, running a command, expecting a bevkd::Error
// whose message holds given parts, and a synthetic camera rig. (tests/support/ will hold the
// shared versions; these are the student's own until then.)
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/torch.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"

namespace bevkd::train::student::testing {

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = (std::filesystem::path(BEVKD_BINARY_DIR) / "test-tmp" /
             ("student-" + std::to_string(::getpid()) + "-" + std::to_string(rd())))
                .string();
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    if (std::getenv("BEVKD_KEEP_TEST_FILES") == nullptr) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CommandResult {
  int status = -1;
  std::string output;
};

inline CommandResult run_command(const std::string& command) {
  CommandResult r;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int status = ::pclose(p);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Runs `f`, expects a bevkd::Error whose message contains every one of `parts`.
template <typename F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected a bevkd::Error";
  } catch (const bevkd::Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "message lacks '" << p << "': " << msg;
  }
}

// Rotation about z by `yaw` (rad), as a 3x3 float64 tensor.
inline torch::Tensor rot_z(double yaw) {
  const double c = std::cos(yaw), s = std::sin(yaw);
  return torch::tensor({c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0}, torch::kFloat64).view({3, 3});
}

// cam2ego [4, 4] float64 of a camera at `t` (ego, m) looking along ego direction `yaw` (rad, CCW
// from +x), level: camera z (forward) = (cos yaw, sin yaw, 0), camera x (right) = (sin yaw,
// -cos yaw, 0), camera y (down) = (0, 0, -1).
inline torch::Tensor level_camera(double yaw, std::array<double, 3> t) {
  const double c = std::cos(yaw), s = std::sin(yaw);
  // Columns are the camera axes in ego coordinates.
  return torch::tensor({s, 0.0, c, t[0],  //
                        -c, 0.0, s, t[1],  //
                        0.0, -1.0, 0.0, t[2],  //
                        0.0, 0.0, 0.0, 1.0},
                       torch::kFloat64)
      .view({4, 4});
}

}  // namespace bevkd::train::student::testing
