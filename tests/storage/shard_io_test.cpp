// Writer and reader: round trips of every field kind, partial reads, validation of appended
// samples.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "storage/half.h"
#include "storage/shard_reader.h"
#include "storage/shard_writer.h"
#include "tests/storage/test_util.h"

namespace bevkd::storage {
namespace {

using testing::FixtureSpec;
using testing::TempDir;

void expect_same_sample(const Sample& got, const Sample& want, std::int64_t i) {
  ASSERT_EQ(got.size(), want.size()) << "sample " << i;
  for (const auto& [name, a] : want.fields()) {
    ASSERT_TRUE(got.has(name)) << name;
    const Array& b = got.get(name);
    EXPECT_TRUE(b.same_as(a)) << "sample " << i << " field " << name << ": got " << b.describe() << " segments "
                              << shape_str(b.segments) << ", wrote " << a.describe() << " segments "
                              << shape_str(a.segments);
  }
}

TEST(ShardIO, EveryFieldKindRoundTripsExactly) {
  TempDir dir;
  const FixtureSpec spec = testing::small_spec();  // V = 2, float16 + int8 taps, class_probs
  const std::int64_t n = 7;                        // includes empty GT/teacher rows and an empty camera
  const std::string path = dir / "train/shard-00000.h5";
  const ShardInfo info = testing::write_fixture_shard(path, spec, n);
  EXPECT_EQ(info.num_samples, n);
  EXPECT_EQ(info.path, path);
  EXPECT_FALSE(std::filesystem::exists(partial_path(path)));
  EXPECT_EQ(info.bytes, std::filesystem::file_size(path));
  EXPECT_EQ(info.xxh64, xxh64_file(path));

  const ShardReader r(path);
  EXPECT_EQ(r.num_samples(), n);
  EXPECT_EQ(r.header().meta.num_views, 2);
  // Taps come back in name order.
  EXPECT_EQ(r.header().meta.taps, (std::vector<TapSpec>{spec.taps[1], spec.taps[0]}));
  EXPECT_EQ(r.header().version, Schema::current().version());
  EXPECT_GE(r.layout().find("teacher/class_probs"), 0);
  EXPECT_TRUE(r.attributes_checksummed());
  EXPECT_TRUE(r.header().meta.grid.same_as(spec.grid));
  EXPECT_EQ(r.header().meta.teacher, testing::make_meta(spec).teacher);
  EXPECT_EQ(r.header().meta.config, testing::make_meta(spec).config);
  EXPECT_EQ(r.header().meta.producer.at("program"), "storage-fixture");
  EXPECT_TRUE(r.ignored_datasets().empty());
  bool saw_empty_gt = false, saw_empty_camera = false;
  for (std::int64_t i = 0; i < n; ++i) {
    const Sample want = testing::make_sample(spec, i);
    ReadOptions verify;
    verify.verify = true;
    expect_same_sample(r.read(i, {}, verify), want, i);
    EXPECT_TRUE(r.verify_sample(i).empty());
    saw_empty_gt |= want.get("gt/boxes").dim(0) == 0;
    saw_empty_camera |= want.get("depth/uvd").segments[2] == 0;
  }
  EXPECT_TRUE(saw_empty_gt);
  EXPECT_TRUE(saw_empty_camera);
}

TEST(ShardIO, ZeroSampleShardIsValid) {
  TempDir dir;
  const std::string path = dir / "empty.h5";
  const ShardInfo info = testing::write_fixture_shard(path, testing::small_spec(), 0);
  EXPECT_EQ(info.num_samples, 0);
  const ShardReader r(path);
  EXPECT_EQ(r.num_samples(), 0);
  EXPECT_EQ(r.dataset_stats("teacher/features/neck").shape, (std::vector<std::int64_t>{0, 2, 8, 16, 16}));
  EXPECT_EQ(r.dataset_stats("gt/boxes").shape, (std::vector<std::int64_t>{0, 9}));
  EXPECT_ERROR_WITH(r.read(0), "sample 0 out of range (the shard has 0 samples)");
}

TEST(ShardIO, SelectedFieldsViewsAndCallerMemory) {
  TempDir dir;
  const FixtureSpec spec = testing::small_spec();
  const std::string path = dir / "s.h5";
  testing::write_fixture_shard(path, spec, 4);
  const ShardReader r(path);
  const Sample want = testing::make_sample(spec, 2);

  const Sample gt = r.read(2, {"gt/*"});
  EXPECT_EQ(gt.size(), 7u);
  EXPECT_TRUE(gt.get("gt/boxes").same_as(want.get("gt/boxes")));
  EXPECT_FALSE(gt.has("teacher/heatmap"));

  // One view of per-view fields: the slice of the full sample.
  ReadOptions v1;
  v1.view = 1;
  v1.verify = true;
  const Sample one = r.read(2, {"teacher/features/neck", "teacher/boxes", "view/bda", "timestamp"}, v1);
  const Array& full = want.get("teacher/features/neck");
  const Array& got = one.get("teacher/features/neck");
  EXPECT_EQ(got.shape(), (std::vector<std::int64_t>{1, 8, 16, 16}));
  EXPECT_EQ(std::memcmp(got.raw(), full.bytes() + full.nbytes() / 2, got.nbytes()), 0);
  const Array& boxes = want.get("teacher/boxes");
  EXPECT_EQ(one.get("teacher/boxes").dim(0), boxes.segments[1]);
  EXPECT_EQ(one.get("teacher/boxes").segments, (std::vector<std::int64_t>{boxes.segments[1]}));
  EXPECT_EQ(std::memcmp(one.get("teacher/boxes").raw(), boxes.data<float>() + 9 * boxes.segments[0],
                        one.get("teacher/boxes").nbytes()),
            0);
  EXPECT_EQ(std::memcmp(one.get("view/bda").raw(), want.get("view/bda").data<float>() + 9, 36), 0);
  EXPECT_TRUE(one.get("timestamp").same_as(want.get("timestamp")));  // not per view: unchanged

  // Into caller memory.
  const FieldShape fs = r.field_shape(2, "depth/uvd");
  EXPECT_EQ(fs.segments, want.get("depth/uvd").segments);
  std::vector<float> buf(fs.nbytes() / 4 + 1);
  r.read_field_into(2, "depth/uvd", buf.data(), buf.size() * 4);
  EXPECT_EQ(std::memcmp(buf.data(), want.get("depth/uvd").raw(), fs.nbytes()), 0);
  EXPECT_ERROR_WITH(r.read_field_into(2, "depth/uvd", buf.data(), 4), "dataset depth/uvd, sample 2",
                    "destination holds 4 bytes");
  EXPECT_ERROR_WITH(r.read(2, {}, ReadOptions{false, 2}), "view 2 out of range (V = 2)");
}

TEST(ShardIO, RealisticTeacherTensorsRoundTripAtEveryCodecSetting) {
  FixtureSpec spec;
  spec.grid = BevGrid::make({-25.6, -25.6, -5, 25.6, 25.6, 3}, 0.8, 0.8);  // 64 x 64
  spec.taps = {{"neck", 48, DType::kFloat16}};
  spec.depth_points = 300;
  const Sample want = testing::make_sample(spec, 0);
  // A ReLU'd neck: mostly exact zeros, but not all.
  const Array& neck = want.get("teacher/features/neck");
  std::int64_t zeros = 0;
  for (std::int64_t k = 0; k < neck.numel(); ++k) zeros += neck.data<std::uint16_t>()[k] == 0;
  const double zero_share = double(zeros) / double(neck.numel());
  EXPECT_GT(zero_share, 0.6);
  EXPECT_LT(zero_share, 0.95);
  for (int level : {1, 3, 9})
    for (bool shuffle : {false, true}) {
      TempDir dir;
      WriterOptions o;
      o.codec.level = level;
      o.codec.shuffle = shuffle;
      testing::write_fixture_shard(dir / "s.h5", spec, 2, o);
      const ShardReader r(dir / "s.h5");
      EXPECT_EQ(r.header().compression.at("level"), level);
      EXPECT_EQ(r.dataset_stats("teacher/features/neck").filters, shuffle ? "shuffle+zstd(" + std::to_string(level) + ")"
                                                                           : "zstd(" + std::to_string(level) + ")");
      expect_same_sample(r.read(1), testing::make_sample(spec, 1), 1);
      const DatasetStats st = r.dataset_stats("teacher/features/neck");
      EXPECT_LT(st.stored_bytes * 2, st.raw_bytes) << "level " << level << " shuffle " << shuffle;
    }
}

TEST(ShardIO, RaggedRowsSpanManyChunks) {
  TempDir dir;
  FixtureSpec spec = testing::small_spec();
  spec.depth_points = 6000;  // 36k+ rows per sample: several 16384-row chunks of depth/uvd
  testing::write_fixture_shard(dir / "s.h5", spec, 3);
  const ShardReader r(dir / "s.h5");
  EXPECT_GT(r.dataset_stats("depth/uvd").shape[0], 3 * 16384);
  for (std::int64_t i : {2, 0, 1}) {  // out of order: exercises the per-thread chunk cache
    const Sample want = testing::make_sample(spec, i);
    ReadOptions v;
    v.verify = true;
    const Sample got = r.read(i, {"depth/*"}, v);
    EXPECT_TRUE(got.get("depth/uvd").same_as(want.get("depth/uvd")));
    EXPECT_TRUE(got.get("depth/box_id").same_as(want.get("depth/box_id")));
  }
}

TEST(ShardIO, CopiesAndShorterStringsAreAccepted) {
  TempDir dir;
  const FixtureSpec spec = testing::small_spec();
  ShardWriter w(dir / "s.h5", testing::make_meta(spec));
  Sample s = testing::make_sample(spec, 0);
  // Image paths given with a tight length are padded to the schema's 256 bytes.
  std::vector<std::string> paths;
  for (int c = 0; c < 6; ++c) paths.push_back(s.get("cams/image_path").string_at(c));
  s.set("cams/image_path", Array::strings({6}, paths, 120));
  w.append(s);  // const& overload: copies
  EXPECT_EQ(s.get("cams/image_path").itemsize(), 120u);
  w.close();
  const ShardReader r(dir / "s.h5");
  const Array got = r.read_field(0, "cams/image_path");
  EXPECT_EQ(got.itemsize(), 256u);
  for (int c = 0; c < 6; ++c) EXPECT_EQ(got.string_at(c), paths[c]);
}

class WriterValidation : public ::testing::Test {
 protected:
  TempDir dir;
  FixtureSpec spec = testing::small_spec();
  std::string path = dir / "bad.h5";

