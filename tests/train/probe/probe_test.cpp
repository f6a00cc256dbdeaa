// `bevkd-train loss-probe` (spec/loss_probe.md): exit code 2 and the message naming the input or
// key for every kind of bad use; the output format; --out / --grad files; --list --json; the
// real binary's exit codes; strict params.json.
#include <gtest/gtest.h>

#include <filesystem>

#include "base/error.h"
#include "base/fs.h"
#include "tests/support/expect_error.h"
#include "tests/support/run.h"
#include "tests/support/tensor_close.h"
#include "tests/train/probe/probe_test_util.h"
#include "train/probe/entry_util.h"
#include "train/probe/params.h"
#include "train/probe/probe.h"

namespace bevkd::train {
namespace {

using nlohmann::json;
using test::probe;
using test::usage_error;

using bevkd::testing::kF64;

// A valid bevdistill_dense case: B=2, C=3, 4x5 map, fg_map given.
std::map<std::string, torch::Tensor> dense_inputs() {
  torch::manual_seed(3);
  return {{"s_feat", torch::randn({2, 3, 4, 5})},
          {"t_feat", torch::randn({2, 3, 4, 5})},
          {"fg_map", torch::rand({2, 4, 5})}};
}

// A valid bevdistill_box_distill case: L=2, B=2, Q=4, Ncls=3, K = (2, 0).
std::map<std::string, torch::Tensor> box_inputs() {
  torch::manual_seed(4);
  torch::Tensor boxes = torch::tensor({{1.0f, 2.0f, 0.5f, 1.8f, 4.2f, 1.5f, 0.3f, 1.0f, 0.0f},
                                       {-5.0f, 3.0f, 0.2f, 2.0f, 4.8f, 1.7f, -1.2f, 0.0f, 0.5f}});
  return {{"cls_logits", torch::randn({2, 2, 4, 3})},
          {"bbox_preds", torch::randn({2, 2, 4, 10})},
          {"t_boxes_b0", boxes},
          {"t_scores_b0", torch::rand({2, 3})},
          {"t_boxes_b1", torch::zeros({0, 9})},
          {"t_scores_b1", torch::zeros({0, 3})}};
}

TEST(LossProbeUsage, UnknownLossesAndNonePending) {
  test::TempDir dir;
  EXPECT_EQ(usage_error("bevdistil_dense", dir.path()).rfind("loss-probe: unknown loss 'bevdistil_dense' (known: ", 0),
            0u);
  // Every loss of spec/loss_probe.md has an entry: none is refused as "not implemented yet".
  EXPECT_TRUE(probe::probe_registry().pending_names().empty());
  for (const char* name : {"tig_inner_depth", "tig_inner_feature", "cwd_kl", "cwd_ce_focaldistiller", "mgd", "fgd",
                           "fitnet", "fd3d_qfd", "fd3d_smgd", "x3kd"}) {
    EXPECT_NE(probe::probe_registry().find(name), nullptr) << name;
    EXPECT_EQ(usage_error(name, dir.path()).find("is not implemented yet"), std::string::npos) << name;
  }
}

TEST(LossProbeUsage, UnknownMissingAndExtraInputs) {
  test::TempDir dir;
  auto in = dense_inputs();
  // Unknown: a misspelt file.
  test::write_case(dir / "unknown", {{"s_feat", in["s_feat"]}, {"t_feats", in["t_feat"]}, {"fg_map", in["fg_map"]}});
  EXPECT_EQ(usage_error("bevdistill_dense", dir / "unknown"),
            "loss-probe: input t_feats: unknown for loss bevdistill_dense (its inputs: s_feat, t_feat, fg_map, "
            "boxes_b*)\n");
  // Unknown: a per-sample input given as one file.
  test::write_case(dir / "unknown2",
                   {{"s_feat", in["s_feat"]}, {"t_feat", in["t_feat"]}, {"boxes", torch::zeros({0, 9})}});
  EXPECT_NE(usage_error("bevdistill_dense", dir / "unknown2").find("input boxes: unknown for loss bevdistill_dense"),
            std::string::npos);
  // Missing.
  test::write_case(dir / "missing", {{"s_feat", in["s_feat"]}, {"fg_map", in["fg_map"]}});
  EXPECT_EQ(usage_error("bevdistill_dense", dir / "missing"),
            cat("loss-probe: input t_feat: missing (expected t_feat.npy in ", dir / "missing", ")\n"));
  // Neither alternative, and both.
  test::write_case(dir / "none", {{"s_feat", in["s_feat"]}, {"t_feat", in["t_feat"]}});
  EXPECT_EQ(usage_error("bevdistill_dense", dir / "none"),
            "loss-probe: input fg_map: missing (loss bevdistill_dense needs fg_map or boxes_b*)\n");
  test::write_case(dir / "both", {{"s_feat", in["s_feat"]},
                                  {"t_feat", in["t_feat"]},
                                  {"fg_map", in["fg_map"]},
                                  {"boxes_b0", torch::zeros({0, 9})},
                                  {"boxes_b1", torch::zeros({0, 9})}});
  EXPECT_EQ(usage_error("bevdistill_dense", dir / "both"),
            "loss-probe: input boxes_b*: extra (fg_map is given; loss bevdistill_dense takes fg_map or boxes_b*, not "
            "both)\n");
  // Per-sample: one too many, one missing (B = 2 from s_feat).
  test::write_case(dir / "extra", {{"s_feat", in["s_feat"]},
                                   {"t_feat", in["t_feat"]},
                                   {"boxes_b0", torch::zeros({0, 9})},
                                   {"boxes_b1", torch::zeros({0, 9})},
                                   {"boxes_b2", torch::zeros({0, 9})}});
  EXPECT_EQ(usage_error("bevdistill_dense", dir / "extra"),
            "loss-probe: input boxes_b2: extra (B = 2: boxes_b0 ... boxes_b1 expected)\n");
  test::write_case(dir / "short",
                   {{"s_feat", in["s_feat"]}, {"t_feat", in["t_feat"]}, {"boxes_b0", torch::zeros({0, 9})}});
  EXPECT_EQ(usage_error("bevdistill_dense", dir / "short"),
            "loss-probe: input boxes_b1: missing (B = 2: boxes_b0 ... boxes_b1 expected)\n");
  // Not a directory.
  EXPECT_NE(usage_error("bevdistill_dense", dir / "nowhere").find("not a directory"), std::string::npos);
}

TEST(LossProbeUsage, WrongShapesRanksAndDtypes) {
  test::TempDir dir;
  auto in = dense_inputs();
  // The spec's example, scaled down: C disagrees between S and T.
  test::write_case(dir / "c", {{"s_feat", torch::zeros({2, 8, 5, 5})},
                               {"t_feat", torch::zeros({2, 4, 5, 5})},
                               {"fg_map", torch::zeros({2, 5, 5})}});
  EXPECT_EQ(usage_error("bevdistill_dense", dir / "c"),
            "loss-probe: input t_feat: shape [2,4,5,5], expected [B,C,H,W]=[2,8,5,5]\n");
  test::write_case(dir / "rank",
                   {{"s_feat", in["s_feat"]}, {"t_feat", in["t_feat"]}, {"fg_map", torch::zeros({2, 4})}});
  EXPECT_EQ(usage_error("bevdistill_dense", dir / "rank"),
            "loss-probe: input fg_map: shape [2,4], expected [B,H,W]=[2,4,5]\n");
  test::write_case(dir / "dtype",
                   {{"s_feat", in["s_feat"]}, {"t_feat", in["t_feat"].to(torch::kInt64)}, {"fg_map", in["fg_map"]}});
  EXPECT_EQ(usage_error("bevdistill_dense", dir / "dtype"),
            "loss-probe: input t_feat: dtype int64, expected float32 or float64\n");
  // A literal size: boxes must have 9 columns.
  test::write_case(dir / "cols", {{"s_feat", in["s_feat"]},
                                  {"t_feat", in["t_feat"]},
                                  {"boxes_b0", torch::zeros({1, 7})},
                                  {"boxes_b1", torch::zeros({0, 9})}});
  EXPECT_EQ(usage_error("bevdistill_dense", dir / "cols"),
            "loss-probe: input boxes_b0: shape [1,7], expected [K_b,9]=[1,9]\n");
  // Per-sample sizes that disagree within a sample, and a class count that disagrees with the student's.
  auto box = box_inputs();
  box["t_scores_b0"] = torch::rand({3, 3});
  test::write_case(dir / "kb", box);
  EXPECT_EQ(usage_error("bevdistill_box_distill", dir / "kb"),
            "loss-probe: input t_scores_b0: shape [3,3], expected [K_b,Ncls]=[2,3]\n");
  box = box_inputs();
  box["t_scores_b1"] = torch::zeros({0, 4});
  test::write_case(dir / "ncls", box);
  EXPECT_EQ(usage_error("bevdistill_box_distill", dir / "ncls"),
            "loss-probe: input t_scores_b1: shape [0,4], expected [K_b,Ncls]=[0,3]\n");
  // A truncated file is an unreadable input (exit 2), named.
  test::write_case(dir / "cut", in);
  const std::string t_path = dir / "cut/t_feat.npy";
  const std::string bytes = read_file(t_path);
  write_file_atomic(t_path, bytes.substr(0, bytes.size() - 4));
  EXPECT_NE(usage_error("bevdistill_dense", dir / "cut").find("loss-probe: input t_feat: " + t_path + ": truncated"),
            std::string::npos);
}

TEST(LossProbeUsage, ParamsAreStrict) {
  test::TempDir dir;
  auto in = dense_inputs();
  test::write_case(dir / "unknown", in, {{"loss_weigth", 0.1}});
  EXPECT_EQ(usage_error("bevdistill_dense", dir / "unknown"),
            "loss-probe: params.json: key loss_weigth: unknown for this loss (its keys: loss_weight, grid_size, "
            "voxel_size, pc_range, min_overlap, min_radius)\n");
  test::write_case(dir / "type", in, {{"loss_weight", "x"}});
  EXPECT_EQ(usage_error("bevdistill_dense", dir / "type"),
            "loss-probe: params.json: key loss_weight: \"x\" is not a number\n");
  test::write_case(dir / "notobj", in, json::array({1, 2}));
  EXPECT_EQ(usage_error("bevdistill_dense", dir / "notobj"),
            "loss-probe: params.json: expected one JSON object, found array\n");
  test::write_case(dir / "badjson", in);
  write_file_atomic(dir / "badjson/params.json", "{\"loss_weight\": ");
  EXPECT_NE(usage_error("bevdistill_dense", dir / "badjson").find("is not valid JSON"), std::string::npos);
  // grid_size must give the features' H x W when fg is drawn from boxes.
  test::write_case(dir / "grid", {{"s_feat", in["s_feat"]},
                                  {"t_feat", in["t_feat"]},
                                  {"boxes_b0", torch::zeros({0, 9})},
                                  {"boxes_b1", torch::zeros({0, 9})}});
  EXPECT_EQ(usage_error("bevdistill_dense", dir / "grid"),
            "loss-probe: params.json: key grid_size: [1024,1024] is not allowed ((ny/8, nx/8) = (128, 128) must equal "
            "the features' (H, W) = (4, 5))\n");
  // Values the contract fixes.
  test::write_case(dir / "reweight", box_inputs(), {{"score_reweight", false}});
  EXPECT_EQ(usage_error("bevdistill_box_distill", dir / "reweight"),
            "loss-probe: params.json: key score_reweight: false is not allowed (true only)\n");
  test::write_case(dir / "cls", box_inputs(), {{"loss_cls_distill_weight", 0.5}});
  EXPECT_EQ(usage_error("bevdistill_box_distill", dir / "cls"),
            "loss-probe: params.json: key loss_cls_distill_weight: 0.5 is not allowed (0 only)\n");
  test::write_case(dir / "cw", box_inputs(), {{"code_weights", {1, 2, 3}}});
  EXPECT_EQ(usage_error("bevdistill_box_distill", dir / "cw"),
            "loss-probe: params.json: key code_weights: [1,2,3] is not a list of 10 numbers\n");
  // A required key, an ignored key (accepted), an integer given as 8.0.
  test::write_case(
      dir / "g", {{"boxes", torch::zeros({0, 9})}},
      {{"W", 8}, {"pc_min_xy", {0, 0}}, {"voxel_xy", {1, 1}}, {"out_size_factor", 1.0}, {"min_radius", 1}});
  EXPECT_EQ(usage_error("gaussian_fg_map", dir / "g"),
            "loss-probe: params.json: key H: missing (required, no default)\n");
  test::write_case(
      dir / "g2", {{"boxes", torch::zeros({0, 9})}},
      {{"H", 8}, {"W", 8}, {"pc_min_xy", {0, 0}}, {"voxel_xy", {1, 1}}, {"out_size_factor", 8.5}, {"min_radius", 1}});
  EXPECT_EQ(usage_error("gaussian_fg_map", dir / "g2"),
            "loss-probe: params.json: key out_size_factor: 8.5 is not an integer\n");
  test::write_case(dir / "ign", box_inputs(), {{"teacher_topk_in_release", 50}});
  EXPECT_EQ(probe("bevdistill_box_distill", dir / "ign").code, 0);
}

TEST(LossProbeUsage, GradNeedsOutAndListTakesNoCase) {
  test::TempDir dir;
  test::write_case(dir / "c", dense_inputs());
  EXPECT_EQ(usage_error("bevdistill_dense", dir / "c", "", true),
            "loss-probe: --grad needs --out DIR (the gradients are written there as grad_*.npy)\n");
  probe::LossProbeOptions o;
  o.list = true;
  o.loss = "bevdistill_dense";
  std::ostringstream out, err;
  EXPECT_EQ(probe::run_loss_probe(o, out, err), 2);
  o = {};
  o.json = true;
  o.loss = "bevdistill_dense";
  o.case_dir = dir / "c";
  EXPECT_EQ(probe::run_loss_probe(o, out, err), 2);
}

TEST(LossProbeOutput, JsonOnStdoutAndFilesInOut) {
  test::TempDir dir;
  auto in = dense_inputs();
  test::write_case(dir / "c", in, {{"loss_weight", 0.5}});
  const test::ProbeRun r = probe("bevdistill_dense", dir / "c", dir / "out/nested", true);
  ASSERT_EQ(r.code, 0) << r.err;
  // One line, one object; numbers printed with 17 significant digits ("%.17g").
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1);
  const json j = r.json();
  const double u = j["values"]["bev_fit_loss_unweighted"], w = j["values"]["bev_fit_loss"];
  for (double v : {u, w}) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    EXPECT_NE(r.out.find(cat(": ", buf)), std::string::npos) << buf << " in " << r.out;
  }
  EXPECT_EQ(r.out.rfind("{\"loss\": \"bevdistill_dense\", \"values\": {\"bev_fit_loss_unweighted\": ", 0), 0u);
  EXPECT_DOUBLE_EQ(w, 0.5 * u);
  EXPECT_EQ(read_file(dir / "out/nested/values.json"), r.out);
  const torch::Tensor g = probe::read_npy(dir / "out/nested/grad_s_feat.npy");
  EXPECT_EQ(g.scalar_type(), torch::kFloat64);
  EXPECT_EQ(g.sizes(), in["s_feat"].sizes());
  EXPECT_TRUE(r.err.find("in float32, B = 2") != std::string::npos) << r.err;
  // Without --grad no gradient file; --out may be the case directory itself (the probe's own
  // outputs there are not taken for unknown inputs on the next run).
  EXPECT_EQ(probe("bevdistill_dense", dir / "c", dir / "out2").code, 0);
  EXPECT_FALSE(std::filesystem::exists(dir / "out2/grad_s_feat.npy"));
  EXPECT_EQ(probe("bevdistill_dense", dir / "c", dir / "c", true).code, 0);
  const test::ProbeRun again = probe("bevdistill_dense", dir / "c", dir / "c", true);
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(again.out, r.out);
}

