// The built-in teacher: presets, forward shapes, checkpoints and their mismatch errors, and the
// Teacher interface over a checkpoint.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <set>

#include "base/error.h"
#include "base/fs.h"
#include "precompute/teacher/builtin_teacher.h"
#include "core/nn/checkpoint.h"
#include "tests/support/expect_error.h"
#include "precompute/teacher/pointpillars.h"
#include "precompute/teacher/teacher_config.h"
#include "tests/precompute/precompute_fixtures.h"

namespace bevkd::precompute {
namespace {

using testing::save_model;

std::string temp_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("bevkd_teacher_test_" + std::to_string(::getpid())) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

// A small cloud: ground points plus two box-shaped clusters, [P, 5] float32.
torch::Tensor tiny_cloud(int64_t seed) {
  auto gen = at::detail::createCPUGenerator(static_cast<uint64_t>(seed));
  auto ground = torch::rand({800, 5}, gen) * torch::tensor({80.f, 80.f, 0.2f, 255.f, 0.5f}) -
                torch::tensor({40.f, 40.f, 1.9f, 0.f, 0.f});
  auto car = torch::rand({200, 5}, gen) * torch::tensor({4.f, 2.f, 1.5f, 255.f, 0.f}) +
             torch::tensor({10.f, 5.f, -1.8f, 0.f, 0.f});
  auto ped = torch::rand({60, 5}, gen) * torch::tensor({0.6f, 0.6f, 1.7f, 255.f, 0.f}) +
             torch::tensor({-6.f, -12.f, -1.8f, 0.f, 0.f});
  return torch::cat({ground, car, ped}, 0);
}

TEST(TeacherConfig, PresetsValidateAndRoundTripThroughJson) {
  for (const auto& name : teacher_preset_names()) {
    const auto c = teacher_preset(name);
    const auto back = TeacherModelConfig::from_json(c.to_json(), "roundtrip");
    EXPECT_EQ(back.to_json(), c.to_json()) << name;
  }
  const auto nus = teacher_preset("nuscenes-pillar02");
  EXPECT_EQ(nus.pillar_grid().H, 512);
  EXPECT_EQ(nus.output_grid().H, 128);
  EXPECT_EQ(nus.output_grid().W, 128);
  EXPECT_NEAR(nus.output_grid().dx, 0.8, 1e-12);
  EXPECT_EQ(nus.neck_channels(), 384);
  EXPECT_EQ(nus.pillars.decorated_dims(), 11);
  EXPECT_EQ(nus.head.tasks.size(), 6u);
  EXPECT_EQ(teacher_preset("tiny").pillars.decorated_dims(), 10);
}

TEST(TeacherConfig, ErrorsNameTheField) {
  try {
    teacher_preset("huge");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "teacher preset 'huge' is unknown, expected one of: tiny, nuscenes-pillar02");
  }
  auto text = teacher_preset("tiny").to_json();
  text.replace(text.find("\"out_size_factor\""), 17, "\"out_size_factr\"");
  try {
    TeacherModelConfig::from_json(text, "my.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "my.json: unknown field out_size_factr");
  }
  auto c = teacher_preset("tiny");
  c.neck.upsample_strides = {1, 1};
  try {
    c.validate();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("neck branch 1 ends at stride 4 (backbone 4 / upsample 1), expected "
                                         "out_size_factor 2"),
              std::string::npos)
        << e.what();
  }
}

TEST(PointPillars, TinyForwardShapes) {
  torch::manual_seed(0);
  PointPillarsCenterPoint model(teacher_preset("tiny"));
  model->eval();
  torch::NoGradGuard ng;
  const auto out = model->forward({tiny_cloud(1), tiny_cloud(2)});
  const auto g = model->config().output_grid();
  EXPECT_EQ(out.neck.sizes(), (std::vector<int64_t>{2, 64, g.H, g.W}));
  EXPECT_EQ(out.head.shared.sizes(), (std::vector<int64_t>{2, 32, g.H, g.W}));
  ASSERT_EQ(out.head.tasks.size(), 1u);
  EXPECT_EQ(out.head.tasks[0].heatmap.sizes(), (std::vector<int64_t>{2, 10, g.H, g.W}));
  EXPECT_TRUE(torch::isfinite(out.neck).all().item<bool>());
}

TEST(PointPillars, NuscenesPillar02MatchesMmdet3dShapes) {
  torch::manual_seed(0);
  PointPillarsCenterPoint model(teacher_preset("nuscenes-pillar02"));
  std::map<std::string, std::vector<int64_t>> shapes;
  int64_t n_params = 0;
  for (const auto& p : model->named_parameters()) {
    shapes[p.key()] = p.value().sizes().vec();
    n_params += p.value().numel();
  }
  const std::map<std::string, std::vector<int64_t>> expected = {
      {"pts_voxel_encoder.pfn_layers.0.linear.weight", {64, 11}},
      {"pts_voxel_encoder.pfn_layers.0.norm.weight", {64}},
      {"pts_backbone.blocks.0.0.weight", {64, 64, 3, 3}},
      {"pts_backbone.blocks.0.9.weight", {64, 64, 3, 3}},    // convs at 0, 3, 6, 9 (3 extra)
      {"pts_backbone.blocks.2.16.weight", {256}},            // BN of the last of 5 extra convs
      {"pts_neck.deblocks.0.0.weight", {128, 64, 2, 2}},     // stride 0.5: a 2x2 stride-2 conv
      {"pts_neck.deblocks.1.0.weight", {128, 128, 1, 1}},    // stride 1: a 1x1 conv
      {"pts_neck.deblocks.2.0.weight", {256, 128, 2, 2}},    // stride 2: ConvTranspose (in, out, k, k)
      {"pts_bbox_head.shared_conv.conv.weight", {64, 384, 3, 3}},
      {"pts_bbox_head.task_heads.1.heatmap.1.weight", {2, 64, 3, 3}},
      {"pts_bbox_head.task_heads.5.vel.1.bias", {2}},
  };
  for (const auto& [name, shape] : expected) {
    ASSERT_TRUE(shapes.count(name)) << name;
    EXPECT_EQ(shapes[name], shape) << name;
  }
  // The parameter count of mmdetection3d's model, summed layer by layer from the config.
  int64_t want = 11 * 64 + 2 * 64;                                    // PFN linear + BN
  want += (64 * 64 * 9 + 128) * 4 + (64 * 128 * 9 + 256) + (128 * 128 * 9 + 256) * 5 +
          (128 * 256 * 9 + 512) + (256 * 256 * 9 + 512) * 5;         // SECOND
  want += (64 * 128 * 4 + 256) + (128 * 128 + 256) + (256 * 128 * 4 + 256);  // SECONDFPN
  want += 384 * 64 * 9 + 128;                                         // shared conv + BN
  const int64_t branch = 64 * 64 * 9 + 128;                           // ConvModule of a branch
  for (int64_t k : {1, 2, 2, 1, 2, 2}) {
    for (int64_t out : {2, 1, 3, 2, 2}) want += branch + 64 * out * 9 + out;
    want += branch + 64 * k * 9 + k;
  }
  EXPECT_EQ(n_params, want);

  // Forward on a tiny cloud: the neck tap is 384 x 128 x 128.
  model->eval();
  torch::NoGradGuard ng;
  const auto out = model->forward({tiny_cloud(3)});
  EXPECT_EQ(out.neck.sizes(), (std::vector<int64_t>{1, 384, 128, 128}));
  EXPECT_EQ(out.head.shared.sizes(), (std::vector<int64_t>{1, 64, 128, 128}));
  EXPECT_EQ(out.head.tasks.size(), 6u);
  EXPECT_EQ(out.head.tasks[2].heatmap.sizes(), (std::vector<int64_t>{1, 2, 128, 128}));
}

TEST(PointPillars, DecorationMatchesHandComputation) {
  auto cfg = teacher_preset("tiny").pillars;  // 0.4 m pillars from -51.2, 10 features
  PillarFeatureNet pfn(cfg);
  // Two points in pillar (row 130, col 140): x in [4.8, 5.2), y in [0.8, 1.2).
  const auto pts = torch::tensor({5.0f, 1.0f, -1.0f, 10.f, 0.f, 4.9f, 0.9f, 0.0f, 20.f, 0.05f}).view({2, 5});
  const auto p = pillarize_batch({pts}, cfg, false);
  ASSERT_EQ(p.points.size(0), 1);
  EXPECT_EQ(p.coords[0][2].item<int64_t>(), 130);
  EXPECT_EQ(p.coords[0][3].item<int64_t>(), 140);
  const auto f = pfn->decorate(p);
  ASSERT_EQ(f.size(2), 10);
  // Point 0: cluster offset (5 - 4.95, 1 - 0.95, -1 - -0.5), centre offset (5 - 5.0, 1 - 1.0).
  const std::vector<float> want0{5.0f, 1.0f, -1.0f, 10.f, 0.f, 0.05f, 0.05f, -0.5f, 0.0f, 0.0f};
  for (int c = 0; c < 10; ++c) EXPECT_NEAR(f[0][0][c].item<float>(), want0[c], 1e-5) << "feature " << c;
  EXPECT_NEAR(f[0][1][8].item<float>(), -0.1f, 1e-5);
  // Padding slots are all zero.
  EXPECT_EQ(f[0].narrow(0, 2, f.size(1) - 2).abs().sum().item<float>(), 0.0f);
}

TEST(Checkpoint, RoundTripRestoresOutputs) {
  const auto dir = temp_dir("roundtrip");
  torch::manual_seed(1);
  PointPillarsCenterPoint a(teacher_preset("tiny"));
  a->eval();
  save_model(a, dir + "/a.ckpt");

  BuiltinTeacherOptions o;
  o.checkpoint = dir + "/a.ckpt";
  auto teacher = load_builtin_teacher(o);
  EXPECT_EQ(teacher->identity().preset, "tiny");
  EXPECT_EQ(teacher->identity().checkpoint_hash.rfind("xxh64:", 0), 0u);
  const auto cloud = tiny_cloud(5);
  const auto out = teacher->infer({cloud});
  torch::NoGradGuard ng;
  const auto ref = a->forward({cloud});
  EXPECT_TRUE(torch::equal(out.features.at("neck"), ref.neck));
  EXPECT_TRUE(torch::equal(out.features.at("head_shared"), ref.head.shared));
  EXPECT_EQ(out.heatmap.sizes(), (std::vector<int64_t>{1, 10, 128, 128}));
  EXPECT_TRUE(out.heatmap.ge(0).all().item<bool>() && out.heatmap.le(1).all().item<bool>());
  ASSERT_EQ(out.detections.size(), 1u);
  EXPECT_TRUE(teacher->grid().same_as(a->config().output_grid()));
}

TEST(Checkpoint, MismatchedPresetNamesParameterAndShapes) {
  const auto dir = temp_dir("mismatch");
  PointPillarsCenterPoint a(teacher_preset("tiny"));
  save_model(a, dir + "/tiny.ckpt");
  BuiltinTeacherOptions o;
  o.checkpoint = dir + "/tiny.ckpt";
  o.preset = "nuscenes-pillar02";
  try {
    load_builtin_teacher(o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "checkpoint " + dir +
                  "/tiny.ckpt does not match preset nuscenes-pillar02: parameter "
                  "pts_voxel_encoder.pfn_layers.0.linear.weight has shape [32, 10] in the checkpoint, preset "
                  "nuscenes-pillar02 expects [64, 11]");
  }
  // A missing entry and an extra one are named too.
  auto state = core::nn::module_state(*a);
  state.erase(state.begin() + 3);
  PointPillarsCenterPoint b(teacher_preset("tiny"));
  try {
    core::nn::load_module_state(*b, state, "checkpoint x", "preset tiny");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("checkpoint x does not match preset tiny: it has no entry for"),
              std::string::npos)
        << e.what();
  }
  state = core::nn::module_state(*a);
  state.emplace_back("extra.weight", torch::zeros({3}));
  try {
    core::nn::load_module_state(*b, state, "checkpoint x", "preset tiny");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "checkpoint x does not match preset tiny: it holds extra.weight with shape [3], which "
                           "preset tiny does not have");
  }
}

