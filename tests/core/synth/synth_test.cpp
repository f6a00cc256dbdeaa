// bevkd-synth: the reader loads its output; the content is what later stages need (every class,
// objects sampled by the LiDAR and visible in the cameras, counts that match the clouds,
// attributes that match the motion, no overlapping objects); same seed -> same bytes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "base/canvas.h"
#include "tests/support/expect_error.h"
#include "base/error.h"
#include "base/fs.h"
#include "core/nuscenes/jpeg.h"
#include "core/nuscenes/key_frame.h"
#include "core/nuscenes/points_in_boxes.h"
#include "core/nuscenes/sensor_files.h"
#include "core/nuscenes/tables.h"
#include "core/nuscenes_vocab.h"
#include "core/synth/map_mask.h"
#include "core/synth/synth.h"
#include "tests/core/nusc_fixtures.h"

namespace bevkd::core::synth {
namespace {

using nusc::KeyFrame;
using nusc::KeyFrameLoader;
using nusc::KeyFrameOptions;
using nusc::NuScenes;
using nusc::Table;

const NuScenes& tiny() {
  static const NuScenes db = NuScenes::load(nusc::testing::tiny_synth_dataset(), "v1.0-mini");
  return db;
}

TEST(Synth, ReaderLoadsTheDatasetAndThePredefinedMiniSplitsSelectIt) {
  const NuScenes& db = tiny();
  EXPECT_EQ(db.scene().size(), 2u);
  EXPECT_EQ(db.sample().size(), 6u);
  EXPECT_EQ(db.scene()[0].name, "scene-0061");
  EXPECT_EQ(db.scene()[1].name, "scene-0103");
  EXPECT_EQ(db.split_samples("mini_train").size(), 3u);
  EXPECT_EQ(db.split_samples("mini_val").size(), 3u);
  EXPECT_EQ(db.split_samples("synth_val"), db.split_samples("mini_val"));
  EXPECT_EQ(db.split_samples("synth_all").size(), 6u);
  // Sensor chains: per sample 1 LIDAR_TOP key frame + 2 sweeps (after the first), 12 channels.
  std::map<std::string, int> per_channel;
  for (std::uint32_t sd = 0; sd < db.sample_data().size(); ++sd) ++per_channel[std::string(db.channel(sd))];
  EXPECT_EQ(per_channel.size(), 12u);
  EXPECT_EQ(per_channel["LIDAR_TOP"], 2 * (3 + 2 * 2));
  EXPECT_EQ(per_channel["CAM_FRONT"], 2 * (3 + 2 * 1));
  // LiDAR sweeps 1/6 s apart (2 sweeps between 2 Hz key frames), sample time = LiDAR key-frame time.
  const std::uint32_t key = db.key_frame(1, "LIDAR_TOP");
  EXPECT_EQ(db.sample_data()[key].timestamp, db.sample()[1].timestamp);
  const std::uint32_t sweep = db.sample_data()[key].prev;
  EXPECT_FALSE(db.sample_data()[sweep].is_key_frame);
  EXPECT_NEAR(1e-6 * double(db.sample_data()[key].timestamp - db.sample_data()[sweep].timestamp), 0.5 / 3, 0.002);
  // Ignored categories are annotated too, so the evaluator's filters have something to act on.
  std::set<std::string> cats;
  for (std::uint32_t a = 0; a < db.sample_annotation().size(); ++a) cats.insert(std::string(db.category_name(a)));
  EXPECT_TRUE(cats.count("static_object.bicycle_rack"));
  EXPECT_TRUE(cats.count("animal"));
  EXPECT_TRUE(cats.count("human.pedestrian.stroller"));
}

TEST(Synth, EveryDetectionClassAppearsWithRealisticSizes) {
  const NuScenes& db = tiny();
  const KeyFrameLoader loader(db, [] {
    KeyFrameOptions o;
    o.load_points = false;
    return o;
  }());
  std::map<int, std::vector<double>> lengths;
  for (std::uint32_t s = 0; s < db.sample().size(); ++s) {
    const KeyFrame kf = *loader.load(s);
    for (const nusc::GtBox& g : kf.gt) lengths[g.label].push_back(g.box.l);
  }
  for (int c = 0; c < kNumClasses; ++c) ASSERT_FALSE(lengths[c].empty()) << "no " << kClassNames[c];
  auto mean = [&](const char* name) {
    const auto& v = lengths[class_index(name)];
    double s = 0;
    for (double x : v) s += x;
    return s / v.size();
  };
  EXPECT_NEAR(mean("car"), 4.6, 0.6);
  EXPECT_NEAR(mean("pedestrian"), 0.73, 0.2);
  EXPECT_NEAR(mean("traffic_cone"), 0.41, 0.1);
  EXPECT_GT(mean("bus"), 9.0);
}

TEST(Synth, NumLidarPtsAreCountedInTheKeyFrameCloud) {
  const NuScenes& db = tiny();
  KeyFrameOptions o;
  o.nsweeps = 1;
  o.min_distance = 0;
  const KeyFrameLoader loader(db, o);
  int compared = 0, with_points = 0;
  for (std::uint32_t s = 0; s < db.sample().size(); ++s) {
    const KeyFrame kf = *loader.load(s);
    const Rigid global_to_ego = kf.ego_to_global.inverse();
    const Quat q_inv = Quat::from_matrix(global_to_ego.R);
    std::vector<NuscBox> boxes;
    const auto anns = db.sample_anns(s);
    for (std::uint32_t a : anns) {
      NuscBox b = db.sample_annotation()[a].box();
      b.translation = global_to_ego.apply(b.translation);
      b.rotation = q_inv * b.rotation;
      boxes.push_back(b);
    }
    const auto counts = nusc::count_points_in_boxes(kf.points.data(), kf.num_points(), nusc::kPointDims, boxes);
    for (std::size_t k = 0; k < anns.size(); ++k) {
      const int want = db.sample_annotation()[anns[k]].num_lidar_pts;
      // The generator counts in the LiDAR frame; float rounding may move a point on a face.
      EXPECT_NEAR(counts[k], want, 1 + 0.01 * want) << db.token(Table::kSampleAnnotation, anns[k]);
      ++compared;
      with_points += want > 0;
    }
  }
  EXPECT_GT(compared, 100);
  EXPECT_GT(with_points, compared / 3);
}

TEST(Synth, ObjectsWithin40mAreWellSampledByTheLidar) {
  const NuScenes& db = tiny();
  KeyFrameOptions o;
  o.load_points = false;
  const KeyFrameLoader loader(db, o);
  int near = 0, sampled = 0;
  std::vector<int> car_points;
  for (std::uint32_t s = 0; s < db.sample().size(); ++s) {
    const KeyFrame kf = *loader.load(s);
    for (const nusc::GtBox& g : kf.gt) {
      const double r = std::hypot(g.box.x, g.box.y);
      if (r > 40) continue;
      ++near;
      sampled += g.num_lidar_pts > 0;
      if (g.label == class_index("car") && r < 25) car_points.push_back(g.num_lidar_pts);
    }
  }
  ASSERT_GT(near, 50);
  // The rest are occluded (e.g. behind a bus in the ego's lane); the evaluation drops them.
  EXPECT_GT(sampled, 0.6 * near) << sampled << " of " << near;
  ASSERT_FALSE(car_points.empty());
  std::sort(car_points.begin(), car_points.end());
  EXPECT_GT(car_points[car_points.size() / 2], 40) << "median points on a car within 25 m";
}

// Separating-axis test of two rotated rectangles (BEV footprints), shrunk by 1 cm.
bool overlap_bev(const Box& a, const Box& b) {
  auto corners = [](const Box& x) {
    std::array<std::array<double, 2>, 4> c;
    const double cs = std::cos(x.yaw), sn = std::sin(x.yaw), l = x.l / 2 - 0.01, w = x.w / 2 - 0.01;
    const double u[4][2] = {{l, w}, {l, -w}, {-l, -w}, {-l, w}};
    for (int k = 0; k < 4; ++k) c[k] = {x.x + cs * u[k][0] - sn * u[k][1], x.y + sn * u[k][0] + cs * u[k][1]};
    return c;
  };
  const auto ca = corners(a), cb = corners(b);
  for (const Box* x : {&a, &b})
    for (double ang : {double(x->yaw), x->yaw + 1.5707963267948966}) {
      const double ax = std::cos(ang), ay = std::sin(ang);
      double a0 = 1e30, a1 = -1e30, b0 = 1e30, b1 = -1e30;
      for (int k = 0; k < 4; ++k) {
        const double pa = ca[k][0] * ax + ca[k][1] * ay, pb = cb[k][0] * ax + cb[k][1] * ay;
        a0 = std::min(a0, pa), a1 = std::max(a1, pa), b0 = std::min(b0, pb), b1 = std::max(b1, pb);
      }
      if (a1 < b0 || b1 < a0) return false;
    }
  return true;
}

TEST(Synth, AnnotatedObjectsDoNotOverlapAndAttributesFollowTheMotion) {
  const NuScenes& db = tiny();
  int checked_pairs = 0, moving = 0, still = 0;
  for (std::uint32_t s = 0; s < db.sample().size(); ++s) {
    const auto anns = db.sample_anns(s);
    std::vector<Box> boxes;
    for (std::uint32_t a : anns) boxes.push_back(to_box(db.sample_annotation()[a].box()));
    for (std::size_t i = 0; i < anns.size(); ++i)
      for (std::size_t j = i + 1; j < anns.size(); ++j) {
        // Parked bicycles stand inside their rack by design (the eval's bike-rack filter).
        if (db.category_name(anns[i]) == kBicycleRackCategory || db.category_name(anns[j]) == kBicycleRackCategory)
          continue;
        ++checked_pairs;
        EXPECT_FALSE(overlap_bev(boxes[i], boxes[j]))
            << db.category_name(anns[i]) << " and " << db.category_name(anns[j]) << " overlap in sample " << s;
      }
    for (std::uint32_t a : anns) {
      const Vec3 v = db.box_velocity(a);
      const auto attrs = db.attributes_of(a);
      if (std::isnan(v[0]) || attrs.empty()) continue;
      const std::string& attr = db.attribute()[attrs[0]].name;
      const double speed = std::hypot(v[0], v[1]);
      if (attr == "vehicle.moving" || attr == "pedestrian.moving" || attr == "cycle.with_rider") {
        if (attr != "cycle.with_rider") {
          EXPECT_GT(speed, 0.2) << attr;
        }
        ++moving;
      } else {
        EXPECT_LT(speed, 0.2) << attr << " " << db.category_name(a);
        ++still;
      }
    }
  }
  EXPECT_GT(checked_pairs, 1000);
  EXPECT_GT(moving, 10);
  EXPECT_GT(still, 10);
}

TEST(Synth, CamerasShowTheObjectsInTheirClassColour) {
  // Cars are rendered blue; at the projected centre of a fully visible car in CAM_FRONT the
  // decoded JPEG is blue (the road and buildings are grey).
  const NuScenes& db = tiny();
  KeyFrameOptions o;
  o.load_points = false;
  o.verify_image_size = true;
  const KeyFrameLoader loader(db, o);
  int checked = 0, blue = 0;
  for (std::uint32_t s = 0; s < db.sample().size(); ++s) {
    const KeyFrame kf = *loader.load(s);
    const nusc::CameraView& cam = kf.cameras[0];
    const nusc::RgbImage img = nusc::decode_jpeg(db.dataroot() + "/" + cam.image_path);
    const auto anns = db.sample_anns(s);
    std::size_t gi = 0;
    for (std::uint32_t a : anns) {
      if (class_from_category(db.category_name(a)) < 0) continue;
      const nusc::GtBox& g = kf.gt[gi++];
      if (g.label != class_index("car") || db.visibility()[db.sample_annotation()[a].visibility].level != "v80-100")
        continue;
      const Vec3 p = cam.cam_to_ego.inverse().apply({g.box.x, g.box.y, g.box.z - 0.2 * g.box.h});
      if (p[2] < 3 || p[2] > 35) continue;
      const int u = static_cast<int>(cam.intrinsics[0] * p[0] / p[2] + cam.intrinsics[2]);
      const int v = static_cast<int>(cam.intrinsics[4] * p[1] / p[2] + cam.intrinsics[5]);
      if (u < 0 || v < 0 || u >= img.width || v >= img.height) continue;
      const std::uint8_t* px = &img.rgb[(static_cast<std::size_t>(v) * img.width + u) * 3];
      ++checked;
      blue += px[2] > px[0] + 40 && px[2] > px[1] + 20;
    }
  }
  ASSERT_GT(checked, 0) << "no fully visible car in front of the camera";
  EXPECT_GE(blue, checked * 3 / 4);
}

TEST(Synth, RadarFilesFollowTheDevkitFormat) {
  const NuScenes& db = tiny();
  int files = 0, points = 0, dropped = 0;
  for (std::uint32_t sd = 0; sd < db.sample_data().size(); ++sd) {
    if (db.sensor_modality(sd) != "radar") continue;
    const std::string path = db.dataroot() + "/" + std::string(db.filename(sd));
    const std::string bytes = read_file(path);
    EXPECT_EQ(bytes.back(), '\n') << path;
    const auto all = nusc::read_radar_pcd(path, nusc::RadarFilter::none());
    const auto kept = nusc::read_radar_pcd(path);
    ++files;
    points += static_cast<int>(kept.size());
    dropped += static_cast<int>(all.size() - kept.size());
  }
  EXPECT_EQ(files, 2 * 5 * (3 + 2));
  EXPECT_GT(points, files);
  EXPECT_GT(dropped, 0) << "some detections must be removed by the devkit's default filter";
  int with_radar = 0;
  for (const auto& a : db.sample_annotation()) with_radar += a.num_radar_pts > 0;
  EXPECT_GT(with_radar, 10);
}

std::map<std::string, std::string> all_files(const std::string& root) {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    const std::string rel = std::filesystem::relative(e.path(), root).string();
    if (rel != "synth_config.txt") out[rel] = read_file(e.path().string());
  }
  return out;
}

TEST(Synth, SameSeedGivesByteIdenticalDatasetsWhateverTheThreadCount) {
  SynthConfig cfg;
  cfg.scenes = 3;
  cfg.samples_per_scene = 2;
  cfg.lidar_sweeps = 1;
  cfg.image_width = 96;
  cfg.image_height = 54;
  cfg.azimuth_steps = 256;
  cfg.objects_per_scene = 25;
  cfg.show_progress = false;
  cfg.seed = 7;
  cfg.out_dir = nusc::testing::fresh_dir("determinism_a");
  cfg.threads = 1;
  generate(cfg);
  const auto a = all_files(cfg.out_dir);
  const std::string dir_a = cfg.out_dir;
  cfg.out_dir = nusc::testing::fresh_dir("determinism_b");
  cfg.threads = 3;
  generate(cfg);
  const auto b = all_files(cfg.out_dir);
  EXPECT_GT(a.size(), 100u);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, bytes] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    EXPECT_TRUE(b.at(name) == bytes) << name << " differs";
  }
  // Another seed gives another dataset.
  cfg.out_dir = nusc::testing::fresh_dir("determinism_c");
  cfg.seed = 8;
  generate(cfg);
  EXPECT_NE(read_file(cfg.out_dir + "/v1.0-mini/sample_annotation.json"), a.at("v1.0-mini/sample_annotation.json"));
  for (const std::string& d : {dir_a, cfg.out_dir, nusc::testing::fresh_dir("determinism_b")}) std::filesystem::remove_all(d);
}