TEST(LossProbeOutput, NonFiniteValuesAreNull) {
  test::TempDir dir;
  auto in = dense_inputs();
  in["s_feat"][0][0][0][0] = std::numeric_limits<float>::infinity();
  test::write_case(dir / "c", in);
  const test::ProbeRun r = probe("bevdistill_dense", dir / "c");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(
      r.out,
      "{\"loss\": \"bevdistill_dense\", \"values\": {\"bev_fit_loss_unweighted\": null, \"bev_fit_loss\": null}}\n");
}

TEST(LossProbeOutput, AnyFloat64InputComputesInFloat64) {
  test::TempDir dir;
  auto in = dense_inputs();
  test::write_case(dir / "f32", in);
  in["fg_map"] = in["fg_map"].to(torch::kFloat64);
  test::write_case(dir / "f64", in);
  const test::ProbeRun a = probe("bevdistill_dense", dir / "f32"), b = probe("bevdistill_dense", dir / "f64");
  ASSERT_EQ(a.code, 0);
  ASSERT_EQ(b.code, 0);
  EXPECT_NE(b.err.find("in float64"), std::string::npos);
  // The same numbers, summed in float64: equal to float32 precision, not bit for bit.
  const double va = a.json()["values"]["bev_fit_loss"], vb = b.json()["values"]["bev_fit_loss"];
  EXPECT_NEAR(va, vb, 1e-6 * std::abs(vb));
  auto x = dense_inputs();
  const double want = ((x["s_feat"].to(torch::kFloat64) - x["t_feat"].to(torch::kFloat64)).pow(2) *
                       x["fg_map"].to(torch::kFloat64).unsqueeze(1))
                          .sum()
                          .item<double>() /
                      x["fg_map"].to(torch::kFloat64).sum().item<double>() * 0.01;
  EXPECT_NEAR(vb, want, 1e-14 * want);
}

