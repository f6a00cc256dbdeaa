#include "precompute/fit/lidar_frames.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "base/error.h"
#include "core/nuscenes/key_frame.h"
#include "core/nuscenes/tables.h"

namespace bevkd::precompute {

namespace {

class NuscenesFrames final : public LidarFrameSource {
 public:
  NuscenesFrames(std::shared_ptr<const core::nusc::NuScenes> db, const NuscenesFramesOptions& opts)
      : opts_(opts), db_(std::move(db)) {
    opts_.dataroot = db_->dataroot();
    opts_.version = db_->version();
    samples_ = db_->split_samples(opts.split);
    BEVKD_CHECK(!samples_.empty(), "nuScenes frames: split ", opts.split, " of ", opts_.dataroot, " (",
                opts_.version, ") has no samples");
    core::nusc::KeyFrameOptions ko;
    ko.nsweeps = static_cast<int>(opts.num_sweeps);
    ko.check_images = false;  // the teacher reads LiDAR only
    loader_ = std::make_unique<core::nusc::KeyFrameLoader>(*db_, ko);
  }

  int64_t size() const override { return static_cast<int64_t>(samples_.size()); }

  LidarFrame frame(int64_t index) const override {
    BEVKD_ASSERT(index >= 0 && index < size(), "frame index ", index, " of ", size());
    const auto kf = loader_->load(samples_[static_cast<size_t>(index)]);
    BEVKD_ASSERT(kf.has_value(), "the key-frame loader skipped a sample without skip_missing_files");
    LidarFrame f;
    f.sample_token = kf->sample_token;
    f.scene_token = kf->scene_token;
    f.timestamp_us = kf->timestamp;
    f.ego_to_global = kf->ego_to_global;
    f.lidar_path = kf->lidar_path;
    const auto P = static_cast<int64_t>(kf->num_points());
    f.points = torch::empty({P, core::nusc::kPointDims}, torch::kFloat32);
    if (P > 0) std::memcpy(f.points.data_ptr<float>(), kf->points.data(), kf->points.size() * sizeof(float));
    const auto gt = core::nn::stored_gt(*kf);
    f.boxes = gt.boxes;
    f.labels = gt.labels;
    f.num_lidar_pts = gt.num_lidar_pts;
    f.num_radar_pts = gt.num_radar_pts;
    f.velocity_valid = gt.velocity_valid;
    return f;
  }

  std::string describe() const override {
    return cat(opts_.dataroot, " ", opts_.version, " split ", opts_.split, " (", samples_.size(), " samples, ",
               opts_.num_sweeps, " sweeps)");
  }

 private:
  NuscenesFramesOptions opts_;
  std::shared_ptr<const core::nusc::NuScenes> db_;
  std::vector<std::uint32_t> samples_;
  std::unique_ptr<core::nusc::KeyFrameLoader> loader_;
};

}  // namespace

std::unique_ptr<LidarFrameSource> open_nuscenes_frames(std::shared_ptr<const core::nusc::NuScenes> db,
                                                       const NuscenesFramesOptions& opts) {
  BEVKD_CHECK(opts.num_sweeps >= 1, "nuScenes frames: num_sweeps must be >= 1, got ", opts.num_sweeps);
  return std::make_unique<NuscenesFrames>(std::move(db), opts);
}

std::unique_ptr<LidarFrameSource> open_nuscenes_frames(const NuscenesFramesOptions& opts) {
  return open_nuscenes_frames(
      std::make_shared<const core::nusc::NuScenes>(core::nusc::NuScenes::load(opts.dataroot, opts.version)), opts);
}

}  // namespace bevkd::precompute
