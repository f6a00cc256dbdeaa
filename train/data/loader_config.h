// The configuration of the shard-fed loader (train/data/loader.h), as data (base/config.h): one
// field list serves JSON in/out and the command line.
//
//   LoaderConfig cfg;                       // defaults: BEVDepth's base experiment (bevdepth-r50)
//   cfg.image.final_size = {128, 352};
//   cfg.teacher_taps = {"neck"};
//   cfg.validate();                         // throws bevkd::Error naming the field
//
// Image augmentation follows BEVDepth's sample_ida_augmentation (training: a resize drawn in
// resize_range, a crop of final_size whose top is drawn from bottom_crop_range — (0, 0) keeps the
// bottom of the image — at a horizontal offset drawn uniformly, a flip with flip_prob, a rotation
// drawn in rotation_range; evaluation: resize = max(fH / H, fW / W), the same bottom crop,
// centred horizontally, no flip, no rotation). All of it is one affine matrix (image_aug.h).
//
// Views: the BEV augmentation is never drawn here. The shards store V views per sample
// (precompute's --views); "drawn" replays one stored view per (seed, epoch, sample), "fixed"
// always the same one. Evaluation always reads view 0 (the key frame's own frame).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/bev_grid.h"
#include "core/nn/bev_augment.h"

namespace bevkd::train::data {

struct ImageAugConfig {
  std::array<std::int64_t, 2> final_size{256, 704};  // H, W of the student's input (pixels)
  std::array<double, 2> resize_range{0.386, 0.55};   // training: scale of the original image
  // > 0: resize_range is BEVDepth's factor on an image this wide (nuScenes: 1600), so a source of
  // width w is scaled by r * reference_width / w (synth's smaller images get the same output scale).
  double reference_width = 0;
  std::array<double, 2> rotation_range{-5.4, 5.4};   // training: degrees, counter-clockwise as displayed
  double flip_prob = 0.5;                            // training: horizontal flip
  // Fraction of the resized height cut off below the crop (BEVDepth's bot_pct_lim); (0, 0) keeps
  // the bottom rows. Training draws it, evaluation takes the mean.
  std::array<double, 2> bottom_crop_range{0.0, 0.0};
  // Normalisation: (x / 255 - mean) / std per RGB channel (ImageNet's by default).
  std::array<double, 3> mean{0.485, 0.456, 0.406};
  std::array<double, 3> std{0.229, 0.224, 0.225};

  void validate(const std::string& where) const;

  template <class V>
  void fields(V& v) {
    v("final_size", final_size, "--image-size", "student input H W (pixels)");
    v("resize_range", resize_range, "--resize-range", "training: resize range of the original image");
    v("reference_width", reference_width, "--image-reference-width",
      "> 0: resize_range is relative to an image this wide (BEVDepth: 1600)");
    v("rotation_range", rotation_range, "--image-rotation", "training: image rotation range (degrees)");
    v("flip_prob", flip_prob, "--image-flip-prob", "training: horizontal flip probability");
    v("bottom_crop_range", bottom_crop_range, "--bottom-crop-range",
      "fraction of the resized height cut below the crop (BEVDepth bot_pct_lim)");
    v("mean", mean, "--image-mean", "normalisation mean (RGB, of x/255)");
    v("std", std, "--image-std", "normalisation std (RGB, of x/255)");
  }
};

struct LoaderConfig {
  std::int64_t batch_size = 4;
  bool drop_last_batch = false;  // training: drop an epoch's last, smaller batch
  ImageAugConfig image;

  // Depth targets at the depth net's stride: the nearest stored LiDAR point per stride x stride
  // cell of the augmented image, kept when depth_range[0] <= depth < depth_range[1] (m).
  std::int64_t depth_stride = 16;
  std::array<double, 2> depth_range{2.0, 58.0};
  bool depth_box_id = false;  // also TiG-BEV's box-id map (DepthTargets::box_id)

  // Teacher fields of the replayed view (only what is asked is decoded).
  std::vector<std::string> teacher_taps;  // teacher/features/<tap>
  bool teacher_heatmap = false;
  bool teacher_fg_mask = false;
  bool teacher_boxes = false;        // boxes, scores, labels, quality
  bool teacher_class_probs = false;  // needs shard schema >= 1.1

  // Views: "drawn" (one stored view per (seed, epoch, sample), from view_choices or all) or
  // "fixed" (fixed_view). Evaluation loaders always read view 0.
  std::string view_policy = "drawn";
  std::int64_t fixed_view = 0;
  std::vector<std::int64_t> view_choices;