TEST(LossProbeOutput, GaussianDebugArraysAndBoxMatches) {
  test::TempDir dir;
  test::write_case(dir / "g",
                   {{"boxes", torch::tensor({{0.5f, 0.5f, 0.f, 2.f, 2.f, 1.f, 0.f, 0.f, 0.f},
                                             {50.f, 0.5f, 0.f, 2.f, 2.f, 1.f, 0.f, 0.f, 0.f},
                                             {0.5f, 0.5f, 0.f, -1.f, 2.f, 1.f, 0.f, 0.f, 0.f}})}},
                   {{"H", 4},
                    {"W", 4},
                    {"pc_min_xy", {-2, -2}},
                    {"voxel_xy", {0.5, 0.5}},
                    {"out_size_factor", 2},
                    {"min_radius", 1}});
  const test::ProbeRun r = probe("gaussian_fg_map", dir / "g", dir / "gout");
  ASSERT_EQ(r.code, 0) << r.err;
  const torch::Tensor map = probe::read_npy(dir / "gout/fg_map.npy");
  const torch::Tensor radius = probe::read_npy(dir / "gout/radius_per_box.npy");
  EXPECT_EQ(map.scalar_type(), torch::kFloat64);
  EXPECT_EQ(map.sizes(), (std::vector<int64_t>{4, 4}));
  EXPECT_TRUE(torch::equal(radius, torch::tensor({int64_t{1}, int64_t{1}, int64_t{-1}})));
  EXPECT_DOUBLE_EQ(r.json()["values"]["fg_sum"].get<double>(), map.sum().item<double>());
  EXPECT_EQ(map[2][2].item<double>(), 1.0);  // the box at (0.5, 0.5): cell (2.5 -> 2, 2.5 -> 2)

  test::write_case(dir / "b", box_inputs());
  const test::ProbeRun rb = probe("bevdistill_box_distill", dir / "b", dir / "bout", true);
  ASSERT_EQ(rb.code, 0) << rb.err;
  EXPECT_EQ(rb.json()["values"].size(), 3u);  // total, layer0, layer1
  for (int l = 0; l < 2; ++l) {
    const torch::Tensor m0 = probe::read_npy(dir / cat("bout/match_l", l, "_b0.npy"));
    const torch::Tensor m1 = probe::read_npy(dir / cat("bout/match_l", l, "_b1.npy"));
    EXPECT_EQ(m0.sizes(), (std::vector<int64_t>{2, 2}));            // both teacher boxes matched
    EXPECT_LT(m0[0][0].item<int64_t>(), m0[1][0].item<int64_t>());  // sorted by query
    EXPECT_EQ(m1.sizes(), (std::vector<int64_t>{0, 2}));            // no teacher box in sample 1
  }
  const torch::Tensor g = probe::read_npy(dir / "bout/grad_bbox_preds.npy");
  EXPECT_EQ(g.sizes(), (std::vector<int64_t>{2, 2, 4, 10}));
  EXPECT_EQ(g.select(1, 1).abs().sum().item<double>(), 0.0);  // sample 1 has no teacher box
}

