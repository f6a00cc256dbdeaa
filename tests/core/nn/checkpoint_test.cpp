// core/nn/checkpoint.h: round trip of modules, optimizer state and blobs; mismatch messages
// naming the parameter and both shapes; every corruption refused by name.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "core/nn/checkpoint.h"
#include "tests/support/expect_error.h"
#include "tests/support/temp_dir.h"

namespace bevkd::core::nn {
namespace {

struct NetImpl : torch::nn::Module {
  explicit NetImpl(int64_t hidden = 8) {
    fc1 = register_module("fc1", torch::nn::Linear(4, hidden));
    bn = register_module("bn", torch::nn::BatchNorm1d(hidden));
    fc2 = register_module("fc2", torch::nn::Linear(hidden, 2));
  }
  torch::Tensor forward(torch::Tensor x) { return fc2(torch::relu(bn(fc1(x)))); }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::BatchNorm1d bn{nullptr};
};
TORCH_MODULE(Net);

Checkpoint trained_checkpoint(Net& net, torch::optim::AdamW& opt) {
  for (int i = 0; i < 3; ++i) {
    opt.zero_grad();
    net->forward(torch::randn({5, 4})).pow(2).sum().backward();
    opt.step();
  }
  Checkpoint ck;
  ck.kind = "student";
  ck.meta_json = R"({"step": 3})";
  ck.modules["model"] = module_state(*net);
  ck.optimizers["adamw"] = optimizer_to_bytes(opt);
  ck.blobs["rng"] = std::string("\x01\x02\x00\x03", 4);
  return ck;
}

TEST(Checkpoint, RoundTripsModulesOptimizerAndBlobs) {
  testing::TempDir dir;
  torch::manual_seed(1);
  Net a;
  torch::optim::AdamW opt(a->parameters(), torch::optim::AdamWOptions(1e-2));
  const auto ck = trained_checkpoint(a, opt);
  save_checkpoint(dir / "a.ckpt", ck);
  const auto back = read_checkpoint(dir / "a.ckpt", "student");
  EXPECT_EQ(back.meta_json, ck.meta_json);
  EXPECT_EQ(back.blobs.at("rng"), ck.blobs.at("rng"));
  Net b;
  load_module_state(*b, back.module("model", dir / "a.ckpt"), "checkpoint a", "the test net");
  for (const auto& p : a->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), b->named_parameters()[p.key()])) << p.key();
  EXPECT_TRUE(torch::equal(a->bn->running_mean, b->bn->running_mean));
  torch::optim::AdamW opt_b(b->parameters(), torch::optim::AdamWOptions(1e-2));
  optimizer_from_bytes(opt_b, back.optimizers.at("adamw"), "test");
  // The same next step from both.
  torch::manual_seed(5);
  const auto x = torch::randn({5, 4});
  for (auto* pair : {&a, &b}) (void)pair;
  opt.zero_grad();
  a->forward(x).sum().backward();
  opt.step();
  opt_b.zero_grad();
  b->forward(x).sum().backward();
  opt_b.step();
  for (const auto& p : a->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), b->named_parameters()[p.key()])) << p.key();
}

TEST(Checkpoint, MismatchesNameTheParameterAndBothShapes) {
  torch::manual_seed(2);
  Net small(8), wide(16);
  EXPECT_ERROR_WITH(load_module_state(*wide, module_state(*small), "checkpoint s.ckpt", "preset wide"),
                    "checkpoint s.ckpt does not match preset wide: parameter fc1.weight has shape [8, 4] in the "
                    "checkpoint, preset wide expects [16, 4]");
  auto state = module_state(*small);
  state.pop_back();
  EXPECT_ERROR_WITH(load_module_state(*small, state, "checkpoint s.ckpt", "the net"), "it has no entry for bn.num_batches_tracked");
  auto extra = module_state(*small);
  extra.emplace_back("head.weight", torch::zeros({2, 2}));
  EXPECT_ERROR_WITH(load_module_state(*small, extra, "checkpoint s.ckpt", "the net"),
                    "it holds head.weight with shape [2, 2], which the net does not have");
}

TEST(Checkpoint, AFlippedByteInsideAWeightIsRefusedByName) {
  testing::TempDir dir;
  torch::manual_seed(3);
  Net net;
  Checkpoint ck;
  ck.kind = "teacher";
  // A weight with a recognisable byte pattern, so the test can find its bytes in the file.
  {
    torch::NoGradGuard g;
    net->fc2->weight.copy_(torch::full({2, 8}, 1234.5678f));
  }
  ck.modules["model"] = module_state(*net);
  save_checkpoint(dir / "w.ckpt", ck);
  std::string bytes = read_file(dir / "w.ckpt");
  const float v = 1234.5678f;
  const std::string pattern(reinterpret_cast<const char*>(&v), 4);
  const auto pos = bytes.find(pattern + pattern);
  ASSERT_NE(pos, std::string::npos);
  bytes[pos + 5] = static_cast<char>(bytes[pos + 5] ^ 0x10);
  write_file_atomic(dir / "flipped.ckpt", bytes);
  EXPECT_ERROR_WITH(read_checkpoint(dir / "flipped.ckpt"), "checkpoint " + (dir / "flipped.ckpt"),
                    "modules/model/fc2.weight fails its checksum", "the file is damaged");
}

TEST(Checkpoint, MissingTruncatedForeignAndOtherKindAreNamed) {
  testing::TempDir dir;
  EXPECT_ERROR_WITH(read_checkpoint(dir / "missing.ckpt"), "checkpoint " + (dir / "missing.ckpt") + " does not exist");
  write_file_atomic(dir / "junk.ckpt", "this is not a checkpoint");
  EXPECT_ERROR_WITH(read_checkpoint(dir / "junk.ckpt"), "checkpoint " + (dir / "junk.ckpt") + ": not a readable bevkd checkpoint");
  Net net;
  Checkpoint ck;
  ck.kind = "teacher";
  ck.modules["model"] = module_state(*net);
  save_checkpoint(dir / "full.ckpt", ck);
  const auto bytes = read_file(dir / "full.ckpt");
  write_file_atomic(dir / "cut.ckpt", bytes.substr(0, bytes.size() / 2));
  EXPECT_ERROR_WITH(read_checkpoint(dir / "cut.ckpt"), "checkpoint " + (dir / "cut.ckpt") + ": not a readable bevkd checkpoint");
  EXPECT_ERROR_WITH(read_checkpoint(dir / "full.ckpt", "student"), "holds a teacher checkpoint, expected a student checkpoint");
  EXPECT_ERROR_WITH(read_checkpoint(dir / "full.ckpt").module("ema", "full.ckpt"), "holds no module state 'ema'");
}

}  // namespace
}  // namespace bevkd::core::nn
