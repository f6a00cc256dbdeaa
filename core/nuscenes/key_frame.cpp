#include "core/nuscenes/key_frame.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "base/error.h"
#include "base/fs.h"
#include "core/nuscenes/jpeg.h"
#include "core/nuscenes/sensor_files.h"

namespace bevkd::core::nusc {

std::vector<std::uint32_t> lidar_sweep_chain(const NuScenes& db, std::uint32_t key_sd, int nsweeps) {
  std::vector<std::uint32_t> chain;
  std::uint32_t sd = key_sd;
  for (int k = 0; k < nsweeps && sd != kNone; ++k) {
    chain.push_back(sd);
    sd = db.sample_data()[sd].prev;
  }
  return chain;
}

KeyFrameLoader::KeyFrameLoader(const NuScenes& db, KeyFrameOptions opts)
    : db_(db), opts_(opts), root_(db.dataroot()) {
  BEVKD_CHECK(opts_.nsweeps >= 1, "key-frame loader: nsweeps is ", opts_.nsweeps, " (expected >= 1; 1 = key frame only)");
  BEVKD_CHECK(std::isfinite(opts_.min_distance) && opts_.min_distance >= 0, "key-frame loader: min_distance is ",
              opts_.min_distance, " (expected a finite value >= 0)");
}

std::string KeyFrameLoader::sd_source(std::uint32_t sd) const {
  return cat(db_.table_path(Table::kSampleData), " record ", sd, " (token \"", db_.token(Table::kSampleData, sd),
             "\"), field \"filename\"");
}

namespace {

// Drops (or refuses) LiDAR points with a NaN/Inf in x, y, z or intensity; refuses an empty
// cloud and one with no finite point. `raw` is [n, 5] float32.
std::int64_t check_lidar_points(std::vector<float>& raw, const std::string& path, bool drop) {
  const std::size_t n = raw.size() / kLidarBinFields;
  BEVKD_CHECK(n > 0, "LiDAR file ", path, " has no points (an empty file)");
  std::size_t kept = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const float* p = raw.data() + i * kLidarBinFields;
    const bool finite = std::isfinite(p[0]) && std::isfinite(p[1]) && std::isfinite(p[2]) && std::isfinite(p[3]);
    if (!finite) {
      BEVKD_CHECK(drop, "LiDAR file ", path, ": point ", i, " of ", n, " has a non-finite value (x ", p[0], ", y ", p[1],
                  ", z ", p[2], ", intensity ", p[3], "); NaN/Inf points are refused (--drop-nonfinite-points drops "
                  "and counts them)");
      continue;
    }
    if (kept != i) std::copy(p, p + kLidarBinFields, raw.data() + kept * kLidarBinFields);
    ++kept;
  }
  BEVKD_CHECK(kept > 0, "LiDAR file ", path, ": all ", n, " points have a NaN/Inf value; no point is left");
  raw.resize(kept * kLidarBinFields);
  return static_cast<std::int64_t>(n - kept);
}

bool box_finite(const Box& b) {
  const auto a = b.to_array();
  return std::all_of(a.begin(), a.end(), [](double v) { return std::isfinite(v); });
}

}  // namespace