TEST(LossProbeList, JsonSchemaFromTheRegistry) {
  probe::LossProbeOptions o;
  o.list = true;
  o.json = true;
  std::ostringstream out, err;
  ASSERT_EQ(probe::run_loss_probe(o, out, err), 0);
  const json j = json::parse(out.str());
  ASSERT_TRUE(j.contains("losses"));
  ASSERT_EQ(j.size(), 1u);
  std::vector<std::string> names;
  for (const json& e : j["losses"]) {
    names.push_back(e["name"]);
    for (const char* k : {"name", "section", "inputs", "params", "values", "grads"})
      EXPECT_TRUE(e.contains(k)) << e["name"] << " lacks " << k;
    EXPECT_EQ(e.size(), 6u);
    for (const json& i : e["inputs"]) {
      EXPECT_EQ(i.size(), 6u);
      EXPECT_TRUE(i["shape"].is_array());
      EXPECT_TRUE(i["dtype"] == "float" || i["dtype"] == "int64");
      EXPECT_TRUE(i["per_sample"].is_boolean() && i["required"].is_boolean() && i["grad"].is_boolean());
    }
  }
  // spec/loss_probe.md's losses, in its order.
  EXPECT_EQ(names, (std::vector<std::string>{"gaussian_fg_map", "bevdistill_dense", "bevdistill_box_distill",
                                             "bevdistill_infonce", "tig_inner_depth", "tig_inner_feature", "cwd_kl",
                                             "cwd_ce_focaldistiller", "mgd", "fgd", "fitnet",
                                             "focaldistiller_bev_l2_heatmap", "fd3d_qfd", "fd3d_smgd", "x3kd"}));
  const json& g = j["losses"][0];
  EXPECT_FALSE(g["params"][0].contains("default"));  // H is required
  EXPECT_EQ(g["params"][6], json({{"key", "min_overlap"}, {"default", 0.1}}));
  const json& d = j["losses"][1];
  EXPECT_EQ(d["inputs"][0], json({{"name", "s_feat"},
                                  {"shape", {"B", "C", "H", "W"}},
                                  {"dtype", "float"},
                                  {"per_sample", false},
                                  {"required", true},
                                  {"grad", true}}));
  EXPECT_EQ(d["inputs"][3]["per_sample"], true);
  EXPECT_EQ(d["grads"], json({"grad_s_feat"}));
  // Text listing: every loss, and no pending ones.
  o.json = false;
  std::ostringstream text;
  ASSERT_EQ(probe::run_loss_probe(o, text, err), 0);
  for (const std::string& n : names) EXPECT_NE(text.str().find(n + "  (spec/losses.md"), std::string::npos) << n;
  EXPECT_EQ(text.str().find("not implemented yet"), std::string::npos);
}

