// Configuration of the camera student (BEVDepth-style lift-splat), as data (base/config.h), and
// its presets:
//
//   tiny          trains on two CPU cores: 96x256 images, ResNet-18 layout at half width with 3
//                 stages (layer1..3, stride 16 at the top), a 64-channel image neck at stride 16,
//                 28 depth bins [2, 58) m at 2 m, 32 context channels, a 64x64 BEV grid at 1.6 m
//                 over the teacher's +-51.2 m (an integer ratio of the tiny teacher's 0.8 m
//                 grid), a 2-stage BEV trunk and a 32-channel single-task CenterHead; image
//                 augmentation as BEVDepth's at the smaller scale (resize 0.14-0.2 of a
//                 1600-wide source, +-5.4 deg, flip), views as precompute's defaults, depth loss
//                 weight 3. Its reduced
//                 width means torchvision weights do not fit it (--init is for full-width presets).
//   bevdepth-r50  BEVDepth's base experiment (bev_depth_lss_r50_256x704_128x128_24e): 256x704 images,
//                 torchvision ResNet-50 with all 4 stages, SECONDFPN [256, 512, 1024, 2048] ->
//                 4 x 128 = 512 channels at stride 16, DepthNet mid 512, 80 context channels,
//                 112 depth bins [2, 58) at 0.5 m, 128x128 BEV at 0.8 m over +-51.2 m (z -5..3),
//                 BEV trunk ResNet-18 layout (in 80, base 160, 3 stages, strides 1, 2, 2, no max pool)
//                 + SECONDFPN [80, 160, 320, 640] x 64 = 256 channels, CenterHead with the six
//                 nuScenes tasks (shared 64, head 64), circle NMS as BEVDepth's test_cfg; image
//                 augmentation resize 0.386-0.55, crop to 256x704, rotation +-5.4 deg, flip 0.5;
//                 stored views drawn with rotation +-22.5 deg, scale 0.95-1.05, x / y flips 0.5;
//                 ImageNet normalisation; depth loss weight 3.0 (min-pooled LiDAR depth).
//
// The BEV grid is data like everything else; align_student_grid() checks it against a teacher
// (shard) grid per DESIGN.md "Grids".
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "base/bev_grid.h"
#include "core/nn/bev_augment.h"
#include "core/nn/center_decode.h"
#include "core/nn/center_head.h"
#include "core/nn/center_loss.h"
#include "core/nn/center_targets.h"
#include "core/nn/query_decoder.h"
#include "core/nn/query_loss.h"
#include "core/nn/second.h"
#include "train/student/depth_net.h"
#include "train/student/frustum.h"
#include "train/student/resnet.h"

namespace bevkd::train::student {

// Image augmentation ranges (BEVDepth's ida_aug_conf), applied by the loader (train/data/): the
// source image is resized by r ~ U(resize_range) x (reference_width / source width) -- r is
// BEVDepth's factor on a reference_width-wide nuScenes image, so other source sizes (synth) get
// the same output scale -- then cropped to the student's image size (the crop's top at the
// bottom_crop fraction range of the resized height, as BEVDepth's bot_pct_lim; horizontally
// centred in evaluation, uniform in training), flipped horizontally with flip_prob and rotated by
// U(rotation_range_deg) degrees about the crop centre. Evaluation uses the mean resize, no flip,
// no rotation. The intrinsics (A K) and depth targets move with the image.
struct ImageAugConfig {
  std::array<double, 2> resize_range{0.386, 0.55};
  double reference_width = 1600;                 // pixels (nuScenes CAM_*)
  std::array<double, 2> bottom_crop{0.0, 0.0};   // fraction of the resized height cut at the bottom
  std::array<double, 2> rotation_range_deg{-5.4, 5.4};
  double flip_prob = 0.5;

