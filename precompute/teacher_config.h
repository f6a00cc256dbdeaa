// Configuration of the built-in PointPillars-CenterPoint teacher: typed structs with defaults,
// validated when built, (de)serialised to JSON with unknown keys rejected, and the named presets
//
//   tiny               fast on two CPU cores: 0.4 m pillars over +-51.2 m (256x256), a 2-stage
//                      narrow SECOND backbone, 96-channel neck and 32-channel head at 128x128
//                      (0.8 m cells), one task for all 10 classes; for tests and the demo.
//   nuscenes-pillar02  mmdetection3d's centerpoint_02pillar_second_secfpn_nus: 0.2 m pillars
//                      (20 points, 30000/40000 pillars), 512x512 grid, PFN 11 -> 64, SECOND
//                      [64,128,256] x [3,5,5] strides 2, SECONDFPN 3x128 = 384 channels at
//                      128x128 (out_size_factor 4), CenterHead with 6 tasks, rotated NMS 0.2.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/detection/center_decode.h"
#include "core/detection/center_head.h"
#include "core/detection/center_loss.h"
#include "core/detection/center_targets.h"
#include "core/geometry.h"

namespace bevkd::precompute {

// Pillarisation and the pillar feature net (mmdet3d PillarFeatureNet, legacy=False).
struct PillarConfig {
  std::array<double, 6> point_cloud_range{-51.2, -51.2, -5.0, 51.2, 51.2, 3.0};  // m, ego frame
  std::array<double, 3> voxel_size{0.2, 0.2, 8.0};  // pillar size (z covers the whole range)
  int64_t max_points_per_pillar = 20;
  int64_t max_pillars_train = 30000;
  int64_t max_pillars_test = 40000;
  std::vector<int64_t> pfn_channels{64};
  // Decoration of each point: x, y, z, intensity, time_lag, then its offset from the pillar's
  // point mean (3), then its offset from the pillar centre: x, y (the PointPillars paper, 10
  // features in all) or x, y, z (mmdetection3d with legacy=False, 11 features).
  bool center_offset_z = true;
  double bn_eps = 1e-3;
  double bn_momentum = 0.01;

  static constexpr int64_t kPointDims = 5;  // x, y, z, intensity, time_lag
  int64_t decorated_dims() const { return kPointDims + 3 + (center_offset_z ? 3 : 2); }
  core::BevGrid grid() const;  // the pillar grid (cell voxel_size x/y)
  void validate(const std::string& where) const;
};

// SECOND-style 2D backbone: per stage, a strided 3x3 conv then layer_nums 3x3 convs (BN+ReLU).
struct BackboneConfig {
  std::vector<int64_t> out_channels{64, 128, 256};
  std::vector<int64_t> layer_nums{3, 5, 5};
  std::vector<int64_t> layer_strides{2, 2, 2};
  void validate(const std::string& where) const;
};

// SECONDFPN: per backbone stage a deconv (stride > 1) or strided conv (stride <= 1, mmdet3d's
// use_conv_for_no_stride) to a common resolution, BN+ReLU, concatenated: the `neck` tap.
struct NeckConfig {
  std::vector<int64_t> out_channels{128, 128, 128};
  std::vector<double> upsample_strides{0.5, 1, 2};
  void validate(const std::string& where) const;
};

struct TeacherModelConfig {
  std::string preset = "custom";
  PillarConfig pillars;
  BackboneConfig backbone;
  NeckConfig neck;
  int64_t out_size_factor = 4;  // pillar cells per output cell
  core::detection::CenterHeadConfig head;
  // Training targets and losses.
  double gaussian_overlap = 0.1;
  int min_radius = 2;
  int64_t max_objs = 500;
  core::detection::CenterLossConfig loss;
  // Inference post-processing (the grid and tasks come from the fields above).
  core::detection::DecodeConfig decode;

  // Checks every field and the consistency between stages (backbone strides x neck strides =
  // out_size_factor, neck channels sum = head in_channels, decode tasks = head tasks); throws
  // bevkd::Error naming the field.
  void validate() const;

  core::BevGrid pillar_grid() const { return pillars.grid(); }
  core::BevGrid output_grid() const;              // pillar grid / out_size_factor
  int64_t neck_channels() const;
  core::detection::HeadGeometry head_geometry() const;
  core::detection::CenterTargetConfig target_config() const;
  core::detection::DecodeConfig decode_config() const;  // decode with grid and tasks filled in

  std::string to_json() const;  // pretty-printed, every field
  // Parses JSON written by to_json (or by hand): every key optional except where noted, unknown
  // keys rejected. `source` names the origin in errors (a file name or "checkpoint X").
  static TeacherModelConfig from_json(const std::string& text, const std::string& source);
};

std::vector<std::string> teacher_preset_names();
// Throws bevkd::Error listing the known presets for an unknown name.
TeacherModelConfig teacher_preset(const std::string& name);

}  // namespace bevkd::precompute