  int threads = 2;                   // TBB decoding workers (shard reading, JPEG, augmentation)
  std::int64_t prefetch_batches = 2;  // batches ready ahead of the consumer
  bool skip_missing_images = false;  // skip (and count) samples whose JPEG is missing instead of failing
  // false: no JPEG is read and no depth target pooled (a consumer of the teacher fields and GT only,
  // e.g. `bevkd-train fd3d-head`): images are [N, 3, 1, 1] zeros, intrinsics and img_aug identity,
  // depth [N, 1, 1] zeros. Set by the program, not a configuration key.
  bool cameras = true;
  std::uint64_t seed = 0;            // epoch order, views and image augmentation

  // Throws bevkd::Error naming the field and the bad value.
  void validate() const;

  template <class V>
  void fields(V& v) {
    v("batch_size", batch_size, "--batch-size", "samples per batch");
    v("drop_last_batch", drop_last_batch, "--drop-last-batch", "training: drop the last smaller batch of an epoch");
    v.nested("image", image, "");
    v.group("depth", [&] {
      v("stride", depth_stride, "--depth-stride", "depth targets: the depth net's stride (pixels)");
      v("range", depth_range, "--depth-range", "depth targets: [min, max) depth (m)");
      v("box_id", depth_box_id, "--depth-box-id", "depth targets: also the box-id map (TiG-BEV)");
    });
    v.group("teacher", [&] {
      v("taps", teacher_taps, "--teacher-taps", "teacher feature taps to load");
      v("heatmap", teacher_heatmap, "--teacher-heatmap", "load the teacher's heat maps");
      v("fg_mask", teacher_fg_mask, "--teacher-fg-mask", "load the foreground masks");
      v("boxes", teacher_boxes, "--teacher-boxes", "load the teacher's boxes, scores, labels and quality");
      v("class_probs", teacher_class_probs, "--teacher-class-probs", "load the teacher's class probabilities");
    });
    v.group("views", [&] {
      v("policy", view_policy, "--view-policy", "drawn | fixed");
      v("fixed_view", fixed_view, "--fixed-view", "the view of the fixed policy");
      v("choices", view_choices, "--view-choices", "views the drawn policy picks from (empty: all)");
    });
    v("threads", threads, "--loader-threads", "loader decoding threads");
    v("prefetch_batches", prefetch_batches, "--prefetch-batches", "batches prepared ahead of the trainer");
    v("skip_missing_images", skip_missing_images, "--skip-missing-images",
      "skip (and count) samples whose JPEG is missing instead of failing");
    v("seed", seed, "--seed", "seed of the order, views and image augmentation");
  }
};

// Start-up check of the stored views against what the caller (the student preset) expects:
// `shard_config` is the shards' producing configuration (manifest / header attribute `config`),
// whose views.count and views.augmentation (rotation_range, scale_range, flip_x_prob,
// flip_y_prob) say how the views were drawn. Throws bevkd::Error naming `shards_name` and
// `expected_name` with both values on the first disagreement (ranges compared within 1e-6), or
// when the shards hold a single view while augmented views are expected.
void check_view_ranges(const nlohmann::json& shard_config, const std::string& shards_name,
                       const core::nn::BevAugmentConfig& expected, const std::string& expected_name);

// The shards' stored views as their producing configuration records them (config.views), for a
// trainer that logs them or compares them itself (Loader::stored_views()).
struct StoredViews {
  std::int64_t count = 1;  // V, the manifest's num_views (view 0 = the key frame's own frame)
  // The ranges views 1..V-1 were drawn from; absent when the configuration does not record them.
  std::optional<core::nn::BevAugmentConfig> augmentation;
};
// Reads config.views.augmentation of `shard_config` (throws naming `shards_name` and the key when
// it is present but malformed); `count` is the caller's (the manifest's num_views).
StoredViews stored_views(const nlohmann::json& shard_config, std::int64_t count, const std::string& shards_name);

// DESIGN.md "Grids": the student's BEV grid must cover the same x-y range as the shards' (teacher)
// grid within BevGrid::kSameTolerance, and its cells must equal the teacher's or differ from them by
// one integer ratio r on both axes (student r times finer or r times coarser; H and W scale by r).
// Returns r as a signed ratio (1: same cells; r > 1: the student is r times coarser; r < -1: the
// student is |r| times finer). Throws bevkd::Error naming both grids (BevGrid::describe) otherwise.
std::int64_t check_grid_rule(const BevGrid& shards, const std::string& shards_name, const BevGrid& student,
                             const std::string& student_name);

}  // namespace bevkd::train::data