// The real binary: each run pays LibTorch's start-up, so only what the in-process tests cannot
// show (main's exit codes, CLI11's errors, the streams).
TEST(LossProbeBinary, ExitCodesAndStreams) {
  test::TempDir dir;
  test::write_case(dir / "c", dense_inputs());
  const std::string bin = bevkd::testing::binary("bevkd-train");
  // stdout only; stderr to a file (the subshell's redirection, not run_command's, applies).
  auto run = [&](const std::string& args) {
    return bevkd::testing::run_command(cat("(", bin, " ", args, " 2>", dir / "stderr", ")"), /*stdout_only=*/true);
  };
  auto stderr_text = [&] { return read_file(dir / "stderr"); };

  auto r = run(cat("loss-probe --loss bevdistill_dense --case ", dir / "c"));
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(json::parse(r.output)["loss"], "bevdistill_dense");
  EXPECT_NE(stderr_text().find("loss-probe: bevdistill_dense on"), std::string::npos);

  r = run(cat("loss-probe --loss nope --case ", dir / "c"));
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(r.output.empty());
  EXPECT_NE(stderr_text().find("loss-probe: unknown loss 'nope'"), std::string::npos);

  r = run("loss-probe --loss bevdistill_dense --bogus");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(stderr_text().find("--bogus"), std::string::npos);

  // Exit 1: a failure that is not bad use (an output directory that cannot be created).
  write_file_atomic(dir / "file", "x");
  r = run(cat("loss-probe --loss bevdistill_dense --case ", dir / "c", " --out ", dir / "file/sub"));
  EXPECT_EQ(r.status, 1) << stderr_text();
  EXPECT_TRUE(r.output.empty());
}

