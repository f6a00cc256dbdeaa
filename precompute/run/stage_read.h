// Stage "read" of the run pipeline: loads a sample's key frame through core/nuscenes —
// LIDAR_TOP key frame + sweeps in the key frame's ego frame with a time-lag channel, the six
// cameras (image path, intrinsics, camera -> key-frame ego), GT of the 10 classes in sample.anns
// order, bicycle racks — and draws the sample's BEV views.
//
// Checked on the way in (core/nuscenes/key_frame.h): every path stays inside the dataroot, every
// camera JPEG decodes completely at sample_data's size, LiDAR points are finite (or dropped and
// counted with drop_nonfinite_points), GT boxes have positive sizes.
// Missing files (LiDAR key frame or sweep, camera image): bevkd::Error naming the sample and the
// file, or with skip_missing_files the sample is marked skipped with the missing files.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "core/nn/bev_augment.h"
#include "core/nuscenes/key_frame.h"
#include "core/nuscenes/tables.h"
#include "precompute/run/run_batch.h"
#include "precompute/run/run_config.h"

namespace bevkd::precompute {

class ReadStage {
 public:
  ReadStage(const core::nusc::NuScenes& db, const RunConfig& cfg);

  // Fills s.frame (or marks s skipped) and s.views. Thread-safe.
  void run(SampleWork& s) const;

  // The files of sample `sample` that are missing now (LiDAR chain and images); empty if none.
  // Used when resuming to re-derive which samples a finished shard left out.
  std::vector<std::string> missing_files(std::uint32_t sample) const;

  // LiDAR points with NaN/Inf dropped so far (RunConfig::drop_nonfinite_points).
  int64_t dropped_points() const { return dropped_points_.load(); }

 private:
  const core::nusc::NuScenes& db_;
  const RunConfig& cfg_;
  std::unique_ptr<core::nusc::KeyFrameLoader> loader_;
  std::unique_ptr<core::nusc::KeyFrameLoader> checker_;  // skip mode, no points: file checks only
  mutable std::atomic<int64_t> dropped_points_{0};
};

// The BEV transforms of a sample's V views: view 0 the identity, view v >= 1 drawn from
// cfg.view_augment with a generator seeded by (cfg.seed, token, v) — the same for any worker
// split, batch or rerun.
std::vector<core::nn::BevTransform> sample_views(const RunConfig& cfg, const std::string& token);

}  // namespace bevkd::precompute