TEST(Checkpoint, TheBuiltinTeacherRefusesADamagedCheckpointByName) {
  const auto dir = temp_dir("corrupt");
  write_file_atomic(dir + "/junk.ckpt", "this is not a checkpoint");
  BuiltinTeacherOptions o;
  o.checkpoint = dir + "/junk.ckpt";
  EXPECT_ERROR_WITH(load_builtin_teacher(o), "checkpoint " + dir + "/junk.ckpt: not a readable bevkd checkpoint");
  o.checkpoint = dir + "/missing.ckpt";
  EXPECT_ERROR_WITH(load_builtin_teacher(o), "checkpoint " + dir + "/missing.ckpt does not exist");
  // A flipped byte inside a weight (core/nn/checkpoint.h verifies every tensor's checksum).
  torch::manual_seed(3);
  PointPillarsCenterPoint a(teacher_preset("tiny"));
  {
    torch::NoGradGuard g;
    a->named_parameters()["pts_bbox_head.shared_conv.conv.weight"].fill_(0.125f);
  }
  save_model(a, dir + "/full.ckpt");
  std::string bytes = read_file(dir + "/full.ckpt");
  const float v = 0.125f;
  const std::string run(reinterpret_cast<const char*>(&v), 4);
  const auto pos = bytes.find(run + run + run + run);
  ASSERT_NE(pos, std::string::npos);
  bytes[pos + 6] = static_cast<char>(bytes[pos + 6] ^ 0x04);
  write_file_atomic(dir + "/flipped.ckpt", bytes);
  o.checkpoint = dir + "/flipped.ckpt";
  EXPECT_ERROR_WITH(load_builtin_teacher(o), "checkpoint " + dir + "/flipped.ckpt: modules/model/pts_bbox_head.shared_conv.conv.weight fails its checksum");
}

}  // namespace
}  // namespace bevkd::precompute