// A toy family in its own registry: the framework features a later loss family relies on
// (composite shape symbols, "iff" inputs, per-sample gradients, patterned value keys).
probe::Registry toy_registry() {
  using probe::InputSpec;
  probe::ProbeEntry e;
  e.name = "toy";
  e.section = "§0";
  e.inputs = {InputSpec::floating("s", {"B", "Cs", "H", "W"}).with_grad(),
              InputSpec::floating("t", {"B", "C", "H", "W"}),
              InputSpec::floating("flat", {"B*C", "H"}),
              InputSpec::floating("half", {"C/2"}),
              InputSpec::floating("align_w", {"C", "Cs", "1", "1"}).optional(),
              InputSpec::floating("pts", {"K_b", "2"}).sample_wise().with_grad(),
              InputSpec::int64("ids", {"K_b"}).sample_wise()};
  e.params = {probe::ParamSpec::with_default("scale", 2.0)};
  e.values = {"total", "sample{b}"};
  e.grads = {"grad_s", "grad_pts_b{b}"};
  e.validate = [](const probe::ProbeInputs& in, const probe::Params&) {
    const int64_t cs = in.size("Cs"), c = in.size("C");
    probe::require_inputs_iff(in, {"align_w"}, cs != c,
                              cs != c ? cat("Cs = ", cs, " != C = ", c) : cat("Cs = C = ", c));
  };
  e.run = [](const probe::ProbeContext& c) {
    const double scale = c.params.number("scale");
    torch::Tensor total = scale * c.in.tensor("s").sum();
    probe::ProbeOutput out;
    std::vector<torch::Tensor> per;
    for (const torch::Tensor& p : c.in.samples("pts")) per.push_back(p.pow(2).sum());
    for (const torch::Tensor& p : per) total = total + p;
    out.value("total", total);
    for (size_t b = 0; b < per.size(); ++b) out.value(cat("sample", b), per[b]);
    if (c.want_grad) {
      out.grad("grad_s", c.in.grad_of(total, "s"));
      const auto g = c.in.grads_of(total, "pts");
      for (size_t b = 0; b < g.size(); ++b) out.grad(cat("grad_pts_b", b), g[b]);
    }
    return out;
  };
  probe::Registry r;
  r.add_pending("toy", "§0");
  r.add(std::move(e));  // replaces the pending entry
  return r;
}