TEST(Synth, TablesOnlyModeWritesLoadableTablesWithoutSensorFiles) {
  SynthConfig cfg;
  cfg.out_dir = nusc::testing::fresh_dir("tables_only");
  cfg.version = "v1.0-trainval";
  cfg.scenes = 6;
  cfg.samples_per_scene = 4;
  cfg.camera_sweeps = 5;
  cfg.tables_only = true;
  cfg.show_progress = false;
  const SynthSummary sum = generate(cfg);
  EXPECT_FALSE(path_exists(cfg.out_dir + "/samples"));
  EXPECT_EQ(sum.files, 0);
  const NuScenes db = NuScenes::load(cfg.out_dir, cfg.version);
  EXPECT_EQ(db.sample().size(), 24u);
  EXPECT_EQ(static_cast<std::int64_t>(db.sample_annotation().size()), sum.annotations);
  // trainval names: the predefined train / val splits select 5 and 1 scenes.
  EXPECT_EQ(db.split_samples("train").size(), 20u);
  EXPECT_EQ(db.split_samples("val").size(), 4u);
  int with_points = 0;
  for (const auto& a : db.sample_annotation()) with_points += a.num_lidar_pts > 0;
  EXPECT_GT(with_points, 0);
  // The key-frame loader reports the missing sensor files.
  KeyFrameOptions o;
  o.skip_missing_files = true;
  const KeyFrameLoader loader(db, o);
  EXPECT_FALSE(loader.load(0).has_value());
  EXPECT_EQ(loader.num_skipped(), 1u);
  EXPECT_EQ(loader.skipped()[0].missing_files.size(), 1u + 6u);  // LIDAR_TOP + 6 images
  std::filesystem::remove_all(cfg.out_dir);
}

