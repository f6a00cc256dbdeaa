// Nothing unchecked enters a shard (issue 16): what the key-frame loader and the table reader
// refuse, each with a message naming the file, record, field, point or annotation — paths that
// leave the dataroot (LiDAR, radar, camera; "..", absolute, symbolic link), JPEGs that do not
// decode or disagree with sample_data, NaN/Inf LiDAR points, empty clouds, GT boxes with
// non-positive sizes, integers that overflow their C++ field.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "base/error.h"
#include "base/fs.h"
#include "core/nuscenes/jpeg.h"
#include "core/nuscenes/key_frame.h"
#include "core/nuscenes/sensor_files.h"
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
namespace fs = std::filesystem;


class Hardening : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = write_mini_like_dataset(fresh_dir(::testing::UnitTest::GetInstance()->current_test_info()->name()));
  }
  void TearDown() override {
    fs::remove_all(root_);
    if (!outside_.empty()) fs::remove_all(outside_);
  }
  NuScenes load() const { return NuScenes::load(root_, testing::kVersion); }
  // Sets sample_data.filename of sample 0's key frame of `channel`; returns its record index.
  int set_filename(const std::string& channel, const std::string& filename) {
    const NuScenes db = load();
    const std::uint32_t sd = db.key_frame(0, channel);
    Json t = read_table(root_, testing::kVersion, "sample_data");
    t[sd]["filename"] = filename;
    write_table(root_, testing::kVersion, "sample_data", t);
    return static_cast<int>(sd);
  }
  std::string root_, outside_;
};

// ---- paths from the tables ---------------------------------------------------------------------

TEST_F(Hardening, PathsThatLeaveTheDatarootAreRefusedForEverySensorKind) {
  struct Kind {
    const char* channel;
    const char* name;  // as the message says it
    const char* ext;
  };
  outside_ = fresh_dir("hardening_outside");
  for (const Kind& k : {Kind{"LIDAR_TOP", "LiDAR", "pcd.bin"}, Kind{"RADAR_FRONT", "radar", "pcd"},
                        Kind{"CAM_FRONT", "camera", "jpg"}}) {
    SCOPED_TRACE(k.channel);
    const NuScenes before = load();
    const std::string original(before.filename(before.key_frame(0, k.channel)));
    const std::string token(before.token(Table::kSampleData, before.key_frame(0, k.channel)));
    // The file exists outside the dataroot: only the check stands between it and the shard.
    const std::string target = outside_ + "/stolen." + k.ext;
    fs::copy_file(root_ + "/" + original, target, fs::copy_options::overwrite_existing);

    const std::string climb = "samples/" + std::string(k.channel) + "/../../../" +
                              fs::path(outside_).filename().string() + "/stolen." + k.ext;
    int sd = set_filename(k.channel, climb);
    std::string msg = error_of([&] { KeyFrameLoader(load()).load(0); });
    EXPECT_HAS(msg, std::string(testing::kVersion) + "/sample_data.json record " + std::to_string(sd) + " (token \"" + token +
                        "\"), field \"filename\"");
    EXPECT_HAS(msg, std::string(k.name) + " path \"" + climb + "\" leaves the dataroot " + root_);

    set_filename(k.channel, target);  // absolute
    msg = error_of([&] { KeyFrameLoader(load()).load(0); });
    EXPECT_HAS(msg, std::string(k.name) + " path \"" + target + "\" is absolute");

    // A symbolic link inside the dataroot that points outside.
    const std::string link = "samples/" + std::string(k.channel) + "/link." + k.ext;
    fs::create_symlink(target, root_ + "/" + link);
    set_filename(k.channel, link);
    msg = error_of([&] { KeyFrameLoader(load()).load(0); });
    EXPECT_HAS(msg, std::string(k.name) + " path \"" + link + "\" leaves the dataroot " + root_ +
                        " through a symbolic link (it resolves to " + fs::canonical(target).string() + ")");

    // A link that stays inside is fine (and so is a harmless "..").
    fs::remove(root_ + "/" + link);
    fs::create_symlink(root_ + "/" + original, root_ + "/" + link);
    set_filename(k.channel, "samples/" + std::string(k.channel) + "/../" + k.channel + "/link." + k.ext);
    EXPECT_NO_THROW(KeyFrameLoader(load()).load(0));
    set_filename(k.channel, original);
    fs::remove(root_ + "/" + link);
  }
}

TEST_F(Hardening, ADatarootThatIsItselfALinkIsFine) {
  outside_ = fresh_dir("hardening_link_root");
  fs::remove_all(outside_);
  fs::create_directory_symlink(root_, outside_);
  const NuScenes db = NuScenes::load(outside_, testing::kVersion);
  EXPECT_NO_THROW(KeyFrameLoader(db).load(0));
}

// ---- JPEGs -------------------------------------------------------------------------------------------

