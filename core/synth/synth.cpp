#include "core/synth/synth.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "base/canvas.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/math.h"
#include "base/progress.h"
#include "core/nuscenes/jpeg.h"
#include "base/json_writer.h"
#include "core/nuscenes/points_in_boxes.h"
#include "core/nuscenes/sensor_files.h"
#include "core/nuscenes/splits.h"
#include "core/nuscenes_vocab.h"
#include "core/synth/camera_sim.h"
#include "core/synth/lidar_sim.h"
#include "core/synth/radar_sim.h"
#include "core/synth/rig.h"
#include "core/synth/map_mask.h"
#include "core/synth/world.h"

namespace bevkd::core::synth {

// ---- configuration -------------------------------------------------------------------------------

void SynthConfig::validate() const {
  BEVKD_CHECK(!out_dir.empty(), "bevkd-synth: the output directory is empty");
  BEVKD_CHECK(!version.empty() && version.find('/') == std::string::npos, "bevkd-synth: version '", version,
              "' must be a plain directory name such as v1.0-mini");
  BEVKD_CHECK(scenes >= 1 && scenes <= 1000, "bevkd-synth: scenes is ", scenes, " (expected 1..1000)");
  BEVKD_CHECK(samples_per_scene >= 1 && samples_per_scene <= 400, "bevkd-synth: samples per scene is ",
              samples_per_scene, " (expected 1..400)");
  BEVKD_CHECK(lidar_sweeps >= 0 && lidar_sweeps <= 49, "bevkd-synth: lidar sweeps is ", lidar_sweeps, " (expected 0..49)");
  BEVKD_CHECK(camera_sweeps >= 0 && camera_sweeps <= 49, "bevkd-synth: camera sweeps is ", camera_sweeps,
              " (expected 0..49)");
  BEVKD_CHECK(radar_sweeps >= 0 && radar_sweeps <= 49, "bevkd-synth: radar sweeps is ", radar_sweeps, " (expected 0..49)");
  BEVKD_CHECK(image_width >= 16 && image_width <= 4096 && image_height >= 16 && image_height <= 4096,
              "bevkd-synth: image size ", image_width, "x", image_height, " (expected 16..4096 each)");
  BEVKD_CHECK(beams >= 1 && beams <= 256, "bevkd-synth: beams is ", beams, " (expected 1..256)");
  BEVKD_CHECK(azimuth_steps >= 16 && azimuth_steps <= 8192, "bevkd-synth: azimuth steps is ", azimuth_steps,
              " (expected 16..8192)");
  BEVKD_CHECK(objects_per_scene >= 0 && objects_per_scene <= 1000, "bevkd-synth: objects per scene is ",
              objects_per_scene, " (expected 0..1000)");
  BEVKD_CHECK(jpeg_quality >= 1 && jpeg_quality <= 100, "bevkd-synth: JPEG quality is ", jpeg_quality, " (expected 1..100)");
  BEVKD_CHECK(threads >= 0, "bevkd-synth: threads is ", threads);
}

std::string SynthConfig::describe() const {
  std::ostringstream os;
  os << "out_dir            " << out_dir << "\n"
     << "version            " << version << "\n"
     << "seed               " << seed << "\n"
     << "scenes             " << scenes << "\n"
     << "samples_per_scene  " << samples_per_scene << "\n"
     << "lidar_sweeps       " << lidar_sweeps << "  (LIDAR_TOP at " << 2 * (lidar_sweeps + 1) << " Hz)\n"
     << "camera_sweeps      " << camera_sweeps << "\n"
     << "radar_sweeps       " << radar_sweeps << "\n"
     << "image_size         " << image_width << "x" << image_height << "\n"
     << "beams              " << beams << "\n"
     << "azimuth_steps      " << azimuth_steps << "\n"
     << "objects_per_scene  " << objects_per_scene << "\n"
     << "jpeg_quality       " << jpeg_quality << "\n"
     << "tables_only        " << (tables_only ? "true" : "false") << "\n";
  return os.str();
}

SynthConfig SynthConfig::tiny() {
  SynthConfig c;
  c.scenes = 3;
  c.samples_per_scene = 3;
  c.lidar_sweeps = 1;
  c.image_width = 64;
  c.image_height = 36;
  c.azimuth_steps = 540;
  c.objects_per_scene = 30;
  c.seed = 5;
  c.show_progress = false;
  return c;
}

SynthConfig trainval_tables_config(const std::string& out_dir) {
  SynthConfig c;
  c.out_dir = out_dir;
  c.version = "v1.0-trainval";
  c.scenes = 850;
  c.samples_per_scene = 40;
  c.lidar_sweeps = 9;
  c.camera_sweeps = 5;
  c.radar_sweeps = 5;
  c.objects_per_scene = 57;
  c.tables_only = true;
  return c;
}

std::string SynthSummary::describe() const {
  std::ostringstream os;
  os << scenes << " scenes, " << samples << " samples, " << sample_data << " sample_data, " << instances
     << " instances, " << annotations << " annotations, " << lidar_points << " LiDAR points, " << files
     << " sensor files, tables " << static_cast<double>(table_bytes) / (1024.0 * 1024.0) << " MiB, "
     << seconds << " s";
  return os.str();
}

namespace {

constexpr double kAnnotationRange = 70.0;  // m: instances farther from the ego are not annotated
constexpr std::int64_t kKeyIntervalUs = 500000;  // 2 Hz

// ---- tokens ----------------------------------------------------------------------------------------

enum TokenKind : std::uint64_t { kScene = 1, kSampleTok, kSampleDataTok, kInstanceTok, kAnnotationTok, kCalibTok, kLogTok, kMapTok };

std::string hex_token(std::uint64_t a, std::uint64_t b) {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(a), static_cast<unsigned long long>(b));
  return buf;
}

std::string token(std::uint64_t seed, TokenKind kind, std::uint64_t a, std::uint64_t b = 0, std::uint64_t c = 0) {
  return hex_token(mix_keys(seed, kind, a, mix_keys(b, c)), mix_keys(~seed, kind * 7919, a, mix_keys(c, b, 17)));
}

// Seed-independent tokens of the fixed tables (category, attribute, sensor), from the name.
std::string name_token(std::string_view table, std::string_view name) {
  std::uint64_t h = 1469598103934665603ull;
  for (char ch : table) h = (h ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
  h = (h ^ '/') * 1099511628211ull;
  for (char ch : name) h = (h ^ static_cast<unsigned char>(ch)) * 1099511628211ull;
  return hex_token(mix_keys(h, 1), mix_keys(h, 2));
}

// ---- fixed vocabulary --------------------------------------------------------------------------------

struct CategoryDef {
  const char* name;
  const char* description;
  int index;  // lidarseg class index
};
constexpr CategoryDef kCategories[] = {
    {"animal", "All animals, e.g. cats, rats, dogs, deer, birds.", 1},
    {"human.pedestrian.adult", "Adult subcategory.", 2},
    {"human.pedestrian.child", "Child subcategory.", 3},
    {"human.pedestrian.construction_worker", "Construction worker", 4},
    {"human.pedestrian.personal_mobility", "A small electric or self-propelled vehicle, e.g. skateboard, segway.", 5},
    {"human.pedestrian.police_officer", "Police officer.", 6},
    {"human.pedestrian.stroller", "Strollers.", 7},
    {"human.pedestrian.wheelchair", "Wheelchairs.", 8},
    {"movable_object.barrier", "Temporary road barrier placed in the scene in order to redirect traffic.", 9},
    {"movable_object.debris", "Movable object that is left on the driveable surface.", 10},
    {"movable_object.pushable_pullable", "Objects that a pedestrian may push or pull, e.g. dolleys, wheel barrows, garbage-bins.", 11},
    {"movable_object.trafficcone", "All types of traffic cone.", 12},
    {"static_object.bicycle_rack", "Area or device intended to park or secure the bicycles in a row.", 13},
    {"vehicle.bicycle", "Human or electric powered 2-wheeled vehicle designed to travel at lower speeds.", 14},
    {"vehicle.bus.bendy", "Bendy bus subcategory.", 15},
    {"vehicle.bus.rigid", "Rigid bus subcategory.", 16},
    {"vehicle.car", "Vehicle designed primarily for personal use, e.g. sedans, hatch-backs, wagons, vans.", 17},
    {"vehicle.construction", "Vehicles primarily designed for construction. Typically very slow moving or stationary.", 18},
    {"vehicle.emergency.ambulance", "All types of ambulances.", 19},
    {"vehicle.emergency.police", "All types of police vehicles.", 20},
    {"vehicle.motorcycle", "Gasoline or electric powered 2-wheeled vehicle designed to move rapidly.", 21},
    {"vehicle.trailer", "Any vehicle trailer, both for trucks, cars and bikes.", 22},
    {"vehicle.truck", "Vehicles primarily designed to haul cargo including pick-ups, lorrys, trucks and semi-tractors.", 23},
};

constexpr const char* kAttributeDescriptions[kNumAttributes] = {
    "Vehicle is moving.",
    "Vehicle, with a driver/rider in/on it, is currently stationary but has an intent to move.",
    "Vehicle is stationary (usually for a long period of time) with no immediate intent to move.",
    "There is a rider on the bicycle or motorcycle.",
    "There is NO rider on the bicycle or motorcycle.",
    "The human is sitting or lying down.",
    "The human is standing.",
    "The human is moving."};

struct VisibilityDef {
  const char* token;
  const char* level;
  const char* description;
};
constexpr VisibilityDef kVisibility[] = {
    {"1", "v0-40", "visibility of whole object is between 0 and 40%"},
    {"2", "v40-60", "visibility of whole object is between 40 and 60%"},
    {"3", "v60-80", "visibility of whole object is between 60 and 80%"},
    {"4", "v80-100", "visibility of whole object is between 80 and 100%"},
};

struct LocationDef {
  const char* name;
  const char* vehicle;
  int utc_offset_h;
};
constexpr LocationDef kLocations[] = {{"singapore-onenorth", "n015", 8},
                                      {"boston-seaport", "n008", -4},
                                      {"singapore-queenstown", "n015", 8},
                                      {"singapore-hollandvillage", "n015", 8}};

// ---- records -----------------------------------------------------------------------------------------

struct CalibRec {
  std::string token, sensor_token;
  Calibration cal;
};
struct EgoRec {
  std::string token;
  std::int64_t ts;
  Rigid pose;
  Quat q;
};
struct SampleRec {
  std::string token;
  std::int64_t ts;
  std::string prev, next;
};
struct SampleDataRec {
  std::string token, sample_token, cs_token, fileformat, filename, prev, next;
  std::int64_t ts;
  bool key;
  int width, height;
};
struct InstanceRec {
  std::string token, category_token, first, last;
  int nbr = 0;
};
struct AnnRec {
  std::string token, sample_token, instance_token, attribute_token, visibility_token, prev, next;
  Vec3 translation, size;
  Quat rotation;
  int num_lidar = 0, num_radar = 0;
};

struct LogInfo {
  std::string token, logfile, vehicle, date, location;
  std::int64_t base_us;
};

struct SceneOutput {
  std::string token, name, description, log_token;
  MapRoad map_road;  // the road the map mask paints
  std::vector<CalibRec> calib;
  std::vector<EgoRec> ego;
  std::vector<SampleRec> samples;
  std::vector<SampleDataRec> sample_data;
  std::vector<InstanceRec> instances;
  std::vector<AnnRec> anns;
  std::int64_t lidar_points = 0, files = 0;
};

struct Context {
  const SynthConfig& cfg;
  std::vector<std::string> scene_names;
  std::vector<LogInfo> logs;
  std::vector<int> scene_log;
  std::vector<std::int64_t> scene_t0;
};

// Writes bytes under a temporary name and renames them into place (no fsync: the dataset is
// reproducible from its seed; a killed run never leaves a torn file under a final name).
void write_file_fast(const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  BEVKD_CHECK(f != nullptr, "cannot write ", tmp, ": ", std::strerror(errno));
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  const bool closed = std::fclose(f) == 0;
  BEVKD_CHECK(ok && closed, "cannot write ", tmp, ": ", std::strerror(errno));
  BEVKD_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "cannot rename ", tmp, " to ", path, ": ", std::strerror(errno));
}

// "YYYY-MM-DD-HH-MM-SS" of a UNIX time (µs) shifted by the location's UTC offset.
std::string local_time(std::int64_t us, int utc_offset_h, bool date_only) {
  const std::time_t secs = static_cast<std::time_t>(us / 1000000 + utc_offset_h * 3600);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  if (date_only)
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  else
    std::strftime(buf, sizeof buf, "%Y-%m-%d-%H-%M-%S", &tm);
  return buf;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Real scene names: mini names first for a "mini" version, train/val lists otherwise; about
// 3/17 of the scenes (150 of 850, 2 of 10) are validation scenes.
std::vector<std::string> assign_scene_names(const SynthConfig& cfg, std::vector<char>* is_val) {
  const int n = cfg.scenes;
  const int n_val = n >= 2 ? std::max(1, static_cast<int>(std::lround(n * 3.0 / 17.0))) : 0;
  is_val->assign(static_cast<std::size_t>(n), 0);
  for (int k = 0; k < n; ++k)
    (*is_val)[k] = static_cast<char>((static_cast<long>(k + 1) * n_val) / n > (static_cast<long>(k) * n_val) / n);
  std::vector<std::string> train_pool, val_pool;
  auto append_new = [](std::vector<std::string>& pool, const std::vector<std::string>& names, const std::set<std::string>& avoid) {
    std::set<std::string> have(pool.begin(), pool.end());
    for (const std::string& s : names)
      if (!have.count(s) && !avoid.count(s)) pool.push_back(s), have.insert(s);
  };
  if (ends_with(cfg.version, "test")) {
    append_new(train_pool, nusc::predefined_split_scenes("test"), {});
    val_pool = train_pool;
  } else if (ends_with(cfg.version, "mini")) {
    const auto& mt = nusc::predefined_split_scenes("mini_train");
    const auto& mv = nusc::predefined_split_scenes("mini_val");
    std::set<std::string> mini(mt.begin(), mt.end());
    mini.insert(mv.begin(), mv.end());
    append_new(train_pool, mt, {});
    append_new(train_pool, nusc::predefined_split_scenes("train"), mini);
    append_new(val_pool, mv, {});
    append_new(val_pool, nusc::predefined_split_scenes("val"), mini);
  } else {
    append_new(train_pool, nusc::predefined_split_scenes("train"), {});
    append_new(val_pool, nusc::predefined_split_scenes("val"), {});
  }
  std::vector<std::string> names;
  std::size_t ti = 0, vi = 0;
  std::set<std::string> used;
  for (int k = 0; k < n; ++k) {
    std::vector<std::string>& pool = (*is_val)[k] ? val_pool : train_pool;
    std::size_t& i = (*is_val)[k] ? vi : ti;
    while (i < pool.size() && used.count(pool[i])) ++i;
    BEVKD_CHECK(i < pool.size(), "bevkd-synth: ", n, " scenes need more real scene names than the ",
                (*is_val)[k] ? "val" : "train", " list offers for version ", cfg.version);
    used.insert(pool[i]);
    names.push_back(pool[i++]);
  }
  return names;
}

std::string visibility_token(double fraction) {
  if (fraction < 0.4) return "1";
  if (fraction < 0.6) return "2";
  if (fraction < 0.8) return "3";
  return "4";
}

// ---- one scene -----------------------------------------------------------------------------------------

SceneOutput generate_scene(const Context& ctx, int si) {
  const SynthConfig& cfg = ctx.cfg;
  const std::uint64_t seed = cfg.seed;
  SceneOutput out;
  out.token = token(seed, kScene, static_cast<std::uint64_t>(si));
  out.name = ctx.scene_names[si];
  const LogInfo& log = ctx.logs[static_cast<std::size_t>(ctx.scene_log[si])];
  out.log_token = log.token;
  const int S = cfg.samples_per_scene;
  const double duration = (S - 1) * 0.5;

  Rng world_rng(mix_keys(seed, static_cast<std::uint64_t>(si), 0x3017D));
  const SceneWorld world = make_scene_world(world_rng, cfg.objects_per_scene, duration);
  out.map_road.road = world.road;
  out.map_road.s_lo = world.ego.s0 - 75.0;  // the stretch make_scene_world builds
  out.map_road.s_hi = world.ego.s0 + world.ego.speed * duration + 75.0;
  {
    std::ostringstream os;
    os << "Synthetic: " << (world.road.curvature == 0 ? "straight road" : "curved road") << ", ego "
       << (world.ego.speed < 0.1 ? std::string("waiting") : cat(std::lround(world.ego.speed * 3.6), " km/h"))
       << ", lane closure with barriers and cones, parked cars, pedestrians, bicycle rack";
    out.description = os.str();
  }

  // Calibration of the 12 sensors in this scene.
  Rng cal_rng(mix_keys(seed, static_cast<std::uint64_t>(si), 0xCA11B));
  const auto& specs = sensor_specs();
  for (int k = 0; k < kNumSensors; ++k) {
    CalibRec c;
    c.token = token(seed, kCalibTok, static_cast<std::uint64_t>(si), static_cast<std::uint64_t>(k));
    c.sensor_token = name_token("sensor", specs[k].channel);
    c.cal = calibrate(k, cal_rng, cfg.image_width, cfg.image_height);
    out.calib.push_back(std::move(c));
  }

  // Key-frame times (µs): 2 Hz with a millisecond of jitter; the sample time is the LiDAR's.
  const std::int64_t t0 = ctx.scene_t0[si];
  Rng time_rng(mix_keys(seed, static_cast<std::uint64_t>(si), 0x71AE));
  std::vector<std::int64_t> key_us(static_cast<std::size_t>(S));
  for (int i = 0; i < S; ++i)
    key_us[i] = t0 + i * kKeyIntervalUs + (i > 0 ? static_cast<std::int64_t>(time_rng.uniform(-1500, 1500)) : 0);
  auto secs = [t0](std::int64_t us) { return 1e-6 * static_cast<double>(us - t0); };
  for (int i = 0; i < S; ++i) {
    SampleRec s;
    s.token = token(seed, kSampleTok, static_cast<std::uint64_t>(si), static_cast<std::uint64_t>(i));
    s.ts = key_us[i];
    out.samples.push_back(std::move(s));
  }
  for (int i = 0; i < S; ++i) {
    out.samples[i].prev = i > 0 ? out.samples[i - 1].token : "";
    out.samples[i].next = i + 1 < S ? out.samples[i + 1].token : "";
  }

  // Per key frame: the LiDAR cloud (lidar frame), radar points (global, after the devkit
  // filter) and camera visibility counts, for the annotations' num_*_pts and visibility.
  std::vector<std::vector<float>> key_lidar(static_cast<std::size_t>(S));
  std::vector<std::vector<Vec3>> key_radar(static_cast<std::size_t>(S));
  std::vector<std::vector<long>> key_visible(static_cast<std::size_t>(S)), key_covered(static_cast<std::size_t>(S));
  for (int i = 0; i < S; ++i) {
    key_visible[i].assign(world.things.size(), 0);
    key_covered[i].assign(world.things.size(), 0);
  }

  LidarSpec lidar_spec;
  lidar_spec.beams = cfg.beams;
  lidar_spec.azimuth_steps = cfg.azimuth_steps;
  const nusc::RadarFilter radar_filter = nusc::RadarFilter::devkit_default();
  std::uint64_t frame_counter = 0;
  for (int k = 0; k < kNumSensors; ++k) {
    const SensorSpec& spec = specs[k];
    const std::string channel(spec.channel);
    const bool lidar = spec.modality == "lidar", camera = spec.modality == "camera";
    const int nsw = lidar ? cfg.lidar_sweeps : camera ? cfg.camera_sweeps : cfg.radar_sweeps;
    const char* ext = lidar ? "pcd.bin" : camera ? "jpg" : "pcd";
    Rng jitter_rng(mix_keys(seed, static_cast<std::uint64_t>(si), 0x0FF5E7, static_cast<std::uint64_t>(k)));
    // Firing time of this sensor's key frame in each sample.
    std::vector<std::int64_t> fire_us(static_cast<std::size_t>(S));
    for (int i = 0; i < S; ++i) {
      const double jitter = spec.modality == "radar" ? jitter_rng.uniform(-0.004, 0.004) : 0.0;
      fire_us[i] = key_us[i] + static_cast<std::int64_t>(std::llround((spec.time_offset_s + jitter) * 1e6));
    }
    const std::size_t chain_start = out.sample_data.size();
    for (int i = 0; i < S; ++i) {
      const int first_j = i > 0 ? 1 : nsw + 1;  // no sweeps before the first key frame
      for (int j = first_j; j <= nsw + 1; ++j) {
        const bool key = j == nsw + 1;
        const std::int64_t ts =
            key ? fire_us[i] : fire_us[i - 1] + (fire_us[i] - fire_us[i - 1]) * j / (nsw + 1);
        const double t = secs(ts);
        SampleDataRec sd;
        sd.token = token(seed, kSampleDataTok, static_cast<std::uint64_t>(si), frame_counter++);
        sd.sample_token = out.samples[i].token;
        sd.cs_token = out.calib[k].token;
        sd.fileformat = camera ? "jpg" : "pcd";
        sd.key = key;
        sd.ts = ts;
        sd.width = camera ? cfg.image_width : 0;
        sd.height = camera ? cfg.image_height : 0;
        sd.filename = cat(key ? "samples/" : "sweeps/", channel, "/", log.logfile, "__", channel, "__", ts, ".", ext);
        const Rigid ego = ego_pose_at(world, t);
        out.ego.push_back({sd.token, ts, ego, Quat::from_matrix(ego.R)});
        if (!cfg.tables_only) {
          const Rigid sensor_to_global = ego * out.calib[k].cal.sensor_to_ego;
          Rng frame_rng(mix_keys(seed, static_cast<std::uint64_t>(si), 0xF4A3E, mix_keys(k, static_cast<std::uint64_t>(i), j)));
          const std::string path = cat(cfg.out_dir, "/", sd.filename);
          if (lidar) {
            std::vector<float> pts = simulate_lidar(world, t, sensor_to_global, ego, lidar_spec, frame_rng);
            write_file_fast(path, std::string_view(reinterpret_cast<const char*>(pts.data()), pts.size() * sizeof(float)));
            out.lidar_points += static_cast<std::int64_t>(pts.size() / 5);
            if (key) key_lidar[i] = std::move(pts);
          } else if (camera) {
            const CameraFrame img = render_camera(world, t, sensor_to_global, out.calib[k].cal.K, cfg.image_width,
                                                  cfg.image_height, frame_rng);
            write_file_fast(path, nusc::encode_jpeg(img.rgb.data(), img.width, img.height, cfg.jpeg_quality));
            if (key)
              for (std::size_t q = 0; q < world.things.size(); ++q) {
                key_visible[i][q] += img.visible[q];
                key_covered[i][q] += img.covered[q];
              }
          } else {
            const double dt = 0.05;
            const Vec3 a = ego_pose_at(world, t - dt).t, b = ego_pose_at(world, t + dt).t;
            const Vec3 v_ego{(b[0] - a[0]) / (2 * dt), (b[1] - a[1]) / (2 * dt), 0.0};
            const std::vector<nusc::RadarPoint> pts =
                simulate_radar(world, t, sensor_to_global, v_ego, channel == "RADAR_FRONT", frame_rng);
            write_file_fast(path, nusc::encode_radar_pcd(pts));
            if (key)
              for (const nusc::RadarPoint& p : pts)
                if (radar_filter.keeps(p)) key_radar[i].push_back(sensor_to_global.apply({p.x, p.y, p.z}));
          }
          ++out.files;
        }
        out.sample_data.push_back(std::move(sd));
      }
    }
    for (std::size_t q = chain_start; q < out.sample_data.size(); ++q) {
      out.sample_data[q].prev = q > chain_start ? out.sample_data[q - 1].token : "";
      out.sample_data[q].next = q + 1 < out.sample_data.size() ? out.sample_data[q + 1].token : "";
    }
  }

  // Annotations: every annotated instance within kAnnotationRange of the ego at the key frame.
  std::vector<int> instance_of(world.things.size(), -1);
  std::vector<int> last_ann(world.things.size(), -1);
  Rng est_rng(mix_keys(seed, static_cast<std::uint64_t>(si), 0xE57));
  const Calibration& lidar_cal = out.calib[0].cal;
  for (int i = 0; i < S; ++i) {
    const double t = secs(key_us[i]);
    const Rigid ego = ego_pose_at(world, t);
    const Rigid global_to_lidar = (ego * lidar_cal.sensor_to_ego).inverse();
    const Quat q_global_to_lidar = Quat::from_matrix(global_to_lidar.R);
    std::vector<std::size_t> things;
    std::vector<NuscBox> boxes_lidar, boxes_global;
    for (std::size_t q = 0; q < world.things.size(); ++q) {
      const Thing& th = world.things[q];
      if (!th.annotated()) continue;
      const ThingPose p = pose_at(world.road, th, t);
      const double dx = p.center[0] - ego.t[0], dy = p.center[1] - ego.t[1];
      if (dx * dx + dy * dy > kAnnotationRange * kAnnotationRange) continue;
      // Millimetres, as the real annotations; the points are counted in the box as written.
      NuscBox g;
      for (int c = 0; c < 3; ++c) g.translation[c] = std::round(p.center[c] * 1000.0) / 1000.0;
      g.size = {std::round(th.w * 1000.0) / 1000.0, std::round(th.l * 1000.0) / 1000.0, std::round(th.h * 1000.0) / 1000.0};
      g.rotation = p.rotation;
      NuscBox l = g;
      l.translation = global_to_lidar.apply(g.translation);
      l.rotation = q_global_to_lidar * g.rotation;
      things.push_back(q);
      boxes_global.push_back(g);
      boxes_lidar.push_back(l);
    }
    std::vector<std::int32_t> n_lidar(things.size(), 0), n_radar(things.size(), 0);
    if (!cfg.tables_only) {
      n_lidar = nusc::count_points_in_boxes(key_lidar[i].data(), key_lidar[i].size() / 5, 5, boxes_lidar);
      for (std::size_t b = 0; b < things.size(); ++b)
        for (const Vec3& p : key_radar[i]) n_radar[b] += nusc::point_in_nusc_box(boxes_global[b], p) ? 1 : 0;
    }
    for (std::size_t b = 0; b < things.size(); ++b) {
      const std::size_t q = things[b];
      const Thing& th = world.things[q];
      AnnRec a;
      a.token = token(seed, kAnnotationTok, static_cast<std::uint64_t>(si), static_cast<std::uint64_t>(i), q);
      a.sample_token = out.samples[i].token;
      a.translation = boxes_global[b].translation;
      a.size = boxes_global[b].size;
      a.rotation = boxes_global[b].rotation;
      if (th.attribute >= 0) a.attribute_token = name_token("attribute", kAttributeNames[th.attribute]);
      if (cfg.tables_only) {
        // No clouds: estimate the counts from the solid angle (a 32-beam LiDAR gives about one
        // point per 1.35e-4 sr) and the visibility from the distance.
        const double r = std::max(2.0, std::hypot(boxes_lidar[b].translation[0], boxes_lidar[b].translation[1]));
        const double area = std::max(th.l, th.w) * th.h;
        a.num_lidar = r > 80 ? 0 : static_cast<int>(0.6 * area / (r * r * 1.35e-4) * est_rng.uniform(0.3, 1.0));
        a.num_radar = (r < 70 && th.w > 1.2 && th.category.rfind("vehicle", 0) == 0) ? est_rng.uniform_int(4) : 0;
        a.visibility_token = visibility_token(std::clamp(1.2 - r / 60 + est_rng.uniform(-0.3, 0.3), 0.0, 1.0));
      } else {
        a.num_lidar = n_lidar[b];
        a.num_radar = n_radar[b];
        const long cov = key_covered[i][q];
        a.visibility_token = visibility_token(cov > 0 ? static_cast<double>(key_visible[i][q]) / cov : 0.0);
      }
      if (instance_of[q] < 0) {
        instance_of[q] = static_cast<int>(out.instances.size());
        InstanceRec inst;
        inst.token = token(seed, kInstanceTok, static_cast<std::uint64_t>(si), q);
        inst.category_token = name_token("category", th.category);
        inst.first = a.token;
        out.instances.push_back(std::move(inst));
      }
      InstanceRec& inst = out.instances[static_cast<std::size_t>(instance_of[q])];
      a.instance_token = inst.token;
      inst.last = a.token;
      ++inst.nbr;
      if (last_ann[q] >= 0) {
        AnnRec& prev = out.anns[static_cast<std::size_t>(last_ann[q])];
        prev.next = a.token;
        a.prev = prev.token;
      }
      last_ann[q] = static_cast<int>(out.anns.size());
      out.anns.push_back(std::move(a));
    }
  }
  return out;
}

// ---- table writers -----------------------------------------------------------------------------------

void write_fixed_tables(const std::string& dir, const std::vector<LogInfo>& logs,
                        const std::vector<std::pair<std::string, std::vector<std::string>>>& maps) {
  {
    JsonWriter w(dir + "/category.json", JsonFormat::nuscenes_tables());
    w.begin_array();
    for (const CategoryDef& c : kCategories)
      w.begin_object()
          .field("token", name_token("category", c.name))
          .field("name", c.name)
          .field("description", c.description)
          .field("index", c.index)
          .end_object();
    w.end_array();
    w.close();
  }
  {
    JsonWriter w(dir + "/attribute.json", JsonFormat::nuscenes_tables());
    w.begin_array();
    for (int a = 0; a < kNumAttributes; ++a)
      w.begin_object()
          .field("token", name_token("attribute", kAttributeNames[a]))
          .field("name", kAttributeNames[a])
          .field("description", kAttributeDescriptions[a])
          .end_object();
    w.end_array();
    w.close();
  }
  {
    JsonWriter w(dir + "/visibility.json", JsonFormat::nuscenes_tables());
    w.begin_array();
    for (const VisibilityDef& v : kVisibility)
      w.begin_object().field("description", v.description).field("token", v.token).field("level", v.level).end_object();
    w.end_array();
    w.close();
  }
  {
    JsonWriter w(dir + "/sensor.json", JsonFormat::nuscenes_tables());
    w.begin_array();
    for (const SensorSpec& s : sensor_specs())
      w.begin_object()
          .field("token", name_token("sensor", s.channel))
          .field("channel", s.channel)
          .field("modality", s.modality)
          .end_object();
    w.end_array();
    w.close();
  }
  {
    JsonWriter w(dir + "/log.json", JsonFormat::nuscenes_tables());
    w.begin_array();
    for (const LogInfo& l : logs)
      w.begin_object()
          .field("token", l.token)
          .field("logfile", l.logfile)
          .field("vehicle", l.vehicle)
          .field("date_captured", l.date)
          .field("location", l.location)
          .end_object();
    w.end_array();
    w.close();
  }
  {
    JsonWriter w(dir + "/map.json", JsonFormat::nuscenes_tables());
    w.begin_array();
    for (const auto& [location, log_tokens] : maps) {
      const std::string tok = name_token("map", location);
      w.begin_object().field("category", "semantic_prior").field("token", tok).field("filename", "maps/" + tok + ".png");
      w.key("log_tokens").begin_array();
      for (const std::string& t : log_tokens) w.value(t);
      w.end_array();
      w.end_object();
    }
    w.end_array();
    w.close();
  }
}

struct StreamedTables {
  explicit StreamedTables(const std::string& dir)
      : calibrated_sensor(dir + "/calibrated_sensor.json", JsonFormat::nuscenes_tables()),
        ego_pose(dir + "/ego_pose.json", JsonFormat::nuscenes_tables()),
        scene(dir + "/scene.json", JsonFormat::nuscenes_tables()),
        sample(dir + "/sample.json", JsonFormat::nuscenes_tables()),
        sample_data(dir + "/sample_data.json", JsonFormat::nuscenes_tables()),
        instance(dir + "/instance.json", JsonFormat::nuscenes_tables()),
        sample_annotation(dir + "/sample_annotation.json", JsonFormat::nuscenes_tables()) {
    for (JsonWriter* w : all()) w->begin_array();
  }
  std::vector<JsonWriter*> all() {
    return {&calibrated_sensor, &ego_pose, &scene, &sample, &sample_data, &instance, &sample_annotation};
  }

  void append(const SceneOutput& s) {
    for (const CalibRec& c : s.calib) {
      calibrated_sensor.begin_object().field("token", c.token).field("sensor_token", c.sensor_token);
      calibrated_sensor.field("translation", c.cal.translation.data(), 3);
      const double q[4] = {c.cal.rotation.w, c.cal.rotation.x, c.cal.rotation.y, c.cal.rotation.z};
      calibrated_sensor.field("rotation", q, 4);
      calibrated_sensor.key("camera_intrinsic").begin_array();
      if (c.cal.camera)
        for (int r = 0; r < 3; ++r) {
          calibrated_sensor.begin_array();
          for (int col = 0; col < 3; ++col) calibrated_sensor.value(c.cal.K[r * 3 + col]);
          calibrated_sensor.end_array();
        }
      calibrated_sensor.end_array().end_object();
    }
    for (const EgoRec& e : s.ego) {
      ego_pose.begin_object().field("token", e.token).field("timestamp", e.ts);
      const double q[4] = {e.q.w, e.q.x, e.q.y, e.q.z};
      ego_pose.field("rotation", q, 4);
      ego_pose.field("translation", e.pose.t.data(), 3);
      ego_pose.end_object();
    }
    scene.begin_object()
        .field("token", s.token)
        .field("log_token", s.log_token)
        .field("nbr_samples", static_cast<int>(s.samples.size()))
        .field("first_sample_token", s.samples.front().token)
        .field("last_sample_token", s.samples.back().token)
        .field("name", s.name)
        .field("description", s.description)
        .end_object();
    for (const SampleRec& r : s.samples)
      sample.begin_object()
          .field("token", r.token)
          .field("timestamp", r.ts)
          .field("prev", r.prev)
          .field("next", r.next)
          .field("scene_token", s.token)
          .end_object();
    for (const SampleDataRec& d : s.sample_data)
      sample_data.begin_object()
          .field("token", d.token)
          .field("sample_token", d.sample_token)
          .field("ego_pose_token", d.token)
          .field("calibrated_sensor_token", d.cs_token)
          .field("timestamp", d.ts)
          .field("fileformat", d.fileformat)
          .field("is_key_frame", d.key)
          .field("height", d.height)
          .field("width", d.width)
          .field("filename", d.filename)
          .field("prev", d.prev)
          .field("next", d.next)
          .end_object();
    for (const InstanceRec& i : s.instances)
      instance.begin_object()
          .field("token", i.token)
          .field("category_token", i.category_token)
          .field("nbr_annotations", i.nbr)
          .field("first_annotation_token", i.first)
          .field("last_annotation_token", i.last)
          .end_object();
    for (const AnnRec& a : s.anns) {
      sample_annotation.begin_object()
          .field("token", a.token)
          .field("sample_token", a.sample_token)
          .field("instance_token", a.instance_token)
          .field("visibility_token", a.visibility_token);
      sample_annotation.key("attribute_tokens").begin_array();
      if (!a.attribute_token.empty()) sample_annotation.value(a.attribute_token);
      sample_annotation.end_array();
      sample_annotation.field("translation", a.translation.data(), 3);
      sample_annotation.field("size", a.size.data(), 3);
      const double q[4] = {a.rotation.w, a.rotation.x, a.rotation.y, a.rotation.z};
      sample_annotation.field("rotation", q, 4);
      sample_annotation.field("prev", a.prev)
          .field("next", a.next)
          .field("num_lidar_pts", a.num_lidar)
          .field("num_radar_pts", a.num_radar)
          .end_object();
    }
  }

  void close() {
    for (JsonWriter* w : all()) {
      w->end_array();
      w->close();
    }
  }

  JsonWriter calibrated_sensor, ego_pose, scene, sample, sample_data, instance, sample_annotation;
};

}  // namespace

SynthSummary generate(const SynthConfig& cfg) {
  cfg.validate();
  const auto start = std::chrono::steady_clock::now();
  const std::string table_dir = cfg.out_dir + "/" + cfg.version;
  make_dirs(table_dir);
  make_dirs(cfg.out_dir + "/maps");
  if (!cfg.tables_only)
    for (const SensorSpec& s : sensor_specs()) {
      make_dirs(cat(cfg.out_dir, "/samples/", s.channel));
      make_dirs(cat(cfg.out_dir, "/sweeps/", s.channel));
    }
  write_file_fast(cfg.out_dir + "/synth_config.txt", cfg.describe());

  Context ctx{cfg, {}, {}, {}, {}};
  std::vector<char> is_val;
  ctx.scene_names = assign_scene_names(cfg, &is_val);
  // Logs: about 4 scenes per 5 logs (real mini: 10 scenes, 8 logs), a location each.
  const int n_logs = std::max(1, std::min(cfg.scenes, (cfg.scenes * 4 + 4) / 5));
  for (int l = 0; l < n_logs; ++l) {
    const LocationDef& loc = kLocations[l % 4];
    LogInfo info;
    info.token = token(cfg.seed, kLogTok, static_cast<std::uint64_t>(l));
    // 2018-07-24 + 3 days per log, a varying time of day.
    info.base_us = 1532402927000000LL + l * 3LL * 86400000000LL + (l * 7919LL % 36000LL) * 1000000LL;
    info.vehicle = loc.vehicle;
    info.location = loc.name;
    const std::string tz = loc.utc_offset_h >= 0 ? cat("+", loc.utc_offset_h < 10 ? "0" : "", loc.utc_offset_h, "00")
                                                 : cat("-0", -loc.utc_offset_h, "00");
    info.logfile = cat(loc.vehicle, "-", local_time(info.base_us, loc.utc_offset_h, false), tz);
    info.date = local_time(info.base_us, loc.utc_offset_h, true);
    ctx.logs.push_back(info);
  }
  for (int s = 0; s < cfg.scenes; ++s) {
    ctx.scene_log.push_back(s % n_logs);
    // Scenes of one log are 30 minutes apart.
    ctx.scene_t0.push_back(ctx.logs[static_cast<std::size_t>(s % n_logs)].base_us + (s / n_logs) * 1800LL * 1000000LL);
  }
  std::vector<std::pair<std::string, std::vector<std::string>>> maps;
  for (int l = 0; l < n_logs; ++l) {
    const std::string& location = ctx.logs[static_cast<std::size_t>(l)].location;
    auto it = std::find_if(maps.begin(), maps.end(), [&](const auto& m) { return m.first == location; });
    if (it == maps.end()) {
      maps.push_back({location, {}});
      it = maps.end() - 1;
    }
    it->second.push_back(ctx.logs[static_cast<std::size_t>(l)].token);
  }
  write_fixed_tables(table_dir, ctx.logs, maps);
  // Map masks (written after the scenes: they cover every ego pose of their logs, map_mask.h).
  std::map<std::string, std::vector<MapRoad>> map_roads;
  std::map<std::string, std::vector<Vec3>> map_poses;

  SynthSummary sum;
  StreamedTables tables(table_dir);
  ProgressOptions popts;
  popts.unit = "scenes";
  popts.enabled = cfg.show_progress;
  Progress progress(cat("bevkd-synth ", cfg.version), cfg.scenes, popts);
  const int threads = cfg.threads > 0 ? cfg.threads : std::max(1u, std::thread::hardware_concurrency());
  // Scenes are generated in parallel batches and appended to the tables in scene order, so
  // the output does not depend on the thread count.
  for (int batch = 0; batch < cfg.scenes; batch += threads) {
    const int n = std::min(threads, cfg.scenes - batch);
    std::vector<SceneOutput> outs(static_cast<std::size_t>(n));
    std::vector<std::exception_ptr> errors(static_cast<std::size_t>(n));
    std::atomic<int> next{0};
    auto work = [&]() {
      for (int k = next++; k < n; k = next++) {
        try {
          outs[k] = generate_scene(ctx, batch + k);
        } catch (...) {
          errors[k] = std::current_exception();
        }
        progress.advance();
      }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < std::min(threads, n); ++t) pool.emplace_back(work);
    work();
    for (std::thread& t : pool) t.join();
    for (const std::exception_ptr& e : errors)
      if (e) std::rethrow_exception(e);
    for (std::size_t k = 0; k < outs.size(); ++k) {
      const SceneOutput& o = outs[k];
      const std::string& location = ctx.logs[static_cast<std::size_t>(ctx.scene_log[batch + static_cast<int>(k)])].location;
      map_roads[location].push_back(o.map_road);
      for (const EgoRec& e : o.ego) map_poses[location].push_back(e.pose.t);
      tables.append(o);
      ++sum.scenes;
      sum.samples += static_cast<std::int64_t>(o.samples.size());
      sum.sample_data += static_cast<std::int64_t>(o.sample_data.size());
      sum.annotations += static_cast<std::int64_t>(o.anns.size());
      sum.instances += static_cast<std::int64_t>(o.instances.size());
      sum.lidar_points += o.lidar_points;
      sum.files += o.files;
    }
  }
  tables.close();
  progress.finish();
  for (const auto& m : maps) {  // the devkit opens every map's mask file
    const GrayImage mask = make_map_mask(map_roads[m.first], map_poses[m.first]);
    write_file_fast(cat(cfg.out_dir, "/maps/", name_token("map", m.first), ".png"),
                    encode_png_gray(mask.pixels.data(), mask.width, mask.height));
  }

  // Custom splits over all scenes (the predefined splits select the real names above).
  {
    JsonWriter w(table_dir + "/splits.json", JsonFormat::nuscenes_tables());
    w.begin_object();
    for (const char* split : {"synth_train", "synth_val", "synth_all"}) {
      w.key(split).begin_array();
      for (int s = 0; s < cfg.scenes; ++s) {
        const bool val = is_val[static_cast<std::size_t>(s)] != 0;
        if (std::string(split) == "synth_all" || (std::string(split) == "synth_val") == val)
          w.value(ctx.scene_names[static_cast<std::size_t>(s)]);
      }
      w.end_array();
    }
    w.end_object();
    w.close();
  }
  for (const char* t : {"category", "attribute", "visibility", "instance", "sensor", "calibrated_sensor", "ego_pose",
                        "log", "scene", "sample", "sample_data", "sample_annotation", "map"})
    sum.table_bytes += static_cast<std::int64_t>(file_size(cat(table_dir, "/", t, ".json")));
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return sum;
}

}  // namespace bevkd::core::synth
