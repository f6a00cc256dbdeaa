// nuScenes file formats: .pcd.bin, radar PCD v0.7, JPEG, the JSON writer, and points in boxes
// against brute force.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <random>

#include "base/error.h"
#include "base/fs.h"
#include "core/nuscenes/jpeg.h"
#include "core/nuscenes/points_in_boxes.h"
#include "core/nuscenes/sensor_files.h"
#include "tests/core/nusc_fixtures.h"

namespace bevkd::core::nusc {
namespace {

using testing::error_of;

class Files : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::fresh_dir(::testing::UnitTest::GetInstance()->current_test_info()->name()); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(Files, LidarBinRoundTripAndSizeCheck) {
  const std::vector<float> pts = {1.5f, -2.25f, 0.125f, 37.0f, 4.0f, 10.0f, 20.0f, -1.0f, 255.0f, 31.0f};
  const std::string path = dir_ + "/a.pcd.bin";
  write_lidar_bin(path, pts.data(), 2);
  EXPECT_EQ(file_size(path), 40u);
  EXPECT_EQ(read_lidar_bin(path), pts);
  write_file_atomic(path, std::string(42, '\0'));
  EXPECT_HAS(error_of([&] { read_lidar_bin(path); }),
             "LiDAR file " + path + " has 42 bytes, which is not a multiple of 20 (5 float32 per point");
  EXPECT_HAS(error_of([&] { read_lidar_bin(dir_ + "/none.pcd.bin"); }), "LiDAR file " + dir_ + "/none.pcd.bin does not exist");
  write_file_atomic(path, "");
  EXPECT_TRUE(read_lidar_bin(path).empty());
}

TEST_F(Files, RadarPcdRoundTripWithTheDevkitFilter) {
  std::vector<RadarPoint> pts(4);
  for (int i = 0; i < 4; ++i) {
    RadarPoint& p = pts[i];
    p.x = 10.5f + i, p.y = -1.25f, p.z = 0, p.dyn_prop = static_cast<std::int8_t>(i), p.id = static_cast<std::int16_t>(300 + i);
    p.rcs = 7.5f, p.vx = -2, p.vy = 0.5f, p.vx_comp = 0.25f, p.vy_comp = -0.125f;
    p.x_rms = 3, p.y_rms = 4, p.pdh0 = 1, p.vx_rms = 17, p.vy_rms = 18;
  }
  pts[1].invalid_state = 4;  // dropped: invalid_state must be 0
  pts[2].ambig_state = 1;    // dropped: ambig_state must be 3
  pts[3].dyn_prop = 7;       // dropped: dyn_prop must be 0..6
  const std::string bytes = encode_radar_pcd(pts);
  // Header as real files (the devkit reads it by line position), 43 bytes per point, one byte after.
  EXPECT_EQ(bytes.rfind("# .PCD v0.7", 0), 0u);
  const std::size_t data = bytes.find("DATA binary\n") + 12;
  EXPECT_EQ(bytes.size() - data, 4u * 43u + 1u);
  EXPECT_EQ(bytes.back(), '\n');
  const std::string path = dir_ + "/r.pcd";
  write_file_atomic(path, bytes);
  const RadarCloud all = read_radar_pcd(path, RadarFilter::none());
  ASSERT_EQ(all.fields.size(), 18u);
  EXPECT_EQ(all.fields[14], "invalid_state");
  ASSERT_EQ(all.size(), 4u);
  const float* p0 = all.points.data();
  EXPECT_FLOAT_EQ(p0[0], 10.5f);
  EXPECT_FLOAT_EQ(p0[1], -1.25f);
  EXPECT_FLOAT_EQ(p0[4], 300.0f);   // id (I2)
  EXPECT_FLOAT_EQ(p0[5], 7.5f);     // rcs
  EXPECT_FLOAT_EQ(p0[8], 0.25f);    // vx_comp
  EXPECT_FLOAT_EQ(p0[11], 3.0f);    // ambig_state
  EXPECT_FLOAT_EQ(p0[17], 18.0f);   // vy_rms
  EXPECT_FLOAT_EQ(all.points[18 + 14], 4.0f);
  const RadarCloud filtered = read_radar_pcd(path);
  ASSERT_EQ(filtered.size(), 1u);
  EXPECT_FLOAT_EQ(filtered.points[0], 10.5f);
  EXPECT_TRUE(RadarFilter::devkit_default().keeps(pts[0]));
  EXPECT_FALSE(RadarFilter::devkit_default().keeps(pts[3]));
  EXPECT_TRUE(RadarFilter::none().keeps(pts[3]));
  // An empty cloud is one NaN point, read back as no points.
  write_file_atomic(path, encode_radar_pcd({}));
  EXPECT_EQ(read_radar_pcd(path, RadarFilter::none()).size(), 0u);
  // Malformed files name the problem.
  std::string bad = bytes;
  bad.replace(bad.find("HEIGHT 1"), 8, "HEIGHT 2");
  write_file_atomic(path, bad);
  EXPECT_HAS(error_of([&] { read_radar_pcd(path); }), "radar file " + path + ": HEIGHT is 2 (expected 1)");
  write_file_atomic(path, bytes.substr(0, data + 50));
  EXPECT_HAS(error_of([&] { read_radar_pcd(path); }), "binary block has 50 bytes, WIDTH 4 x 43 bytes per point needs 172");
}

TEST_F(Files, JpegEncodeDecodeAndHeader) {
  const int w = 64, h = 40;
  std::vector<std::uint8_t> rgb(static_cast<std::size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      std::uint8_t* p = &rgb[(static_cast<std::size_t>(y) * w + x) * 3];
      p[0] = static_cast<std::uint8_t>(x * 4), p[1] = static_cast<std::uint8_t>(y * 6), p[2] = 90;
    }
  const std::string jpg = encode_jpeg(rgb.data(), w, h, 95);
  EXPECT_EQ(encode_jpeg(rgb.data(), w, h, 95), jpg) << "encoding must be deterministic";
  const std::string path = dir_ + "/a.jpg";
  write_file_atomic(path, jpg);
  const JpegInfo info = read_jpeg_info(path);
  EXPECT_EQ(info.width, w);
  EXPECT_EQ(info.height, h);
  const RgbImage img = decode_jpeg(path);
  ASSERT_EQ(img.rgb.size(), rgb.size());
  double err = 0;
  for (std::size_t i = 0; i < rgb.size(); ++i) err += std::abs(int(img.rgb[i]) - int(rgb[i]));
  EXPECT_LT(err / rgb.size(), 3.0);
  write_file_atomic(path, "not a jpeg");
  EXPECT_HAS(error_of([&] { read_jpeg_info(path); }), "image file " + path + ": not a readable JPEG");
  EXPECT_HAS(error_of([&] { decode_jpeg(dir_ + "/none.jpg"); }), "image file " + dir_ + "/none.jpg does not exist");
}

// ---- points in boxes against brute force ---------------------------------------------------------

TEST(PointsInBoxes, CountsMatchBruteForceForTiltedAndYawBoxes) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(-20, 20), s(0.3, 6), a(-3.2, 3.2), tilt(-0.2, 0.2);
  std::vector<NuscBox> nb;
  std::vector<Box> bb;
  for (int k = 0; k < 60; ++k) {
    NuscBox b;
    b.translation = {u(rng), u(rng), u(rng) * 0.1};
    b.size = {s(rng), s(rng), s(rng)};
    b.rotation = Quat::from_yaw(a(rng)) * Quat::from_axis_angle({0, 1, 0}, tilt(rng)) * Quat::from_axis_angle({1, 0, 0}, tilt(rng));
    nb.push_back(b);
    bb.push_back(to_box(b));
  }
  std::vector<float> pts;
  for (int i = 0; i < 30000; ++i) {
    pts.push_back(static_cast<float>(u(rng)));
    pts.push_back(static_cast<float>(u(rng)));
    pts.push_back(static_cast<float>(u(rng) * 0.15));
    pts.push_back(1.0f);  // stride 4
  }
  // Points exactly on faces count (inclusive).
  const Box& b0 = bb[0];
  const float face[4] = {b0.x + 0.5f * b0.l * std::cos(b0.yaw), b0.y + 0.5f * b0.l * std::sin(b0.yaw), b0.z, 0.0f};
  pts.insert(pts.end(), face, face + 4);
  const std::size_t n = pts.size() / 4;
  const auto counts_n = count_points_in_boxes(pts.data(), n, 4, nb);
  const auto counts_b = count_points_in_boxes(pts.data(), n, 4, bb);
  const auto owner = box_index_of_points(pts.data(), n, 4, bb);
  std::int64_t total = 0;
  for (std::size_t k = 0; k < nb.size(); ++k) {
    int brute_n = 0, brute_b = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const Vec3 p{pts[i * 4], pts[i * 4 + 1], pts[i * 4 + 2]};
      brute_n += point_in_nusc_box(nb[k], p);
      brute_b += point_in_box(bb[k], p);
    }
    EXPECT_EQ(counts_n[k], brute_n) << "box " << k;
    EXPECT_EQ(counts_b[k], brute_b) << "box " << k;
    total += brute_n;
  }
  EXPECT_GT(total, 1000) << "the test must put many points into boxes";
  for (std::size_t i = 0; i < n; ++i) {
    const Vec3 p{pts[i * 4], pts[i * 4 + 1], pts[i * 4 + 2]};
    int first = -1;
    for (std::size_t k = 0; k < bb.size() && first < 0; ++k)
      if (point_in_box(bb[k], p)) first = static_cast<int>(k);
    ASSERT_EQ(owner[i], first) << "point " << i;
  }
  EXPECT_GE(counts_b[0], 1);
}

TEST(PointsInBoxes, TiltedBoxDiffersFromItsYawOnlyBox) {
  // A box pitched by 30 deg: a point near the top of its front face is inside the tilted box
  // but outside the yaw-only box of the same centre and size.
  NuscBox b;
  b.translation = {0, 0, 0};
  b.size = {2, 4, 1};  // w, l, h
  b.rotation = Quat::from_axis_angle({0, 1, 0}, -0.5236);  // nose up
  const Vec3 p = b.rotation.rotate({1.9, 0, 0.45});
  EXPECT_TRUE(point_in_nusc_box(b, p));
  EXPECT_FALSE(point_in_box(to_box(b), p));
  EXPECT_NEAR(to_box(b).yaw, 0.0, 1e-9);  // yaw of the rotated x axis
}

}  // namespace
}  // namespace bevkd::core::nusc
