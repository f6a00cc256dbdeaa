#include "tests/support/temp_dir.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>

#include "base/error.h"

namespace bevkd::testing {
namespace {
std::atomic<int> g_counter{0};
}

TempDir::TempDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? cat(info->test_suite_name(), ".", info->name()) : "test";
  for (char& c : name)
    if (c == '/') c = '_';
  path_ = cat(BEVKD_BINARY_DIR, "/test-out/", name, "-", ::getpid(), "-", g_counter++);
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  if (std::getenv("BEVKD_KEEP_TEST_FILES") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
}

std::string fresh_dir(const std::string& name) {
  const std::string dir = cat(BEVKD_BINARY_DIR, "/test-out/", name, ".", ::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace bevkd::testing
