// LiDAR key frames as the teacher consumes them: the point cloud of the key frame and its sweeps
// in the key frame's ego frame with a time-lag channel, and the GT boxes in the same frame. The
// nuScenes-format source reads them through core/nuscenes; fit-teacher and the precompute
// pipeline read frames only through this interface.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>

#include "core/geometry.h"
#include "core/nn/gt_filter.h"

namespace bevkd::core::nusc {
class NuScenes;
}

namespace bevkd::precompute {

struct LidarFrame {
  std::string sample_token;
  std::string scene_token;
  std::string lidar_path;     // the key frame's LIDAR_TOP file, relative to the dataroot
  int64_t timestamp_us = 0;
  core::Rigid ego_to_global;  // key-frame ego pose
  torch::Tensor points;       // [P, 5] float32 x, y, z (m), intensity, time_lag (s); ego frame
  // Ground truth in the stored form (core/nn/gt_filter.h turns it into training targets).
  torch::Tensor boxes;           // [N, 9] float32 GT (ego frame, Box); vx = vy = 0 where velocity_valid is 0
  torch::Tensor labels;          // [N] int64 label ids (DESIGN.md order)
  torch::Tensor num_lidar_pts;   // [N] int64
  torch::Tensor num_radar_pts;   // [N] int64
  torch::Tensor velocity_valid;  // [N] uint8

  core::nn::StoredGt stored_gt() const { return {boxes, labels, num_lidar_pts, num_radar_pts, velocity_valid}; }
};

class LidarFrameSource {
 public:
  virtual ~LidarFrameSource() = default;
  virtual int64_t size() const = 0;
  // Thread-safe; throws bevkd::Error naming the sample and file on unreadable data.
  virtual LidarFrame frame(int64_t index) const = 0;
  virtual std::string describe() const = 0;  // "v1.0-mini mini_train (323 samples, 10 sweeps)"
};

struct NuscenesFramesOptions {
  std::string dataroot;
  std::string version = "v1.0-mini";
  std::string split = "mini_train";
  int64_t num_sweeps = 10;  // key frame + previous sweeps (mmdetection3d nuScenes: 10)
};

// Loads the tables of opts.dataroot / opts.version and reads the split's key frames in sample
// table order. Throws bevkd::Error for a missing dataset, an unknown split or an empty one.
std::unique_ptr<LidarFrameSource> open_nuscenes_frames(const NuscenesFramesOptions& opts);
// The same over tables already loaded (dataroot and version of `opts` are ignored).
std::unique_ptr<LidarFrameSource> open_nuscenes_frames(std::shared_ptr<const core::nusc::NuScenes> db,
                                                       const NuscenesFramesOptions& opts);

}  // namespace bevkd::precompute
