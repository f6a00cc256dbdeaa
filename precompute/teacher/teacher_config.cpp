#include "precompute/teacher/teacher_config.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/config.h"

namespace bevkd::precompute {

namespace det = core::nn;

void PillarConfig::validate(const std::string& where) const {
  BEVKD_CHECK(grid.valid(), where, ": no pillar grid given");
  grid.validate(where + " grid");
  BEVKD_CHECK(max_points_per_pillar > 0, where, ": max_points_per_pillar must be positive, got ",
              max_points_per_pillar);
  BEVKD_CHECK(max_pillars_train > 0 && max_pillars_test > 0, where, ": max_pillars_train/test must be positive");
  BEVKD_CHECK(!pfn_channels.empty(), where, ": pfn_channels is empty");
  for (auto c : pfn_channels) BEVKD_CHECK(c > 0, where, ": pfn_channels holds ", c, ", expected positive");
  BEVKD_CHECK(bn_eps > 0 && bn_momentum > 0 && bn_momentum <= 1, where, ": bn_eps/bn_momentum out of range");
}

BevGrid TeacherModelConfig::output_grid() const { return pillar_grid().coarsened(out_size_factor); }

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
  g.grid = output_grid();
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

std::string TeacherModelConfig::to_json() const { return config::to_json(*this).dump(2); }

TeacherModelConfig TeacherModelConfig::from_json(const std::string& text, const std::string& source) {
  TeacherModelConfig c;
  config::from_json(config::parse(text, source), c, source);
  c.validate();
  return c;
}

std::vector<std::string> teacher_preset_names() { return {"tiny", "nuscenes-pillar02"}; }

TeacherModelConfig teacher_preset(const std::string& name) {
  TeacherModelConfig c;  // the defaults are mmdetection3d's centerpoint_02pillar_second_secfpn_nus
  c.preset = name;
  // nuScenes' point-cloud range: x, y in [-51.2, 51.2] m, z in [-5, 3] m; 0.2 m pillars.
  const std::array<double, 6> nuscenes_range{-51.2, -51.2, -5.0, 51.2, 51.2, 3.0};
  c.pillars.grid = BevGrid::make(nuscenes_range, 0.2, "teacher preset " + name + " pillar grid");
  if (name == "nuscenes-pillar02") {
    c.head.in_channels = c.neck_channels();
    c.head.tasks = det::nuscenes_tasks();
    c.decode.nms = det::NmsKind::kRotate;
  } else if (name == "tiny") {
    c.pillars.grid = BevGrid::make(nuscenes_range, 0.4, "teacher preset tiny pillar grid");
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
