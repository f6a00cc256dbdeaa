// The student's ResNet: torchvision's parameter names, shapes and counts (enumerated here from
// torchvision/models/resnet.py, independently of train/student/resnet.cpp), stage outputs, and
// the frozen BN / frozen stages options.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "base/error.h"
#include "train/student/resnet.h"

namespace bevkd::train::student {
namespace {

using Layout = std::vector<std::pair<std::string, std::vector<int64_t>>>;

// torchvision's state dict (fc excluded), written out from its _make_layer rules.
Layout torchvision_layout(int depth) {
  Layout l;
  auto bn = [&](const std::string& p, int64_t c) {
    l.push_back({p + ".weight", {c}});
    l.push_back({p + ".bias", {c}});
    l.push_back({p + ".running_mean", {c}});
    l.push_back({p + ".running_var", {c}});
    l.push_back({p + ".num_batches_tracked", {}});
  };
  l.push_back({"conv1.weight", {64, 3, 7, 7}});
  bn("bn1", 64);
  const bool bottleneck = depth == 50;
  const std::vector<int64_t> blocks = depth == 18 ? std::vector<int64_t>{2, 2, 2, 2} : std::vector<int64_t>{3, 4, 6, 3};
  const int64_t exp = bottleneck ? 4 : 1;
  int64_t inplanes = 64;
  for (int s = 0; s < 4; ++s) {
    const int64_t planes = 64 << s;
    for (int64_t b = 0; b < blocks[s]; ++b) {
      const std::string p = "layer" + std::to_string(s + 1) + "." + std::to_string(b);
      if (bottleneck) {
        l.push_back({p + ".conv1.weight", {planes, inplanes, 1, 1}});
        bn(p + ".bn1", planes);
        l.push_back({p + ".conv2.weight", {planes, planes, 3, 3}});
        bn(p + ".bn2", planes);
        l.push_back({p + ".conv3.weight", {planes * 4, planes, 1, 1}});
        bn(p + ".bn3", planes * 4);
      } else {
        l.push_back({p + ".conv1.weight", {planes, inplanes, 3, 3}});
        bn(p + ".bn1", planes);
        l.push_back({p + ".conv2.weight", {planes, planes, 3, 3}});
        bn(p + ".bn2", planes);
      }
      const bool stride = b == 0 && s > 0;
      if (b == 0 && (stride || inplanes != planes * exp)) {
        l.push_back({p + ".downsample.0.weight", {planes * exp, inplanes, 1, 1}});
        bn(p + ".downsample.1", planes * exp);
      }
      inplanes = planes * exp;
    }
  }
  return l;
}

Layout model_layout(ResNetImpl& m) {
  Layout l;
  for (const auto& p : m.named_parameters(true)) l.push_back({p.key(), p.value().sizes().vec()});
  for (const auto& b : m.named_buffers(true)) l.push_back({b.key(), b.value().sizes().vec()});
  return l;
}

int64_t count_params(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

ResNetConfig config_for(int depth) {
  ResNetConfig c;
  c.depth = depth;
  return c;
}

TEST(StudentResNet, TorchvisionNamesAndShapes) {
  for (int depth : {18, 34, 50}) {
    ResNet net(config_for(depth));
    const auto want = torchvision_layout(depth);
    const auto got = model_layout(*net);
    std::map<std::string, std::vector<int64_t>> got_map(got.begin(), got.end());
    ASSERT_EQ(got.size(), want.size()) << "ResNet-" << depth;
    for (const auto& [name, shape] : want) {
      const auto it = got_map.find(name);
      ASSERT_NE(it, got_map.end()) << "ResNet-" << depth << " lacks " << name;
      EXPECT_EQ(it->second, shape) << "ResNet-" << depth << " " << name;
    }
    // Parameters come in torchvision's order (the state dict's order restricted to parameters).
    std::vector<std::string> want_params, got_params;
    for (const auto& [name, shape] : want)
      if (name.find("running_") == std::string::npos && name.find("num_batches") == std::string::npos)
        want_params.push_back(name);
    for (const auto& p : net->named_parameters(true)) got_params.push_back(p.key());
    EXPECT_EQ(got_params, want_params) << "ResNet-" << depth;
  }
}

TEST(StudentResNet, ParameterCountsMatchTorchvisionWithoutFc) {
  // torchvision's published totals minus fc (512·1000 + 1000, or 2048·1000 + 1000 for ResNet-50).
  ResNet r18(config_for(18)), r34(config_for(34)), r50(config_for(50));
  EXPECT_EQ(count_params(*r18), 11689512 - 513000);
  EXPECT_EQ(count_params(*r34), 21797672 - 513000);
  EXPECT_EQ(count_params(*r50), 25557032 - 2049000);
}

TEST(StudentResNet, StageOutputsAndStrides) {
  ResNet r50(config_for(50));
  r50->eval();
  const auto outs = r50->forward(torch::randn({1, 3, 64, 96}));
  ASSERT_EQ(outs.size(), 4u);
  const std::vector<std::vector<int64_t>> want{{1, 256, 16, 24}, {1, 512, 8, 12}, {1, 1024, 4, 6}, {1, 2048, 2, 3}};
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(outs[i].sizes().vec(), want[i]) << "stage " << i;
  EXPECT_EQ(r50->config().out_strides(), (std::vector<int64_t>{4, 8, 16, 32}));
  EXPECT_EQ(r50->config().out_channels(), (std::vector<int64_t>{256, 512, 1024, 2048}));

  // A BEV trunk (BEVDepth: in 80, base 160, strides 1, 2, 2, no max pool) at reduced width.
  ResNetConfig trunk;
  trunk.depth = 18;
  trunk.in_channels = 8;
  trunk.base_channels = 16;
  trunk.num_stages = 3;
  trunk.strides = {1, 2, 2};
  trunk.out_indices = {0, 1, 2};
  trunk.stem_pool = false;
  ResNet t(trunk);
  const auto touts = t->forward(torch::randn({2, 8, 32, 32}));
  ASSERT_EQ(touts.size(), 3u);
  EXPECT_EQ(touts[0].sizes().vec(), (std::vector<int64_t>{2, 16, 16, 16}));
  EXPECT_EQ(touts[1].sizes().vec(), (std::vector<int64_t>{2, 32, 8, 8}));
  EXPECT_EQ(touts[2].sizes().vec(), (std::vector<int64_t>{2, 64, 4, 4}));
  EXPECT_EQ(trunk.out_strides(), (std::vector<int64_t>{2, 4, 8}));
}

TEST(StudentResNet, FrozenBnKeepsStatisticsAndGetsNoGradient) {
  ResNetConfig c = config_for(18);
  c.base_channels = 8;
  c.num_stages = 2;
  c.strides = {1, 2};
  c.out_indices = {1};
  c.frozen_bn = true;
  ResNet net(c);
  {
    torch::NoGradGuard ng;
    for (auto& b : net->named_buffers(true))
      if (b.key().find("running_mean") != std::string::npos) b.value().uniform_(-0.5, 0.5);
  }
  std::map<std::string, torch::Tensor> before;
  for (const auto& b : net->named_buffers(true)) before[b.key()] = b.value().clone();
  net->train();
  EXPECT_TRUE(net->is_training());
  const auto x = torch::randn({2, 3, 32, 32});
  const auto y_train = net->forward(x)[0];
  y_train.sum().backward();
  for (const auto& b : net->named_buffers(true))
    EXPECT_TRUE(torch::equal(b.value(), before[b.key()])) << b.key() << " changed under frozen BN";
  for (const auto& p : net->named_parameters(true)) {
    const bool is_bn = p.key().find("bn") != std::string::npos || p.key().find("downsample.1") != std::string::npos;
    EXPECT_EQ(p.value().requires_grad(), !is_bn) << p.key();
    if (!is_bn) {
      EXPECT_TRUE(p.value().grad().defined()) << p.key();
    }
  }
  net->eval();
  const auto y_eval = net->forward(x)[0];
  EXPECT_TRUE(torch::allclose(y_train, y_eval, 1e-5, 1e-6)) << "frozen BN must normalise with running statistics";
}

TEST(StudentResNet, FrozenStagesGetNoGradientAndStayInEval) {
  ResNetConfig c = config_for(18);
  c.base_channels = 8;
  c.frozen_stages = 1;  // stem and layer1
  ResNet net(c);
  net->train();
  for (const auto& p : net->named_parameters(true)) {
    const bool frozen = p.key().rfind("conv1.", 0) == 0 || p.key().rfind("bn1.", 0) == 0 || p.key().rfind("layer1.", 0) == 0;
    EXPECT_EQ(p.value().requires_grad(), !frozen) << p.key();
  }
  for (const auto& m : net->named_modules()) {
    const bool frozen_part = m.key() == "bn1" || m.key().rfind("layer1", 0) == 0;
    if (m.value()->as<torch::nn::BatchNorm2d>() != nullptr) {
      EXPECT_EQ(m.value()->is_training(), !frozen_part) << m.key();
    }
  }
}

TEST(StudentResNet, ConfigErrorsNameTheField) {
  ResNetConfig c;
  c.depth = 101;
  try {
    ResNet net(c);
    FAIL() << "expected an error";
  } catch (const bevkd::Error& e) {
    EXPECT_NE(std::string(e.what()).find("depth is 101, expected 18, 34 or 50"), std::string::npos) << e.what();
  }
  c = ResNetConfig{};
  c.out_indices = {0, 1};
  try {
    ResNet net(c);
    FAIL() << "expected an error";
  } catch (const bevkd::Error& e) {
    EXPECT_NE(std::string(e.what()).find("last of out_indices is 1, expected the last stage 3"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace bevkd::train::student
