#include "tests/core/nusc_fixtures.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "base/canvas.h"
#include "base/error.h"
#include "base/fs.h"
#include "core/geometry.h"
#include "core/nuscenes/jpeg.h"
#include "core/nuscenes/sensor_files.h"
#include "core/synth/rig.h"
#include "base/rng.h"
#include "core/synth/synth.h"
#include "tests/support/synth_data.h"

namespace bevkd::core::nusc::testing {
namespace {

// A 32-hex token in the style of the real tables, derived from a label (FNV-1a + mixing).
std::string hex_of(const std::string& label) {
  const std::uint64_t h = key_of(label), g = mix_keys(h, 0x70CE);
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(h), static_cast<unsigned long long>(g));
  return buf;
}

Json quat_json(const Quat& q) { return Json::array({q.w, q.x, q.y, q.z}); }
Json vec_json(const Vec3& v) { return Json::array({v[0], v[1], v[2]}); }

void write_json(const std::string& path, const Json& j) {
  std::ofstream f(path);
  f << j.dump(0) << "\n";
  BEVKD_CHECK(f.good(), "cannot write ", path);
}

}  // namespace


Json read_table(const std::string& root, const std::string& version, const std::string& table) {
  std::ifstream f(root + "/" + version + "/" + table + ".json");
  return Json::parse(f);
}

void write_table(const std::string& root, const std::string& version, const std::string& table, const Json& records) {
  write_json(root + "/" + version + "/" + table + ".json", records);
}

