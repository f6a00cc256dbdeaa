#include "base/fs.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "base/error.h"

namespace bevkd {
namespace {

std::string temp_dir() {
  auto d = std::filesystem::temp_directory_path() / ("bevkd_fs_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(d);
  return d.string();
}

TEST(Fs, AtomicWriteReplacesAndLeavesNoTemporary) {
  const std::string dir = temp_dir();
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
  EXPECT_THROW(file_size("/nonexistent/bevkd/x.json"), Error);
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

TEST(Fs, MakeDirsCreatesParents) {
  const std::string dir = temp_dir() + "/a/b/c";
  make_dirs(dir);
  EXPECT_TRUE(path_exists(dir));
  make_dirs(dir);  // idempotent
  std::filesystem::remove_all(temp_dir());
}

}  // namespace
}  // namespace bevkd