  void validate(const std::string& where) const;
  template <class V>
  void fields(V& v) {
    v("resize_range", resize_range);
    v("reference_width", reference_width);
    v("bottom_crop", bottom_crop);
    v("rotation_range_deg", rotation_range_deg);
    v("flip_prob", flip_prob);
  }
};

struct StudentConfig {
  std::string preset = "custom";
  // The augmented image the student sees (pixels); the loader resizes and crops to it.
  int64_t image_height = 256, image_width = 704;
  // Image normalisation the loader applies ((x / 255 - mean) / std, RGB): the image backbone's
  // weights expect it (torchvision's ImageNet statistics).
  std::vector<double> image_mean{0.485, 0.456, 0.406};
  std::vector<double> image_std{0.229, 0.224, 0.225};
  ImageAugConfig image_aug;              // the loader's image augmentation (training only)
  // The BEV augmentation ranges of the shard's stored views (precompute's --views, core/nn
  // BevAugmentConfig: rotation in rad). The trainer replays stored views only and checks the
  // shard's recorded view ranges against these at start-up; it never draws a BEV transform itself.
  core::nn::BevAugmentConfig view_ranges;
  ResNetConfig image_backbone;
  core::nn::SecondFpnConfig image_neck;  // brings image_backbone's outputs to depth_stride
  int64_t depth_stride = 16;             // the depth net's stride (BEVDepth downsample_factor)
  DepthBins depth_bins;
  DepthNetConfig depth_net;
  BevGrid grid;                          // the lift-splat grid = every BEV map's grid (no default)
  int64_t geometry_cache_size = 8;       // evaluation's lift-splat geometry cache (entries; 0 = off)
  ResNetConfig bev_backbone;             // stem_pool false; in_channels = depth_net.context_channels
  core::nn::SecondFpnConfig bev_neck;    // inputs: the lift-splat map, then bev_backbone's outputs
  // The detection head: "center" (CenterHead, `head`) or "query" (a DETR-style head, `query_head`:
  // learned queries, self-attention, deformable attention over the BEV neck map, per-layer class
  // logits and boxes; Hungarian set loss `query_loss`; the top query_max_det (query, class) pairs
  // are the detections, NMS-free).
  std::string head_type = "center";
  core::nn::CenterHeadConfig head;       // in_channels = bev_neck channels
  core::nn::QueryDecoderConfig query_head;  // in_channels = bev_neck channels
  core::nn::QueryLossConfig query_loss;
  int64_t query_max_det = 300;
  bool query() const { return head_type == "query"; }
  // CenterPoint targets, losses and decoding (core/nn), as the teacher's; the head grid is `grid`.
  int64_t out_size_factor = 1;           // detector voxels per head cell (targets' float arithmetic)
  double gaussian_overlap = 0.1;
  int min_radius = 2;
  int64_t max_objs = 500;
  core::nn::CenterLossConfig loss;
  double depth_loss_weight = 3.0;        // BEVDepth's depth loss (BCE on min-pooled LiDAR depth bins)
  core::nn::DecodeConfig decode;

  // Checks every field and the consistency between stages (neck levels at depth_stride, BEV neck
  // levels at the grid's resolution, channel counts, grid divisible by the BEV trunk); throws
  // bevkd::Error naming the field.
  void validate() const;

  FrustumSpec frustum() const;
  int64_t image_neck_channels() const { return image_neck.channels(); }
  int64_t bev_neck_channels() const { return bev_neck.channels(); }
  core::nn::HeadGeometry head_geometry() const;
  core::nn::CenterTargetConfig target_config() const;
  core::nn::DecodeConfig decode_config() const;  // decode with grid and tasks filled in

  template <class V>
  void fields(V& v) {
    v("preset", preset);
    v.group("image", [&] {
      v("height", image_height);
      v("width", image_width);
      v("mean", image_mean);
      v("std", image_std);
    });
    v.nested("image_aug", image_aug);
    v.nested("view_ranges", view_ranges);
    v.nested("image_backbone", image_backbone);
    v.nested("image_neck", image_neck);
    v("depth_stride", depth_stride);
    v.nested("depth_bins", depth_bins);
    v.nested("depth_net", depth_net);
    v("grid", grid);
    v("geometry_cache_size", geometry_cache_size);
    v.nested("bev_backbone", bev_backbone);
    v.nested("bev_neck", bev_neck);
    v("head_type", head_type);
    v.nested("head", head);
    v.nested("query_head", query_head);
    v.nested("query_loss", query_loss);
    v("query_max_det", query_max_det);
    v.group("targets", [&] {
      v("out_size_factor", out_size_factor);
      v("gaussian_overlap", gaussian_overlap);
      v("min_radius", min_radius);
      v("max_objs", max_objs);
    });
    v.nested("loss", loss);
    v("depth_loss_weight", depth_loss_weight);
    v.nested("decode", decode);
  }
  std::string to_json() const;  // pretty-printed, every field
  // Parses JSON written by to_json (or by hand, starting from the defaults, which hold no grid):
  // unknown keys rejected, then validate(). `source` names the origin in errors. To override a
  // preset instead: auto c = student_preset(name); config::from_json(j, c, source); c.validate();
  static StudentConfig from_json(const std::string& text, const std::string& source);
};

std::vector<std::string> student_preset_names();  // tiny, bevdepth-r50
// Throws bevkd::Error listing the known presets for an unknown name.
StudentConfig student_preset(const std::string& name);

// The student's grid against the teacher's (shard) grid, DESIGN.md "Grids": the same x / y / z
// range, and cells equal or differing by an integer ratio r >= 2 either way (dense losses then
// resample the student map to the teacher grid).
struct GridAlignment {
  BevGrid student;
  BevGrid teacher;
  int64_t student_coarser_by = 1;  // teacher cells per student cell along each axis (1 unless coarser)
  int64_t student_finer_by = 1;    // student cells per teacher cell (1 unless finer)
  bool same() const { return student_coarser_by == 1 && student_finer_by == 1; }
};

// Checks `student` against `teacher`. An empty (default) student grid is derived: it becomes the
// teacher's grid. Anything else is refused with a bevkd::Error naming both grids, e.g.
//   "student grid range [-50, -50, -5, 50, 50, 3], cell 0.8x0.8 m, 125x125 (HxW) does not fit the
//    teacher (shard) grid range [-51.2, ...]: the ranges differ (DESIGN.md "Grids": same range,
//    cells equal or an integer ratio apart)".
GridAlignment align_student_grid(const BevGrid& student, const BevGrid& teacher);

}  // namespace bevkd::train::student