TEST_F(Hardening, ADamagedJpegIsRefusedWhenDecodedAndTheHeaderAloneMissesIt) {
  const NuScenes db = load();
  const std::string img = root_ + "/" + std::string(db.filename(db.key_frame(0, "CAM_BACK")));
  std::string bytes = read_file(img);
  bytes.resize(bytes.size() * 2 / 3);  // an interrupted copy: the header is intact
  write_file_atomic(img, bytes);
  KeyFrameOptions header_only;
  header_only.verify_image_size = true;
  EXPECT_NO_THROW(KeyFrameLoader(db, header_only).load(0));
  KeyFrameOptions decode;
  decode.decode_images = true;
  const std::string msg = error_of([&] { KeyFrameLoader(db, decode).load(0); });
  EXPECT_HAS(msg, "image file " + img + ": the JPEG does not decode");
  // Bytes that are no JPEG at all.
  write_file_atomic(img, "GIF89a not a jpeg");
  EXPECT_HAS(error_of([&] { KeyFrameLoader(db, decode).load(0); }), "image file " + img + ": not a readable JPEG");
}

TEST_F(Hardening, AJpegOfAnotherSizeThanSampleDataIsRefusedWhenDecoded) {
  Json sd = read_table(root_, testing::kVersion, "sample_data");
  for (auto& r : sd)
    if (r["token"] == MiniFacts::kCamFront0) r["height"] = 901;
  write_table(root_, testing::kVersion, "sample_data", sd);
  KeyFrameOptions decode;
  decode.decode_images = true;
  EXPECT_HAS(error_of([&] { KeyFrameLoader(load(), decode).load(0); }),
             std::string("is 1600x900 pixels, sample_data ") + MiniFacts::kCamFront0 + " says 1600x901");
}

