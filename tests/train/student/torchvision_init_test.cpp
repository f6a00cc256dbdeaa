// --init end to end: Python (Debian's python3-torch) writes a torchvision-layout state dict with
// torch.save(model.state_dict()) -> scripts/convert_torchvision_weights.py -> the C++ loader; the
// loaded values equal what Python wrote, the stage outputs equal the Python model's, and the
// unconverted file, missing / unexpected / mismatched keys are refused by name.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <map>

#include "base/error.h"
#include "tests/train/student/student_test_util.h"
#include "train/student/student.h"
#include "train/student/torchvision_init.h"

namespace bevkd::train::student {
namespace {

using testing::expect_error;
using testing::run_command;
using testing::TempDir;

ResNetConfig r18() {
  ResNetConfig c;
  c.depth = 18;
  return c;
}

// Python writes once per process (tests of this suite share it).
class TorchvisionInit : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    original_ = *dir_ / "resnet18.pth";
    converted_ = *dir_ / "resnet18.bevkd.pt";
    const auto w = run_command(std::string(BEVKD_PYTHON) + " " + BEVKD_SOURCE_DIR +
                               "/tests/train/student/write_torchvision_layout.py " + original_);
    if (w.status != 0 && w.output.find("No module named 'torch'") != std::string::npos) {
      skip_reason_ = "python3-torch is not installed for " + std::string(BEVKD_PYTHON) +
                     " (Debian: apt-get install python3-torch), so the Python -> C++ --init path is not tested";
      return;
    }
    ASSERT_EQ(w.status, 0) << w.output;
    const auto c = run_command(std::string(BEVKD_PYTHON) + " " + BEVKD_SOURCE_DIR +
                               "/scripts/convert_torchvision_weights.py " + original_ + " " + converted_);
    ASSERT_EQ(c.status, 0) << c.output;
    convert_output_ = c.output;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
  }
  static nlohmann::json read_json(const std::string& path) {
    std::ifstream f(path);
    return nlohmann::json::parse(f);
  }

  static inline TempDir* dir_ = nullptr;
  static inline std::string skip_reason_, original_, converted_, convert_output_;
};

TEST_F(TorchvisionInit, ConverterWritesAPlainDict) {
  EXPECT_NE(convert_output_.find("wrote " + converted_ + ": 122 tensors"), std::string::npos) << convert_output_;
  const auto state = read_weights_file(converted_);
  const auto info = read_json(original_ + ".json");
  ASSERT_EQ(state.size(), info["keys"].size());
  for (size_t i = 0; i < state.size(); ++i) EXPECT_EQ(state[i].first, info["keys"][i].get<std::string>());
}

TEST_F(TorchvisionInit, LoadedValuesEqualWhatPythonWrote) {
  ResNet net(r18());
  const auto report = load_torchvision_weights(*net, converted_);
  EXPECT_EQ(report.skipped, (std::vector<std::string>{"fc.weight", "fc.bias"}));
  const auto info = read_json(original_ + ".json")["tensors"];
  std::map<std::string, torch::Tensor> loaded;
  for (const auto& p : net->named_parameters(true)) loaded[p.key()] = p.value();
  for (const auto& b : net->named_buffers(true)) loaded[b.key()] = b.value();
  EXPECT_EQ(report.loaded, static_cast<int64_t>(loaded.size()));
  EXPECT_EQ(loaded.size() + 2, info.size());  // + fc.weight, fc.bias
  for (const auto& [name, t] : loaded) {
    ASSERT_TRUE(info.contains(name)) << name;
    const auto& e = info[name];
    EXPECT_EQ(t.sizes().vec(), e["shape"].get<std::vector<int64_t>>()) << name;
    const auto flat = t.reshape({-1}).to(torch::kFloat64);
    EXPECT_EQ(flat[0].item<double>(), e["first"].get<double>()) << name;
    EXPECT_EQ(flat[-1].item<double>(), e["last"].get<double>()) << name;
    const double sum = e["sum"].get<double>();
    EXPECT_NEAR(flat.sum().item<double>(), sum, 1e-9 * std::max(1.0, std::abs(sum)) * flat.numel()) << name;
  }
}

