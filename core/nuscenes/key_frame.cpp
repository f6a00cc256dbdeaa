#include "core/nuscenes/key_frame.h"

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

KeyFrameLoader::KeyFrameLoader(const NuScenes& db, KeyFrameOptions opts) : db_(db), opts_(opts) {
  BEVKD_CHECK(opts_.nsweeps >= 1, "key-frame loader: nsweeps is ", opts_.nsweeps, " (expected >= 1; 1 = key frame only)");
  BEVKD_CHECK(std::isfinite(opts_.min_distance) && opts_.min_distance >= 0, "key-frame loader: min_distance is ",
              opts_.min_distance, " (expected a finite value >= 0)");
}

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
  for (std::uint32_t sd : chain) {
    const std::string path = cat(db.dataroot(), "/", db.filename(sd));
    if (!path_exists(path)) missing.push_back(path), missing_kind.emplace_back("LiDAR");
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
    if (opts_.check_images) {
      const std::string path = cat(db.dataroot(), "/", v.image_path);
      if (!path_exists(path)) {
        missing.push_back(path), missing_kind.emplace_back("image");
      } else if (opts_.verify_image_size) {
        const JpegInfo info = read_jpeg_info(path);
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
      const std::vector<float> raw = read_lidar_bin(cat(db.dataroot(), "/", db.filename(sd)));
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
    if (category == kBicycleRackCategory) {
      NuscBox rack = a.box();
      rack.velocity = {0.0, 0.0};
      kf.bicycle_racks.push_back(to_box(rack, global_to_key_ego));
      continue;
    }
    if (label < 0) continue;
    const Span<std::uint32_t> attrs = db.attributes_of(ann);
    BEVKD_CHECK(attrs.size() <= 1, db.table_path(Table::kSampleAnnotation), ": annotation ",
                db.token(Table::kSampleAnnotation, ann), " has ", attrs.size(),
                " attributes (the detection evaluation allows at most one)");
    GtBox g;
    NuscBox nb = a.box();
    const Vec3 v = db.box_velocity(ann);
    g.velocity_valid = std::isfinite(v[0]) && std::isfinite(v[1]);
    nb.velocity = g.velocity_valid ? std::array<double, 2>{v[0], v[1]} : std::array<double, 2>{0.0, 0.0};
    g.box = to_box(nb, global_to_key_ego);
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
