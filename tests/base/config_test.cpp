// base/config.h + config_cli.h: one field list per struct serves JSON output, strict JSON input
// (unknown keys refused by name, types checked), the first difference of two configurations,
// and the command line (--config FILE first, flags override it).
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

#include "base/bev_grid.h"
#include "base/config.h"
#include "base/config_cli.h"
#include "base/fs.h"
#include "tests/support/expect_error.h"
#include "tests/support/temp_dir.h"

namespace bevkd {
namespace {

struct Inner {
  std::array<double, 2> range{-1, 1};
  bool flag = false;
  template <class V>
  void fields(V& v) {
    v("range", range, "--range", "a range");
    v("flag", flag, "--flag", "a flag");
  }
};

struct Outer {
  std::string name = "x";
  int64_t count = 3;
  uint64_t seed = 7;
  std::vector<std::string> splits;
  Inner inner;
  Inner quiet_inner;  // no flags
  BevGrid grid = BevGrid::make({-4, -4, -1, 4, 4, 1}, 1.0);
  double lr = 0.5;
  template <class V>
  void fields(V& v) {
    v("name", name, "--name", "a name");
    v("count", count, "--count", "a count");
    v.group("opt", [&] {
      v("seed", seed, "--seed", "a seed");
      v("lr", lr, "--lr", "a rate");
    });
    v("splits", splits, "--split", "splits");
    v.nested("inner", inner, "in-");
    v.nested("quiet_inner", quiet_inner);
    v("grid", grid);
  }
};

TEST(Config, WritesEveryFieldAndReadsItBackUnchanged) {
  Outer a;
  a.name = "run";
  a.count = 11;
  a.splits = {"mini_train", "mini_val"};
  a.inner.range = {-2.5, 3};
  a.quiet_inner.flag = true;
  a.grid = BevGrid::make({-8, -8, -2, 8, 8, 2}, 0.5);
  const auto j = config::to_json(a);
  EXPECT_EQ(j.at("opt").at("seed"), 7);
  EXPECT_EQ(j.at("inner").at("range")[0], -2.5);
  EXPECT_EQ(j.at("grid").at("shape")[0], 32);
  Outer b;
  config::from_json(j, b, "saved.json");
  EXPECT_EQ(config::to_json(b), j);
  EXPECT_EQ(config::first_difference(config::to_json(b), j), "");
}

TEST(Config, AbsentKeysKeepDefaultsAndUnknownKeysAreRefusedByName) {
  Outer o;
  config::from_json(nlohmann::json{{"count", 5}}, o, "c.json");
  EXPECT_EQ(o.count, 5);
  EXPECT_EQ(o.name, "x");
  EXPECT_ERROR_WITH(config::from_json(nlohmann::json{{"cuont", 5}}, o, "c.json"), "c.json: unknown field cuont");
  EXPECT_ERROR_WITH(config::from_json(nlohmann::json{{"opt", {{"sede", 1}}}}, o, "c.json"), "c.json: unknown field opt.sede");
  EXPECT_ERROR_WITH(config::from_json(nlohmann::json{{"inner", {{"range", {1, "a"}}}}}, o, "c.json"),
                    "c.json: field inner.range[1]: expected a number, found \"a\"");
  EXPECT_ERROR_WITH(config::from_json(nlohmann::json{{"count", 2.5}}, o, "c.json"), "field count: expected an integer, found 2.5");
  EXPECT_ERROR_WITH(config::from_json(nlohmann::json{{"opt", {{"seed", -1}}}}, o, "c.json"), "field opt.seed: expected a non-negative integer");
  EXPECT_ERROR_WITH(config::from_json(nlohmann::json{{"grid", {{"range", {0, 0, 0, 1, 1, 1}}, {"cell_size", {0.3, 0.3}}}}}, o, "c.json"),
                    "c.json: field grid: the extent 1 m on axis x is not a whole number of 0.3 m cells");
  EXPECT_ERROR_WITH(config::parse("{", "broken.json"), "broken.json: invalid JSON");
}

TEST(Config, FirstDifferenceNamesTheDottedPathAndBothValues) {
  Outer a, b;
  b.inner.range[1] = 2;
  EXPECT_EQ(config::first_difference(config::to_json(a), config::to_json(b)), "inner.range[1] (stored 1.0, given 2.0)");
  b = a;
  b.splits = {"x"};
  EXPECT_EQ(config::first_difference(config::to_json(a), config::to_json(b), "ckpt", "run"), "splits (ckpt [], run [\"x\"])");
  nlohmann::json c = config::to_json(a);
  c.erase("count");
  EXPECT_EQ(config::first_difference(config::to_json(a), c), "count (stored 3, given: absent)");
}

std::vector<char*> argv_of(std::vector<std::string>& args) {
  std::vector<char*> v;
  for (auto& a : args) v.push_back(a.data());
  return v;
}

TEST(ConfigCli, ConfigFileFirstThenFlagsOverride) {
  testing::TempDir dir;
  Outer saved;
  saved.count = 42;
  saved.name = "from-file";
  saved.inner.flag = true;
  write_file_atomic(dir / "cfg.json", config::to_json(saved).dump());
  std::vector<std::string> args{"prog", "run", "--config", dir / "cfg.json", "--name", "from-flag", "--in-range", "5", "6",
                                "--split", "a,b"};
  auto argv = argv_of(args);
  CLI::App app{"test"};
  Outer o;
  auto* sub = app.add_subcommand("run", "");
  config::bind(sub, o);
  config::preload(sub, o, static_cast<int>(argv.size()), argv.data());
  app.parse(static_cast<int>(argv.size()), argv.data());
  EXPECT_EQ(o.count, 42);           // from the file
  EXPECT_EQ(o.name, "from-flag");   // the flag wins
  EXPECT_TRUE(o.inner.flag);        // from the file
  EXPECT_EQ(o.inner.range[0], 5);   // prefixed flag of a nested struct
  EXPECT_EQ(o.splits, (std::vector<std::string>{"a", "b"}));
}

TEST(ConfigCli, UnknownKeyInTheFileIsRefused) {
  testing::TempDir dir;
  write_file_atomic(dir / "bad.json", R"({"name": "a", "typo": 1})");
  std::vector<std::string> args{"prog", "--config", dir / "bad.json"};
  auto argv = argv_of(args);
  CLI::App app{"test"};
  Outer o;
  config::bind(&app, o);
  EXPECT_ERROR_WITH(config::preload(&app, o, static_cast<int>(argv.size()), argv.data()), "bad.json: unknown field typo");
  std::vector<std::string> missing{"prog", "--config=" + (dir / "none.json")};
  auto argv2 = argv_of(missing);
  EXPECT_ERROR_WITH(config::preload(&app, o, static_cast<int>(argv2.size()), argv2.data()),
                    "configuration file " + (dir / "none.json") + " does not exist");
}

}  // namespace
}  // namespace bevkd
