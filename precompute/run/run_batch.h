// The unit of work of `bevkd-precompute run` (run_pipeline.h): a batch of consecutive samples of
// one shard, carried through the stages
//
//   read (parallel) -> voxelize (parallel) -> infer (serial) -> post-process (parallel)
//     -> write (serial, in order; the shard writer compresses on TBB threads)
//
// Each stage fills its part of the batch and clears what later stages no longer need, so a
// batch holds the point clouds only until inference and the teacher tensors only until the
// shard record is built.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/nn/bev_augment.h"
#include "core/nuscenes/key_frame.h"
#include "precompute/teacher/teacher.h"
#include "storage/array.h"

namespace bevkd::precompute {

struct SampleWork {
  std::uint32_t sample = 0;  // sample table index
  std::string token;

  // read: the key frame (points with sweeps, cameras, GT, bicycle racks), or nullopt when the
  // sample is skipped for missing files (--skip-missing-files), with the files.
  std::optional<core::nusc::KeyFrame> frame;
  std::vector<std::string> missing_files;
  std::vector<core::nn::BevTransform> views;  // [V]; views[0] is the identity

  // voxelize: per view, the transformed cloud prepared for the teacher.
  std::vector<PreparedCloud> clouds;

  // post-process: the shard record (storage::Sample with every field of the layout).
  storage::Sample record;

  bool skipped() const { return !frame.has_value(); }
};

struct BatchWork {
  int64_t shard = 0;  // plan shard id
  bool first_in_shard = false;
  bool last_in_shard = false;
  std::vector<SampleWork> samples;
  // infer: outputs for the kept samples' clouds, sample-major: row k * V + v is kept sample k's view v.
  TeacherOutput teacher;
};

// Seconds spent in each stage, accumulated from any thread.
class StageClock {
 public:
  enum Stage { kRead, kVoxelize, kInfer, kPostprocess, kCompress, kWrite, kNumStages };
  static const char* name(Stage s);
  void add(Stage s, double seconds);
  double get(Stage s) const { return seconds_[s].load(); }

 private:
  std::atomic<double> seconds_[kNumStages] = {};
};

}  // namespace bevkd::precompute
