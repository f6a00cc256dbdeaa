#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "base/fs.h"
#include "storage/manifest.h"
#include "storage/shard_reader.h"
#include "tests/storage/test_util.h"

namespace bevkd::storage {
namespace {

using nlohmann::json;
using testing::TempDir;

TEST(Manifest, SaveLoadRoundTripWithRelativePaths) {
  TempDir dir;
  const testing::FixtureSpec spec = testing::small_spec();
  Manifest m(testing::make_meta(spec));
  m.add(testing::write_fixture_shard(dir / "train/shard-00000.h5", spec, 3), dir.path());
  testing::FixtureSpec val = spec;
  val.split = "val";
  m.add(testing::write_fixture_shard(dir / "val/shard-00000.h5", val, 2), dir.path());
  const std::string path = dir / Manifest::kFileName;
  m.save(path);

  const Manifest back = Manifest::load(path);
  EXPECT_EQ(back.dir(), dir.path());
  ASSERT_EQ(back.shards().size(), 2u);
  EXPECT_EQ(back.shards()[0].path, "train/shard-00000.h5");
  EXPECT_EQ(back.shards()[1].split, "val");
  EXPECT_EQ(back.num_samples(), 5);
  EXPECT_EQ(back.num_samples("train"), 3);
  EXPECT_EQ(back.splits(), (std::vector<std::string>{"train", "val"}));
  EXPECT_TRUE(back.grid().same_as(spec.grid));
  EXPECT_EQ(back.num_views(), 2);
  EXPECT_EQ(back.taps().size(), 2u);
  EXPECT_EQ(back.identity(), m.identity());
  EXPECT_EQ(back.to_json(), m.to_json());
  const json j = json::parse(read_file(path));
  EXPECT_EQ(j.at("schema_version"), Schema::current().version().str());
  EXPECT_EQ(j.at("teacher").at("name"), "fixture-centerpoint-pillar");
  EXPECT_EQ(j.at("config").at("gamma"), 0.5);
  EXPECT_EQ(j.at("splits").at("val"), 2);
  EXPECT_EQ(j.at("shards")[0].at("xxh64"), hex64(xxh64_file(dir / "train/shard-00000.h5")));
  // The manifest agrees with its shards.
  for (const auto& e : back.shards()) {
    const ShardReader r(back.shard_path(e));
    EXPECT_NO_THROW(back.check_shard(r.header(), e, "t"));
  }
}

TEST(Manifest, CheckShardNamesTheDifference) {
  TempDir dir;
  testing::FixtureSpec spec = testing::small_spec();
  const ShardInfo info = testing::write_fixture_shard(dir / "s.h5", spec, 2);
  spec.grid = BevGrid::make({-12.8, -12.8, -5.0, 12.8, 12.8, 3.0}, 0.8, 0.8);
  Manifest m(testing::make_meta(spec));
  m.add(info, dir.path());
  const ShardReader r(dir / "s.h5");
  EXPECT_ERROR_WITH(m.check_shard(r.header(), m.shards()[0], "shard s.h5"), "shard s.h5", "differs from the manifest at bev_grid.cell_size[0] (manifest 0.8, shard 1.6)");
}

TEST(Manifest, MergeJoinsWorkersAndRefusesConflicts) {
  const testing::FixtureSpec spec = testing::small_spec();
  const ShardMeta meta = testing::make_meta(spec);
  Manifest a(meta), b(meta);
  a.add(ManifestShard{"train/shard-00000.h5", "train", 10, 100, 1});
  a.add(ManifestShard{"train/shard-00002.h5", "train", 10, 100, 3});
  b.add(ManifestShard{"train/shard-00001.h5", "train", 7, 70, 2});
  const Manifest m = Manifest::merge({{worker_manifest_name(0, 2), a}, {worker_manifest_name(1, 2), b}});
  EXPECT_EQ(m.shards().size(), 3u);
  EXPECT_EQ(m.num_samples("train"), 27);
  EXPECT_EQ(worker_manifest_name(1, 2), "manifest.worker-001-of-002.json");

  Manifest dup(meta);
  dup.add(ManifestShard{"train/shard-00002.h5", "train", 10, 100, 3});
  EXPECT_ERROR_WITH(Manifest::merge({{"w0.json", a}, {"w1.json", dup}}), "shard train/shard-00002.h5",
                    "listed by both w0.json and w1.json");

  ShardMeta other = meta;
  other.config["gamma"] = 0.7;
  EXPECT_ERROR_WITH(Manifest::merge({{"w0.json", a}, {"w1.json", Manifest(other)}}), "manifest merge: w0.json and w1.json differ at config.gamma (w0.json 0.5, w1.json 0.7)");
  other = meta;
  other.teacher["name"] = "another-teacher";
  EXPECT_ERROR_WITH(Manifest::merge({{"w0.json", a}, {"w1.json", Manifest(other)}}), "differ at teacher");
  other = meta;
  other.grid = BevGrid::make({-12.8, -12.8, -5.0, 12.8, 12.8, 3.0}, 0.8, 0.8);
  EXPECT_ERROR_WITH(Manifest::merge({{"w0.json", a}, {"w1.json", Manifest(other)}}), "differ at bev_grid");
  EXPECT_ERROR_WITH(a.add(ManifestShard{"train/shard-00000.h5", "train", 1, 1, 1}), "already listed");
  EXPECT_ERROR_WITH(a.add(ManifestShard{"../x.h5", "train", 1, 1, 1}), "must be relative");
}

TEST(Manifest, BadFilesAreReportedWithTheEntry) {
  TempDir dir;
  const std::string path = dir / "manifest.json";
  std::ofstream(path) << "{ not json";
  EXPECT_ERROR_WITH(Manifest::load(path), path, "not valid JSON");
  Manifest m(testing::make_meta(testing::small_spec()));
  m.add(ManifestShard{"train/a.h5", "train", 3, 30, 7});
  json j = m.to_json();
  j["shards"][0]["xxh64"] = "xyz";
  std::ofstream(path, std::ios::trunc) << j.dump();
  EXPECT_ERROR_WITH(Manifest::load(path), path, "shards[0].xxh64", "16 lower-case hex digits");
  j = m.to_json();
  j["shards"][0].erase("num_samples");
  std::ofstream(path, std::ios::trunc) << j.dump();
  EXPECT_ERROR_WITH(Manifest::load(path), "shards[0]", "expected {path, split, num_samples, bytes, xxh64}");
  j = m.to_json();
  j["schema_version"] = "2.1";
  std::ofstream(path, std::ios::trunc) << j.dump();
  EXPECT_ERROR_WITH(Manifest::load(path), path, "schema version 2.1", "major version 1 only");
  j = m.to_json();
  j.erase("teacher");
  std::ofstream(path, std::ios::trunc) << j.dump();
  EXPECT_ERROR_WITH(Manifest::load(path), path, "missing \"teacher\"");
}

TEST(Manifest, SaveReplacesAtomically) {
  TempDir dir;
  const std::string path = dir / "manifest.json";
  Manifest m(testing::make_meta(testing::small_spec()));
  m.save(path);
  m.add(ManifestShard{"train/a.h5", "train", 3, 30, 7});
  m.save(path);
  EXPECT_EQ(Manifest::load(path).shards().size(), 1u);
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().filename(), "manifest.json") << "leftover temporary file " << e.path();
}

}  // namespace
}  // namespace bevkd::storage