std::string write_mini_like_dataset(const std::string& root) {
  using F = MiniFacts;
  const std::string v = root + "/v1.0-mini";
  make_dirs(v);
  make_dirs(root + "/maps");
  const char* kChannels[12] = {"CAM_FRONT",   "CAM_FRONT_RIGHT",  "CAM_BACK_RIGHT",    "CAM_BACK",
                               "CAM_BACK_LEFT", "CAM_FRONT_LEFT", "LIDAR_TOP",         "RADAR_FRONT",
                               "RADAR_FRONT_LEFT", "RADAR_FRONT_RIGHT", "RADAR_BACK_LEFT", "RADAR_BACK_RIGHT"};
  for (const char* ch : kChannels) {
    make_dirs(cat(root, "/samples/", ch));
    make_dirs(cat(root, "/sweeps/", ch));
  }

  // category (23, with the lidarseg index of the current release), attribute, visibility.
  const char* kCategories[23] = {"animal", "human.pedestrian.adult", "human.pedestrian.child",
                                 "human.pedestrian.construction_worker", "human.pedestrian.personal_mobility",
                                 "human.pedestrian.police_officer", "human.pedestrian.stroller",
                                 "human.pedestrian.wheelchair", "movable_object.barrier", "movable_object.debris",
                                 "movable_object.pushable_pullable", "movable_object.trafficcone",
                                 "static_object.bicycle_rack", "vehicle.bicycle", "vehicle.bus.bendy",
                                 "vehicle.bus.rigid", "vehicle.car", "vehicle.construction",
                                 "vehicle.emergency.ambulance", "vehicle.emergency.police", "vehicle.motorcycle",
                                 "vehicle.trailer", "vehicle.truck"};
  Json category = Json::array();
  for (int i = 0; i < 23; ++i) {
    const std::string name = kCategories[i];
    const std::string tok = name == "human.pedestrian.adult" ? "1fa93b757fc74fb197cdd60001ad8abf"
                            : name == "vehicle.car"          ? "fd69059b62a3469fbaef25340c0eab7f"
                                                             : hex_of("category/" + name);
    category.push_back({{"token", tok}, {"name", name}, {"description", name + " category."}, {"index", i + 1}});
  }
  write_json(v + "/category.json", category);
  const char* kAttr[8][2] = {{"cb5118da1ab342aa947717dc53544259", "vehicle.moving"},
                             {"c3246a1e22a14fcb878aa61e69ae3329", "vehicle.stopped"},
                             {"58aa28b1c2a54dc88e169808c07331e3", "vehicle.parked"},
                             {"a14936d865eb4216b396adae8cb3939c", "cycle.with_rider"},
                             {"5a655f9751944309a277276b8f473452", "cycle.without_rider"},
                             {"03aa62109bf043afafdea7d875dd4f43", "pedestrian.sitting_lying_down"},
                             {"4d8821270b4a47e3a8a300cbec48188e", "pedestrian.standing"},
                             {"ab83627ff28b465b85c427162dec722f", "pedestrian.moving"}};
  Json attribute = Json::array();
  for (auto& a : kAttr) attribute.push_back({{"token", a[0]}, {"name", a[1]}, {"description", "."}});
  write_json(v + "/attribute.json", attribute);
  Json visibility = Json::array();
  const char* kLevels[4] = {"v0-40", "v40-60", "v60-80", "v80-100"};
  for (int i = 0; i < 4; ++i)
    visibility.push_back({{"description", "visibility of whole object"}, {"token", std::to_string(i + 1)}, {"level", kLevels[i]}});
  write_json(v + "/visibility.json", visibility);

  // sensor + calibrated_sensor (one per sensor for this scene). LIDAR_TOP has the real
  // extrinsic; cameras and radars the synthetic rig's (close to the real ones).
  Json sensor = Json::array(), calibrated = Json::array();
  std::vector<std::string> cs_token(12);
  for (int k = 0; k < 12; ++k) {
    const std::string ch = kChannels[k];
    const std::string modality = ch.rfind("CAM", 0) == 0 ? "camera" : ch == "LIDAR_TOP" ? "lidar" : "radar";
    const std::string st = hex_of("sensor/" + ch);
    sensor.push_back({{"token", st}, {"channel", ch}, {"modality", modality}});
    const synth::SensorSpec* spec = nullptr;
    for (const auto& s : synth::sensor_specs())
      if (s.channel == ch) spec = &s;
    cs_token[k] = ch == "CAM_FRONT" ? "1d31c729b073425e8e0202c5c6e66ee1"
                  : ch == "LIDAR_TOP" ? "a183049901c24361a6b0b11b8013137c"
                                      : hex_of("calibrated_sensor/scene-0061/" + ch);
    Json K = Json::array();
    if (modality == "camera")
      K = Json::array({Json::array({spec->f, 0.0, spec->cx}), Json::array({0.0, spec->f, spec->cy}),
                       Json::array({0.0, 0.0, 1.0})});
    calibrated.push_back({{"token", cs_token[k]}, {"sensor_token", st}, {"translation", vec_json(spec->translation)},
                          {"rotation", quat_json(spec->rotation)}, {"camera_intrinsic", K}});
  }
  write_json(v + "/sensor.json", sensor);
  write_json(v + "/calibrated_sensor.json", calibrated);

  // log, map, scene, sample.
  const std::string log_token = "7e25a2c8ea1f41c5b0da1e69ecfa71a2", map_token = "53992ee3023e5494b90c316c183be829";
  write_json(v + "/log.json", Json::array({{{"token", log_token}, {"logfile", F::kLogfile}, {"vehicle", "n015"},
                                            {"date_captured", "2018-07-24"}, {"location", "singapore-onenorth"}}}));
  write_json(v + "/map.json", Json::array({{{"category", "semantic_prior"}, {"token", map_token},
                                            {"filename", "maps/" + map_token + ".png"},
                                            {"log_tokens", Json::array({log_token})}}}));
  Canvas(32, 32).save_png(root + "/maps/" + map_token + ".png");
  write_json(v + "/scene.json",
             Json::array({{{"token", F::kScene}, {"log_token", log_token}, {"nbr_samples", 2},
                           {"first_sample_token", F::kSample0}, {"last_sample_token", F::kSample1},
                           {"name", "scene-0061"},
                           {"description", "Parked truck, construction, intersection, turn left, following a van"}}}));
  write_json(v + "/sample.json",
             Json::array({{{"token", F::kSample0}, {"timestamp", F::kSample0Time}, {"prev", ""}, {"next", F::kSample1},
                           {"scene_token", F::kScene}},
                          {{"token", F::kSample1}, {"timestamp", F::kSample1Time}, {"prev", F::kSample0}, {"next", ""},
                           {"scene_token", F::kScene}}}));

  // sample_data + ego_pose. Sample 0 uses the real tokens and timestamps of the tutorial;
  // LIDAR_TOP and CAM_FRONT have a sweep between the two key frames.
  struct Frame {
    std::string token, channel;
    long long ts;
    bool key;
    int sample;
  };
  const char* kSample0Tokens[12] = {F::kCamFront0, "aac7867ebf4f446395d29fbd60b63b3b", "79dbb4460a6b40f49f9c150cb118247e",
                                    "03bea5763f0f4722933508d5999c5fd8", "43893a033f9c46d4a51b5e08a67a1eb7",
                                    "fe5422747a7d4268a4b07fc396707b23", F::kLidar0, "37091c75b9704e0daa829ba56dfa0906",
                                    "11946c1461d14016a322916157da3c7d", "491209956ee3435a9ec173dad3aaf58b",
                                    "312aa38d0e3e4f01b3124c523e6f9776", "07b30d5eb6104e79be58eadf94382bc1"};
  const long long kOffsetUs[12] = {-35491, -27612, -20058, -10426, -528, -43107, 0, 16227, 5138, 23991, -9120, 12044};
  std::vector<Frame> frames;
  for (int k = 0; k < 12; ++k) {
    const std::string ch = kChannels[k];
    frames.push_back({kSample0Tokens[k], ch, F::kSample0Time + kOffsetUs[k], true, 0});
    if (ch == "LIDAR_TOP") frames.push_back({hex_of("sweep/LIDAR_TOP"), ch, F::kSample1Time - 50104, false, 1});
    if (ch == "CAM_FRONT") frames.push_back({"68e8e98cf7b0487baa139df808641db7", ch, F::kSample0Time + 250000, false, 1});
    frames.push_back({hex_of("sample1/" + ch), ch, F::kSample1Time + kOffsetUs[k], true, 1});
  }
  // The ego drives at 5 m/s along its heading from the real pose of the first LIDAR_TOP key frame.
  const Quat ego_q{0.5720320396729045, -0.0016977771610471074, 0.011798001930183783, -0.8201446642457809};
  const Vec3 ego_t0{411.3039349319818, 1180.8903791765097, 0.0};
  const double yaw = yaw_of(ego_q);
  Json sample_data = Json::array(), ego_pose = Json::array();
  const char* samples[2] = {F::kSample0, F::kSample1};
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const Frame& f = frames[i];
    const int k = static_cast<int>(std::find_if(std::begin(kChannels), std::end(kChannels),
                                                [&](const char* c) { return f.channel == c; }) - std::begin(kChannels));
    const bool cam = f.channel.rfind("CAM", 0) == 0, lidar = f.channel == "LIDAR_TOP";
    const std::string ext = cam ? "jpg" : lidar ? "pcd.bin" : "pcd";
    const std::string filename = cat(f.key ? "samples/" : "sweeps/", f.channel, "/", F::kLogfile, "__", f.channel, "__", f.ts, ".", ext);
    const std::string prev = i > 0 && frames[i - 1].channel == f.channel ? frames[i - 1].token : "";
    const std::string next = i + 1 < frames.size() && frames[i + 1].channel == f.channel ? frames[i + 1].token : "";
    sample_data.push_back({{"token", f.token}, {"sample_token", samples[f.sample]}, {"ego_pose_token", f.token},
                           {"calibrated_sensor_token", cs_token[k]}, {"timestamp", f.ts},
                           {"fileformat", cam ? "jpg" : "pcd"}, {"is_key_frame", f.key}, {"height", cam ? 900 : 0},
                           {"width", cam ? 1600 : 0}, {"filename", filename}, {"prev", prev}, {"next", next}});
    const double dt = 1e-6 * static_cast<double>(f.ts - F::kSample0Time);
    const Vec3 t{ego_t0[0] + 5.0 * dt * std::cos(yaw), ego_t0[1] + 5.0 * dt * std::sin(yaw), 0.0};
    ego_pose.push_back({{"token", f.token}, {"timestamp", f.ts}, {"rotation", quat_json(ego_q)}, {"translation", vec_json(t)}});
    // The blob.
    const std::string path = root + "/" + filename;
    if (cam) {
      std::vector<std::uint8_t> rgb(1600 * 900 * 3, 128);
      write_file_atomic(path, encode_jpeg(rgb.data(), 1600, 900, 50));
    } else if (lidar) {
      std::vector<float> pts;
      if (f.token == F::kLidar0)
        pts = {0, 10, 0, 50, 7, 5, 0, -1.8f, 10, 0, 0.5f, 0.5f, 0.2f, 1, 3, 0.5f, 3.0f, 0.2f, 2, 4, -20, -30, 1, 99, 31};
      else if (f.key)
        pts = {0, 12, 0.5f, 40, 9, 3, 3, 0, 20, 1};
      else
        pts = {1, 2, 3, 4, 5, 0.9f, -0.9f, 0, 0, 0};
      write_lidar_bin(path, pts.data(), pts.size() / 5);
    } else {
      RadarPoint p;
      p.x = 20, p.y = 1, p.rcs = 8, p.vx = -3, p.vx_comp = 0.5f;
      write_file_atomic(path, encode_radar_pcd({p}));
    }
  }
  write_json(v + "/sample_data.json", sample_data);
  write_json(v + "/ego_pose.json", ego_pose);

  // instance + sample_annotation: the tutorial's pedestrian (two samples), a tilted car, a
  // bicycle rack with a bicycle inside.
  const Quat car_q = Quat::from_yaw(-1.9) * Quat::from_axis_angle({0, 1, 0}, 0.05) * Quat::from_axis_angle({1, 0, 0}, -0.03);
  const std::string ped_inst = "6dd2cbf4c24b4caeb625035869bca7b5", car_inst = hex_of("instance/car"),
                    rack_inst = hex_of("instance/rack"), bike_inst = hex_of("instance/bike");
  const std::string rack_ann = hex_of("ann/rack"), bike_ann = hex_of("ann/bike");
  Json instance = Json::array(
      {{{"token", ped_inst}, {"category_token", "1fa93b757fc74fb197cdd60001ad8abf"}, {"nbr_annotations", 2},
        {"first_annotation_token", F::kPedestrianAnn}, {"last_annotation_token", F::kPedestrianAnnNext}},
       {{"token", car_inst}, {"category_token", "fd69059b62a3469fbaef25340c0eab7f"}, {"nbr_annotations", 1},
        {"first_annotation_token", F::kCarAnn}, {"last_annotation_token", F::kCarAnn}},
       {{"token", rack_inst}, {"category_token", hex_of("category/static_object.bicycle_rack")}, {"nbr_annotations", 1},
        {"first_annotation_token", rack_ann}, {"last_annotation_token", rack_ann}},
       {{"token", bike_inst}, {"category_token", hex_of("category/vehicle.bicycle")}, {"nbr_annotations", 1},
        {"first_annotation_token", bike_ann}, {"last_annotation_token", bike_ann}}});
  write_json(v + "/instance.json", instance);
  auto ann = [](const std::string& tok, const char* sample, const std::string& inst, const char* vis, Json attrs, Vec3 t,
                Vec3 size, Quat q, const std::string& prev, const std::string& next, int nl, int nr) {
    return Json{{"token", tok},         {"sample_token", sample}, {"instance_token", inst},
                {"visibility_token", vis}, {"attribute_tokens", attrs}, {"translation", vec_json(t)},
                {"size", vec_json(size)}, {"rotation", quat_json(q)}, {"prev", prev},
                {"next", next},          {"num_lidar_pts", nl},     {"num_radar_pts", nr}};
  };
  const Quat ped_q{0.9831098797903927, 0.0, 0.0, -0.18301629506281616};
  Json annotations = Json::array(
      {ann(F::kPedestrianAnn, F::kSample0, ped_inst, "1", Json::array({"4d8821270b4a47e3a8a300cbec48188e"}),
           {373.214, 1130.48, 1.25}, {0.621, 0.669, 1.642}, ped_q, "", F::kPedestrianAnnNext, 1, 0),
       ann(F::kCarAnn, F::kSample0, car_inst, "4", Json::array({"cb5118da1ab342aa947717dc53544259"}),
           {405.0, 1170.0, 0.9}, {1.9, 4.5, 1.6}, car_q, "", "", 120, 3),
       ann(F::kPedestrianAnnNext, F::kSample1, ped_inst, "2", Json::array({"ab83627ff28b465b85c427162dec722f"}),
           {373.598, 1130.1, 1.25}, {0.621, 0.669, 1.642}, ped_q, F::kPedestrianAnn, "", 2, 0),
       ann(rack_ann, F::kSample1, rack_inst, "4", Json::array(), {420.0, 1190.0, 0.55}, {2.0, 4.5, 1.1}, Quat{}, "", "", 40, 0),
       ann(bike_ann, F::kSample1, bike_inst, "3", Json::array({"5a655f9751944309a277276b8f473452"}),
           {420.5, 1190.3, 0.55}, {0.6, 1.7, 1.1}, Quat::from_yaw(1.5707963), "", "", 12, 0)});
  write_json(v + "/sample_annotation.json", annotations);
  return root;
}

const std::string& tiny_synth_dataset() {
  synth::SynthConfig cfg = synth::SynthConfig::tiny();
  cfg.scenes = 2;
  cfg.samples_per_scene = 3;
  cfg.lidar_sweeps = 2;
  cfg.camera_sweeps = 1;
  cfg.radar_sweeps = 1;
  cfg.image_width = 192;
  cfg.image_height = 108;
  cfg.azimuth_steps = 720;
  cfg.objects_per_scene = 40;
  cfg.seed = 0;
  return bevkd::testing::synth_dataset("core-tiny", cfg);
}

}  // namespace bevkd::core::nusc::testing
