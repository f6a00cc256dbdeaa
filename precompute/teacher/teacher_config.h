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

#include "core/nn/center_decode.h"
#include "core/nn/center_head.h"
#include "core/nn/center_loss.h"
#include "core/nn/center_targets.h"
#include "base/bev_grid.h"
#include "core/nn/second.h"

namespace bevkd::precompute {

// Pillarisation and the pillar feature net (mmdet3d PillarFeatureNet, legacy=False).
struct PillarConfig {
  // The pillar grid: x-y cells of the pillar size over the point-cloud range, the z range one
  // pillar high (m, ego frame). Set by the presets; no default.
  BevGrid grid;
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
  void validate(const std::string& where) const;

  template <class V>
  void fields(V& v) {
    v("grid", grid);
    v("max_points_per_pillar", max_points_per_pillar);
    v("max_pillars_train", max_pillars_train);
    v("max_pillars_test", max_pillars_test);
    v("pfn_channels", pfn_channels);
    v("center_offset_z", center_offset_z);
    v("bn_eps", bn_eps);
    v("bn_momentum", bn_momentum);
  }
};

struct TeacherModelConfig {
  std::string preset = "custom";
  PillarConfig pillars;
  core::nn::SecondConfig backbone;   // SECOND (core/nn/second.h)
  core::nn::SecondFpnConfig neck;    // SECONDFPN: the `neck` tap
  int64_t out_size_factor = 4;  // pillar cells per output cell
  core::nn::CenterHeadConfig head;
  // Training targets and losses.
  double gaussian_overlap = 0.1;
  int min_radius = 2;
  int64_t max_objs = 500;
  core::nn::CenterLossConfig loss;
  // Inference post-processing (the grid and tasks come from the fields above).
  core::nn::DecodeConfig decode;

  // Checks every field and the consistency between stages (backbone strides x neck strides =
  // out_size_factor, neck channels sum = head in_channels, decode tasks = head tasks); throws
  // bevkd::Error naming the field.
  void validate() const;

  const BevGrid& pillar_grid() const { return pillars.grid; }
  BevGrid output_grid() const;              // pillar grid / out_size_factor
  int64_t neck_channels() const { return neck.channels(); }
  core::nn::HeadGeometry head_geometry() const;
  core::nn::CenterTargetConfig target_config() const;
  core::nn::DecodeConfig decode_config() const;  // decode with grid and tasks filled in

  template <class V>
  void fields(V& v) {
    v("preset", preset);
    v.nested("pillars", pillars);
    v.nested("backbone", backbone);
    v.nested("neck", neck);
    v("out_size_factor", out_size_factor);
    v.nested("head", head);
    v.group("targets", [&] {
      v("gaussian_overlap", gaussian_overlap);
      v("min_radius", min_radius);
      v("max_objs", max_objs);
    });
    v.nested("loss", loss);
    v.nested("decode", decode);
  }
  std::string to_json() const;  // pretty-printed, every field
  // Parses JSON written by to_json (or by hand): every key optional, unknown keys rejected, then
  // validate(). `source` names the origin in errors (a file name or "checkpoint X").
  static TeacherModelConfig from_json(const std::string& text, const std::string& source);
};

std::vector<std::string> teacher_preset_names();
// Throws bevkd::Error listing the known presets for an unknown name.
TeacherModelConfig teacher_preset(const std::string& name);

}  // namespace bevkd::precompute
