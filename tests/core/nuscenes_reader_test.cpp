// The nuScenes reader on a dataset laid out exactly like real v1.0-mini (tests/core/nusc_fixtures.h):
// tables and joins, splits, the devkit's velocity rule, key-frame loading (multi-sweep LiDAR,
// cameras, GT in the ego frame) and every error path with its message.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "base/error.h"
#include "base/fs.h"
#include "core/nuscenes/key_frame.h"
#include "core/nuscenes/splits.h"
#include "core/nuscenes/tables.h"
#include "tests/core/nusc_fixtures.h"

namespace bevkd::core::nusc {
namespace {

using testing::error_of;

using testing::fresh_dir;
using testing::Json;
using testing::MiniFacts;
using testing::read_table;
using testing::write_mini_like_dataset;
using testing::write_table;


class MiniLike : public ::testing::Test {
 protected:
  void SetUp() override { root_ = write_mini_like_dataset(fresh_dir(::testing::UnitTest::GetInstance()->current_test_info()->name())); }
  void TearDown() override { std::filesystem::remove_all(root_); }
  NuScenes load() const { return NuScenes::load(root_, testing::kVersion); }
  std::string root_;
};

// ---- tables and joins ------------------------------------------------------------------------------

TEST_F(MiniLike, LoadsAllTablesWithTheDevkitJoins) {
  const NuScenes db = load();
  EXPECT_EQ(db.category().size(), 23u);
  EXPECT_EQ(db.sensor().size(), 12u);
  EXPECT_EQ(db.sample().size(), 2u);
  EXPECT_EQ(db.sample_data().size(), 26u);
  EXPECT_EQ(db.ego_pose().size(), 26u);
  EXPECT_EQ(db.sample_annotation().size(), 5u);
  EXPECT_EQ(db.channels().size(), 12u);

  const std::uint32_t s0 = db.at(Table::kSample, MiniFacts::kSample0);
  EXPECT_EQ(db.scene_name(s0), "scene-0061");
  EXPECT_EQ(db.sample()[s0].timestamp, MiniFacts::kSample0Time);
  // sample.data: key frames only.
  const std::uint32_t cam = db.key_frame(s0, "CAM_FRONT");
  ASSERT_NE(cam, kNone);
  EXPECT_EQ(db.token(Table::kSampleData, cam), MiniFacts::kCamFront0);
  EXPECT_EQ(db.filename(cam), std::string("samples/CAM_FRONT/") + MiniFacts::kLogfile + "__CAM_FRONT__1532402927612460.jpg");
  EXPECT_EQ(db.channel(cam), "CAM_FRONT");
  EXPECT_EQ(db.sensor_modality(cam), "camera");
  EXPECT_EQ(db.fileformat(cam), "jpg");
  EXPECT_EQ(db.sample_data()[cam].width, 1600);
  EXPECT_EQ(db.token(Table::kSampleData, db.key_frame(s0, "LIDAR_TOP")), MiniFacts::kLidar0);
  EXPECT_EQ(db.sensor_modality(db.key_frame(s0, "RADAR_FRONT")), "radar");
  EXPECT_EQ(db.key_frame(s0, "NO_SUCH_CHANNEL"), kNone);
  // The CAM_FRONT sweep belongs to the following sample and is not in sample.data.
  const std::uint32_t sweep = db.sample_data()[cam].next;
  EXPECT_EQ(db.token(Table::kSampleData, sweep), "68e8e98cf7b0487baa139df808641db7");
  EXPECT_FALSE(db.sample_data()[sweep].is_key_frame);
  EXPECT_EQ(db.sample_data()[sweep].sample, db.at(Table::kSample, MiniFacts::kSample1));
  EXPECT_NE(db.key_frame(db.sample_data()[sweep].sample, "CAM_FRONT"), sweep);
  // sample.anns in table order, category_name via instance, attributes.
  const auto anns = db.sample_anns(s0);
  ASSERT_EQ(anns.size(), 2u);
  EXPECT_EQ(db.token(Table::kSampleAnnotation, anns[0]), MiniFacts::kPedestrianAnn);
  EXPECT_EQ(db.token(Table::kSampleAnnotation, anns[1]), MiniFacts::kCarAnn);
  EXPECT_EQ(db.category_name(anns[0]), "human.pedestrian.adult");
  ASSERT_EQ(db.attributes_of(anns[0]).size(), 1u);
  EXPECT_EQ(db.attribute()[db.attributes_of(anns[0])[0]].name, "pedestrian.standing");
  EXPECT_EQ(db.visibility()[db.sample_annotation()[anns[0]].visibility].level, "v0-40");
  EXPECT_EQ(db.sample_annotation()[anns[0]].num_lidar_pts, 1);
  // log -> map, scene chain.
  EXPECT_EQ(db.log()[0].map, 0u);
  EXPECT_EQ(db.scene()[0].first_sample, s0);
  EXPECT_EQ(db.sample()[s0].next, db.at(Table::kSample, MiniFacts::kSample1));
  // Ego pose of the LIDAR_TOP key frame (the eval's ego-distance reference).
  EXPECT_DOUBLE_EQ(db.lidar_key_pose(s0).translation[0], 411.3039349319818);
  EXPECT_EQ(db.ego_pose()[db.sample_data()[db.key_frame(s0, "LIDAR_TOP")].ego_pose].timestamp, MiniFacts::kSample0Time);
  EXPECT_NE(db.summary().find("sample_annotation 5"), std::string::npos);
}

TEST_F(MiniLike, SplitsSelectScenesAndCheckTheVersion) {
  const NuScenes db = load();
  EXPECT_EQ(db.split_samples("mini_train").size(), 2u);  // scene-0061 is in mini_train
  EXPECT_TRUE(db.split_samples("mini_val").empty());
  EXPECT_HAS(error_of([&] { db.split_samples("val"); }), "split val needs a nuScenes version ending in 'trainval', found v1.0-mini");
  EXPECT_HAS(error_of([&] { db.split_samples("my_split"); }), "custom split 'my_split' requested, but");
  EXPECT_HAS(error_of([&] { db.split_samples("my_split"); }), "v1.0-mini/splits.json does not exist");
  write_file_atomic(root_ + "/v1.0-mini/splits.json", R"({"my_split": ["scene-0061"], "bad": [1]})");
  EXPECT_EQ(db.split_samples("my_split").size(), 2u);
  EXPECT_HAS(error_of([&] { db.split_samples("other"); }), "custom split 'other' requested, but not found in");
  EXPECT_HAS(error_of([&] { db.split_samples("bad"); }), "must be a list of scene names");
}

TEST(Splits, PredefinedListsAreTheDevkits) {
  EXPECT_EQ(predefined_split_scenes("train").size(), 700u);
  EXPECT_EQ(predefined_split_scenes("val").size(), 150u);
  EXPECT_EQ(predefined_split_scenes("test").size(), 150u);
  EXPECT_EQ(predefined_split_scenes("train_detect").size(), 350u);
  EXPECT_EQ(predefined_split_scenes("train_track").size(), 350u);
  EXPECT_EQ(predefined_split_scenes("mini_train"),
            (std::vector<std::string>{"scene-0061", "scene-0553", "scene-0655", "scene-0757", "scene-0796",
                                      "scene-1077", "scene-1094", "scene-1100"}));
  EXPECT_EQ(predefined_split_scenes("mini_val"), (std::vector<std::string>{"scene-0103", "scene-0916"}));
  // train = sorted(set(train_detect + train_track)); train, val and test partition 1000 scenes.
  std::set<std::string> all, halves;
  for (const char* s : {"train", "val", "test"})
    for (const auto& n : predefined_split_scenes(s)) EXPECT_TRUE(all.insert(n).second) << n;
  EXPECT_EQ(all.size(), 1000u);
  for (const char* s : {"train_detect", "train_track"})
    for (const auto& n : predefined_split_scenes(s)) EXPECT_TRUE(halves.insert(n).second) << n;
  const auto& train = predefined_split_scenes("train");
  EXPECT_EQ(std::vector<std::string>(halves.begin(), halves.end()), train);
  EXPECT_EQ(train.front(), "scene-0001");
  EXPECT_EQ(train.back(), "scene-1110");
  // Facts of spec (e): scene-0553 and scene-0796 are in mini_train but belong to val.
  const auto& val = predefined_split_scenes("val");
  EXPECT_NE(std::find(val.begin(), val.end(), "scene-0553"), val.end());
  EXPECT_NE(std::find(val.begin(), val.end(), "scene-0796"), val.end());
  EXPECT_NO_THROW(check_split_version("mini_val", "v1.0-mini"));
  EXPECT_NO_THROW(check_split_version("train_detect", "v1.0-trainval"));
  EXPECT_HAS(error_of([] { check_split_version("test", "v1.0-trainval"); }), "ending in 'test'");
  EXPECT_HAS(error_of([] { predefined_split_scenes("nope"); }), "unknown predefined nuScenes split 'nope'");
}

// ---- token index and chunked, multi-threaded loading ---------------------------------------------

TEST(TokenColumn, FixedAndMixedLengthTokens) {
  TokenColumn col;
  EXPECT_EQ(col.add("1"), 0u);
  EXPECT_EQ(col.add("2"), 1u);
  EXPECT_EQ(col.add("ca9a282c9e77460f8360f564131a8af5"), 2u);  // switches to explicit offsets
  EXPECT_EQ(col.add(""), 3u);
  std::uint32_t first = kNone;
  EXPECT_EQ(col.build_index(&first), kNone);
  EXPECT_EQ(col.size(), 4u);
  EXPECT_EQ(col[0], "1");
  EXPECT_EQ(col[2], "ca9a282c9e77460f8360f564131a8af5");
  EXPECT_EQ(col[3], "");
  EXPECT_EQ(col.find("2"), 1u);
  EXPECT_EQ(col.find("ca9a282c9e77460f8360f564131a8af5"), 2u);
  EXPECT_EQ(col.find("3"), kNone);
  TokenColumn many;
  for (int i = 0; i < 5000; ++i) many.add(cat("tok", i * 7919 % 5003, "x"));
  EXPECT_EQ(many.build_index(&first), kNone);
  for (int i = 0; i < 5000; i += 97) EXPECT_EQ(many.find(cat("tok", i * 7919 % 5003, "x")), static_cast<std::uint32_t>(i));
  many.add("tok0x");
  EXPECT_EQ(many.build_index(&first), 5000u);
  EXPECT_EQ(first, 0u);
}

TEST(ChunkedLoading, SmallChunksOnManyThreadsGiveTheSameTables) {
  const std::string& root = testing::tiny_synth_dataset();
  const NuScenes a = NuScenes::load(root, testing::kVersion);
  LoadOptions opts;
  opts.threads = 3;
  opts.chunk_bytes = 3000;  // hundreds of chunks
  const NuScenes b = NuScenes::load(root, testing::kVersion, opts);
  for (int t = 0; t < kNumTables; ++t) {
    const Table tab = static_cast<Table>(t);
    ASSERT_EQ(a.tokens(tab).size(), b.tokens(tab).size()) << table_name(tab);
    for (std::uint32_t i = 0; i < a.tokens(tab).size(); ++i) ASSERT_EQ(a.token(tab, i), b.token(tab, i));
  }
  ASSERT_GT(a.sample_data().size(), 100u);
  for (std::uint32_t i = 0; i < a.sample_data().size(); ++i) {
    const SampleData &x = a.sample_data()[i], &y = b.sample_data()[i];
    ASSERT_EQ(a.filename(i), b.filename(i));
    ASSERT_EQ(a.fileformat(i), b.fileformat(i));
    ASSERT_EQ(a.channel(i), b.channel(i));
    ASSERT_TRUE(x.sample == y.sample && x.ego_pose == y.ego_pose && x.prev == y.prev && x.next == y.next &&
                x.timestamp == y.timestamp && x.is_key_frame == y.is_key_frame && x.width == y.width)
        << i;
  }
  for (std::uint32_t i = 0; i < a.sample_annotation().size(); ++i) {
    const SampleAnnotation &x = a.sample_annotation()[i], &y = b.sample_annotation()[i];
    ASSERT_TRUE(x.translation == y.translation && x.prev == y.prev && x.next == y.next && x.instance == y.instance &&
                x.num_lidar_pts == y.num_lidar_pts)
        << i;
    ASSERT_EQ(a.attributes_of(i).size(), b.attributes_of(i).size());
    for (std::size_t k = 0; k < a.attributes_of(i).size(); ++k) ASSERT_EQ(a.attributes_of(i)[k], b.attributes_of(i)[k]);
  }
  for (std::uint32_t s = 0; s < a.sample().size(); ++s) {
    ASSERT_EQ(a.sample_anns(s).size(), b.sample_anns(s).size());
    ASSERT_EQ(a.key_frame(s, "CAM_BACK"), b.key_frame(s, "CAM_BACK"));
  }
}

TEST(ChunkedLoading, ErrorInALateChunkNamesTheRecord) {
  const std::string root = fresh_dir("late_chunk_error");
  const std::string& src = testing::tiny_synth_dataset();
  std::filesystem::copy(src + "/v1.0-mini", root + "/v1.0-mini");
  Json anns = read_table(root, testing::kVersion, "sample_annotation");
  const std::size_t bad = anns.size() - 3;
  anns[bad]["num_lidar_pts"] = 1.5;
  write_table(root, testing::kVersion, "sample_annotation", anns);
  LoadOptions opts;
  opts.threads = 3;
  opts.chunk_bytes = 2000;
  EXPECT_HAS(error_of([&] { NuScenes::load(root, testing::kVersion, opts); }),
             cat("sample_annotation.json record ", bad, " (token \"", anns[bad]["token"].get<std::string>(),
                 "\"): field \"num_lidar_pts\" expected an integer, found the number 1.5"));
  std::filesystem::remove_all(root);
}

// ---- the devkit's velocity rule (spec (c)) ------------------------------------------------------------

// Replaces the samples and annotations with hand-made chains (timestamps in µs).
class Velocity : public MiniLike {
 protected:
  void SetUp() override {
    MiniLike::SetUp();
    Json samples = Json::array();
    for (std::size_t i = 0; i < ts_.size(); ++i)
      samples.push_back({{"token", sample(i)}, {"timestamp", ts_[i]}, {"prev", i ? sample(i - 1) : ""},
                         {"next", i + 1 < ts_.size() ? sample(i + 1) : ""}, {"scene_token", MiniFacts::kScene}});
    // Keep the two real samples (their sample_data refer to them).
    Json real = read_table(root_, testing::kVersion, "sample");
    for (auto& r : real) samples.push_back(r);
    write_table(root_, testing::kVersion, "sample", samples);
    Json anns = read_table(root_, testing::kVersion, "sample_annotation");
    const Json proto = anns[0];
    anns = Json::array();
    // Chains: A = a0 a1 a2 on samples 0 1 2; B = b2 b3; C = c1 c2 c3; D = d0 alone.
    add_chain(anns, proto, "a", {0, 1, 2}, {0.0, 1.0, 4.0});
    add_chain(anns, proto, "b", {2, 3}, {0.0, 5.0});
    add_chain(anns, proto, "c", {1, 2, 3}, {0.0, 2.0, 9.0});
    add_chain(anns, proto, "d", {0}, {7.0});
    write_table(root_, testing::kVersion, "sample_annotation", anns);
    Json inst = read_table(root_, testing::kVersion, "instance");
    inst[0]["first_annotation_token"] = anns[0]["token"];
    inst[0]["last_annotation_token"] = anns[0]["token"];
    write_table(root_, testing::kVersion, "instance", Json::array({inst[0]}));
  }
  // Samples at 1.0 s, 1.5 s, 3.0 s, 4.6 s (gaps 0.5, 1.5, 1.6): small timestamps whose
  // seconds are exact in binary, so the limits are hit exactly.
  std::vector<long long> ts_ = {1000000, 1500000, 3000000, 4600000};
  static std::string sample(std::size_t i) { return cat("5a3b1e0000000000000000000000000", i); }
  static std::string ann(const std::string& chain, int i) { return cat("a00000000000000000000000000000", chain, i); }
  void add_chain(Json& anns, const Json& proto, const std::string& name, std::vector<int> samples, std::vector<double> x) {
    for (std::size_t k = 0; k < samples.size(); ++k) {
      Json a = proto;
      a["token"] = ann(name, samples[k]);
      a["sample_token"] = sample(static_cast<std::size_t>(samples[k]));
      a["translation"] = Json::array({x[k], 2.0 * x[k], 0.5});
      a["prev"] = k ? ann(name, samples[k - 1]) : "";
      a["next"] = k + 1 < samples.size() ? ann(name, samples[k + 1]) : "";
      anns.push_back(a);
    }
  }
  Vec3 velocity(const NuScenes& db, const std::string& chain, int sample) {
    return db.box_velocity(db.at(Table::kSampleAnnotation, ann(chain, sample)));
  }
};

TEST_F(Velocity, HandWorkedCasesIncludingTheLimits) {
  const NuScenes db = load();
  // a0: next only, dt 0.5 s -> (1 - 0) / 0.5.
  Vec3 v = velocity(db, "a", 0);
  EXPECT_DOUBLE_EQ(v[0], 2.0);
  EXPECT_DOUBLE_EQ(v[1], 4.0);
  EXPECT_DOUBLE_EQ(v[2], 0.0);
  // a1: both neighbours, centred difference over 2.0 s (<= 3.0 s) -> (4 - 0) / 2.
  EXPECT_DOUBLE_EQ(velocity(db, "a", 1)[0], 2.0);
  // a2: prev only, dt exactly 1.5 s: allowed (the limit is dt > 1.5) -> (4 - 1) / 1.5.
  EXPECT_DOUBLE_EQ(velocity(db, "a", 2)[0], 2.0);
  // b2, b3: one neighbour 1.6 s away -> NaN.
  EXPECT_TRUE(std::isnan(velocity(db, "b", 2)[0]));
  EXPECT_TRUE(std::isnan(velocity(db, "b", 3)[1]));
  // c2: both neighbours 3.1 s apart (> 3.0 s) -> NaN; c1: next 1.5 s away -> (2 - 0) / 1.5.
  EXPECT_TRUE(std::isnan(velocity(db, "c", 2)[0]));
  EXPECT_DOUBLE_EQ(velocity(db, "c", 1)[0], 2.0 / 1.5);
  EXPECT_TRUE(std::isnan(velocity(db, "c", 3)[0]));
  // d0: no neighbour -> NaN.
  EXPECT_TRUE(std::isnan(velocity(db, "d", 0)[0]));
  // A larger max_time_diff admits the 1.6 s gap.
  EXPECT_DOUBLE_EQ(db.box_velocity(db.at(Table::kSampleAnnotation, ann("b", 2)), 2.0)[0], 5.0 / 1.6);
}

TEST_F(MiniLike, VelocityConvertsTimestampsToSecondsBeforeSubtracting) {
  // The real pedestrian of scene-0061 moves between the two real samples.
  const NuScenes db = load();
  const std::uint32_t a = db.at(Table::kSampleAnnotation, MiniFacts::kPedestrianAnn);
  const double t1 = 1e-6 * static_cast<double>(MiniFacts::kSample1Time);
  const double t0 = 1e-6 * static_cast<double>(MiniFacts::kSample0Time);
  const double devkit_dt = t1 - t0;
  const double naive_dt = 1e-6 * static_cast<double>(MiniFacts::kSample1Time - MiniFacts::kSample0Time);
  ASSERT_NE(devkit_dt, naive_dt) << "these timestamps must tell the two conversions apart";
  const double dx = 373.598 - 373.214;
  EXPECT_EQ(db.box_velocity(a)[0], dx / devkit_dt);
  EXPECT_NE(db.box_velocity(a)[0], dx / naive_dt);
}

// ---- key frames -------------------------------------------------------------------------------------------

// p in frame A -> frame B for a nuScenes (translation, rotation) record, written out by hand.
Vec3 through(const Vec3& p, const Quat& q, const Vec3& t) {
  const Vec3 r = q.rotate(p);
  return {r[0] + t[0], r[1] + t[1], r[2] + t[2]};
}
Vec3 through_inverse(const Vec3& p, const Quat& q, const Vec3& t) {
  return q.conjugate().rotate({p[0] - t[0], p[1] - t[1], p[2] - t[2]});
}

TEST_F(MiniLike, KeyFrameMovesSweepsIntoTheKeyFrameEgoFrame) {
  const NuScenes db = load();
  KeyFrameOptions opts;
  opts.nsweeps = 3;
  opts.verify_image_size = true;
  const KeyFrameLoader loader(db, opts);
  const std::uint32_t s1 = db.at(Table::kSample, MiniFacts::kSample1);
  const KeyFrame kf = *loader.load(s1);
  // Chain: key frame of sample 1, the sweep, the key frame of sample 0.
  EXPECT_EQ(kf.num_sweeps, 3);
  const std::uint32_t key1 = db.key_frame(s1, "LIDAR_TOP");
  const auto chain = lidar_sweep_chain(db, key1, 3);
  ASSERT_EQ(chain.size(), 3u);
  EXPECT_EQ(db.token(Table::kSampleData, chain[2]), MiniFacts::kLidar0);
  // Points: 2 of the key frame, 1 of the sweep (0.9, -0.9 is inside the 1 m square), 4 of
  // sample 0's key frame (0.5, 0.5 is dropped; 0.5, 3.0 is kept: the filter is a square).
  ASSERT_EQ(kf.num_points(), 7u);
  const EgoPose& key_pose = db.ego_pose()[db.sample_data()[key1].ego_pose];
  const CalibratedSensor& cs = db.calibrated_sensor()[db.sample_data()[key1].calibrated_sensor];
  // Key-frame point (0, 12, 0.5): only the calibration.
  const Vec3 e0 = through({0, 12, 0.5}, cs.rotation, cs.translation);
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(kf.points[c], e0[c], 1e-5);
  EXPECT_FLOAT_EQ(kf.points[3], 40.0f);  // intensity
  EXPECT_FLOAT_EQ(kf.points[4], 0.0f);   // time lag of the key frame
  // Sweep point (1, 2, 3): sweep sensor -> ego(sweep) -> global -> ego(key).
  const SampleData& sweep = db.sample_data()[chain[1]];
  const EgoPose& sweep_pose = db.ego_pose()[sweep.ego_pose];
  const Vec3 g = through(through({1, 2, 3}, cs.rotation, cs.translation), sweep_pose.rotation, sweep_pose.translation);
  const Vec3 e1 = through_inverse(g, key_pose.rotation, key_pose.translation);
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(kf.points[10 + c], e1[c], 1e-4);
  EXPECT_FLOAT_EQ(kf.points[14], static_cast<float>(1e-6 * double(MiniFacts::kSample1Time) - 1e-6 * double(sweep.timestamp)));
  // Oldest frame: time lag of a whole sample interval, and the kept point (0.5, 3.0, 0.2).
  const float lag0 = static_cast<float>(1e-6 * double(MiniFacts::kSample1Time) - 1e-6 * double(MiniFacts::kSample0Time));
  int kept_square = 0;
  for (std::size_t i = 3; i < kf.num_points(); ++i) {
    if (kf.points[i * 5 + 4] != lag0) continue;
    if (kf.points[i * 5 + 3] == 2.0f) ++kept_square;  // intensity 2 marks (0.5, 3.0, 0.2)
    EXPECT_NE(kf.points[i * 5 + 3], 1.0f) << "the point at (0.5, 0.5) must be dropped";
  }
  EXPECT_EQ(kept_square, 1);
  // The moving ego: the oldest frame's origin lies ~2.5 m behind the key frame's ego (5 m/s
  // for 0.5 s along the heading; the real pose is slightly tilted, so not exactly along x).
  const Vec3 back = through_inverse(db.ego_pose()[db.sample_data()[chain[2]].ego_pose].translation, key_pose.rotation,
                                    key_pose.translation);
  EXPECT_NEAR(back[0], -5.0 * 1e-6 * double(MiniFacts::kSample1Time - MiniFacts::kSample0Time), 1e-3);
  EXPECT_NEAR(back[1], 0.0, 1e-3);
}

TEST_F(MiniLike, KeyFrameCamerasComposeThroughTheirOwnEgoPose) {
  const NuScenes db = load();
  const KeyFrameLoader loader(db);
  const std::uint32_t s0 = db.at(Table::kSample, MiniFacts::kSample0);
  const KeyFrame kf = *loader.load(s0);
  EXPECT_EQ(kf.sample_token, MiniFacts::kSample0);
  EXPECT_EQ(kf.scene_name, "scene-0061");
  EXPECT_EQ(kf.timestamp, MiniFacts::kSample0Time);
  EXPECT_EQ(kf.num_sweeps, 1);  // the first key frame of a scene has no predecessor
  const EgoPose& key_pose = db.lidar_key_pose(s0);
  for (int c = 0; c < kNumCameras; ++c) {
    const CameraView& v = kf.cameras[c];
    EXPECT_EQ(v.channel, kCameraChannels[c]);
    const std::uint32_t sd = db.key_frame(s0, kCameraChannels[c]);
    EXPECT_EQ(v.image_path, db.filename(sd));
    EXPECT_EQ(v.width, 1600);
    EXPECT_EQ(v.height, 900);
    const CalibratedSensor& cs = db.calibrated_sensor()[db.sample_data()[sd].calibrated_sensor];
    const EgoPose& cam_pose = db.ego_pose()[db.sample_data()[sd].ego_pose];
    EXPECT_EQ(v.intrinsics, cs.camera_intrinsic);
    // A point 10 m in front of the camera, by hand: camera -> ego(camera time) -> global -> ego(key).
    const Vec3 p{0.3, -0.2, 10.0};
    const Vec3 want = through_inverse(through(through(p, cs.rotation, cs.translation), cam_pose.rotation, cam_pose.translation),
                                      key_pose.rotation, key_pose.translation);
    const Vec3 got = v.cam_to_ego.apply(p);
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(got[k], want[k], 1e-9);
  }
  // CAM_FRONT fired 35.5 ms before the LiDAR while the ego drove at 5 m/s: its camera origin is
  // ~17.7 cm further back than the calibration alone says.
  const CalibratedSensor& front = db.calibrated_sensor()[db.sample_data()[db.key_frame(s0, "CAM_FRONT")].calibrated_sensor];
  EXPECT_NEAR(kf.cameras[0].cam_to_ego.t[0], front.translation[0] - 5.0 * 0.035491, 1e-4);
  EXPECT_GT(front.translation[0] - kf.cameras[0].cam_to_ego.t[0], 0.17);
  EXPECT_EQ(kf.cameras[0].image_path, std::string("samples/CAM_FRONT/") + MiniFacts::kLogfile + "__CAM_FRONT__1532402927612460.jpg");
}

TEST_F(MiniLike, GroundTruthInTheKeyFrameEgoFrame) {
  const NuScenes db = load();
  const KeyFrameLoader loader(db);
  const std::uint32_t s0 = db.at(Table::kSample, MiniFacts::kSample0);
  const KeyFrame kf = *loader.load(s0);
  ASSERT_EQ(kf.gt.size(), 2u);
  const EgoPose& pose = db.lidar_key_pose(s0);
  // The pedestrian: centre and yaw by hand; velocity (next only) rotated into the ego frame.
  const GtBox& ped = kf.gt[0];
  EXPECT_EQ(ped.annotation_token, MiniFacts::kPedestrianAnn);
  EXPECT_EQ(ped.label, class_index("pedestrian"));
  EXPECT_EQ(ped.category, "human.pedestrian.adult");
  EXPECT_EQ(ped.attribute, attribute_index("pedestrian.standing"));
  EXPECT_EQ(ped.num_lidar_pts, 1);
  const Vec3 c = through_inverse({373.214, 1130.48, 1.25}, pose.rotation, pose.translation);
  EXPECT_NEAR(ped.box.x, c[0], 1e-4);
  EXPECT_NEAR(ped.box.y, c[1], 1e-4);
  EXPECT_NEAR(ped.box.z, c[2], 1e-4);
  EXPECT_FLOAT_EQ(ped.box.w, 0.621f);  // size [w, l, h]
  EXPECT_FLOAT_EQ(ped.box.l, 0.669f);
  EXPECT_FLOAT_EQ(ped.box.h, 1.642f);
  const Vec3 hx = pose.rotation.conjugate().rotate(Quat{0.9831098797903927, 0, 0, -0.18301629506281616}.rotate({1, 0, 0}));
  EXPECT_NEAR(ped.box.yaw, std::atan2(hx[1], hx[0]), 1e-6);
  ASSERT_TRUE(ped.velocity_valid);
  const double dt = 1e-6 * double(MiniFacts::kSample1Time) - 1e-6 * double(MiniFacts::kSample0Time);
  const Vec3 vg{(373.598 - 373.214) / dt, (1130.1 - 1130.48) / dt, 0.0};
  const Vec3 ve = pose.rotation.conjugate().rotate(vg);
  EXPECT_NEAR(ped.box.vx, ve[0], 1e-5);
  EXPECT_NEAR(ped.box.vy, ve[1], 1e-5);
  // The tilted car: yaw of its rotated x axis (not 2*atan2(qz, qw)); no neighbour -> velocity invalid, 0.
  const GtBox& car = kf.gt[1];
  EXPECT_EQ(car.label, class_index("car"));
  const Quat car_q = Quat::from_yaw(-1.9) * Quat::from_axis_angle({0, 1, 0}, 0.05) * Quat::from_axis_angle({1, 0, 0}, -0.03);
  const Vec3 cx = pose.rotation.conjugate().rotate(car_q.rotate({1, 0, 0}));
  EXPECT_NEAR(car.box.yaw, std::atan2(cx[1], cx[0]), 1e-6);
  const Quat rel = pose.rotation.conjugate() * car_q;
  EXPECT_GT(std::abs(car.box.yaw - wrap_angle(2 * std::atan2(rel.z, rel.w))), 1e-4);
  EXPECT_FALSE(car.velocity_valid);
  EXPECT_EQ(car.box.vx, 0.0f);
  EXPECT_EQ(car.num_radar_pts, 3);
  // Sample 1: the bicycle rack (ignored category) is dropped, the bicycle inside it is kept.
  const KeyFrame kf1 = *loader.load(db.at(Table::kSample, MiniFacts::kSample1));
  std::vector<std::string> cats;
  for (const GtBox& g : kf1.gt) cats.push_back(g.category);
  EXPECT_EQ(cats, (std::vector<std::string>{"human.pedestrian.adult", "vehicle.bicycle"}));
  EXPECT_EQ(kf1.gt[1].attribute, attribute_index("cycle.without_rider"));
  // ... and returned as a bicycle rack in the key-frame ego frame (size [w, l, h] = [2, 4.5, 1.1]).
  EXPECT_TRUE(kf.bicycle_racks.empty());
  ASSERT_EQ(kf1.bicycle_racks.size(), 1u);
  const EgoPose& pose1 = db.lidar_key_pose(db.at(Table::kSample, MiniFacts::kSample1));
  const Vec3 rc = through_inverse({420.0, 1190.0, 0.55}, pose1.rotation, pose1.translation);
  const Box& rack = kf1.bicycle_racks[0];
  EXPECT_NEAR(rack.x, rc[0], 1e-4);
  EXPECT_NEAR(rack.y, rc[1], 1e-4);
  EXPECT_NEAR(rack.z, rc[2], 1e-4);
  EXPECT_FLOAT_EQ(rack.w, 2.0f);
  EXPECT_FLOAT_EQ(rack.l, 4.5f);
  EXPECT_FLOAT_EQ(rack.h, 1.1f);
  EXPECT_EQ(rack.vx, 0.0f);
  EXPECT_EQ(rack.vy, 0.0f);
}

// ---- missing files -------------------------------------------------------------------------------------------

TEST_F(MiniLike, MissingLidarFileNamesSampleAndFile) {
  const NuScenes db = load();
  const std::string lidar = root_ + "/" + std::string(db.filename(db.key_frame(0, "LIDAR_TOP")));
  std::filesystem::remove(lidar);
  const KeyFrameLoader loader(db);
  const std::string msg = error_of([&] { loader.load(0); });
  EXPECT_HAS(msg, std::string("sample ") + MiniFacts::kSample0 + " (scene scene-0061): missing LiDAR file " + lidar);
  EXPECT_HAS(msg, "skip_missing_files");
}

TEST_F(MiniLike, MissingImageFileNamesSampleAndFile) {
  const NuScenes db = load();
  const std::string img = root_ + "/" + std::string(db.filename(db.key_frame(0, "CAM_BACK_LEFT")));
  std::filesystem::remove(img);
  const KeyFrameLoader loader(db);
  EXPECT_HAS(error_of([&] { loader.load(0); }), "missing image file " + img);
}

TEST_F(MiniLike, SkipOptionCountsAndReportsMissingFiles) {
  const NuScenes db = load();
  const std::uint32_t s1 = db.at(Table::kSample, MiniFacts::kSample1);
  const std::string img = root_ + "/" + std::string(db.filename(db.key_frame(s1, "CAM_FRONT")));
  const std::string sweep = root_ + "/" + std::string(db.filename(db.sample_data()[db.key_frame(s1, "LIDAR_TOP")].prev));
  std::filesystem::remove(img);
  std::filesystem::remove(sweep);
  KeyFrameOptions opts;
  opts.nsweeps = 2;
  opts.skip_missing_files = true;
  const KeyFrameLoader loader(db, opts);
  EXPECT_TRUE(loader.load(0).has_value());
  EXPECT_FALSE(loader.load(s1).has_value());
  ASSERT_EQ(loader.num_skipped(), 1u);
  const auto skipped = loader.skipped();
  EXPECT_EQ(skipped[0].sample_token, MiniFacts::kSample1);
  EXPECT_EQ(skipped[0].missing_files, (std::vector<std::string>{sweep, img}));
  const std::string report = loader.skipped_report();
  EXPECT_HAS(report, "1 sample skipped for missing files:");
  EXPECT_HAS(report, img);
  EXPECT_HAS(report, sweep);
}

TEST_F(MiniLike, TruncatedLidarFileIsAnError) {
  const NuScenes db = load();
  const std::string lidar = root_ + "/" + std::string(db.filename(db.key_frame(0, "LIDAR_TOP")));
  std::string bytes = read_file(lidar);
  bytes.resize(bytes.size() - 3);
  write_file_atomic(lidar, bytes);
  const KeyFrameLoader loader(db);
  EXPECT_HAS(error_of([&] { loader.load(0); }),
             "LiDAR file " + lidar + " has 97 bytes, which is not a multiple of 20");
}

TEST_F(MiniLike, ImageSizeMismatchIsAnErrorWhenVerified) {
  const NuScenes db = load();
  Json sd = read_table(root_, testing::kVersion, "sample_data");
  for (auto& r : sd)
    if (r["token"] == MiniFacts::kCamFront0) r["width"] = 1280;
  write_table(root_, testing::kVersion, "sample_data", sd);
  const NuScenes db2 = load();
  KeyFrameOptions opts;
  opts.verify_image_size = true;
  EXPECT_HAS(error_of([&] { KeyFrameLoader(db2, opts).load(0); }),
             std::string("is 1600x900 pixels, sample_data ") + MiniFacts::kCamFront0 + " says 1280x900");
}

// ---- table errors ----------------------------------------------------------------------------------------------

TEST_F(MiniLike, MissingTableIsNamed) {
  std::filesystem::remove(root_ + "/v1.0-mini/ego_pose.json");
  const std::string msg = error_of([&] { load(); });
  EXPECT_HAS(msg, "nuScenes table " + root_ + "/v1.0-mini/ego_pose.json is missing");
  EXPECT_HAS(msg, "all 13 tables");
}

TEST_F(MiniLike, DanglingTokenNamesTableRecordFieldAndToken) {
  const Json original = read_table(root_, testing::kVersion, "sample_annotation");
  Json anns = original;
  anns[1]["instance_token"] = "deadbeefdeadbeefdeadbeefdeadbeef";
  write_table(root_, testing::kVersion, "sample_annotation", anns);
  EXPECT_HAS(error_of([&] { load(); }),
             std::string("v1.0-mini/sample_annotation.json record 1 (token \"") + MiniFacts::kCarAnn +
                 "\"): field \"instance_token\" refers to instance token \"deadbeefdeadbeefdeadbeefdeadbeef\" which is "
                 "not in instance.json");
  write_table(root_, testing::kVersion, "sample_annotation", original);
  Json sd = read_table(root_, testing::kVersion, "sample_data");
  sd[3]["calibrated_sensor_token"] = "0123";
  write_table(root_, testing::kVersion, "sample_data", sd);
  EXPECT_HAS(error_of([&] { load(); }),
             "sample_data.json record 3 (token \"" + sd[3]["token"].get<std::string>() +
                 "\"): field \"calibrated_sensor_token\" refers to calibrated_sensor token \"0123\" which is not in "
                 "calibrated_sensor.json");
}

TEST_F(MiniLike, WrongJsonTypeIsNamed) {
  Json poses = read_table(root_, testing::kVersion, "ego_pose");
  poses[2]["timestamp"] = "1532402927612460";
  write_table(root_, testing::kVersion, "ego_pose", poses);
  EXPECT_HAS(error_of([&] { load(); }),
             "ego_pose.json record 2 (token \"" + poses[2]["token"].get<std::string>() +
                 "\"): field \"timestamp\" expected an integer, found the string \"1532402927612460\"");
  poses[2]["timestamp"] = 1532402927612460LL;
  poses[2]["translation"] = Json::array({1.0, 2.0});
  write_table(root_, testing::kVersion, "ego_pose", poses);
  EXPECT_HAS(error_of([&] { load(); }), "field \"translation\" expected 3 numbers, found 2");
  poses[2]["translation"] = Json::array({1.0, 2.0, 0.0});
  write_table(root_, testing::kVersion, "ego_pose", poses);
  Json sd = read_table(root_, testing::kVersion, "sample_data");
  sd[0]["is_key_frame"] = 1;
  write_table(root_, testing::kVersion, "sample_data", sd);
  EXPECT_HAS(error_of([&] { load(); }), "field \"is_key_frame\" expected true or false, found the number 1");
}

TEST_F(MiniLike, NanCoordinateIsNamed) {
  // Python's json.dump writes NaN for float('nan'); the reader must name it.
  const std::string path = root_ + "/v1.0-mini/sample_annotation.json";
  std::string text = read_file(path);
  const std::string needle = "373.214";
  const std::size_t at = text.find(needle);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, needle.size(), "NaN");
  write_file_atomic(path, text);
  EXPECT_HAS(error_of([&] { load(); }),
             std::string("sample_annotation.json record 0 (token \"") + MiniFacts::kPedestrianAnn +
                 "\"): field \"translation[0]\" is NaN (expected a finite number)");
  text.replace(at, 3, "Infinity");
  write_file_atomic(path, text);
  EXPECT_HAS(error_of([&] { load(); }), "field \"translation[0]\" is Infinity (expected a finite number)");
}

TEST_F(MiniLike, MissingFieldDuplicateTokenAndBadJsonAreNamed) {
  Json inst = read_table(root_, testing::kVersion, "instance");
  inst[2].erase("nbr_annotations");
  write_table(root_, testing::kVersion, "instance", inst);
  EXPECT_HAS(error_of([&] { load(); }), "instance.json record 2 (token \"" + inst[2]["token"].get<std::string>() +
                                            "\"): missing field \"nbr_annotations\"");
  inst[2]["nbr_annotations"] = 1;
  inst[3]["token"] = inst[1]["token"];
  write_table(root_, testing::kVersion, "instance", inst);
  EXPECT_HAS(error_of([&] { load(); }), "instance.json: records 1 and 3 have the same token \"" +
                                            inst[1]["token"].get<std::string>() + "\"");
  write_file_atomic(root_ + "/v1.0-mini/instance.json", "[{\"token\": \"abc\", ");
  EXPECT_HAS(error_of([&] { load(); }), "instance.json");
  write_file_atomic(root_ + "/v1.0-mini/instance.json", "{}");
  EXPECT_HAS(error_of([&] { load(); }), "instance.json: expected a JSON array of records");
}

}  // namespace
}  // namespace bevkd::core::nusc
