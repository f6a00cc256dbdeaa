// One nuScenes key frame (sample) as the precompute pipeline consumes it, everything in the
// KEY FRAME'S EGO FRAME (DESIGN.md "Frame"): x forward, y left, z up, metres, origin on the
// ground at the rear axle, at the time of the sample's LIDAR_TOP key frame.
//
//  * points: LIDAR_TOP key frame plus previous sweeps with the devkit's from_file_multisweep
//    semantics (spec/nuscenes.md §(b)): start at the key frame, follow sample_data.prev up to
//    nsweeps - 1 times (the key frame counts as one; the first frames of a scene have fewer),
//    drop points with |x| < min_distance AND |y| < min_distance in each sweep's own sensor
//    frame, move each sweep through its own calibration and ego pose:
//      sweep sensor -> ego(sweep time) -> global -> ego(key time)
//    and add the time lag t_key - t_sweep in seconds (1e-6 * t, converted before subtracting).
//    Unlike the devkit the result stays in the key-frame EGO frame, not the LiDAR frame.
//  * cameras: the six key-frame cameras in kCameraChannels order, with camera -> key-frame ego
//    composed through the camera's own ego pose (cameras fire a few ms apart from the LiDAR):
//      cam_to_ego = inverse(ego_pose(key lidar)) * ego_pose(camera) * calibrated_sensor(camera)
//  * gt: annotations in sample.anns order, mapped to the 10 detection classes (ignored
//    categories are dropped), moved from global into the key-frame ego frame; velocity from
//    NuScenes::box_velocity (devkit rule), rotated into the ego frame.
//  * bicycle_racks: the static_object.bicycle_rack annotations (not a detection class, but the
//    official evaluation drops bicycle/motorcycle boxes inside them), sample.anns order, ego frame.
//
// Missing files: by default a missing LiDAR file (key frame or sweep) or camera image throws
// bevkd::Error naming the sample and the file. With KeyFrameOptions::skip_missing_files the
// sample is skipped instead (load() returns std::nullopt) and recorded; skipped() /
// skipped_report() list the samples and the missing files.
//
// Nothing unchecked gets through (bevkd::Error naming the file, record or annotation token):
//  * every path from the tables (LiDAR chain, cameras, the key-frame radars) is resolved against
//    the dataroot and refused when it leaves it (data_path.h): absolute, "..", symbolic link;
//  * optionally each JPEG's header (size against sample_data width/height) and a complete
//    decode (check_jpeg);
//  * a LiDAR file with no points, or with a NaN/Inf in x, y, z or intensity (refused naming the
//    file and the point index, or with drop_nonfinite_points dropped and counted; a cloud with
//    no finite point left is refused);
//  * a GT or bicycle-rack annotation with a size entry <= 0, or whose box in the ego frame has a
//    non-finite value (an undefined velocity is NaN on purpose and stays allowed).
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/geometry.h"
#include "core/nuscenes/data_path.h"
#include "core/nuscenes/tables.h"
#include "core/nuscenes_vocab.h"

namespace bevkd::core::nusc {

struct KeyFrameOptions {
  int nsweeps = 10;             // LIDAR_TOP frames aggregated, key frame included (devkit nsweeps)
  double min_distance = 1.0;    // m, devkit remove_close square, in each sweep's sensor frame
  bool load_points = true;      // false: no point cloud (cameras and GT only); LiDAR files still checked
  bool check_images = true;     // the six images must exist
  bool verify_image_size = false;  // also read each JPEG header and compare with width/height
  bool decode_images = false;   // also decode each JPEG completely (check_jpeg); implies the size check
  bool skip_missing_files = false;  // skip (and record) samples with missing files instead of throwing
  // LiDAR points with NaN/Inf in x, y, z or intensity: refused (default, naming the file and the
  // point) or dropped and counted in KeyFrame::dropped_points.
  bool drop_nonfinite_points = false;
};

inline constexpr int kPointDims = 5;  // x, y, z (m, key-frame ego frame), intensity, time_lag (s)

struct CameraView {
  std::string channel;              // kCameraChannels[k]
  std::string sample_data_token;
  std::string image_path;           // relative to the dataroot (sample_data.filename)
  std::array<double, 9> intrinsics{};  // K, row-major, pixels
  Rigid cam_to_ego;                 // camera (OpenCV: x right, y down, z forward) -> key-frame ego
  int width = 0, height = 0;        // pixels (sample_data.width/height)
  std::int64_t timestamp = 0;       // µs
};

struct GtBox {
  Box box;                   // key-frame ego frame; vx = vy = 0 where !velocity_valid
  int label = -1;            // index into kClassNames
  int attribute = -1;        // index into kAttributeNames, -1 for none
  int num_lidar_pts = 0;
  int num_radar_pts = 0;
  bool velocity_valid = false;  // false where the devkit's box_velocity is NaN
  std::string category;      // the nuScenes category, e.g. "human.pedestrian.adult"
  std::string instance_token;
  std::string annotation_token;
};

struct KeyFrame {
  std::uint32_t sample = kNone;
  std::string sample_token, scene_token, scene_name;
  std::int64_t timestamp = 0;   // µs, sample.timestamp
  std::string lidar_path;       // key-frame LIDAR_TOP file, relative to the dataroot
  Rigid ego_to_global;          // ego pose of the LIDAR_TOP key frame
  Rigid lidar_to_ego;           // LIDAR_TOP calibration of the key frame
  // [P, 5] float32 row-major: x, y, z (m, key-frame ego frame), intensity, time_lag (s, >= 0).
  std::vector<float> points;
  int num_sweeps = 0;           // LiDAR frames aggregated (key frame included)
  std::array<CameraView, kNumCameras> cameras;  // kCameraChannels order
  std::vector<GtBox> gt;
  std::vector<Box> bicycle_racks;  // key-frame ego frame, velocity 0
  std::int64_t dropped_points = 0;  // NaN/Inf LiDAR points dropped (drop_nonfinite_points)

  std::size_t num_points() const { return points.size() / kPointDims; }
};

struct SkippedSample {
  std::string sample_token;
  std::vector<std::string> missing_files;  // absolute paths
};

class KeyFrameLoader {
 public:
  explicit KeyFrameLoader(const NuScenes& db, KeyFrameOptions opts = {});

  // Loads one sample (index into db.sample()). Returns std::nullopt only with
  // skip_missing_files, when a file is missing (the sample is then recorded in skipped()).
  // Thread-safe: several threads may call load() on one loader.
  std::optional<KeyFrame> load(std::uint32_t sample) const;

  const KeyFrameOptions& options() const { return opts_; }
  std::vector<SkippedSample> skipped() const;
  std::size_t num_skipped() const;
  // "2 samples skipped for missing files:\n  <token>: <file>, <file>\n..." ("" if none).
  std::string skipped_report() const;

 private:
  std::string sd_source(std::uint32_t sd) const;  // "<sample_data.json> record i (token "..."), field "filename""

  const NuScenes& db_;
  KeyFrameOptions opts_;
  DataRoot root_;
  mutable std::mutex mu_;
  mutable std::vector<SkippedSample> skipped_;
};

// The LIDAR_TOP frames from_file_multisweep reads for a key frame: the key frame's sample_data
// followed by up to nsweeps - 1 predecessors (sample_data indices, newest first).
std::vector<std::uint32_t> lidar_sweep_chain(const NuScenes& db, std::uint32_t key_sd, int nsweeps);

}  // namespace bevkd::core::nusc