std::optional<KeyFrame> KeyFrameLoader::load(std::uint32_t sample) const {
  const NuScenes& db = db_;
  BEVKD_CHECK(sample < db.sample().size(), "sample index ", sample, " out of range (", db.sample().size(), " samples)");
  const Sample& s = db.sample()[sample];
  const std::string_view sample_token = db.token(Table::kSample, sample);
  KeyFrame kf;
  kf.sample = sample;
  kf.sample_token = std::string(sample_token);
  kf.scene_token = std::string(db.token(Table::kScene, s.scene));
  kf.scene_name = db.scene()[s.scene].name;
  kf.timestamp = s.timestamp;

  // Key-frame LIDAR_TOP and the ego frame everything is expressed in.
  const std::uint32_t lidar_sd = db.key_frame(sample, kLidarChannel);
  BEVKD_CHECK(lidar_sd != kNone, db.version(), ": sample ", sample_token, " has no ", kLidarChannel, " key frame");
  const SampleData& lidar = db.sample_data()[lidar_sd];
  const EgoPose& key_pose = db.ego_pose()[lidar.ego_pose];
  kf.ego_to_global = key_pose.ego_to_global();
  kf.lidar_to_ego = db.calibrated_sensor()[lidar.calibrated_sensor].sensor_to_ego();
  kf.lidar_path = std::string(db.filename(lidar_sd));
  const Rigid global_to_key_ego = kf.ego_to_global.inverse();

  // Files this sample needs; all missing ones are reported together.
  std::vector<std::string> missing;
  std::vector<std::string> missing_kind;
  const std::vector<std::uint32_t> chain = lidar_sweep_chain(db, lidar_sd, opts_.nsweeps);
  std::vector<std::string> lidar_paths;
  for (std::uint32_t sd : chain) {
    lidar_paths.push_back(root_.resolve(db.filename(sd), "LiDAR", sd_source(sd)));
    if (!path_exists(lidar_paths.back())) missing.push_back(lidar_paths.back()), missing_kind.emplace_back("LiDAR");
  }
  // The radars are not read here, but their paths come from the same table.
  for (const std::string_view radar : kRadarChannels) {
    const std::uint32_t sd = db.key_frame(sample, radar);
    if (sd != kNone) root_.resolve(db.filename(sd), "radar", sd_source(sd));
  }
  for (int c = 0; c < kNumCameras; ++c) {
    const std::uint32_t sd = db.key_frame(sample, kCameraChannels[c]);
    BEVKD_CHECK(sd != kNone, db.version(), ": sample ", sample_token, " has no ", kCameraChannels[c], " key frame");
    const SampleData& cam = db.sample_data()[sd];
    const CalibratedSensor& cs = db.calibrated_sensor()[cam.calibrated_sensor];
    BEVKD_CHECK(cs.has_intrinsic, db.version(), ": calibrated_sensor ", db.token(Table::kCalibratedSensor, cam.calibrated_sensor),
                " of ", kCameraChannels[c], " (sample ", sample_token, ") has no camera_intrinsic");
    CameraView& v = kf.cameras[c];
    v.channel = std::string(kCameraChannels[c]);
    v.sample_data_token = std::string(db.token(Table::kSampleData, sd));
    v.image_path = std::string(db.filename(sd));
    v.intrinsics = cs.camera_intrinsic;
    v.cam_to_ego = global_to_key_ego * db.ego_pose()[cam.ego_pose].ego_to_global() * cs.sensor_to_ego();
    v.width = cam.width;
    v.height = cam.height;
    v.timestamp = cam.timestamp;
    const std::string path = root_.resolve(v.image_path, "camera", sd_source(sd));
    if (opts_.check_images) {
      if (!path_exists(path)) {
        missing.push_back(path), missing_kind.emplace_back("image");
      } else if (opts_.verify_image_size || opts_.decode_images) {
        const JpegInfo info = opts_.decode_images ? check_jpeg(path) : read_jpeg_info(path);
        BEVKD_CHECK(info.width == v.width && info.height == v.height, "image file ", path, " is ", info.width, "x",
                    info.height, " pixels, sample_data ", v.sample_data_token, " says ", v.width, "x", v.height);
      }
    }
  }
  if (!missing.empty()) {
    if (opts_.skip_missing_files) {
      std::lock_guard<std::mutex> lock(mu_);
      skipped_.push_back({kf.sample_token, missing});
      return std::nullopt;
    }
    std::ostringstream os;
    os << "sample " << sample_token << " (scene " << kf.scene_name << "): missing " << missing_kind[0] << " file "
       << missing[0];
    if (missing.size() > 1) os << " and " << missing.size() - 1 << " more";
    os << " (KeyFrameOptions::skip_missing_files skips such samples)";
    throw Error(os.str());
  }

  // LiDAR: key frame + sweeps into the key-frame ego frame.
  if (opts_.load_points) {
    const double key_time = 1e-6 * static_cast<double>(lidar.timestamp);
    const double md = opts_.min_distance;
    for (std::size_t k = 0; k < chain.size(); ++k) {
      const std::uint32_t sd = chain[k];
      const SampleData& rec = db.sample_data()[sd];
      std::vector<float> raw = read_lidar_bin(lidar_paths[k]);
      kf.dropped_points += check_lidar_points(raw, lidar_paths[k], opts_.drop_nonfinite_points);
      const Rigid sensor_to_ego = db.calibrated_sensor()[rec.calibrated_sensor].sensor_to_ego();
      // The key frame is already in the key ego frame after its calibration; sweeps go through
      // their own ego pose and the global frame.
      const Rigid to_key_ego =
          k == 0 ? sensor_to_ego : global_to_key_ego * db.ego_pose()[rec.ego_pose].ego_to_global() * sensor_to_ego;
      const float time_lag = static_cast<float>(key_time - 1e-6 * static_cast<double>(rec.timestamp));
      const std::size_t n = raw.size() / kLidarBinFields;
      kf.points.reserve(kf.points.size() + n * kPointDims);
      for (std::size_t i = 0; i < n; ++i) {
        const float* p = raw.data() + i * kLidarBinFields;
        if (std::abs(p[0]) < md && std::abs(p[1]) < md) continue;  // devkit remove_close
        const Vec3 q = to_key_ego.apply({p[0], p[1], p[2]});
        kf.points.push_back(static_cast<float>(q[0]));
        kf.points.push_back(static_cast<float>(q[1]));
        kf.points.push_back(static_cast<float>(q[2]));
        kf.points.push_back(p[3]);
        kf.points.push_back(time_lag);
      }
    }
    kf.num_sweeps = static_cast<int>(chain.size());
  }

  // Ground truth in sample.anns order.
  for (std::uint32_t ann : db.sample_anns(sample)) {
    const std::string_view category = db.category_name(ann);
    const int label = class_from_category(category);
    const SampleAnnotation& a = db.sample_annotation()[ann];
    if (label < 0 && category != kBicycleRackCategory) continue;
    // What enters a shard must be a box: positive sizes, finite values (the table reader already
    // refuses NaN/Inf numbers; sizes and overflowing transforms are checked here).
    const auto where = [&] {
      return cat(db.table_path(Table::kSampleAnnotation), ": annotation ", db.token(Table::kSampleAnnotation, ann),
                 " (", category, ", sample ", sample_token, ")");
    };
    BEVKD_CHECK(a.size[0] > 0 && a.size[1] > 0 && a.size[2] > 0, where(), ": size [w, l, h] is [", a.size[0], ", ",
                a.size[1], ", ", a.size[2], "] m, expected every entry > 0");
    if (category == kBicycleRackCategory) {
      NuscBox rack = a.box();
      rack.velocity = {0.0, 0.0};
      const Box b = to_box(rack, global_to_key_ego);
      BEVKD_CHECK(box_finite(b), where(), ": the box in the key-frame ego frame has a non-finite value");
      kf.bicycle_racks.push_back(b);
      continue;
    }
    const Span<std::uint32_t> attrs = db.attributes_of(ann);
    BEVKD_CHECK(attrs.size() <= 1, db.table_path(Table::kSampleAnnotation), ": annotation ",
                db.token(Table::kSampleAnnotation, ann), " has ", attrs.size(),
                " attributes (the detection evaluation allows at most one)");
    GtBox g;
    NuscBox nb = a.box();
    const Vec3 v = db.box_velocity(ann);
    g.velocity_valid = std::isfinite(v[0]) && std::isfinite(v[1]);
    // Undefined (NaN, no neighbour in time) is data; infinite (neighbours at the same time) is not.
    BEVKD_CHECK(g.velocity_valid || (std::isnan(v[0]) && std::isnan(v[1])), where(), ": velocity [", v[0], ", ", v[1],
                "] m/s is infinite (its neighbouring annotations have the same timestamp)");
    nb.velocity = g.velocity_valid ? std::array<double, 2>{v[0], v[1]} : std::array<double, 2>{0.0, 0.0};
    g.box = to_box(nb, global_to_key_ego);
    BEVKD_CHECK(box_finite(g.box), where(), ": the box in the key-frame ego frame has a non-finite value");
    g.label = label;
    g.attribute = attrs.empty() ? -1 : attribute_index(db.attribute()[attrs[0]].name);
    g.num_lidar_pts = a.num_lidar_pts;
    g.num_radar_pts = a.num_radar_pts;
    g.category = std::string(category);
    g.instance_token = std::string(db.token(Table::kInstance, a.instance));
    g.annotation_token = std::string(db.token(Table::kSampleAnnotation, ann));
    kf.gt.push_back(std::move(g));
  }
  return kf;
}

std::vector<SkippedSample> KeyFrameLoader::skipped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return skipped_;
}

std::size_t KeyFrameLoader::num_skipped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return skipped_.size();
}

std::string KeyFrameLoader::skipped_report() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (skipped_.empty()) return "";
  std::ostringstream os;
  os << skipped_.size() << " sample" << (skipped_.size() == 1 ? "" : "s") << " skipped for missing files:\n";
  for (const SkippedSample& s : skipped_) {
    os << "  " << s.sample_token << ":";
    for (std::size_t i = 0; i < s.missing_files.size(); ++i) os << (i ? ", " : " ") << s.missing_files[i];
    os << "\n";
  }
  return os.str();
}

}  // namespace bevkd::core::nusc
