// The assembled student: presets (validation, JSON round trip, unknown keys), forward shapes and
// gradients of `tiny`, `bevdepth-r50` construction with parameter counts worked out here plus a
// forward on a reduced input, the taps, the camera parameters of the depth net, and the grid rule
// against a teacher grid.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <iostream>

#include "base/config.h"
#include "base/math.h"
#include "tests/train/student/student_test_util.h"
#include "train/student/student.h"

namespace bevkd::train::student {
namespace {

using testing::expect_error;
using testing::level_camera;

// A batch of B samples with N cameras in a ring (img_aug: a plain resize; bda: identity for
// sample 0, a rotation for the others).
data::CameraBatch make_batch(const StudentConfig& cfg, int64_t B, int64_t N) {
  data::CameraBatch cam;
  const int64_t H = cfg.image_height, W = cfg.image_width;
  cam.images = torch::randn({B, N, 3, H, W});
  const double s = 0.5;
  const auto A = torch::tensor({s, 0.0, 0.5 * s - 0.5, 0.0, s, 0.5 * s - 0.5, 0.0, 0.0, 1.0}, torch::kFloat64).view({3, 3});
  const auto K = torch::tensor({1.0 * W, 0.0, W - 0.5, 0.0, 1.0 * W, H - 0.5, 0.0, 0.0, 1.0}, torch::kFloat64).view({3, 3});
  std::vector<torch::Tensor> intr, aug, c2e, bda;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<torch::Tensor> ib, ab, cb;
    for (int64_t n = 0; n < N; ++n) {
      ib.push_back(torch::matmul(A, K));
      ab.push_back(A);
      cb.push_back(level_camera(2 * kPi * n / N, {0.0, 0.0, 1.6}));
    }
    intr.push_back(torch::stack(ib));
    aug.push_back(torch::stack(ab));
    c2e.push_back(torch::stack(cb));
    bda.push_back(testing::rot_z(0.2 * b));
  }
  cam.intrinsics = torch::stack(intr).to(torch::kFloat32);
  cam.img_aug = torch::stack(aug).to(torch::kFloat32);
  cam.cam2ego = torch::stack(c2e).to(torch::kFloat32);
  cam.bda = torch::stack(bda).to(torch::kFloat32);
  return cam;
}

int64_t conv(int64_t in, int64_t out, int64_t k, bool bias = false, int64_t groups = 1) {
  return out * (in / groups) * k * k + (bias ? out : 0);
}
int64_t bn(int64_t c) { return 2 * c; }
int64_t linear(int64_t in, int64_t out) { return in * out + out; }

TEST(StudentPresets, ValidateAndRoundTripThroughJson) {
  for (const auto& name : student_preset_names()) {
    const auto cfg = student_preset(name);
    EXPECT_EQ(cfg.preset, name);
    const auto text = cfg.to_json();
    const auto back = StudentConfig::from_json(text, name + ".json");
    EXPECT_EQ(back.to_json(), text) << name;
  }
  const auto r50 = student_preset("bevdepth-r50");
  EXPECT_EQ(r50.depth_bins.count(), 112);
  EXPECT_EQ(r50.grid.H, 128);
  EXPECT_EQ(r50.grid.W, 128);
  EXPECT_DOUBLE_EQ(r50.grid.dx, 0.8);
  EXPECT_EQ(r50.image_neck_channels(), 512);
  EXPECT_EQ(r50.bev_neck_channels(), 256);
  EXPECT_EQ(r50.image_height, 256);
  EXPECT_EQ(r50.image_width, 704);
  EXPECT_EQ(r50.image_backbone.depth, 50);
  EXPECT_DOUBLE_EQ(r50.depth_bins.count() * 0.5 + 2.0, 58.0);
  EXPECT_EQ(r50.image_aug.resize_range, (std::array<double, 2>{0.386, 0.55}));
  EXPECT_EQ(r50.image_aug.rotation_range_deg, (std::array<double, 2>{-5.4, 5.4}));
  EXPECT_DOUBLE_EQ(r50.image_aug.flip_prob, 0.5);
  EXPECT_NEAR(r50.view_ranges.rotation_range[1] * 180 / 3.14159265358979323846, 22.5, 1e-12);
  EXPECT_DOUBLE_EQ(r50.view_ranges.rotation_range[0], -r50.view_ranges.rotation_range[1]);
  EXPECT_EQ(r50.view_ranges.scale_range, (std::array<double, 2>{0.95, 1.05}));
  EXPECT_DOUBLE_EQ(r50.view_ranges.flip_x_prob, 0.5);
  EXPECT_DOUBLE_EQ(r50.view_ranges.flip_y_prob, 0.5);
  EXPECT_EQ(r50.image_mean, (std::vector<double>{0.485, 0.456, 0.406}));
  EXPECT_EQ(r50.image_std, (std::vector<double>{0.229, 0.224, 0.225}));
  EXPECT_DOUBLE_EQ(r50.depth_loss_weight, 3.0);
  const auto tiny = student_preset("tiny");
  EXPECT_EQ(tiny.image_height % 32, 0);
  EXPECT_EQ(tiny.image_width % 32, 0);
  EXPECT_TRUE(tiny.grid.same_range(r50.grid));
  expect_error([] { student_preset("huge"); }, {"student preset 'huge' is unknown", "tiny, bevdepth-r50"});
  // A preset overridden by a JSON fragment.
  auto over = student_preset("tiny");
  config::from_json(config::parse(R"({"depth_bins": {"step": 1.0}, "image": {"width": 352}})", "o.json"), over, "o.json");
  over.validate();
  EXPECT_EQ(over.depth_bins.count(), 56);
  EXPECT_EQ(over.frustum().feat_width(), 22);
}

TEST(StudentPresets, UnknownKeysAndInconsistentStagesAreRefusedByName) {
  expect_error([] { StudentConfig::from_json(R"({"depth_net": {"mid_chanels": 3}})", "s.json"); },
               {"s.json", "mid_chanels"});
  auto cfg = student_preset("tiny");
  cfg.image_neck.upsample_strides = {1, 1};
  expect_error([&] { cfg.validate(); }, {"image_neck level 0 ends at stride 8", "expected 16"});
  cfg = student_preset("tiny");
  cfg.head.in_channels = 64;
  expect_error([&] { cfg.validate(); }, {"head.in_channels is 64, the BEV neck outputs 96 channels"});
  cfg = student_preset("tiny");
  cfg.image_width = 248;
  expect_error([&] { cfg.validate(); }, {"image 96x248 (HxW) must be a multiple of 16"});
  cfg = student_preset("tiny");
  cfg.image_aug.resize_range = {0.3, 0.2};
  expect_error([&] { cfg.validate(); }, {"image_aug.resize_range [0.3, 0.2] must be ordered"});
  cfg = student_preset("tiny");
  cfg.depth_loss_weight = -1;
  expect_error([&] { cfg.validate(); }, {"depth_loss_weight must be finite and >= 0, got -1"});
}

TEST(StudentForward, TinyShapesGradientsAndTimings) {
  torch::manual_seed(0);
  const auto cfg = student_preset("tiny");
  Student model(cfg);
  model->train();
  const auto batch = make_batch(cfg, 1, 6);
  StudentTimings t;
  const auto out = model->forward(batch, &t);
  const int64_t D = 28, h = 6, w = 16;
  EXPECT_EQ(out.depth.sizes().vec(), (std::vector<int64_t>{1, 6, D, h, w}));
  EXPECT_EQ(out.depth_logits.sizes().vec(), (std::vector<int64_t>{1, 6, D, h, w}));
  EXPECT_EQ(out.context.sizes().vec(), (std::vector<int64_t>{1, 6, 32, h, w}));
  EXPECT_TRUE(torch::allclose(out.depth.sum(2), torch::ones({1, 6, h, w}), 1e-5, 1e-5));
  EXPECT_EQ(out.lss.sizes().vec(), (std::vector<int64_t>{1, 32, 64, 64}));
  EXPECT_EQ(out.neck.sizes().vec(), (std::vector<int64_t>{1, 96, 64, 64}));
  EXPECT_EQ(out.head_shared.sizes().vec(), (std::vector<int64_t>{1, 32, 64, 64}));
  ASSERT_EQ(out.tasks.size(), 1u);
  EXPECT_EQ(out.tasks[0].heatmap.sizes().vec(), (std::vector<int64_t>{1, 10, 64, 64}));
  EXPECT_EQ(out.tasks[0].dim.sizes().vec(), (std::vector<int64_t>{1, 3, 64, 64}));
  EXPECT_EQ(out.tasks[0].vel.sizes().vec(), (std::vector<int64_t>{1, 2, 64, 64}));
  EXPECT_GT(out.lss.abs().sum().item<double>(), 0.0);
  // Taps.
  EXPECT_TRUE(out.tap("lss").is_same(out.lss));
  EXPECT_TRUE(out.tap("neck").is_same(out.neck));
  EXPECT_TRUE(out.tap("head_shared").is_same(out.head_shared));
  expect_error([&] { out.tap("backbone"); }, {"student tap 'backbone' is unknown", "lss, neck, head_shared"});
  // Timings.
  EXPECT_GT(t.total_ms, 0);
  EXPECT_GT(t.image_backbone_ms, 0);
  EXPECT_GT(t.lift_splat.prepare_ms, 0);
  EXPECT_GT(t.lift_splat.kept_points, 0);
  EXPECT_FALSE(t.lift_splat.cache_hit);
  // Gradients reach the image backbone through depth, context and lift-splat.
  (out.tasks[0].heatmap.sigmoid().mean() + out.tasks[0].reg.mean()).backward();
  const auto g = model->img_backbone->named_parameters(true)["conv1.weight"].grad();
  ASSERT_TRUE(g.defined());
  EXPECT_GT(g.abs().sum().item<double>(), 0.0);
  std::cout << "[ tiny ] parameters " << model->num_parameters() << ", forward " << t.total_ms << " ms (backbone "
            << t.image_backbone_ms << ", depth net " << t.depth_net_ms << ", geometry " << t.lift_splat.geometry_ms
            << ", prepare " << t.lift_splat.prepare_ms << ", pool " << t.lift_splat.pool_ms << ", BEV "
            << t.bev_encoder_ms << ", head " << t.head_ms << ")\n";

  // Evaluation caches the geometry: the second forward of the same rig hits.
  model->eval();
  torch::NoGradGuard ng;
  model->forward(batch, &t);
  EXPECT_FALSE(t.lift_splat.cache_hit);
  model->forward(batch, &t);
  EXPECT_TRUE(t.lift_splat.cache_hit);
  expect_error([&] {
    auto bad = batch;
    bad.images = torch::zeros({1, 6, 3, 64, 256});
    model->forward(bad);
  }, {"images must be [B, N, 3, 96, 256], got [1, 6, 3, 64, 256]"});
  model->train();
  expect_error([&] { model->forward(make_batch(cfg, 1, 1)); }, {"training needs at least two cameras per batch"});
}

TEST(StudentForward, BevDepthR50ParameterCountsAndReducedForward) {
  auto cfg = student_preset("bevdepth-r50");
  Student model(cfg);
  // torchvision ResNet-50 without fc.
  EXPECT_EQ(model->num_parameters("img_backbone"), 25557032 - 2049000);
  // SECONDFPN [256, 512, 1024, 2048] -> 4 x 128: conv k4, conv k2, conv k1, deconv k2, BN each.
  EXPECT_EQ(model->num_parameters("img_neck"),
            conv(256, 128, 4) + conv(512, 128, 2) + conv(1024, 128, 1) + conv(2048, 128, 2) + 4 * bn(128));
  // BEVDepth's DepthNet at mid 512, 80 context channels, 112 bins.
  const int64_t mid = 512;
  const int64_t basic = 2 * conv(mid, mid, 3) + 2 * bn(mid);
  const int64_t aspp = conv(mid, mid, 1) + bn(mid) + 3 * (conv(mid, mid, 3) + bn(mid)) + conv(mid, mid, 1) + bn(mid) +
                       conv(5 * mid, mid, 1) + bn(mid);
  const int64_t mlp = linear(27, mid) + linear(mid, mid);
  const int64_t se = 2 * conv(mid, mid, 1, true);
  EXPECT_EQ(model->num_parameters("depth_net"), conv(512, mid, 3, true) + bn(mid) + conv(mid, 80, 1, true) + bn(27) +
                                                    2 * mlp + 2 * se + 3 * basic + aspp + conv(mid, mid, 3, false, 4) +
                                                    conv(mid, 112, 1, true));
  // BEV trunk: ResNet-18 layout, in 80, base 160, 3 stages (strides 1, 2, 2), no fc.
  int64_t trunk = conv(80, 160, 7) + bn(160);
  int64_t in = 160;
  for (int s = 0; s < 3; ++s) {
    const int64_t c = 160 << s;
    trunk += conv(in, c, 3) + conv(c, c, 3) + 2 * bn(c) + 2 * conv(c, c, 3) + 2 * bn(c);
    if (in != c) trunk += conv(in, c, 1) + bn(c);
    in = c;
  }
  EXPECT_EQ(model->num_parameters("bev_backbone"), trunk);
  EXPECT_EQ(model->num_parameters("bev_neck"),
            conv(80, 64, 1) + conv(160, 64, 2) + conv(320, 64, 4) + conv(640, 64, 8) + 4 * bn(64));
  std::cout << "[ bevdepth-r50 ] parameters " << model->num_parameters() << " (img_backbone "
            << model->num_parameters("img_backbone") << ", img_neck " << model->num_parameters("img_neck")
            << ", depth_net " << model->num_parameters("depth_net") << ", bev_backbone "
            << model->num_parameters("bev_backbone") << ", bev_neck " << model->num_parameters("bev_neck") << ", head "
            << model->num_parameters("head") << ")\n";

  // A reduced input through the same architecture: 64x192 images, 2 cameras, a 32x32 grid.
  cfg.image_height = 64;
  cfg.image_width = 192;
  cfg.grid = BevGrid::make({-51.2, -51.2, -5, 51.2, 51.2, 3}, 3.2);
  Student small(cfg);
  small->eval();
  torch::NoGradGuard ng;
  const auto out = small->forward(make_batch(cfg, 1, 2));
  EXPECT_EQ(out.depth.sizes().vec(), (std::vector<int64_t>{1, 2, 112, 4, 12}));
  EXPECT_EQ(out.context.sizes().vec(), (std::vector<int64_t>{1, 2, 80, 4, 12}));
  EXPECT_EQ(out.lss.sizes().vec(), (std::vector<int64_t>{1, 80, 32, 32}));
  EXPECT_EQ(out.neck.sizes().vec(), (std::vector<int64_t>{1, 256, 32, 32}));
  EXPECT_EQ(out.head_shared.sizes().vec(), (std::vector<int64_t>{1, 64, 32, 32}));
  ASSERT_EQ(out.tasks.size(), 6u);
  const std::vector<int64_t> classes{1, 2, 2, 1, 2, 2};
  for (size_t k = 0; k < 6; ++k) EXPECT_EQ(out.tasks[k].heatmap.size(1), classes[k]);
}

TEST(StudentDepthNet, CameraParametersAreBevDepthsMlpInput) {
  const auto K = torch::tensor({1000.0, 0.0, 800.0, 0.0, 1100.0, 450.0, 0.0, 0.0, 1.0}, torch::kFloat64).view({3, 3});
  const auto A = torch::tensor({0.5, 0.1, -3.0, -0.1, 0.5, -70.0, 0.0, 0.0, 1.0}, torch::kFloat64).view({3, 3});
  const auto c2e = level_camera(0.3, {1.0, 2.0, 3.0});
  const auto bda = torch::tensor({0.9, -0.2, 0.0, 0.2, 0.9, 0.0, 0.0, 0.0, 1.05}, torch::kFloat64).view({3, 3});
  const auto p = camera_mlp_input(torch::matmul(A, K).view({1, 1, 3, 3}).to(torch::kFloat32),
                                  A.view({1, 1, 3, 3}).to(torch::kFloat32), c2e.view({1, 1, 4, 4}).to(torch::kFloat32),
                                  bda.view({1, 3, 3}).to(torch::kFloat32));
  ASSERT_EQ(p.sizes().vec(), (std::vector<int64_t>{1, 1, 27}));
  std::vector<double> want{1000, 1100, 800, 450, 0.5, 0.1, -3.0, -0.1, 0.5, -70.0, 0.9, -0.2, 0.2, 0.9, 1.05};
  for (int64_t r = 0; r < 3; ++r)
    for (int64_t c = 0; c < 4; ++c) want.push_back(c2e[r][c].item<double>());
  for (int64_t i = 0; i < 27; ++i) EXPECT_NEAR(p[0][0][i].item<double>(), want[i], 1e-3 * std::max(1.0, std::abs(want[i]))) << i;
}

TEST(StudentGrid, AlignmentFollowsTheGridRule) {
  const std::array<double, 6> range{-51.2, -51.2, -5.0, 51.2, 51.2, 3.0};
  const auto teacher = BevGrid::make(range, 0.8);
  const auto same = align_student_grid(BevGrid::make(range, 0.8), teacher);
  EXPECT_TRUE(same.same());
  const auto coarse = align_student_grid(BevGrid::make(range, 1.6), teacher);
  EXPECT_EQ(coarse.student_coarser_by, 2);
  EXPECT_EQ(coarse.student.H, 64);
  const auto fine = align_student_grid(BevGrid::make(range, 0.2), teacher);
  EXPECT_EQ(fine.student_finer_by, 4);
  const auto derived = align_student_grid(BevGrid{}, teacher);
  EXPECT_TRUE(derived.student.same_as(teacher));
  // The tiny preset's grid fits the tiny teacher's 0.8 m output grid.
  EXPECT_EQ(align_student_grid(student_preset("tiny").grid, teacher).student_coarser_by, 2);

  const auto other_range = BevGrid::make({-50, -50, -5, 50, 50, 3}, 0.8);
  expect_error([&] { align_student_grid(other_range, teacher); },
               {"student grid " + other_range.describe(), "teacher (shard) grid " + teacher.describe(),
                "the ranges differ"});
  const auto other_z = BevGrid::make({-51.2, -51.2, -3, 51.2, 51.2, 5}, 0.8);
  expect_error([&] { align_student_grid(other_z, teacher); }, {other_z.describe(), "the ranges differ"});
  const auto ratio = BevGrid::make(range, 1.28);  // 80 cells against 128: 1.6, no integer ratio
  expect_error([&] { align_student_grid(ratio, teacher); },
               {"student grid " + ratio.describe(), "teacher (shard) grid " + teacher.describe(),
                "not an integer ratio"});
  const auto anisotropic = BevGrid::make(range, 1.6, 0.8);
  expect_error([&] { align_student_grid(anisotropic, teacher); }, {anisotropic.describe(), "not an integer ratio"});
}

}  // namespace
}  // namespace bevkd::train::student
