#include "tests/support/expect_error.h"
#include "base/fs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include "base/error.h"
#include "tests/support/temp_dir.h"

namespace bevkd {
namespace {

TEST(Fs, AtomicWriteReplacesAndLeavesNoTemporary) {
  const std::string dir = bevkd::testing::fresh_dir("fs_test");
  const std::string p = dir + "/manifest.json";
  write_file_atomic(p, "first");
  write_file_atomic(p, "second, longer");
  EXPECT_EQ(read_file(p), "second, longer");
  EXPECT_EQ(file_size(p), 14u);
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1) << "a temporary file was left behind";
  std::filesystem::remove_all(dir);
}

TEST(Fs, MissingFileErrorNamesThePath) {
  try {
    read_file("/nonexistent/bevkd/x.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/bevkd/x.json: cannot open"), std::string::npos) << e.what();
  }
  EXPECT_ERROR_WITH(file_size("/nonexistent/bevkd/x.json"), "/nonexistent/bevkd/x.json: cannot stat");
  EXPECT_FALSE(path_exists("/nonexistent/bevkd/x.json"));
}

TEST(Fs, AtomicWriteIntoMissingDirectoryFailsClearly) {
  try {
    write_file_atomic("/nonexistent/bevkd/out.json", "x");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/bevkd/out.json.tmp."), std::string::npos) << e.what();
  }
}

TEST(Fs, ExclusiveCreateHasOneWinnerAndLeavesNoTemporary) {
  const std::string dir = bevkd::testing::fresh_dir("fs_test") + "/excl";
  make_dirs(dir);
  const std::string p = dir + "/precompute_config.json";
  std::vector<std::thread> racers;
  std::atomic<int> wins{0};
  for (int i = 0; i < 8; ++i)
    racers.emplace_back([&, i] {
      if (create_file_exclusive(p, "writer " + std::to_string(i))) ++wins;
    });
  for (auto& t : racers) t.join();
  EXPECT_EQ(wins.load(), 1);
  EXPECT_EQ(read_file(p).rfind("writer ", 0), 0u);
  EXPECT_FALSE(create_file_exclusive(p, "late"));
  int files = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1) << "no temporary file is left";
}

TEST(Fs, MakeDirsCreatesParents) {
  const std::string dir = bevkd::testing::fresh_dir("fs_test") + "/a/b/c";
  make_dirs(dir);
  EXPECT_TRUE(path_exists(dir));
  make_dirs(dir);  // idempotent
  std::filesystem::remove_all(bevkd::testing::fresh_dir("fs_test"));
}

}  // namespace
}  // namespace bevkd
