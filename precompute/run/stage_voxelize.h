// Stage "voxelize" of the run pipeline: for every view of a sample, the key frame's points moved
// by the view's BEV transform (core/nn/bev_augment.h: rotate, scale, flip about the ego origin) and
// prepared for the teacher (Teacher::prepare: the built-in teacher pillarises here, so this
// CPU work runs on many threads while the teacher's forward pass runs serially).
#pragma once

#include "precompute/run/run_batch.h"
#include "precompute/teacher/teacher.h"

namespace bevkd::precompute {

class VoxelizeStage {
 public:
  explicit VoxelizeStage(const Teacher& teacher) : teacher_(teacher) {}

  // Fills s.clouds (one per view) for a sample that was read (not skipped). Thread-safe.
  void run(SampleWork& s) const;

 private:
  const Teacher& teacher_;
};

// The key frame's points as a tensor: [P, 5] float32 (x, y, z, intensity, time_lag), ego frame.
torch::Tensor key_frame_points(const core::nusc::KeyFrame& kf);

}  // namespace bevkd::precompute
