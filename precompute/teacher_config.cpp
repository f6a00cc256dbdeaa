#include "precompute/teacher_config.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "core/detection/detection_json.h"
#include "core/json_config.h"

namespace bevkd::precompute {

namespace det = core::detection;

core::BevGrid PillarConfig::grid() const {
  return core::BevGrid::make(point_cloud_range, voxel_size[0], voxel_size[1]);
}

void PillarConfig::validate(const std::string& where) const {
  for (int i = 0; i < 3; ++i) {
    BEVKD_CHECK(std::isfinite(point_cloud_range[i]) && std::isfinite(point_cloud_range[i + 3]) &&
                    point_cloud_range[i] < point_cloud_range[i + 3],
                where, ": point_cloud_range axis ", i, " has min ", point_cloud_range[i], " and max ",
                point_cloud_range[i + 3], ", expected finite min < max");
    BEVKD_CHECK(voxel_size[i] > 0 && std::isfinite(voxel_size[i]), where, ": voxel_size[", i,
                "] must be positive, got ", voxel_size[i]);
  }
  const double nz = (point_cloud_range[5] - point_cloud_range[2]) / voxel_size[2];
  BEVKD_CHECK(std::fabs(nz - 1.0) < 1e-6, where, ": pillars must span the whole z range: voxel_size[2] is ",
              voxel_size[2], " m, the range is ", point_cloud_range[5] - point_cloud_range[2], " m high");
  grid();  // throws if x/y are not a whole number of pillars
  BEVKD_CHECK(max_points_per_pillar > 0, where, ": max_points_per_pillar must be positive, got ",
              max_points_per_pillar);
  BEVKD_CHECK(max_pillars_train > 0 && max_pillars_test > 0, where, ": max_pillars_train/test must be positive");
  BEVKD_CHECK(!pfn_channels.empty(), where, ": pfn_channels is empty");
  for (auto c : pfn_channels) BEVKD_CHECK(c > 0, where, ": pfn_channels holds ", c, ", expected positive");
  BEVKD_CHECK(bn_eps > 0 && bn_momentum > 0 && bn_momentum <= 1, where, ": bn_eps/bn_momentum out of range");
}

void BackboneConfig::validate(const std::string& where) const {
  BEVKD_CHECK(!out_channels.empty(), where, ": out_channels is empty");
  BEVKD_CHECK(layer_nums.size() == out_channels.size() && layer_strides.size() == out_channels.size(), where,
              ": out_channels (", out_channels.size(), "), layer_nums (", layer_nums.size(), ") and layer_strides (",
              layer_strides.size(), ") must have one length");
  for (size_t i = 0; i < out_channels.size(); ++i) {
    BEVKD_CHECK(out_channels[i] > 0, where, ": out_channels[", i, "] must be positive, got ", out_channels[i]);
    BEVKD_CHECK(layer_nums[i] >= 0, where, ": layer_nums[", i, "] must be >= 0, got ", layer_nums[i]);
    BEVKD_CHECK(layer_strides[i] >= 1, where, ": layer_strides[", i, "] must be >= 1, got ", layer_strides[i]);
  }
}

void NeckConfig::validate(const std::string& where) const {
  BEVKD_CHECK(!out_channels.empty() && out_channels.size() == upsample_strides.size(), where, ": out_channels (",
              out_channels.size(), ") and upsample_strides (", upsample_strides.size(),
              ") must be non-empty and of one length");
  for (size_t i = 0; i < out_channels.size(); ++i) {
    BEVKD_CHECK(out_channels[i] > 0, where, ": out_channels[", i, "] must be positive, got ", out_channels[i]);
    const double s = upsample_strides[i];
    const bool up_ok = s >= 1 && s == std::floor(s);
    const bool down_ok = s > 0 && s < 1 && std::fabs(1.0 / s - std::round(1.0 / s)) < 1e-9;
    BEVKD_CHECK(up_ok || down_ok, where, ": upsample_strides[", i, "] is ", s,
                ", expected an integer >= 1 or 1/n for an integer n");
  }
}

core::BevGrid TeacherModelConfig::output_grid() const { return pillar_grid().coarsened(out_size_factor); }

int64_t TeacherModelConfig::neck_channels() const {
  int64_t c = 0;
  for (auto x : neck.out_channels) c += x;
  return c;
}

void TeacherModelConfig::validate() const {
  const std::string where = "teacher config (preset " + preset + ")";
  pillars.validate(where + " pillars");
  backbone.validate(where + " backbone");
  neck.validate(where + " neck");
  BEVKD_CHECK(backbone.out_channels.size() == neck.out_channels.size(), where, ": the neck has ",
              neck.out_channels.size(), " inputs, the backbone ", backbone.out_channels.size(), " stages");
  BEVKD_CHECK(out_size_factor >= 1, where, ": out_size_factor must be >= 1, got ", out_size_factor);
  // Every neck branch must land on the output resolution: prod(strides[0..i]) / up_i = osf.
  double down = 1;
  for (size_t i = 0; i < backbone.layer_strides.size(); ++i) {
    down *= static_cast<double>(backbone.layer_strides[i]);
    const double at = down / neck.upsample_strides[i];
    BEVKD_CHECK(std::fabs(at - static_cast<double>(out_size_factor)) < 1e-9, where, ": neck branch ", i,
                " ends at stride ", at, " (backbone ", down, " / upsample ", neck.upsample_strides[i],
                "), expected out_size_factor ", out_size_factor);
  }
  output_grid();  // throws if the pillar grid is not divisible by out_size_factor
  head.validate(where + " head");
  BEVKD_CHECK(head.in_channels == neck_channels(), where, ": head.in_channels is ", head.in_channels,
              ", the neck outputs ", neck_channels(), " channels");
  BEVKD_CHECK(head.num_classes == core::kNumClasses, where, ": head.num_classes is ", head.num_classes,
              ", a teacher predicts the ", core::kNumClasses, " nuScenes classes");
  BEVKD_CHECK(gaussian_overlap > 0 && gaussian_overlap < 1, where, ": gaussian_overlap must be in (0, 1), got ",
              gaussian_overlap);
  BEVKD_CHECK(min_radius >= 0, where, ": min_radius must be >= 0, got ", min_radius);
  BEVKD_CHECK(max_objs > 0, where, ": max_objs must be positive, got ", max_objs);
  loss.validate(where + " loss");
  decode_config().validate(where + " decode");
}

det::HeadGeometry TeacherModelConfig::head_geometry() const {
  det::HeadGeometry g;
  g.point_cloud_range = pillars.point_cloud_range;
  g.voxel_size = {pillars.voxel_size[0], pillars.voxel_size[1]};
  g.out_size_factor = out_size_factor;
  return g;
}

det::CenterTargetConfig TeacherModelConfig::target_config() const {
  det::CenterTargetConfig t;
  t.geometry = head_geometry();
  t.gaussian_overlap = gaussian_overlap;
  t.min_radius = min_radius;
  t.max_objs = max_objs;
  t.tasks = head.tasks;
  t.num_classes = head.num_classes;
  return t;
}

det::DecodeConfig TeacherModelConfig::decode_config() const {
  det::DecodeConfig d = decode;
  d.grid = output_grid();
  d.tasks = head.tasks;
  d.num_classes = head.num_classes;
  return d;
}

std::string TeacherModelConfig::to_json() const {
  nlohmann::json j;
  j["preset"] = preset;
  j["pillars"] = {{"point_cloud_range", pillars.point_cloud_range},
                  {"voxel_size", pillars.voxel_size},
                  {"max_points_per_pillar", pillars.max_points_per_pillar},
                  {"max_pillars_train", pillars.max_pillars_train},
                  {"max_pillars_test", pillars.max_pillars_test},
                  {"pfn_channels", pillars.pfn_channels},
                  {"center_offset_z", pillars.center_offset_z},
                  {"bn_eps", pillars.bn_eps},
                  {"bn_momentum", pillars.bn_momentum}};
  j["backbone"] = {{"out_channels", backbone.out_channels},
                   {"layer_nums", backbone.layer_nums},
                   {"layer_strides", backbone.layer_strides}};
  j["neck"] = {{"out_channels", neck.out_channels}, {"upsample_strides", neck.upsample_strides}};
  j["out_size_factor"] = out_size_factor;
  j["head"] = det::to_json(head);
  j["targets"] = {{"gaussian_overlap", gaussian_overlap}, {"min_radius", min_radius}, {"max_objs", max_objs}};
  j["loss"] = det::to_json(loss);
  j["decode"] = det::to_json(decode);
  return j.dump(2);
}

TeacherModelConfig TeacherModelConfig::from_json(const std::string& text, const std::string& source) {
  const auto j = core::parse_json(text, source);
  core::JsonFields f(j, source);
  TeacherModelConfig c;
  f.get("preset", c.preset);
  {
    auto p = f.object("pillars");
    p.get("point_cloud_range", c.pillars.point_cloud_range);
    p.get("voxel_size", c.pillars.voxel_size);
    p.get("max_points_per_pillar", c.pillars.max_points_per_pillar);
    p.get("max_pillars_train", c.pillars.max_pillars_train);
    p.get("max_pillars_test", c.pillars.max_pillars_test);
    p.get("pfn_channels", c.pillars.pfn_channels);
    p.get("center_offset_z", c.pillars.center_offset_z);
    p.get("bn_eps", c.pillars.bn_eps);
    p.get("bn_momentum", c.pillars.bn_momentum);
    p.finish();
  }
  {
    auto b = f.object("backbone");
    b.get("out_channels", c.backbone.out_channels);
    b.get("layer_nums", c.backbone.layer_nums);
    b.get("layer_strides", c.backbone.layer_strides);
    b.finish();
  }
  {
    auto n = f.object("neck");
    n.get("out_channels", c.neck.out_channels);
    n.get("upsample_strides", c.neck.upsample_strides);
    n.finish();
  }
  f.get("out_size_factor", c.out_size_factor);
  det::read_json(f.object("head"), c.head);
  {
    auto t = f.object("targets");
    t.get("gaussian_overlap", c.gaussian_overlap);
    t.get("min_radius", c.min_radius);
    t.get("max_objs", c.max_objs);
    t.finish();
  }
  det::read_json(f.object("loss"), c.loss);
  det::read_json(f.object("decode"), c.decode);
  f.finish();
  c.validate();
  return c;
}

std::vector<std::string> teacher_preset_names() { return {"tiny", "nuscenes-pillar02"}; }

TeacherModelConfig teacher_preset(const std::string& name) {
  TeacherModelConfig c;  // the defaults are mmdetection3d's centerpoint_02pillar_second_secfpn_nus
  c.preset = name;
  if (name == "nuscenes-pillar02") {
    c.head.in_channels = c.neck_channels();
    c.head.tasks = det::nuscenes_tasks();
    c.decode.nms = det::NmsKind::kRotate;
  } else if (name == "tiny") {
    c.pillars.voxel_size = {0.4, 0.4, 8.0};
    c.pillars.max_points_per_pillar = 16;
    c.pillars.max_pillars_train = 16000;
    c.pillars.max_pillars_test = 20000;
    c.pillars.pfn_channels = {32};
    c.pillars.center_offset_z = false;  // the PointPillars paper's 10 features
    c.backbone.out_channels = {32, 64};
    c.backbone.layer_nums = {1, 2};
    c.backbone.layer_strides = {2, 2};
    c.neck.out_channels = {32, 32};
    c.neck.upsample_strides = {1, 2};
    c.out_size_factor = 2;
    c.head.in_channels = c.neck_channels();
    c.head.shared_channels = 32;
    c.head.head_channels = 32;
    c.head.num_reg_convs = 1;  // regression maps straight from the shared features: the 128x128
                               // branch convs would double the CPU cost
    c.head.tasks = det::single_task();
    c.decode.nms = det::NmsKind::kRotate;
    c.decode.nms_per_class = true;  // one task for ten classes: a cyclist must not suppress a car
    c.decode.post_max_size = 200;
  } else {
    std::string known;
    for (const auto& n : teacher_preset_names()) known += (known.empty() ? "" : ", ") + n;
    BEVKD_FAIL("teacher preset '", name, "' is unknown, expected one of: ", known);
  }
  c.validate();
  return c;
}

}  // namespace bevkd::precompute