TEST(Jpeg, CheckDecodesEveryBlockAtAFractionOfTheCost) {
  std::vector<std::uint8_t> rgb(64 * 48 * 3);
  for (std::size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<std::uint8_t>((i * 37) ^ (i >> 5));
  const std::string good = encode_jpeg(rgb.data(), 64, 48, 90);
  const JpegInfo info = check_jpeg_bytes(good, "good");
  EXPECT_EQ(info.width, 64);
  EXPECT_EQ(info.height, 48);
  // Damage in the entropy-coded data (after the headers): the last bytes before EOI.
  std::string bad = good;
  for (std::size_t k = bad.size() - 40; k < bad.size() - 2; ++k) bad[k] = static_cast<char>(0xFF);
  EXPECT_HAS(error_of([&] { check_jpeg_bytes(bad, "bad.jpg"); }), "bad.jpg: the JPEG does not decode");
}

// ---- LiDAR points ------------------------------------------------------------------------------------

TEST_F(Hardening, NanOrInfLidarPointsAreRefusedNamingFileAndPointOrDroppedAndCounted) {
  const NuScenes db = load();
  const std::string lidar = root_ + "/" + std::string(db.filename(db.key_frame(0, "LIDAR_TOP")));
  std::vector<float> pts = read_lidar_bin(lidar);
  const std::size_t n = pts.size() / 5;
  ASSERT_GE(n, 4u);
  // Points far from the sensor, so that the min-distance filter keeps all of them.
  for (std::size_t i = 0; i < n; ++i) pts[i * 5 + 0] = 10.0f + static_cast<float>(i);
  pts[3 * 5 + 1] = std::numeric_limits<float>::quiet_NaN();
  write_lidar_bin(lidar, pts.data(), n);
  KeyFrameOptions key_only;
  key_only.nsweeps = 1;
  std::string msg = error_of([&] { KeyFrameLoader(db, key_only).load(0); });
  EXPECT_HAS(msg, "LiDAR file " + lidar + ": point 3 of " + std::to_string(n) + " has a non-finite value (x 13, y nan");
  EXPECT_HAS(msg, "--drop-nonfinite-points");
  pts[1 * 5 + 3] = std::numeric_limits<float>::infinity();  // intensity
  write_lidar_bin(lidar, pts.data(), n);
  EXPECT_HAS(error_of([&] { KeyFrameLoader(db, key_only).load(0); }), "point 1 of");
  KeyFrameOptions drop = key_only;
  drop.drop_nonfinite_points = true;
  const auto kf = KeyFrameLoader(db, drop).load(0);
  ASSERT_TRUE(kf.has_value());
  EXPECT_EQ(kf->dropped_points, 2);
  EXPECT_EQ(kf->num_points(), n - 2);
  for (float v : kf->points) EXPECT_TRUE(std::isfinite(v));
  // Nothing left.
  for (std::size_t i = 0; i < n; ++i) pts[i * 5 + 2] = std::numeric_limits<float>::infinity();
  write_lidar_bin(lidar, pts.data(), n);
  EXPECT_HAS(error_of([&] { KeyFrameLoader(db, drop).load(0); }),
             "LiDAR file " + lidar + ": all " + std::to_string(n) + " points have a NaN/Inf value");
}

TEST_F(Hardening, AnEmptyLidarFileIsReported) {
  const NuScenes db = load();
  const std::string lidar = root_ + "/" + std::string(db.filename(db.key_frame(0, "LIDAR_TOP")));
  write_file_atomic(lidar, "");
  EXPECT_HAS(error_of([&] { KeyFrameLoader(db).load(0); }), "LiDAR file " + lidar + " has no points");
}

// ---- ground truth ------------------------------------------------------------------------------------

TEST_F(Hardening, GtWithANonPositiveSizeIsRefusedNamingTheAnnotation) {
  Json anns = read_table(root_, testing::kVersion, "sample_annotation");
  for (auto& a : anns)
    if (a["token"] == MiniFacts::kCarAnn) a["size"][1] = -4.5;
  write_table(root_, testing::kVersion, "sample_annotation", anns);
  const NuScenes db = load();
  std::string msg = error_of([&] { KeyFrameLoader(db).load(0); });
  EXPECT_HAS(msg, std::string("sample_annotation.json: annotation ") + MiniFacts::kCarAnn);
  EXPECT_HAS(msg, "size [w, l, h] is [");
  EXPECT_HAS(msg, ", -4.5, ");
  EXPECT_HAS(msg, "expected every entry > 0");
  for (auto& a : anns)
    if (a["token"] == MiniFacts::kCarAnn) a["size"] = Json::array({1.9, 4.5, 0.0});
  write_table(root_, testing::kVersion, "sample_annotation", anns);
  msg = error_of([&] { KeyFrameLoader(load()).load(0); });
  EXPECT_HAS(msg, MiniFacts::kCarAnn);
  EXPECT_HAS(msg, "expected every entry > 0");
}

TEST_F(Hardening, GtThatOverflowsInTheEgoFrameIsRefused) {
  Json anns = read_table(root_, testing::kVersion, "sample_annotation");
  for (auto& a : anns)
    if (a["token"] == MiniFacts::kCarAnn) a["translation"][0] = 1.7e308;
  write_table(root_, testing::kVersion, "sample_annotation", anns);
  const std::string msg = error_of([&] { KeyFrameLoader(load()).load(0); });
  EXPECT_HAS(msg, MiniFacts::kCarAnn);
  EXPECT_HAS(msg, "non-finite value");
}

// ---- integers ----------------------------------------------------------------------------------------

TEST_F(Hardening, IntegersThatOverflowTheirFieldAreRefusedNamingFileRecordAndField) {
  Json sd = read_table(root_, testing::kVersion, "sample_data");
  int cam = -1;
  for (std::size_t i = 0; i < sd.size(); ++i)
    if (sd[i]["token"] == MiniFacts::kCamFront0) cam = static_cast<int>(i);
  ASSERT_GE(cam, 0);
  sd[cam]["width"] = 4294967296LL + 640;  // 2^32 + 640: silently 640 as an int32
  write_table(root_, testing::kVersion, "sample_data", sd);
  EXPECT_HAS(error_of([&] { load(); }), std::string(testing::kVersion) + "/sample_data.json record " + std::to_string(cam) +
                                            " (token \"" + MiniFacts::kCamFront0 +
                                            "\"): field \"width\" is 4294967936, which does not fit int32 "
                                            "(-2147483648 .. 2147483647)");
  sd[cam]["width"] = 1600;
  write_table(root_, testing::kVersion, "sample_data", sd);

  Json anns = read_table(root_, testing::kVersion, "sample_annotation");
  anns[0]["num_lidar_pts"] = 2147483648LL;
  write_table(root_, testing::kVersion, "sample_annotation", anns);
  EXPECT_HAS(error_of([&] { load(); }), std::string("sample_annotation.json record 0 (token \"") +
                                            MiniFacts::kPedestrianAnn +
                                            "\"): field \"num_lidar_pts\" is 2147483648, which does not fit int32");
  anns[0]["num_lidar_pts"] = 5;
  write_table(root_, testing::kVersion, "sample_annotation", anns);

  // Beyond int64: the raw number is named (JSON text, since nlohmann's writer cannot hold it).
  const std::string path = root_ + "/" + testing::kVersion + "/sample.json";
  std::string text = read_file(path);
  const std::string ts = std::to_string(MiniFacts::kSample0Time);
  text.replace(text.find(ts), ts.size(), "92233720368547758080");
  write_file_atomic(path, text);
  EXPECT_HAS(error_of([&] { load(); }), std::string("sample.json record 0 (token \"") + MiniFacts::kSample0 +
                                            "\"): field \"timestamp\" is 92233720368547758080, which does not fit int64");
}

}  // namespace
}  // namespace bevkd::core::nusc