TEST(LossProbeRegistry, ToyFamilyCompositeShapesIffInputsAndPerSampleGrads) {
  test::TempDir dir;
  const probe::Registry reg = toy_registry();
  ASSERT_FALSE(reg.is_pending("toy"));
  auto run = [&](const std::map<std::string, torch::Tensor>& in, const std::string& name, bool grad) {
    test::write_case(dir / name, in);
    probe::LossProbeOptions o;
    o.loss = "toy";
    o.case_dir = dir / name;
    o.out_dir = grad ? dir / (name + "_out") : "";
    o.grad = grad;
    std::ostringstream out, err;
    test::ProbeRun r;
    r.code = probe::run_loss_probe(o, out, err, reg);
    r.out = out.str();
    r.err = err.str();
    return r;
  };
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  std::map<std::string, torch::Tensor> in{{"s", torch::ones({2, 4, 3, 5})}, {"t", torch::ones({2, 4, 3, 5})},
                                          {"flat", torch::zeros({8, 3})},   {"half", torch::zeros({2})},
                                          {"pts_b0", torch::ones({3, 2})},  {"ids_b0", torch::zeros({3}, i64)},
                                          {"pts_b1", torch::zeros({0, 2})}, {"ids_b1", torch::zeros({0}, i64)}};
  test::ProbeRun r = run(in, "ok", true);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.json()["values"], json({{"total", 2.0 * 120 + 6}, {"sample0", 6.0}, {"sample1", 0.0}}));
  EXPECT_TRUE(torch::equal(probe::read_npy(dir / "ok_out/grad_pts_b0.npy"), torch::full({3, 2}, 2.0, kF64)));
  EXPECT_EQ(probe::read_npy(dir / "ok_out/grad_pts_b1.npy").sizes(), (std::vector<int64_t>{0, 2}));
  EXPECT_TRUE(torch::equal(probe::read_npy(dir / "ok_out/grad_s.npy"), torch::full({2, 4, 3, 5}, 2.0, kF64)));

  auto bad = in;
  bad["flat"] = torch::zeros({7, 3});
  EXPECT_EQ(run(bad, "prod", false).err, "loss-probe: input flat: shape [7,3], expected [B*C,H]=[8,3]\n");
  bad = in;
  bad["half"] = torch::zeros({3});
  EXPECT_EQ(run(bad, "quot", false).err, "loss-probe: input half: shape [3], expected [C/2]=[2]\n");
  bad = in;
  bad["ids_b0"] = torch::zeros({3});
  EXPECT_EQ(run(bad, "int", false).err, "loss-probe: input ids_b0: dtype float32, expected int64\n");
  bad = in;
  bad["s"] = torch::ones({2, 6, 3, 5});
  EXPECT_EQ(run(bad, "iff1", false).err, "loss-probe: input align_w: missing (Cs = 6 != C = 4)\n");
  bad["align_w"] = torch::zeros({4, 6, 1, 1});
  EXPECT_EQ(run(bad, "iff2", false).code, 0);
  bad = in;
  bad["align_w"] = torch::zeros({4, 4, 1, 1});
  EXPECT_EQ(run(bad, "iff3", false).err, "loss-probe: input align_w: extra (Cs = C = 4)\n");
}

