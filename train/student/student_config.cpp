#include "train/student/student_config.h"

#include <cmath>

#include "base/config.h"
#include "base/error.h"
#include "base/math.h"

namespace bevkd::train::student {

namespace det = core::nn;

namespace {

// level i's stride after the neck: in_stride / upsample_stride, compared with `want`.
void check_neck_levels(const det::SecondFpnConfig& neck, const std::vector<int64_t>& in_strides, int64_t want,
                       const std::string& where, const std::string& what) {
  BEVKD_CHECK(neck.out_channels.size() == in_strides.size(), where, ": ", what, " has ", neck.out_channels.size(),
              " levels, its inputs are ", in_strides.size(), " maps");
  for (size_t i = 0; i < in_strides.size(); ++i) {
    const double at = static_cast<double>(in_strides[i]) / neck.upsample_strides[i];
    BEVKD_CHECK(std::fabs(at - static_cast<double>(want)) < 1e-9, where, ": ", what, " level ", i, " ends at stride ",
                at, " (input stride ", in_strides[i], " / upsample ", neck.upsample_strides[i], "), expected ", want);
  }
}

void check_range(const std::array<double, 2>& r, double lo, double hi, const std::string& where, const char* what) {
  BEVKD_CHECK(r[0] <= r[1] && r[0] >= lo && r[1] <= hi, where, ": ", what, " [", r[0], ", ", r[1],
              "] must be ordered and within [", lo, ", ", hi, "]");
}

}  // namespace

void ImageAugConfig::validate(const std::string& where) const {
  check_range(resize_range, 1e-6, 1e6, where, "image_aug.resize_range");
  BEVKD_CHECK(reference_width > 0, where, ": image_aug.reference_width must be positive, got ", reference_width);
  check_range(bottom_crop, 0.0, 0.99, where, "image_aug.bottom_crop");
  check_range(rotation_range_deg, -180.0, 180.0, where, "image_aug.rotation_range_deg");
  BEVKD_CHECK(flip_prob >= 0 && flip_prob <= 1, where, ": image_aug.flip_prob must be in [0, 1], got ", flip_prob);
}

void StudentConfig::validate() const {
  const std::string where = "student config (preset " + preset + ")";
  BEVKD_CHECK(image_height > 0 && image_width > 0, where, ": image size ", image_height, "x", image_width,
              " must be positive");
  BEVKD_CHECK(image_mean.size() == 3 && image_std.size() == 3, where, ": image.mean and image.std need 3 values (RGB)");
  for (double s : image_std) BEVKD_CHECK(s > 0, where, ": image.std values must be positive, got ", s);

  image_aug.validate(where);
  view_ranges.validate(where + " view_ranges");
  image_backbone.validate(where + " image_backbone");
  BEVKD_CHECK(image_backbone.in_channels == 3, where, ": image_backbone.in_channels is ", image_backbone.in_channels,
              ", images have 3");
  image_neck.validate(where + " image_neck");
  BEVKD_CHECK(depth_stride >= 1, where, ": depth_stride must be >= 1, got ", depth_stride);
  check_neck_levels(image_neck, image_backbone.out_strides(), depth_stride, where, "image_neck");
  // Every level must come out at exactly image / depth_stride: the image divisible by the deepest stride.
  const int64_t deepest = image_backbone.out_strides().back();
  const int64_t need = std::max(deepest, depth_stride);
  BEVKD_CHECK(image_height % need == 0 && image_width % need == 0, where, ": image ", image_height, "x", image_width,
              " (HxW) must be a multiple of ", need, " (the image backbone's deepest stride and the depth stride)");
  frustum().validate(where + " depth_bins");
  depth_net.validate(where + " depth_net");

  BEVKD_CHECK(grid.valid(), where, ": no BEV grid given");
  grid.validate(where + " grid");
  BEVKD_CHECK(geometry_cache_size >= 0, where, ": geometry_cache_size must be >= 0, got ", geometry_cache_size);

  bev_backbone.validate(where + " bev_backbone");
  BEVKD_CHECK(bev_backbone.in_channels == depth_net.context_channels, where, ": bev_backbone.in_channels is ",
              bev_backbone.in_channels, ", the lift-splat map has depth_net.context_channels = ",
              depth_net.context_channels);
  const int64_t bev_deepest = bev_backbone.out_strides().back();
  BEVKD_CHECK(grid.H % bev_deepest == 0 && grid.W % bev_deepest == 0, where, ": the grid's ", grid.H, "x", grid.W,
              " cells are not divisible by the BEV trunk's deepest stride ", bev_deepest);
  bev_neck.validate(where + " bev_neck");
  std::vector<int64_t> bev_in_strides{1};
  for (auto s : bev_backbone.out_strides()) bev_in_strides.push_back(s);
  check_neck_levels(bev_neck, bev_in_strides, 1, where, "bev_neck (inputs: the lift-splat map, then bev_backbone's)");

  BEVKD_CHECK(head_type == "center" || head_type == "query", where, ": head_type must be center or query, got '",
              head_type, "'");
  if (query()) {
    query_head.validate(where + " query_head");
    query_loss.validate(where + " query_loss");
    BEVKD_CHECK(query_head.in_channels == bev_neck_channels(), where, ": query_head.in_channels is ",
                query_head.in_channels, ", the BEV neck gives ", bev_neck_channels());
    BEVKD_CHECK(query_max_det >= 1, where, ": query_max_det ", query_max_det, " must be >= 1");
  }
  head.validate(where + " head");
  BEVKD_CHECK(head.in_channels == bev_neck_channels(), where, ": head.in_channels is ", head.in_channels,
              ", the BEV neck outputs ", bev_neck_channels(), " channels");
  BEVKD_CHECK(head.num_classes == core::kNumClasses, where, ": head.num_classes is ", head.num_classes,
              ", the student predicts the ", core::kNumClasses, " nuScenes classes");
  head_geometry().validate(where + " targets");
  target_config().validate(where + " targets");
  loss.validate(where + " loss");
  BEVKD_CHECK(std::isfinite(depth_loss_weight) && depth_loss_weight >= 0, where,
              ": depth_loss_weight must be finite and >= 0, got ", depth_loss_weight);
  decode_config().validate(where + " decode");
}

FrustumSpec StudentConfig::frustum() const {
  FrustumSpec f;
  f.image_height = image_height;
  f.image_width = image_width;
  f.stride = depth_stride;
  f.bins = depth_bins;
  return f;
}

det::HeadGeometry StudentConfig::head_geometry() const {
  det::HeadGeometry g;
  g.grid = grid;
  g.out_size_factor = out_size_factor;
  return g;
}

det::CenterTargetConfig StudentConfig::target_config() const {
  det::CenterTargetConfig t;
  t.geometry = head_geometry();
  t.gaussian_overlap = gaussian_overlap;
  t.min_radius = min_radius;
  t.max_objs = max_objs;
  t.tasks = head.tasks;
  t.num_classes = head.num_classes;
  return t;
}

det::DecodeConfig StudentConfig::decode_config() const {
  det::DecodeConfig d = decode;
  d.grid = grid;
  d.tasks = head.tasks;
  d.num_classes = head.num_classes;
  return d;
}

std::string StudentConfig::to_json() const { return config::to_json(*this).dump(2); }

StudentConfig StudentConfig::from_json(const std::string& text, const std::string& source) {
  StudentConfig c;
  config::from_json(config::parse(text, source), c, source);
  c.validate();
  return c;
}

std::vector<std::string> student_preset_names() { return {"tiny", "bevdepth-r50"}; }

StudentConfig student_preset(const std::string& name) {
  StudentConfig c;
  c.preset = name;
  // The teacher's (nuScenes') range; BEVDepth's z_bound [-5, 3] is one lift-splat cell high.
  const std::array<double, 6> nuscenes_range{-51.2, -51.2, -5.0, 51.2, 51.2, 3.0};
  if (name == "bevdepth-r50") {
    c.image_height = 256;
    c.image_width = 704;
    // BEVDepth's ida_aug_conf (resize_lim, final_dim, bot_pct_lim, rot_lim, rand_flip) and
    // bda_aug_conf (rot_lim +-22.5 deg, scale_lim, flip_dx_ratio, flip_dy_ratio).
    c.image_aug.resize_range = {0.386, 0.55};
    c.image_aug.bottom_crop = {0.0, 0.0};
    c.image_aug.rotation_range_deg = {-5.4, 5.4};
    c.image_aug.flip_prob = 0.5;
    c.view_ranges.rotation_range = {-22.5 * kPi / 180, 22.5 * kPi / 180};
    c.view_ranges.scale_range = {0.95, 1.05};
    c.view_ranges.flip_x_prob = 0.5;
    c.view_ranges.flip_y_prob = 0.5;
    c.image_backbone = ResNetConfig{};  // torchvision ResNet-50, 4 stages, out_indices 0..3
    c.image_backbone.frozen_stages = 0;  // BEVDepth: frozen_stages=0 (the stem), norm_eval=False
    c.image_neck.out_channels = {128, 128, 128, 128};
    c.image_neck.upsample_strides = {0.25, 0.5, 1, 2};
    c.depth_stride = 16;
    c.depth_bins = DepthBins{2.0, 58.0, 0.5, "center"};  // 112 bins
    c.depth_net = DepthNetConfig{};                      // mid 512, context 80, 3 blocks, ASPP 1/6/12/18
    c.grid = BevGrid::make(nuscenes_range, 0.8, "student preset bevdepth-r50 grid");  // 128x128
    c.bev_backbone.depth = 18;
    c.bev_backbone.in_channels = 80;
    c.bev_backbone.base_channels = 160;
    c.bev_backbone.num_stages = 3;
    c.bev_backbone.strides = {1, 2, 2};
    c.bev_backbone.out_indices = {0, 1, 2};
    c.bev_backbone.stem_pool = false;
    c.bev_neck.out_channels = {64, 64, 64, 64};
    c.bev_neck.upsample_strides = {1, 2, 4, 8};
    c.head.in_channels = 256;
    c.query_head.in_channels = 256;
    c.head.shared_channels = 64;
    c.head.head_channels = 64;
    c.head.tasks = det::nuscenes_tasks();
    // BEVDepth's train_cfg / test_cfg (voxel 0.2 m, out_size_factor 4).
    c.out_size_factor = 4;
    c.loss.code_weights = {1, 1, 1, 1, 1, 1, 1, 1, 0.5, 0.5};
    c.loss.bbox_weight = 0.25;
    c.depth_loss_weight = 3.0;
    c.decode.nms = det::NmsKind::kCircle;
    c.decode.max_num = 500;
    c.decode.post_max_size = 83;
    c.decode.score_threshold = 0.1;
  } else if (name == "tiny") {
    c.image_height = 96;
    c.image_width = 256;
    // BEVDepth's ranges scaled to the smaller image: its resize range relative to the scale that
    // fits 256x704 into 1600x900 (0.44), applied to the scale fitting 96x256 (0.16).
    c.image_aug.resize_range = {0.14, 0.20};
    c.image_aug.rotation_range_deg = {-5.4, 5.4};
    c.image_aug.flip_prob = 0.5;
    // view_ranges: precompute's default --views ranges (core/nn BevAugmentConfig{}).
    c.image_backbone.depth = 18;
    c.image_backbone.base_channels = 32;
    c.image_backbone.num_stages = 3;
    c.image_backbone.strides = {1, 2, 2};
    c.image_backbone.out_indices = {1, 2};  // 64 ch at stride 8, 128 ch at stride 16
    c.image_neck.out_channels = {32, 32};
    c.image_neck.upsample_strides = {0.5, 1};
    c.depth_stride = 16;
    c.depth_bins = DepthBins{2.0, 58.0, 2.0, "center"};  // 28 bins
    c.depth_net.mid_channels = 64;
    c.depth_net.context_channels = 32;
    c.depth_net.num_blocks = 1;
    c.depth_net.aspp_dilations = {1, 2, 4};  // a 6x16 feature map: BEVDepth's 6/12/18 would read padding
    c.depth_net.aspp_dropout = 0.1;
    c.grid = BevGrid::make(nuscenes_range, 1.6, "student preset tiny grid");  // 64x64
    c.bev_backbone.depth = 18;
    c.bev_backbone.in_channels = 32;
    c.bev_backbone.base_channels = 32;
    c.bev_backbone.num_stages = 2;
    c.bev_backbone.strides = {1, 2};
    c.bev_backbone.out_indices = {0, 1};  // 32 ch at 32x32, 64 ch at 16x16
    c.bev_backbone.stem_pool = false;
    c.bev_neck.out_channels = {32, 32, 32};
    c.bev_neck.upsample_strides = {1, 2, 4};
    c.head.in_channels = 96;
    c.query_head.in_channels = 96;  // head_type "query": 300 queries, D = 128, 3 layers
    c.query_head.embed_dims = 128;
    c.query_head.ffn_dims = 256;
    c.head.shared_channels = 32;
    c.head.head_channels = 32;
    c.head.num_reg_convs = 1;  // as the tiny teacher: regression maps straight from the shared conv
    c.head.tasks = det::single_task();
    c.out_size_factor = 1;
    c.decode.nms = det::NmsKind::kRotate;
    c.decode.nms_per_class = true;  // one task for ten classes
    c.decode.post_max_size = 200;
  } else {
    std::string known;
    for (const auto& n : student_preset_names()) known += (known.empty() ? "" : ", ") + n;
    BEVKD_FAIL("student preset '", name, "' is unknown, expected one of: ", known);
  }
  c.validate();
  return c;
}

GridAlignment align_student_grid(const BevGrid& student, const BevGrid& teacher) {
  BEVKD_CHECK(teacher.valid(), "align_student_grid: the teacher (shard) grid is empty");
  teacher.validate("teacher (shard) grid");
  GridAlignment a;
  a.teacher = teacher;
  if (!student.valid()) {
    a.student = teacher;
    return a;
  }
  student.validate("student grid");
  a.student = student;
  auto refuse = [&](const std::string& why) {
    BEVKD_FAIL("student grid ", student.describe(), " does not fit the teacher (shard) grid ", teacher.describe(), ": ",
               why, " (DESIGN.md \"Grids\": the same range, cells equal or an integer ratio apart)");
  };
  if (!student.same_range(teacher)) refuse("the ranges differ");
  if (student.same_as(teacher)) return a;
  if (const auto r = student.coarser_by(teacher); r >= 2) {
    a.student_coarser_by = r;
    return a;
  }
  if (const auto r = teacher.coarser_by(student); r >= 2) {
    a.student_finer_by = r;
    return a;
  }
  refuse("the cells are not an integer ratio apart (the same in x and y)");
  return a;  // unreachable
}

}  // namespace bevkd::train::student