TEST(Synth, MapMasksAreSingleChannelAtTheDevkitResolutionAndCoverEveryEgoPose) {
  // What the devkit's render_ego_centric_map needs (core/synth/map_mask.h): for every ego pose
  // of every sample_data, the crop of int(40 / 0.1 * sqrt(2)) pixels around its pixel lies in
  // the mask, and the pose is on the semantic prior.
  const NuScenes& db = tiny();
  const std::string root = nusc::testing::tiny_synth_dataset();
  std::map<std::uint32_t, GrayImage> masks;  // map index -> mask
  for (std::uint32_t m = 0; m < db.map().size(); ++m) {
    masks[m] = load_png_gray(root + "/" + db.map()[m].filename);  // refuses anything but 8-bit gray
    EXPECT_GT(masks[m].width, 100);
  }
  const int crop = static_cast<int>(static_cast<int>(40.0 / kMapResolution) * std::sqrt(2.0));
  std::vector<double> widths;
  std::size_t poses = 0;
  for (std::uint32_t sd = 0; sd < db.sample_data().size(); ++sd) {
    const nusc::SampleData& rec = db.sample_data()[sd];
    const std::uint32_t log = db.scene()[db.sample()[rec.sample].scene].log;
    const std::uint32_t m = db.log()[log].map;
    ASSERT_NE(m, nusc::kNone);
    const GrayImage& mask = masks.at(m);
    const nusc::EgoPose& pose = db.ego_pose()[rec.ego_pose];
    const double x = pose.translation[0], y = pose.translation[1];
    const long px = std::lrint(x / kMapResolution), py = std::lrint(mask.height - y / kMapResolution);
    ASSERT_GE(px - crop, 0) << "sample_data " << sd;
    ASSERT_GE(py - crop, 0) << "sample_data " << sd;
    ASSERT_LE(px + crop, mask.width) << "sample_data " << sd;
    ASSERT_LE(py + crop, mask.height) << "sample_data " << sd;
    EXPECT_TRUE(on_mask(mask, x, y)) << "sample_data " << sd << " at (" << x << ", " << y << ")";
    // Across the road through the pose: road + parking + sidewalk, |d| <= 14.6 m, is 29.2 m of
    // foreground at 0.1 m per pixel (the resolution the devkit assumes).
    const double yaw = yaw_of(pose.rotation);
    const double nx = -std::sin(yaw), ny = std::cos(yaw);
    double lo = 0, hi = 0;
    while (lo > -40 && on_mask(mask, x + (lo - 0.05) * nx, y + (lo - 0.05) * ny)) lo -= 0.05;
    while (hi < 40 && on_mask(mask, x + (hi + 0.05) * nx, y + (hi + 0.05) * ny)) hi += 0.05;
    widths.push_back(hi - lo);
    ++poses;
  }
  ASSERT_GT(poses, 100u);
  std::sort(widths.begin(), widths.end());
  EXPECT_NEAR(widths[widths.size() / 2], 2 * 14.6, 0.4);
  // Mostly background, like a real mask.
  for (const auto& [m, mask] : masks) {
    const auto fg = std::count(mask.pixels.begin(), mask.pixels.end(), std::uint8_t{255});
    const auto bg = std::count(mask.pixels.begin(), mask.pixels.end(), std::uint8_t{0});
    EXPECT_EQ(static_cast<std::size_t>(fg + bg), mask.pixels.size()) << "a mask holds only 0 and 255";
    EXPECT_GT(fg, 0);
    EXPECT_GT(bg, fg);
  }
}