TEST(ProbeParams, DefaultsRequiredIgnoredAndTypes) {
  using probe::ParamSpec;
  const std::vector<ParamSpec> specs{ParamSpec::with_default("a", 1.5), ParamSpec::required("b"),
                                     ParamSpec::derived("c"), ParamSpec::ignored_key("d"),
                                     ParamSpec::with_default("e", {1, 2, 3})};
  const auto p = probe::Params::from_json(json{{"b", 4}, {"d", "anything"}}, specs);
  EXPECT_EQ(p.number("a"), 1.5);
  EXPECT_FALSE(p.given("a"));
  EXPECT_TRUE(p.given("b"));
  EXPECT_EQ(p.integer("b"), 4);
  EXPECT_FALSE(p.has_value("c"));
  EXPECT_EQ(p.integers("e", 3, 3), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_ERROR_WITH(p.numbers("e", 2, 2), "params.json: key e: [1,2,3] is not a list of 2 numbers");
  EXPECT_ERROR_WITH(p.boolean("a"), "params.json: key a: 1.5 is not true or false");
  EXPECT_ERROR_WITH(p.string("a"), "params.json: key a: 1.5 is not a string");
  EXPECT_ERROR_WITH(probe::Params::from_json(json{{"a", 1}}, specs),
                    "params.json: key b: missing (required, no default)");
  EXPECT_ERROR_WITH(probe::Params::from_json(json{{"b", 1}, {"z", 1}}, specs),
                    "params.json: key z: unknown for this loss (its keys: a, b, c, d, e)");
  // No params.json at all: {} (here: b missing).
  EXPECT_ERROR_WITH(probe::Params::read("/nonexistent/params.json", specs), "params.json: key b: missing");
  EXPECT_NO_THROW(probe::Params::read("/nonexistent/params.json", {ParamSpec::with_default("a", 1)}));
}

}  // namespace
}  // namespace bevkd::train