TEST_F(TorchvisionInit, NamesAndShapesEqualPythonsTorchvisionLayout) {
  const auto layouts = read_json(original_ + ".layouts.json");
  for (int depth : {18, 34, 50}) {
    ResNetConfig c;
    c.depth = depth;
    ResNet net(c);
    std::map<std::string, std::vector<int64_t>> mine;
    for (const auto& p : net->named_parameters(true)) mine[p.key()] = p.value().sizes().vec();
    for (const auto& b : net->named_buffers(true)) mine[b.key()] = b.value().sizes().vec();
    size_t expected = 0;
    for (const auto& entry : layouts[std::to_string(depth)]) {
      const auto name = entry[0].get<std::string>();
      if (name.rfind("fc.", 0) == 0) continue;
      ++expected;
      ASSERT_TRUE(mine.count(name)) << "ResNet-" << depth << " lacks torchvision's " << name;
      EXPECT_EQ(mine[name], entry[1].get<std::vector<int64_t>>()) << "ResNet-" << depth << " " << name;
    }
    EXPECT_EQ(mine.size(), expected) << "ResNet-" << depth;
  }
}

TEST_F(TorchvisionInit, StageOutputsEqualThePythonModel) {
  const auto ref_list = read_weights_file(original_ + ".forward.pt");
  std::map<std::string, torch::Tensor> ref(ref_list.begin(), ref_list.end());
  const auto x = ref.at("input");
  auto check = [&](ResNet& net, const std::string& prefix) {
    net->eval();
    torch::NoGradGuard ng;
    const auto outs = net->forward(x);
    ASSERT_EQ(outs.size(), 4u);
    for (size_t i = 0; i < 4; ++i) {
      const auto& want = ref.at(prefix + ".out" + std::to_string(i + 1));
      ASSERT_EQ(outs[i].sizes(), want.sizes()) << prefix << " stage " << i;
      const double scale = std::max(1.0, want.abs().max().item<double>());
      EXPECT_LE((outs[i] - want).abs().max().item<double>(), 1e-4 * scale) << prefix << " stage " << i;
    }
  };
  ResNet a(r18());
  load_torchvision_weights(*a, converted_);
  check(a, "r18");

  ResNetConfig c50;
  c50.depth = 50;
  c50.base_channels = 16;
  ResNet b(c50);
  core::nn::NamedTensors w;
  for (const auto& [k, v] : ref_list)
    if (k.rfind("r50w16.", 0) == 0 && k.find(".out") == std::string::npos) w.emplace_back(k.substr(7), v);
  load_torchvision_weights(*b, w, "r50w16");
  check(b, "r50w16");
}

TEST_F(TorchvisionInit, UnconvertedStateDictIsRefusedNamingTheConverter) {
  ResNet net(r18());
  expect_error([&] { load_torchvision_weights(*net, original_); },
               {"weights file " + original_, "OrderedDict", "scripts/convert_torchvision_weights.py"});
}

TEST_F(TorchvisionInit, StudentLoadsIntoItsImageBackbone) {
  // bevdepth-r50's layout with a ResNet-18 image backbone (full width): --init fills img_backbone.
  auto cfg = student_preset("bevdepth-r50");
  cfg.image_backbone.depth = 18;
  cfg.image_neck.out_channels = {16, 16, 16, 16};
  cfg.depth_net.mid_channels = 32;
  cfg.depth_net.context_channels = 8;
  cfg.bev_backbone.in_channels = 8;
  cfg.bev_backbone.base_channels = 8;
  cfg.bev_neck.out_channels = {8, 8, 8, 8};
  cfg.head.in_channels = 32;
  Student model(cfg);
  model->load_image_backbone_weights(converted_);
  const auto info = read_json(original_ + ".json")["tensors"];
  const auto w = model->img_backbone->named_parameters(true)["layer3.1.conv2.weight"];
  EXPECT_EQ(w.reshape({-1})[0].item<double>(), info["layer3.1.conv2.weight"]["first"].get<double>());
}

