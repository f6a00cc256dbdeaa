#include <gtest/gtest.h>

#include "base/fs.h"
#include "schemas/embedded.h"
#include "storage/schema.h"
#include "storage/shard_layout.h"
#include "tests/storage/test_util.h"

namespace bevkd::storage {
namespace {

TEST(Schema, EmbeddedCopyIsTheSourceFile) {
  EXPECT_EQ(schemas::shard_v1_json(), read_file(std::string(BEVKD_SOURCE_DIR) + "/schemas/shard_v1.json"));
}

TEST(Schema, CoversEveryFieldOfTheDesignTable) {
  const Schema& s = Schema::current();
  EXPECT_EQ(s.name(), "bevkd.shard");
  EXPECT_EQ(s.version().major, 1);
  for (const char* name :
       {"sample_token", "scene_token", "timestamp", "ego2global", "teacher/features/{tap}",
        "teacher/feature_scales/{tap}", "teacher/heatmap", "teacher/boxes", "teacher/scores", "teacher/labels",
        "teacher/quality", "fg_mask", "gt/boxes", "gt/labels", "gt/attributes", "gt/num_lidar_pts",
        "gt/num_radar_pts", "gt/velocity_valid", "cams/image_path", "cams/intrinsics", "cams/cam2ego", "depth/uvd",
        "depth/box_id", "view/bda", "fd3d/boxes", "fd3d/sampling_points"})
    EXPECT_NO_THROW(s.dataset(name)) << name;
  const DatasetSpec& f = s.dataset("teacher/features/{tap}");
  EXPECT_EQ(f.known_taps, (std::vector<std::string>{"neck", "head_shared"}));
  EXPECT_TRUE(f.accepts_dtype(DType::kInt8));
  std::string tap;
  EXPECT_EQ(s.find_dataset("teacher/features/neck", &tap), &f);
  EXPECT_EQ(tap, "neck");
  EXPECT_EQ(s.find_dataset("teacher/features/Bad-Name"), nullptr);
  EXPECT_EQ(s.find_dataset("teacher/features/2neck"), nullptr);
  EXPECT_EQ(s.find_dataset("teacher/features/" + std::string(49, 'a')), nullptr);
  EXPECT_EQ(s.find_dataset("teacher/features/" + std::string(48, 'a')), &f);
  EXPECT_EQ(s.find_dataset("teacher/features/bev_2x"), &f);
  EXPECT_EQ(s.group("depth").per, (std::vector<std::string>{"N", "CAM"}));
  EXPECT_FALSE(s.group("fd3d").required);
  EXPECT_EQ(s.constant("K"), 10);
  EXPECT_EQ(s.constant("CAM"), 6);
}

TEST(Schema, VersionPolicy) {
  const Schema& s = Schema::current();
  EXPECT_NO_THROW(s.check_readable(SchemaVersion{1, 0}, "x"));
  EXPECT_NO_THROW(s.check_readable(SchemaVersion{1, 7}, "x"));
  EXPECT_ERROR_WITH(s.check_readable(SchemaVersion{2, 0}, "shard a.h5"), "shard a.h5", "schema version 2.0",
                    "reads major version 1 only", "use a newer bevkd");
  EXPECT_ERROR_WITH(SchemaVersion::parse("1", "shard a.h5"), "shard a.h5", "\"1\"", "<major>.<minor>");
}

TEST(Schema, BadSchemaTextIsReportedWithItsKey) {
  EXPECT_ERROR_WITH(Schema::parse("{", "x.json"), "x.json", "not valid JSON");
  std::string text(schemas::shard_v1_json());
  const std::string from = "\"dtype\": \"int64\"";
  text.replace(text.find(from), from.size(), "\"dtype\": \"int65\"");
  EXPECT_ERROR_WITH(Schema::parse(text, "x.json"), "x.json", "dataset timestamp", "unknown dtype \"int65\"");
}

TEST(Layout, ResolvesSymbolsFromTheMeta) {
  const ShardMeta meta = testing::make_meta(testing::small_spec(SchemaVersion{1, 0}));  // with the fd3d group
  const ShardLayout L = ShardLayout::make(meta, Schema::current(), SchemaVersion{1, 0});
  const FieldLayout& neck = L.field("teacher/features/neck", "t");
  EXPECT_EQ(neck.item_shape, (std::vector<std::int64_t>{2, 8, 16, 16}));
  EXPECT_EQ(neck.chunk_shape(), (std::vector<std::int64_t>{1, 1, 8, 16, 16}));
  EXPECT_EQ(L.field("teacher/features/head_shared", "t").dtype, DType::kInt8);
  EXPECT_EQ(L.field("teacher/feature_scales/head_shared", "t").item_shape, (std::vector<std::int64_t>{2, 4}));
  EXPECT_LT(L.find("teacher/feature_scales/neck"), 0);  // float16 taps have no scales
  EXPECT_EQ(L.field("fd3d/sampling_points", "t").item_shape, (std::vector<std::int64_t>{4, 2}));
  EXPECT_EQ(L.field("cams/image_path", "t").itemsize, 256u);
  EXPECT_EQ(L.select({"gt/*"}, "t").size(), 7u);
  EXPECT_ERROR_WITH(L.select({"gt/nothing"}, "shard s.h5"), "shard s.h5", "\"gt/nothing\" matches no field");
  int depth_group = -1;
  for (std::size_t g = 0; g < L.groups().size(); ++g)
    if (L.groups()[g].name == "depth") depth_group = static_cast<int>(g);
  ASSERT_GE(depth_group, 0);
  EXPECT_EQ(L.groups()[depth_group].segments_per_sample, 6);
}

TEST(Layout, MetaValidationNamesTheProblem) {
  ShardMeta meta = testing::make_meta(testing::small_spec());
  meta.taps.clear();
  EXPECT_ERROR_WITH(ShardLayout::make(meta), "0 teacher taps", "at least 1");
  meta = testing::make_meta(testing::small_spec());
  meta.teacher = nlohmann::json::object();
  EXPECT_ERROR_WITH(ShardLayout::make(meta), "attribute teacher lacks the key \"name\"");
  meta = testing::make_meta(testing::small_spec());
  meta.grid.H = 17;
  EXPECT_ERROR_WITH(ShardLayout::make(meta), "grid shape is 17x16", "give 16x16");
  meta = testing::make_meta(testing::small_spec());
  meta.taps[0].name = "Neck!";
  EXPECT_ERROR_WITH(ShardLayout::make(meta), "tap name \"Neck!\" is not allowed", "first character a-z");
}

}  // namespace
}  // namespace bevkd::storage