  // Appends sample 0 (good) and then `bad` as sample 1; returns the writer for more checks.
  std::unique_ptr<ShardWriter> writer() {
    auto w = std::make_unique<ShardWriter>(path, testing::make_meta(spec));
    w->append(testing::make_sample(spec, 0));
    return w;
  }
};

TEST_F(WriterValidation, UnknownAndMissingFields) {
  auto w = writer();
  Sample s = testing::make_sample(spec, 1);
  s.set("teacher/bev", Array(DType::kFloat32, {1}));
  EXPECT_ERROR_WITH(w->append(std::move(s)), "shard " + path, "sample 1", "unknown field \"teacher/bev\"",
                    "teacher/features/neck");
  // After an error the writer refuses more samples and leaves no file behind.
  EXPECT_ERROR_WITH(w->append(testing::make_sample(spec, 1)), "after an earlier error");
  w.reset();
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(partial_path(path)));

  w = writer();
  s = testing::make_sample(spec, 1);
  s.erase("gt/velocity_valid");
  EXPECT_ERROR_WITH(w->append(std::move(s)), "sample 1", "field gt/velocity_valid is missing", "uint8");
}

TEST_F(WriterValidation, WrongDtypeAndShapeNameTheSymbols) {
  auto w = writer();
  Sample s = testing::make_sample(spec, 1);
  s.set("teacher/heatmap", Array(DType::kFloat32, {2, 10, 16, 16}));
  EXPECT_ERROR_WITH(w->append(std::move(s)), "sample 1", "field teacher/heatmap has dtype float32, expected float16");

  w = writer();
  s = testing::make_sample(spec, 1);
  s.set("teacher/features/neck", Array(DType::kFloat16, {2, 7, 16, 16}));
  EXPECT_ERROR_WITH(w->append(std::move(s)), "sample 1", "teacher/features/neck has shape [2, 7, 16, 16]",
                    "expected [V=2, C_tap=8, H=16, W=16]");

  w = writer();
  s = testing::make_sample(spec, 1);
  s.set("gt/boxes", Array(DType::kFloat32, {3, 7}));
  EXPECT_ERROR_WITH(w->append(std::move(s)), "field gt/boxes has shape [3, 7]", "expected [G=rows, 9]");
}

TEST_F(WriterValidation, RaggedSegmentsMustAgree) {
  auto w = writer();
  Sample s = testing::make_sample(spec, 1);
  s.get("depth/uvd").segments = {1, 2, 3};
  EXPECT_ERROR_WITH(w->append(std::move(s)), "field depth/uvd has 3 ragged segments", "has 6 per sample",
                    "one per camera");

  w = writer();
  s = testing::make_sample(spec, 1);
  Array& scores = s.get("teacher/scores");
  ASSERT_GT(scores.dim(0), 1);
  scores.segments = {scores.dim(0), 0};
  EXPECT_ERROR_WITH(w->append(std::move(s)), "teacher/", "same ragged group teacher/det");
}

TEST_F(WriterValidation, TokensNaNsAndLongStrings) {
  auto w = writer();
  Sample s = testing::make_sample(spec, 1);
  s.set("sample_token", Array::strings({}, {"abc"}, 32));
  EXPECT_ERROR_WITH(w->append(std::move(s)), "sample_token[0] \"abc\" has 3 characters, expected exactly 32");

  w = writer();
  s = testing::make_sample(spec, 1);
  s.get("teacher/heatmap").data<std::uint16_t>()[5] = float_to_half(NAN);
  EXPECT_ERROR_WITH({ w->append(std::move(s)); w->close(); }, "sample 1", "teacher/heatmap has 1 NaN/inf value",
                    "first at flat index 5");

  w = writer();
  s = testing::make_sample(spec, 1);
  s.set("cams/image_path", Array::strings({6}, std::vector<std::string>(6, std::string(300, 'a')), 300));
  EXPECT_ERROR_WITH(w->append(std::move(s)), "cams/image_path[0]", "300 bytes", "at most 256");
}

TEST(ShardWriter, RerunReplacesAStalePartialFile) {
  TempDir dir;
  const std::string path = dir / "train/shard-00001.h5";
  std::filesystem::create_directories(dir / "train");
  {
    std::FILE* f = std::fopen(partial_path(path).c_str(), "wb");
    std::fputs("left behind by a killed writer", f);
    std::fclose(f);
  }
  testing::write_fixture_shard(path, testing::small_spec(), 2);
  EXPECT_FALSE(std::filesystem::exists(partial_path(path)));
  EXPECT_EQ(ShardReader(path).num_samples(), 2);
}

TEST(ShardWriter, AbandonLeavesNothing) {
  TempDir dir;
  const std::string path = dir / "s.h5";
  {
    ShardWriter w(path, testing::make_meta(testing::small_spec()));
    w.append(testing::make_sample(testing::small_spec(), 0));
    EXPECT_TRUE(std::filesystem::exists(partial_path(path)));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(partial_path(path)));
}

}  // namespace
}  // namespace bevkd::storage
