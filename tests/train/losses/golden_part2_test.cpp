// Golden cases from scripts/loss_golden_part2.py, a PyTorch transcription of the reference code
// (spec/losses.md §4, §7), generated at test time with ${BEVKD_PYTHON} (Debian's python3-torch):
// every value and gradient of TiG-BEV inner depth / inner feature, CWD (KL, CE), MGD, FGD and
// FitNet, in float32 and float64, and the depth rasteriser's maps after BEVDet image
// augmentations. Until loss-probe lands, this is how bevkd's losses are checked against PyTorch;
// the same script writes loss-probe case folders (--cases DIR).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/losses/cwd.h"
#include "train/losses/fgd.h"
#include "train/losses/fitnet.h"
#include "train/losses/mgd.h"
#include "train/losses/tig_bev.h"

namespace bevkd::train::losses {
namespace {

using nlohmann::json;

torch::Tensor to_tensor(const json& j) {
  const auto shape = j.at("shape").get<std::vector<int64_t>>();
  const std::string dt = j.at("dtype");
  if (dt == "int64") return torch::tensor(j.at("data").get<std::vector<int64_t>>(), torch::kLong).view(shape);
  const auto t = torch::tensor(j.at("data").get<std::vector<double>>(), torch::kFloat64).view(shape);
  return dt == "float32" ? t.to(torch::kFloat32) : t;
}

struct Golden {
  json doc;  // empty when the script failed
  bool have_torch = true;
};

// Runs the generator once per process. Without torch in ${BEVKD_PYTHON} the tests skip; any
// other failure of the script fails them.
const Golden& golden() {
  static const Golden g = [] {
    Golden out;
    const std::string py = BEVKD_PYTHON;
    const std::string path = std::string(BEVKD_BINARY_DIR) + "/test_data/loss_golden_part2.json";
    const std::string cmd = "mkdir -p '" + std::string(BEVKD_BINARY_DIR) + "/test_data' && " + py + " '" +
                            BEVKD_SOURCE_DIR + "/scripts/loss_golden_part2.py' --json '" + path + "'";
    if (std::system(cmd.c_str()) != 0) {
      out.have_torch = std::system((py + " -c 'import torch, numpy' > /dev/null 2>&1").c_str()) == 0;
      return out;
    }
    std::ifstream f(path);
    out.doc = json::parse(f);
    return out;
  }();
  return g;
}

// Relative difference with a floor on the scale.
double rel_diff(const torch::Tensor& a, const torch::Tensor& b) {
  const auto x = a.detach().to(torch::kFloat64), y = b.detach().to(torch::kFloat64);
  const double scale = std::max(y.abs().max().item<double>(), 1e-30);
  return (x - y).abs().max().item<double>() / scale;
}

struct Agreement {
  std::string name;
  double value = 0, grad = 0;
};

// Design Box rows [K, 9] from mmdet3d v0.17 LiDAR boxes (x, y, z, dx=w, dy=l, dz, yaw_m): l = dy,
// w = dx, yaw = -yaw_m - pi/2 (the conversion loss-probe does at its boundary).
torch::Tensor design_from_mmdet(const torch::Tensor& m) {
  auto d = m.to(torch::kFloat64).clone();
  if (m.size(0) == 0) return d.to(torch::kFloat32);
  d.select(1, 3) = m.select(1, 4).to(torch::kFloat64);
  d.select(1, 4) = m.select(1, 3).to(torch::kFloat64);
  d.select(1, 6) = -m.select(1, 6).to(torch::kFloat64) - M_PI / 2;
  return d.to(torch::kFloat32);
}

TEST(GoldenPart2, LossesMatchThePyTorchTranscription) {
  if (!golden().have_torch) GTEST_SKIP() << BEVKD_PYTHON << " has no torch (Debian python3-torch, scripts/setup.sh)";
  const json& doc = golden().doc;
  ASSERT_TRUE(doc.contains("cases")) << "scripts/loss_golden_part2.py failed";
  std::vector<Agreement> table;
  for (const auto& c : doc.at("cases")) {
    const std::string name = c.at("name"), loss = c.at("loss");
    const json& p = c.at("params");
    std::map<std::string, torch::Tensor> in;
    for (const auto& [k, v] : c.at("inputs").items()) in[k] = to_tensor(v);
    const bool f64 = in.count("s")
                         ? in["s"].scalar_type() == torch::kFloat64
                         : (in.count("s_bev") ? in["s_bev"] : in["depth_logits"]).scalar_type() == torch::kFloat64;
    const double tol_value = f64 ? 1e-10 : 3e-5, tol_grad = f64 ? 1e-9 : 1e-4;
    // (value key, differentiated input, gradient key) -> the C++ value.
    std::map<std::string, torch::Tensor> values;
    std::string grad_input;
    auto leaf = [&](const std::string& k) {
      grad_input = k;
      in[k] = in[k].detach().requires_grad_(true);
      return in[k];
    };
    if (loss == "tig_inner_depth") {
      TigInnerDepthOptions o;
      o.dbound = p.at("dbound").get<std::array<double, 3>>();
      o.weight = p.at("inner_depth_weight");
      values["loss_inner_depth"] = tig_inner_depth_loss(leaf("depth_logits"), in["depth_gt"], in["fg_gt"], o);
    } else if (loss == "tig_inner_feature") {
      TigInnerFeatureOptions o;
      o.sample_num = p.at("x_sample_num");
      o.enlarge_width = p.at("enlarge_width");
      o.inter_keypoint_weight = p.at("inter_keypoint_weight");
      o.inter_channel_weight = p.at("inter_channel_weight");
      o.lss.bx = p.at("lss_grid_bx").get<std::array<double, 2>>();
      o.lss.dx = p.at("lss_grid_dx").get<std::array<double, 2>>();
      o.lss.nx = p.at("lss_grid_nx").get<std::array<int64_t, 2>>();
      std::vector<torch::Tensor> boxes;
      for (int64_t b = 0; in.count("boxes_b" + std::to_string(b)); ++b) {
        boxes.push_back(design_from_mmdet(in["boxes_b" + std::to_string(b)]));
        const auto key = "corners_b" + std::to_string(b);
        if (c.at("debug").contains(key)) {
          const double d = rel_diff(tig_box_corners(boxes.back(), o.enlarge_width), to_tensor(c.at("debug").at(key)));
          EXPECT_LT(d, 1e-6) << name << ": corners of sample " << b;
        }
      }
      const auto r = tig_inner_feature_loss(leaf("s_bev"), in["t_bev"], boxes, in["embed_w"], in["embed_b"], o);
      values["loss_inter_keypoint"] = r.inter_keypoint;
      values["loss_inter_channel"] = r.inter_channel;
    } else if (loss == "cwd_kl" || loss == "cwd_ce_focaldistiller") {
      CwdOptions o;
      o.tau = p.at("tau");
      o.loss_weight = p.at("loss_weight");
      o.form = loss == "cwd_kl" ? CwdForm::kKl : CwdForm::kCrossEntropy;
      values["loss"] = cwd_loss(leaf("s"), in["t"], o);
    } else if (loss == "mgd") {
      MgdParams mp;
      if (in.count("align_w")) mp.align_w = in["align_w"], mp.align_b = in["align_b"];
      mp.gen_w1 = in["gen_w1"], mp.gen_b1 = in["gen_b1"], mp.gen_w2 = in["gen_w2"], mp.gen_b2 = in["gen_b2"];
      MgdOptions o;
      o.alpha = p.at("alpha_mgd");
      o.lambda = p.at("lambda_mgd");
      values["loss"] = mgd_loss(leaf("s"), in["t"], in["u"], mp, o);
    } else if (loss == "fgd") {
      FgdParams fp;
      fp.align_w = in["align_w"], fp.align_b = in["align_b"];
      for (auto [side, gc] : {std::pair<std::string, FgdGlobalContextParams*>{"s", &fp.gc_s}, {"t", &fp.gc_t}}) {
        gc->conv_mask_w = in["conv_mask_" + side + "_w"], gc->conv_mask_b = in["conv_mask_" + side + "_b"];
        gc->add_w1 = in["add_" + side + "_w1"], gc->add_b1 = in["add_" + side + "_b1"];
        gc->ln_w = in["add_" + side + "_ln_w"], gc->ln_b = in["add_" + side + "_ln_b"];
        gc->add_w2 = in["add_" + side + "_w2"], gc->add_b2 = in["add_" + side + "_b2"];
      }
      FgdOptions o;
      o.temp = p.at("temp"), o.alpha = p.at("alpha_fgd"), o.beta = p.at("beta_fgd"), o.gamma = p.at("gamma_fgd"),
      o.lambda = p.at("lambda_fgd");
      const auto img = p.at("img_shape").get<std::array<double, 2>>();
      const std::vector<torch::Tensor> boxes{in["gt_boxes_b0"], in["gt_boxes_b1"]};
      const auto masks = fgd_masks(boxes, img, in["s"].size(2), in["s"].size(3), in["s"].options());
      EXPECT_EQ(rel_diff(masks.fg, to_tensor(c.at("debug").at("mask_fg"))), 0.0) << name;
      EXPECT_LT(rel_diff(masks.bg, to_tensor(c.at("debug").at("mask_bg"))), 1e-7) << name;
      const auto r = fgd_loss(leaf("s"), in["t"], boxes, img, fp, o);
      values["fg_loss"] = r.fg, values["bg_loss"] = r.bg, values["mask_loss"] = r.mask, values["rela_loss"] = r.rela;
      values["loss"] = r.loss;
    } else if (loss == "fitnet") {
      FitnetOptions o;
      o.form = p.at("variant") == "plain" ? FitnetForm::kPlain : FitnetForm::kMmrazor;
      o.loss_weight = p.at("loss_weight");
      o.normalize = p.at("normalize");
      values["loss"] = fitnet_loss(leaf("s"), in["t"], in["regressor_w"], in["regressor_b"], o);
    } else {
      ADD_FAILURE() << "unknown loss " << loss;
      continue;
    }
    Agreement a{name};
    for (const auto& [key, want] : c.at("expected").items()) {
      ASSERT_TRUE(values.count(key)) << name << ": no value " << key;
      const double got = values[key].item<double>(), w = want.get<double>();
      const double d = std::abs(got - w) / std::max(std::abs(w), 1e-30);
      EXPECT_LT(d, tol_value) << name << " " << key << ": C++ " << got << ", PyTorch " << w;
      a.value = std::max(a.value, d);
    }
    for (const auto& [gkey, gj] : c.at("grads").items()) {
      // grad_<input> (of "loss" or the only value) or grad_<input>_<value key>.
      std::string vkey = values.count("loss") ? "loss" : values.begin()->first;
      const std::string prefix = "grad_" + grad_input;
      if (gkey.size() > prefix.size()) vkey = gkey.substr(prefix.size() + 1);
      ASSERT_TRUE(values.count(vkey)) << name << ": " << gkey;
      const auto g = torch::autograd::grad({values[vkey]}, {in[grad_input]}, {}, /*retain_graph=*/true)[0];
      const double d = rel_diff(g, to_tensor(gj));
      EXPECT_LT(d, tol_grad) << name << " " << gkey;
      a.grad = std::max(a.grad, d);
    }
    table.push_back(a);
  }
  EXPECT_EQ(table.size(), 24u);
  std::printf("%-38s %14s %14s\n", "case", "value rel.diff", "grad rel.diff");
  for (const auto& a : table) std::printf("%-38s %14.3g %14.3g\n", a.name.c_str(), a.value, a.grad);
}

TEST(GoldenPart2, DepthRasterMatchesUpstreamPoints2Map) {
  if (!golden().have_torch) GTEST_SKIP() << BEVKD_PYTHON << " has no torch (Debian python3-torch, scripts/setup.sh)";
  const json& doc = golden().doc;
  ASSERT_TRUE(doc.contains("raster")) << "scripts/loss_golden_part2.py failed";
  for (const auto& r : doc.at("raster")) {
    const auto A = to_tensor(r.at("transform")).contiguous();
    std::array<double, 9> m{};
    for (int i = 0; i < 9; ++i) m[static_cast<size_t>(i)] = A.view({9})[i].item<double>();
    DepthRasterOptions o;
    o.stride = r.at("stride");
    const auto got = rasterize_depth_points(to_tensor(r.at("uvd")), to_tensor(r.at("box_id")), m, r.at("image_height"),
                                            r.at("image_width"), o);
    const auto depth = to_tensor(r.at("depth")), fg = to_tensor(r.at("fg"));
    ASSERT_EQ(got.depth.sizes(), depth.sizes());
    EXPECT_EQ((got.depth != depth).sum().item<int64_t>(), 0) << r.at("name");
    EXPECT_EQ((got.fg != fg).sum().item<int64_t>(), 0) << r.at("name");
    EXPECT_GT((fg > 0).sum().item<int64_t>(), 100);
    std::printf("%s: %lld cells with depth, %lld with a box id, identical maps\n",
                r.at("name").get<std::string>().c_str(), static_cast<long long>((depth > 0).sum().item<int64_t>()),
                static_cast<long long>((fg > 0).sum().item<int64_t>()));
  }
}

}  // namespace
}  // namespace bevkd::train::losses