TEST(MapMask, PaintsTheRoadAtTheResolutionAndRefusesPosesNearTheAxes) {
  MapRoad r;
  r.road.origin = {100, 200, 0};
  r.road.heading = 0;  // along +x
  r.s_lo = 0;
  r.s_hi = 50;
  const GrayImage m = make_map_mask({r}, {Vec3{110, 200, 0}});
  EXPECT_EQ(m.width, static_cast<int>(std::ceil((110 + kMapMarginM) / kMapResolution)));
  EXPECT_EQ(m.height, static_cast<int>(std::ceil((200 + kMapMarginM) / kMapResolution)));
  EXPECT_TRUE(on_mask(m, 125, 200));
  EXPECT_TRUE(on_mask(m, 125, 200 + 14.5));
  EXPECT_FALSE(on_mask(m, 125, 200 + 14.7));
  EXPECT_FALSE(on_mask(m, 125, 200 - 14.7));
  EXPECT_FALSE(on_mask(m, 151, 200));  // past s_hi
  EXPECT_FALSE(on_mask(m, 99, 200));   // before s_lo
  // Row 0 is the top: y = H * res; the pixel of (125, 200) is row H - 2000, column 1250.
  EXPECT_EQ(m.pixels[static_cast<std::size_t>(m.height - 2000) * m.width + 1250], 255);
  try {
    make_map_mask({r}, {Vec3{30, 200, 0}});
    ADD_FAILURE() << "a pose 30 m from the axis";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("closer than 60 m to the global axes"), std::string::npos) << e.what();
  }
}

TEST(Synth, ConfigurationIsValidated) {
  SynthConfig cfg;
  cfg.out_dir = "/tmp/x";
  cfg.scenes = 0;
  try {
    cfg.validate();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "bevkd-synth: scenes is 0 (expected 1..1000)");
  }
  cfg.scenes = 1;
  cfg.image_width = 8;
  EXPECT_ERROR_WITH(cfg.validate(), "bevkd-synth: image size 8x");
  // More scenes than real mini + train names would not fit a mini version.
  cfg.image_width = 64;
  cfg.scenes = 1000;
  cfg.tables_only = true;
  cfg.samples_per_scene = 1;
  cfg.out_dir = nusc::testing::fresh_dir("too_many");
  try {
    generate(cfg);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("need more real scene names than the"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(cfg.out_dir);
}

}  // namespace
}  // namespace bevkd::core::synth
