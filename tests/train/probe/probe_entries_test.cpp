// The entries of the baselines (§7), FD3D (§6) and X³KD (§5): each one's own exit-2 rules (the
// spec's "iff Cs≠C" inputs, fixed parameter combinations, X³KD's complete terms), and values that
// can be worked out by hand. Their agreement with PyTorch is loss_golden_test.cpp's.
#include <gtest/gtest.h>

#include <cmath>

#include "tests/support/tensor_close.h"
#include "tests/train/probe/probe_test_util.h"

namespace bevkd::train {
namespace {

using nlohmann::json;
using test::probe;
using test::usage_error;

using bevkd::testing::kF64;

// The message an exit-2 run printed, without the "loss-probe: " prefix and the newline.
std::string refusal(const std::string& loss, const std::string& dir) {
  const std::string e = usage_error(loss, dir);
  const std::string prefix = "loss-probe: ";
  return e.rfind(prefix, 0) == 0 ? e.substr(prefix.size(), e.size() - prefix.size() - 1) : e;
}

double value(const std::string& loss, const std::string& dir, const std::string& key) {
  const test::ProbeRun r = probe(loss, dir);
  EXPECT_EQ(r.code, 0) << r.err;
  return r.code == 0 ? r.json()["values"][key].get<double>() : std::nan("");
}

TEST(ProbeEntriesBaselines, CwdOfEqualMapsIsZeroAndCrossEntropyIsTheEntropy) {
  test::TempDir dir;
  // Uniform maps: p_T = 1/(H·W) everywhere; KL 0; CE = τ²·w·Σ_{n,c} log(H·W) / (N·C) = log(H·W).
  const torch::Tensor s = torch::zeros({2, 3, 4, 5}, kF64);
  test::write_case(dir / "c", {{"s", s}, {"t", s}});
  EXPECT_NEAR(value("cwd_kl", dir / "c", "loss"), 0.0, 1e-15);
  EXPECT_NEAR(value("cwd_ce_focaldistiller", dir / "c", "loss"), std::log(20.0), 1e-12);
  test::write_case(dir / "tau", {{"s", s}, {"t", s}}, json{{"tau", 0}});
  EXPECT_NE(refusal("cwd_kl", dir / "tau").find("key tau: 0 is not allowed (expected a positive temperature)"),
            std::string::npos);
}

TEST(ProbeEntriesBaselines, AlignInputsExactlyWhenChannelsDiffer) {
  test::TempDir dir;
  std::map<std::string, torch::Tensor> in{{"s", torch::randn({2, 3, 4, 4})}, {"t", torch::randn({2, 4, 4, 4})},
                                          {"u", torch::rand({2, 1, 4, 4})},  {"gen_w1", torch::randn({4, 4, 3, 3})},
                                          {"gen_b1", torch::randn({4})},     {"gen_w2", torch::randn({4, 4, 3, 3})},
                                          {"gen_b2", torch::randn({4})}};
  test::write_case(dir / "missing", in);
  EXPECT_EQ(refusal("mgd", dir / "missing"), "input align_w: missing (Cs = 3 != C = 4)");
  in["align_w"] = torch::randn({4, 3, 1, 1});
  in["align_b"] = torch::randn({4});
  test::write_case(dir / "ok", in);
  EXPECT_TRUE(std::isfinite(value("mgd", dir / "ok", "loss")));
  in["s"] = torch::randn({2, 4, 4, 4});
  in["align_w"] = torch::randn({4, 4, 1, 1});
  test::write_case(dir / "extra", in);
  EXPECT_EQ(refusal("mgd", dir / "extra"), "input align_w: extra (Cs = 4 == C = 4)");
  // λ = 0 masks nothing, and a generator with zero weights outputs b2: the loss is α·Σ(b2 − T)²/N.
  std::map<std::string, torch::Tensor> z{
      {"s", torch::randn({2, 2, 3, 3}, kF64)},     {"t", torch::randn({2, 2, 3, 3}, kF64)},
      {"u", torch::rand({2, 1, 3, 3}, kF64)},      {"gen_w1", torch::zeros({2, 2, 3, 3}, kF64)},
      {"gen_b1", torch::zeros({2}, kF64)},         {"gen_w2", torch::zeros({2, 2, 3, 3}, kF64)},
      {"gen_b2", torch::tensor({0.5, -1.0}, kF64)}};
  test::write_case(dir / "hand", z, json{{"alpha_mgd", 1.0}, {"lambda_mgd", 0.0}});
  const double want = (z["gen_b2"].view({1, 2, 1, 1}) - z["t"]).pow(2).sum().item<double>() / 2;
  EXPECT_NEAR(value("mgd", dir / "hand", "loss"), want, 1e-12);
  test::write_case(dir / "lambda", z, json{{"lambda_mgd", 1.5}});
  EXPECT_NE(refusal("mgd", dir / "lambda").find("key lambda_mgd: 1.5 is not allowed (expected a value in [0, 1])"),
            std::string::npos);
}

TEST(ProbeEntriesBaselines, FitnetVariantsAndFgdParameters) {
  test::TempDir dir;
  const std::map<std::string, torch::Tensor> in{{"s", torch::randn({2, 3, 2, 2}, kF64)},
                                                {"t", torch::randn({2, 4, 2, 2}, kF64)},
                                                {"regressor_w", torch::randn({4, 3, 1, 1}, kF64)},
                                                {"regressor_b", torch::randn({4}, kF64)}};
  test::write_case(dir / "plain_norm", in, json{{"variant", "plain"}, {"loss_weight", 1}});
  EXPECT_NE(refusal("fitnet", dir / "plain_norm")
                .find("key normalize: true is not allowed (must be false for variant \"plain\")"),
            std::string::npos);
  test::write_case(dir / "variant", in, json{{"variant", "romero"}, {"loss_weight", 1}});
  EXPECT_NE(refusal("fitnet", dir / "variant").find("key variant"), std::string::npos);
  test::write_case(dir / "noweight", in, json{{"variant", "mmrazor"}});
  EXPECT_NE(refusal("fitnet", dir / "noweight").find("loss_weight"), std::string::npos);
  // plain: w·mean((r(S) − T)²)
  test::write_case(dir / "plain", in, json{{"variant", "plain"}, {"loss_weight", 2}, {"normalize", false}});
  const torch::Tensor r = torch::conv2d(in.at("s"), in.at("regressor_w"), in.at("regressor_b"));
  EXPECT_NEAR(value("fitnet", dir / "plain", "loss"), 2 * (r - in.at("t")).pow(2).mean().item<double>(), 1e-12);

  // FGD: img_shape is required.
  std::map<std::string, torch::Tensor> f{{"s", torch::randn({1, 2, 3, 4})},
                                         {"t", torch::randn({1, 2, 3, 4})},
                                         {"gt_boxes_b0", torch::tensor({{0.0f, 0.0f, 10.0f, 10.0f}})}};
  for (const std::string side : {"s", "t"}) {
    f["conv_mask_" + side + "_w"] = torch::randn({1, 2, 1, 1});
    f["conv_mask_" + side + "_b"] = torch::randn({1});
    f["add_" + side + "_w1"] = torch::randn({1, 2, 1, 1});
    f["add_" + side + "_b1"] = torch::randn({1});
    f["add_" + side + "_ln_w"] = torch::randn({1, 1, 1});
    f["add_" + side + "_ln_b"] = torch::randn({1, 1, 1});
    f["add_" + side + "_w2"] = torch::randn({2, 1, 1, 1});
    f["add_" + side + "_b2"] = torch::randn({2});
  }
  test::write_case(dir / "fgd", f);
  EXPECT_NE(refusal("fgd", dir / "fgd").find("img_shape"), std::string::npos);
  test::write_case(dir / "fgd2", f, json{{"img_shape", {30, 40}}});
  const test::ProbeRun ok = probe("fgd", dir / "fgd2");
  ASSERT_EQ(ok.code, 0) << ok.err;
  const json v = ok.json()["values"];
  EXPECT_NEAR(v["loss"].get<double>(),
              1e-3 * v["fg_loss"].get<double>() + 5e-4 * v["bg_loss"].get<double>() +
                  1e-3 * v["mask_loss"].get<double>() + 5e-6 * v["rela_loss"].get<double>(),
              1e-6 * std::abs(v["loss"].get<double>()) + 1e-9);
  f["gt_boxes_b1"] = torch::zeros({0, 4});
  test::write_case(dir / "fgd3", f, json{{"img_shape", {30, 40}}});
  EXPECT_NE(refusal("fgd", dir / "fgd3").find("gt_boxes_b1: extra"), std::string::npos);
}

TEST(ProbeEntriesFd3d, AdaptorRuleNoFocalQueryAndRange) {
  test::TempDir dir;
  std::map<std::string, torch::Tensor> in{{"s_bev", torch::randn({2, 3, 4, 4}, kF64)},
                                          {"t_bev", torch::randn({2, 3, 8, 8}, kF64)},
                                          {"positions_b0", torch::zeros({0, 2, 2, 2}, kF64)},
                                          {"positions_b1", torch::zeros({0, 2, 2, 2}, kF64)}};
  test::write_case(dir / "none", in);
  EXPECT_EQ(value("fd3d_qfd", dir / "none", "loss"), 0.0);  // N_f = 0
  in["adaptor_w"] = torch::randn({3, 3, 1, 1}, kF64);
  in["adaptor_b"] = torch::randn({3}, kF64);
  test::write_case(dir / "extra", in);
  EXPECT_EQ(refusal("fd3d_qfd", dir / "extra"), "input adaptor_w: extra (Cs = 3 == C = 3)");
  in.erase("adaptor_w");
  in.erase("adaptor_b");
  test::write_case(dir / "range", in, json{{"bev_range", {1, 0, 0, 1}}});
  EXPECT_NE(refusal("fd3d_qfd", dir / "range").find("key bev_range"), std::string::npos);
  // SMGD: a constant teacher and generated map agree in distribution (zero generator weights,
  // equal biases per channel: φ uniform on both sides) -> KL 0.
  const std::map<std::string, torch::Tensor> sm{
      {"s", torch::randn({1, 2, 3, 3}, kF64)},      {"t", torch::full({1, 3, 3, 3}, 0.7, kF64)},
      {"u", torch::rand({1, 1, 3, 3}, kF64)},       {"region", torch::zeros({1, 1, 3, 3}, kF64)},
      {"gen_w1", torch::zeros({3, 2, 3, 3}, kF64)}, {"gen_b1", torch::zeros({3}, kF64)},
      {"gen_w2", torch::zeros({3, 3, 3, 3}, kF64)}, {"gen_b2", torch::ones({3}, kF64)}};
  test::write_case(dir / "smgd", sm);
  EXPECT_NEAR(value("fd3d_smgd", dir / "smgd", "loss"), 0.0, 1e-15);
  test::write_case(dir / "ratio", sm, json{{"mask_ratio", -0.1}});
  EXPECT_NE(refusal("fd3d_smgd", dir / "ratio").find("key mask_ratio"), std::string::npos);
}

TEST(ProbeEntriesX3kd, TermsAreEvaluatedWhenCompleteAndRefusedWhenPartial) {
  test::TempDir dir;
  test::write_case(dir / "empty", {});
  EXPECT_NE(refusal("x3kd", dir / "empty").find("no complete term"), std::string::npos);
  // X-AT only: logits 0 -> BCE = log 2 on every cell.
  const torch::Tensor zero = torch::zeros({2, 1, 3, 3}, kF64);
  test::write_case(dir / "at", {{"disc_logits_student", zero}, {"disc_logits_teacher", zero}});
  const test::ProbeRun r = probe("x3kd", dir / "at");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.json()["values"].size(), 2u);
  EXPECT_NEAR(r.json()["values"]["gen_loss"].get<double>(), 0.1 * std::log(2.0), 1e-15);
  EXPECT_NEAR(r.json()["values"]["disc_loss"].get<double>(), 2 * std::log(2.0), 1e-15);
  // Part of a term.
  test::write_case(dir / "partial", {{"disc_logits_student", zero}});
  EXPECT_EQ(refusal("x3kd", dir / "partial"),
            "input disc_logits_teacher: missing (term X-AT has disc_logits_student but not disc_logits_teacher)");
  // X-FD with equal channel counts and an adaptor given.
  test::write_case(dir / "fd", {{"s", torch::zeros({1, 2, 2, 2}, kF64)},
                                {"t", torch::ones({1, 2, 2, 2}, kF64)},
                                {"adaptor_w", torch::zeros({2, 2, 1, 1}, kF64)},
                                {"adaptor_b", torch::zeros({2}, kF64)}});
  EXPECT_EQ(refusal("x3kd", dir / "fd"), "input adaptor_w: extra (Cs = 2 == C = 2)");
  test::write_case(dir / "fd2", {{"s", torch::zeros({1, 2, 2, 2}, kF64)}, {"t", torch::ones({1, 2, 4, 4}, kF64)}});
  EXPECT_NEAR(value("x3kd", dir / "fd2", "xfd"), 1.0, 1e-15);  // mean((0 − 1)²)
  // X-OD: a teacher cell off the grid.
  test::write_case(dir / "od", {{"s_hm_logits", torch::zeros({1, 1, 2, 2}, kF64)},
                                {"t_hm", torch::zeros({1, 1, 2, 2}, kF64)},
                                {"s_reg", torch::zeros({1, 3, 2, 2}, kF64)},
                                {"t_code_b0", torch::zeros({1, 3}, kF64)},
                                {"t_cell_b0", torch::tensor({{int64_t{0}, int64_t{2}}})},
                                {"t_score_b0", torch::ones({1}, kF64)}});
  EXPECT_EQ(refusal("x3kd", dir / "od"), "input t_cell_b0: a (row, col) outside the 2 x 2 grid");
}

}  // namespace
}  // namespace bevkd::train
