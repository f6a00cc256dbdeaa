// Temporary directories of the tests, under the build tree (<build>/test-out/), never a fixed
// path: TempDir for one test (removed when it dies unless BEVKD_KEEP_TEST_FILES is set),
// fresh_dir() for data a whole test process shares (emptied when first made).
#pragma once

#include <string>

namespace bevkd::testing {

class TempDir {
 public:
  TempDir();  // named after the running test
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// <build>/test-out/<name>.<pid>, created empty.
std::string fresh_dir(const std::string& name);

}  // namespace bevkd::testing
