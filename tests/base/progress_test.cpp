#include "base/progress.h"

#include <gtest/gtest.h>

#include <sstream>
#include <thread>
#include <vector>

namespace bevkd {
namespace {

TEST(Progress, FormatsDurations) {
  EXPECT_EQ(Progress::format_duration(0), "0:00");
  EXPECT_EQ(Progress::format_duration(62), "1:02");
  EXPECT_EQ(Progress::format_duration(3723), "1:02:03");
  EXPECT_EQ(Progress::format_duration(-1), "?");
}

TEST(Progress, LineShowsCountPercentRateAndEta) {
  std::ostringstream os;
  ProgressOptions o;
  o.unit = "samples";
  Progress p("precompute train", 200, os, o);
  p.advance(50);
  const std::string line = p.line();
  EXPECT_EQ(line.rfind("precompute train  50/200  25.0%  ", 0), 0u) << line;
  EXPECT_NE(line.find(" samples/s  ETA "), std::string::npos) << line;
}

TEST(Progress, FinishPrintsOnceAndCountsAllThreads) {
  std::ostringstream os;
  ProgressOptions o;
  o.log_interval_s = 1e9;  // no intermediate lines
  Progress p("work", 4000, os, o);
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) p.advance();
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(p.done(), 4000);
  p.finish();
  p.finish();
  const std::string out = os.str();
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_NE(out.find("work  4000/4000  100.0%"), std::string::npos) << out;
  EXPECT_NE(out.find("elapsed"), std::string::npos) << out;
}

TEST(Progress, UnknownTotalHasNoEta) {
  std::ostringstream os;
  Progress p("scan", 0, os);
  p.advance(3);
  EXPECT_EQ(p.line().find("ETA"), std::string::npos);
  EXPECT_NE(p.line().find("elapsed"), std::string::npos);
}

TEST(Progress, DisabledPrintsNothing) {
  std::ostringstream os;
  ProgressOptions o;
  o.enabled = false;
  Progress p("quiet", 10, os, o);
  p.advance(10);
  p.finish();
  EXPECT_TRUE(os.str().empty());
}

}  // namespace
}  // namespace bevkd
