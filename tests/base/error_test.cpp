#include "base/error.h"

#include <gtest/gtest.h>

namespace bevkd {
namespace {

TEST(Error, CheckThrowsWithConcatenatedMessage) {
  const std::string path = "train/shard-00003.h5";
  try {
    BEVKD_CHECK(1 + 1 == 3, "shard ", path, ": dataset teacher/heatmap has ", 12, " channels, expected ", 10);
    FAIL() << "BEVKD_CHECK did not throw";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "shard train/shard-00003.h5: dataset teacher/heatmap has 12 channels, expected 10");
  }
}

TEST(Error, CheckPassesSilently) { EXPECT_NO_THROW(BEVKD_CHECK(true, "never")); }

TEST(Error, AssertIsAnInternalErrorNamingTheCondition) {
  try {
    int n = 3;
    BEVKD_ASSERT(n < 2, "n=", n);
    FAIL() << "BEVKD_ASSERT did not throw";
  } catch (const InternalError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("error_test.cpp"), std::string::npos) << what;
    EXPECT_NE(what.find("`n < 2`"), std::string::npos) << what;
    EXPECT_NE(what.find("n=3"), std::string::npos) << what;
  }
  try {
    BEVKD_ASSERT(false);
    FAIL() << "BEVKD_ASSERT(false) did not throw";
  } catch (const InternalError& e) {
    EXPECT_NE(std::string(e.what()).find("`false`"), std::string::npos) << e.what();
  }
}

TEST(Error, RunMainMapsExceptionsToExitCodes) {
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(run_main("prog", [] { return 0; }), 0);
  EXPECT_EQ(run_main("prog", []() -> int { BEVKD_FAIL("file x.json: field 'token' missing"); }), 1);
  EXPECT_EQ(run_main("prog", []() -> int { throw std::runtime_error("boom"); }), 1);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("prog: error: file x.json: field 'token' missing"), std::string::npos) << err;
  EXPECT_NE(err.find("prog: error: boom"), std::string::npos) << err;
}

}  // namespace
}  // namespace bevkd