// Key errors on in-memory states (the file path is covered above).
TEST(TorchvisionInitErrors, MissingUnexpectedAndMismatchedKeysAreNamed) {
  ResNetConfig c = r18();
  c.base_channels = 8;
  ResNet source(c);
  core::nn::NamedTensors good;
  for (const auto& p : source->named_parameters(true)) good.emplace_back(p.key(), p.value().detach().clone());
  for (const auto& b : source->named_buffers(true)) good.emplace_back(b.key(), b.value().clone());

  ResNet target(c);
  EXPECT_NO_THROW(load_torchvision_weights(*target, good, "state"));

  auto missing = good;
  missing.erase(std::find_if(missing.begin(), missing.end(),
                             [](const auto& e) { return e.first == "layer2.0.downsample.1.running_var"; }));
  expect_error([&] { load_torchvision_weights(*target, missing, "weights file a.pt"); },
               {"weights file a.pt", "key layer2.0.downsample.1.running_var is missing", "expects shape [16]"});

  auto unexpected = good;
  unexpected.emplace_back("layer1.2.conv1.weight", torch::zeros({8, 8, 3, 3}));
  expect_error([&] { load_torchvision_weights(*target, unexpected, "weights file a.pt"); },
               {"unexpected key layer1.2.conv1.weight with shape [8, 8, 3, 3]"});

  auto mismatched = good;
  for (auto& [k, v] : mismatched)
    if (k == "layer3.0.conv1.weight") v = torch::zeros({64, 16, 3, 3});
  expect_error([&] { load_torchvision_weights(*target, mismatched, "weights file a.pt"); },
               {"key layer3.0.conv1.weight has shape [64, 16, 3, 3] in the file",
                "the image backbone (ResNet-18 (base 8)) expects [32, 16, 3, 3]"});

  // Nothing was copied by the failed loads: the target still holds `good`'s values.
  const auto p = target->named_parameters(true)["layer3.0.conv1.weight"];
  for (const auto& [k, v] : good)
    if (k == "layer3.0.conv1.weight") {
      EXPECT_TRUE(torch::equal(p, v));
    }

  // The classifier and stages the backbone does not build are skipped, not refused.
  ResNetConfig three = c;
  three.num_stages = 3;
  three.strides = {1, 2, 2};
  three.out_indices = {2};
  ResNet small(three);
  const auto report = load_torchvision_weights(*small, good, "state");
  for (const auto& k : report.skipped) EXPECT_EQ(k.rfind("layer4.", 0), 0u) << k;
  EXPECT_FALSE(report.skipped.empty());
}

TEST(TorchvisionInitErrors, FilesThatAreNotWeights) {
  TempDir dir;
  {
    std::ofstream f(dir / "junk.pt");
    f << "not a zip";
  }
  ResNet net(r18());
  expect_error([&] { load_torchvision_weights(*net, dir / "junk.pt"); }, {"junk.pt", "not a zip archive"});
  expect_error([&] { load_torchvision_weights(*net, dir / "absent.pt"); }, {"absent.pt", "cannot open"});
  // A LibTorch-written dict holding a non-tensor entry.
  c10::impl::GenericDict d(c10::StringType::get(), c10::AnyType::get());
  d.insert("conv1.weight", torch::zeros({1}));
  d.insert("epoch", int64_t{3});
  const auto bytes = torch::pickle_save(d);
  {
    std::ofstream f(dir / "ckpt.pt", std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  expect_error([&] { read_weights_file(dir / "ckpt.pt"); }, {"entry epoch is a Int, expected a tensor"});
}

}  // namespace
}  // namespace bevkd::train::student
