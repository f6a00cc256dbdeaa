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

#include "core/nn/bev_augment.h"
#include "precompute/teacher/teacher_factory.h"

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
  core::nn::BevAugmentConfig view_augment;

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
  int num_workers = 1;     // the work split (see shard_plan.h); 0 on the command line: from the scheduler
  int worker_index = 0;    // -1 on the command line: from the scheduler
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

  template <class V>
  void fields(V& v) {
    v.group("data", [&] {
      v("dataroot", dataroot, "--dataroot", "nuScenes-format dataset root");
      v("version", version, "--version", "dataset version folder");
      v("splits", splits, "--split", "split(s) to precompute, e.g. --split mini_train --split mini_val");
      v("scenes", scenes, "--scenes", "scene names instead of --split (comma-separated)");
      v("scenes_split", scenes_split, "--scenes-split", "split name the shards of --scenes are stored under");
      v("nsweeps", nsweeps, "--sweeps", "LiDAR sweeps per key frame, key frame included");
      v("skip_missing_files", skip_missing_files, "--skip-missing-files",
        "skip samples whose LiDAR or camera files are missing (recorded in the manifest) instead of failing");
      v("drop_nonfinite_points", drop_nonfinite_points, "--drop-nonfinite-points",
        "drop LiDAR points with NaN/Inf values (counted in the run report) instead of refusing the file");
    });
    v.nested("teacher", teacher, "");
    v.group("shards", [&] {
      v("samples_per_shard", samples_per_shard, "--samples-per-shard", "samples per shard file");
      v("feature_dtype", feature_dtype, "--feature-dtype", "float16 | int8 (per-channel scale)");
      v("compression_level", compression_level, "--compression-level", "zstd level");
      v("shuffle", shuffle, "--shuffle,!--no-shuffle", "byte shuffle before zstd");
    });
    v.group("views", [&] {
      v("count", views, "--views", "stored BEV views (view 0 = identity)");
      v.nested("augmentation", view_augment, "view-");
    });
    v.group("fg_mask", [&] {
      v("min_radius", fg_min_radius, "--fg-min-radius", "foreground mask: minimum Gaussian radius (cells)");
      v("min_overlap", fg_min_overlap, "--fg-min-overlap", "foreground mask: gaussian_radius min_overlap");
    });
    v.group("quality", [&] { v("gamma", quality_gamma, "--quality-gamma", "q = c^gamma * IoU^(1 - gamma)"); });
    v.group("depth", [&] {
      v("stride", depth_stride, "--depth-stride", "depth targets: nearest point per stride x stride pixels");
      v("min_depth", depth_min, "--depth-min", "depth targets: minimum depth (m)");
      v("max_depth", depth_max, "--depth-max", "depth targets: maximum depth (m, exclusive)");
      v("key_frame_only", depth_key_frame_only, "--depth-key-frame-only,!--depth-all-sweeps",
        "depth targets from the key frame only (else from every sweep)");
    });
    v.group("inference", [&] { v("batch_size", batch_size, "--batch-size", "samples per teacher call"); });
    v("seed", seed, "--seed", "seed of the view augmentation");
    v.group("runtime", [&] {
      v("out_dir", out_dir, "--out", "output directory (shards, manifests, reports)");
      v("threads", threads, "--threads", "TBB and LibTorch threads (0 = all cores)");
      v("num_workers", num_workers, "--num-workers", "workers sharing the run (default: from the scheduler, else 1)");
      v("worker_index", worker_index, "--worker-index",
        "this worker, 0..N-1 (default: SLURM_ARRAY_TASK_ID, SGE_TASK_ID or JOB_COMPLETION_INDEX)");
      v("worker_source", worker_source);
      v("quiet", quiet, "--quiet", "no progress line");
      v("max_batches_in_flight", max_batches_in_flight, "--max-batches-in-flight", "pipeline depth (1 = no overlap)");
      v("created_utc", created_utc, "--created-utc",
        "created_utc attribute of the shards (default: $SOURCE_DATE_EPOCH, else the output directory's first run)");
    });
  }

  // The output configuration (see the file comment), every key but "runtime", as stored in shards.
  nlohmann::json output_json() const;
  // Every field (output configuration + "runtime"): what the run prints and saves; --config reads it back.
  nlohmann::json to_json() const;
  // "xxh64:<16 hex>" of output_json().dump().
  std::string output_hash() const;

  // The split names shards are written under, in plan order.
  std::vector<std::string> split_names() const;
};

}  // namespace bevkd::precompute
