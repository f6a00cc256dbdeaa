// The typed configuration of `bevkd-precompute run` (DESIGN.md stage one).
//
// Two parts:
//  * the OUTPUT configuration — everything that decides the bytes of the shards: dataset and
//    split, teacher, shard size, views and their augmentation, mask / quality / depth
//    parameters, feature dtype, compression, batch size, seed. It is validated, printed, written
//    to <out>/precompute_config.json, stored in every shard's `config` attribute and in the
//    manifest, and compared on every rerun: a rerun into the same directory with another
//    output configuration is refused naming the first differing key.
//  * the RUNTIME part — where and how this process runs (out dir, threads, worker index and
//    count, quiet): it never changes a shard, so 2 workers + merge give the same bytes as one.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/bev_augment.h"
#include "precompute/teacher.h"

namespace bevkd::precompute {

struct RunConfig {
  // --- data
  std::string dataroot;                 // nuScenes-format root (e.g. written by bevkd-synth)
  std::string version = "v1.0-mini";    // table folder
  std::vector<std::string> splits;      // splits to precompute, e.g. {"mini_train", "mini_val"}
  std::vector<std::string> scenes;      // or: scene names (stored under the split scenes_split)
  std::string scenes_split = "scenes";  // the split name shards of `scenes` are stored under
  int64_t nsweeps = 10;                 // LIDAR_TOP frames per sample, key frame included
  bool skip_missing_files = false;      // skip (and record) samples whose LiDAR/camera files are missing
  bool drop_nonfinite_points = false;   // drop (and count) NaN/Inf LiDAR points instead of refusing the file

  // --- teacher
  TeacherSpec teacher;

  // --- shards
  int64_t samples_per_shard = 200;
  std::string feature_dtype = "float16";  // float16 | int8 (symmetric, per-channel scale)
  int compression_level = 3;              // zstd level (1..22)
  bool shuffle = true;                    // byte shuffle before zstd

  // --- views: view 0 is the identity; views 1..V-1 draw a BEV transform from view_augment,
  // seeded per (seed, sample token, view), and the teacher runs on the transformed points.
  int64_t views = 1;
  core::BevAugmentConfig view_augment;

  // --- foreground mask (spec/losses.md §2; BEVDistill's min_radius 1) on the teacher's grid
  int64_t fg_min_radius = 1;
  double fg_min_overlap = 0.1;

  // --- quality q = c^gamma * IoU^(1 - gamma) (BEVDistill; spec/losses.md §11.1)
  double quality_gamma = 0.5;

  // --- LiDAR depth targets (kernels/depth_projection.h), in full-resolution image pixels
  int64_t depth_stride = 4;        // keep the nearest point per stride x stride pixels
  double depth_min = 1.0;          // m, inclusive
  double depth_max = 100.0;        // m, exclusive
  bool depth_key_frame_only = true;  // project only the key frame's points (time lag 0), as BEVDepth

  // --- inference
  int64_t batch_size = 4;  // samples per teacher call (x views clouds); batches never cross shards

  std::uint64_t seed = 0;

  // --- runtime (not part of the output configuration)
  std::string out_dir;
  int threads = 0;         // TBB worker threads and LibTorch intra-op threads (0 = all cores)
  int num_workers = 1;     // the work split (see shard_plan.h)
  int worker_index = 0;
  std::string worker_source = "default";  // where the worker index came from (command line, SLURM, ...)
  bool quiet = false;      // no progress line
  // Batches in the pipeline at once; 1 runs the stages one after another (no overlap; for the
  // benchmark's comparison).
  int64_t max_batches_in_flight = 4;
  // The shards' created_utc attribute: "" = $SOURCE_DATE_EPOCH when set, else the time this
  // output directory was first used (kept in precompute_config.json). Fixed values make shards
  // of separate output directories byte-identical; within one directory they always are.
  std::string created_utc;
  // Called by the write stage after each sample it appends (or skips), with the count of this
  // invocation so far, once the sample is in the shard writer and, for a shard's last sample,
  // after the shard is renamed and listed. bevkd-precompute sets it from
  // $BEVKD_PRECOMPUTE_KILL_AFTER_SAMPLES to SIGKILL itself (the kill-and-resume tests).
  std::function<void(int64_t samples_done)> after_sample;

  // Throws bevkd::Error naming the option and the bad value.
  void validate() const;

  // The output configuration (see the file comment), every key, as stored in shards.
  nlohmann::json output_json() const;
  // {"config": output_json(), "runtime": {...}}: what the run prints.
  nlohmann::json to_json() const;
  // "xxh64:<16 hex>" of output_json().dump().
  std::string output_hash() const;

  // The split names shards are written under, in plan order.
  std::vector<std::string> split_names() const;
};

// The dotted path of the first key where `stored` and `given` differ ("" when equal), with
// both values: `views.count (stored 2, given 1)`. Arrays are compared element-wise
// (`data.splits[1]`); a key present on one side only counts as different.
std::string first_difference(const nlohmann::json& stored, const nlohmann::json& given);

}  // namespace bevkd::precompute
