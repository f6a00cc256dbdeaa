#include "precompute/lidar_frames.h"

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
    const auto P = static_cast<int64_t>(kf->num_points());
    f.points = torch::empty({P, core::nusc::kPointDims}, torch::kFloat32);
    if (P > 0) std::memcpy(f.points.data_ptr<float>(), kf->points.data(), kf->points.size() * sizeof(float));
    const auto N = static_cast<int64_t>(kf->gt.size());
    f.boxes = torch::empty({N, 9}, torch::kFloat32);
    f.labels = torch::empty({N}, torch::kInt64);
    f.num_lidar_pts = torch::empty({N}, torch::kInt64);
    f.num_radar_pts = torch::empty({N}, torch::kInt64);
    auto ba = f.boxes.accessor<float, 2>();
    for (int64_t i = 0; i < N; ++i) {
      const auto& g = kf->gt[static_cast<size_t>(i)];
      const auto a = g.box.to_array();
      for (int c = 0; c < 9; ++c) ba[i][c] = a[static_cast<size_t>(c)];
      if (!g.velocity_valid) ba[i][7] = ba[i][8] = std::numeric_limits<float>::quiet_NaN();
      f.labels[i] = static_cast<int64_t>(g.label);
      f.num_lidar_pts[i] = static_cast<int64_t>(g.num_lidar_pts);
      f.num_radar_pts[i] = static_cast<int64_t>(g.num_radar_pts);
    }
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

torch::Tensor valid_gt_indices(const LidarFrame& f) {
  if (f.boxes.size(0) == 0) return torch::zeros({0}, torch::kInt64);
  return (f.num_lidar_pts + f.num_radar_pts).gt(0).nonzero().squeeze(1);
}

}  // namespace bevkd::precompute
