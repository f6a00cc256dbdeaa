// One shard sample -> the student's inputs and targets for one replayed view: what the loader
// (loader.h) runs on a decoding thread for every stream item.
//
//   cameras: resolve cams/image_path under the dataroot (image_source.h) -> JPEG header ->
//            augmentation A (image_aug.h; drawn from Rng(mix_keys(seed, epoch,
//            sample_key(shard, sample), camera salt)) in training, the fixed resize + crop in
//            evaluation) -> decode at the DCT factor the resize allows -> inverse-mapped
//            bilinear warp + normalisation; intrinsics A K; depth targets from depth/uvd (depth_targets.h)
//   GT:      gt/* -> core::nn::training_gt -> the view's bda (view/bda[v] as a BevTransform)
//            -> core::nn::in_range(grid)
//   teacher: the requested fields of the view, kept as stored (converted by the consumer)
//
// Thread-safe: load() is const and keeps no state between calls.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "base/bev_grid.h"
#include "storage/array.h"
#include "storage/shard_meta.h"
#include "storage/shard_stream.h"
#include "train/data/batch.h"
#include "train/data/image_source.h"
#include "train/data/loader_config.h"

namespace bevkd::train::data {

// One sample, ready to be stacked into a Batch.
struct LoadedSample {
  bool skipped = false;     // a camera image is missing and skip_missing_images is set
  std::string skip_reason;  // names sample, camera and file
  std::string token;
  std::int64_t view = 0;
  std::string shard;            // manifest-relative shard path (set by the loader)
  std::int64_t shard_sample = 0;  // index in the shard
  torch::Tensor images;      // [N, 3, fH, fW] float32, normalised
  torch::Tensor intrinsics;  // [N, 3, 3] float32 = A K
  torch::Tensor cam2ego;     // [N, 4, 4] float32
  torch::Tensor img_aug;     // [N, 3, 3] float32 = A
  torch::Tensor bda;         // [3, 3] float32
  torch::Tensor depth;       // [N, h, w] float32 (m), 0 = none
  torch::Tensor box_id;      // [N, h, w] int64, or undefined
  SampleGt gt;
  std::vector<float> ego2global;  // 16, row-major
  storage::Sample teacher;        // the requested teacher datasets of the view, as stored
};

class SampleLoader {
 public:
  // `taps` and `camera_names` as the shards store them (manifest); `grid` the shards' grid
  // (GT centres outside it are dropped); `train` draws the augmentation, else evaluation's.
  SampleLoader(LoaderConfig cfg, const std::string& dataroot, BevGrid grid, std::vector<storage::TapSpec> taps,
               std::vector<std::string> camera_names, bool train);

  // The datasets load() needs (ShardStream / ShardReader selectors).
  std::vector<std::string> fields() const;

  // Loads a sample read with fields() for one view (per-view fields hold that view only), in
  // `epoch`, identified by `ref` (keys the augmentation). Moves the teacher arrays out of `sample`.
  // Throws bevkd::Error naming the sample (and camera, file) on bad data; a missing JPEG returns
  // a skipped sample when skip_missing_images is set.
  LoadedSample load(storage::Sample& sample, std::int64_t epoch, const storage::SampleRef& ref, std::int64_t view) const;

  const ImageRoot& image_root() const { return root_; }

 private:
  LoaderConfig cfg_;
  ImageRoot root_;
  BevGrid grid_;
  std::vector<storage::TapSpec> taps_;
  std::vector<std::string> cameras_;
  bool train_;
};

}  // namespace bevkd::train::data
