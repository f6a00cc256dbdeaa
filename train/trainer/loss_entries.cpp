// The registry's distillation losses: each entry wraps a pure loss of train/losses/ (and its
// trainable module) into a DistillLoss that reads the student's outputs and the batch's teacher
// fields. Dense losses follow DESIGN.md "Grids": the student map is resampled bilinearly
// (align_corners = false) onto the teacher grid behind a 1x1 adaptor when channels differ (the
// train/losses modules own that rule; DenseAdaptor does it for the pure functions without one).
#include "train/trainer/loss_entries.h"

#include "train/trainer/loss_entry_util.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/functional/upsampling.h>
#include <torch/nn/modules/conv.h>
#include <torch/torch.h>

#include <cmath>

#include "base/error.h"
#include "base/rng.h"
#include "kernels/gaussian.h"
#include "train/losses/bevdistill.h"
#include "train/losses/cwd.h"
#include "train/losses/fgd.h"
#include "train/losses/fitnet.h"
#include "train/losses/focaldistiller.h"
#include "train/losses/mgd.h"
#include "train/losses/tig_bev.h"

namespace bevkd::train::trainer {

namespace ls = losses;
using nlohmann::json;

namespace {

// ---- BEVDistill dense (§3.1) -----------------------------------------------------------------

struct BevDistillDense : DistillLoss {
  std::string tap, student_tap;
  double w;
  std::shared_ptr<DenseAdaptor> adapt;
  explicit BevDistillDense(const LossSetup& s)
      : tap(str(s.params, "tap")), student_tap(str(s.params, "student_tap")), w(num(s.params, "loss_weight")) {
    adapt = register_module("adaptor", std::make_shared<DenseAdaptor>(student_channels(s, student_tap),
                                                                      tap_channels(s, tap)));
  }
  std::map<std::string, torch::Tensor> terms(const LossInputs& in) override {
    const auto t = teacher_map(in.batch, tap);
    const auto s = (*adapt)(in.student.tap(student_tap), t);
    return {{"dense", ls::bevdistill_dense(s, t, teacher_fg(in.batch), w)}};
  }
};

// ---- FocalDistiller's heat-map baseline (§6) -------------------------------------------------

struct FocalHeatmap : DistillLoss {
  std::string tap, student_tap;
  double w;
  BevGrid teacher_grid;
  std::shared_ptr<DenseAdaptor> adapt;
  explicit FocalHeatmap(const LossSetup& s)
      : tap(str(s.params, "tap")), student_tap(str(s.params, "student_tap")), w(num(s.params, "loss_weight")),
        teacher_grid(s.teacher_grid) {
    adapt = register_module("adaptor", std::make_shared<DenseAdaptor>(student_channels(s, student_tap),
                                                                      tap_channels(s, tap)));
  }
  std::map<std::string, torch::Tensor> terms(const LossInputs& in) override {
    const auto t = teacher_map(in.batch, tap);
    const auto s = (*adapt)(in.student.tap(student_tap), t);
    kernels::GaussianOptions g;
    g.grid = teacher_grid;
    std::vector<torch::Tensor> boxes;
    for (const auto& b : gt_boxes(in.batch)) boxes.push_back(b.to(torch::kCPU));
    const auto mask = ls::focaldistiller_heat_mask(boxes, g, t.size(2), t.size(3)).to(t.device());
    return {{"heatmap", ls::focaldistiller_bev_l2_heatmap(s, t, mask, w)}};
  }
};

// ---- the classic baselines (§7) --------------------------------------------------------------

template <class M>
struct ModuleLoss : DistillLoss {
  std::string tap, student_tap;
  M module{nullptr};
  ModuleLoss(const LossSetup& s, M m)
      : tap(str(s.params, "tap")), student_tap(str(s.params, "student_tap")), module(std::move(m)) {
    register_module("distiller", module);
  }
};

struct Fitnet : ModuleLoss<ls::FitnetDistiller> {
  static ls::FitnetOptions opts(const json& p) {
    ls::FitnetOptions o;
    const auto form = str(p, "form");
    BEVKD_CHECK(form == "mmrazor" || form == "plain", "loss fitnet: form must be mmrazor or plain, got '", form, "'");
    o.form = form == "plain" ? ls::FitnetForm::kPlain : ls::FitnetForm::kMmrazor;
    o.loss_weight = num(p, "loss_weight");
    o.normalize = p.at("normalize").get<bool>();
    return o;
  }
  explicit Fitnet(const LossSetup& s)
      : ModuleLoss(s, ls::FitnetDistiller(student_channels(s, str(s.params, "student_tap")),
                                          tap_channels(s, str(s.params, "tap")), opts(s.params))) {}
  std::map<std::string, torch::Tensor> terms(const LossInputs& in) override {
    return {{"fitnet", module->forward(in.student.tap(student_tap), teacher_map(in.batch, tap))}};
  }
};

struct Cwd : ModuleLoss<ls::CwdDistiller> {
  static ls::CwdOptions opts(const json& p) {
    ls::CwdOptions o;
    o.tau = num(p, "tau");
    o.loss_weight = num(p, "loss_weight");
    const auto form = str(p, "form");
    BEVKD_CHECK(form == "kl" || form == "ce", "loss cwd: form must be kl or ce, got '", form, "'");
    o.form = form == "ce" ? ls::CwdForm::kCrossEntropy : ls::CwdForm::kKl;
    return o;
  }
  explicit Cwd(const LossSetup& s)
      : ModuleLoss(s, ls::CwdDistiller(student_channels(s, str(s.params, "student_tap")),
                                       tap_channels(s, str(s.params, "tap")), opts(s.params))) {}
  std::map<std::string, torch::Tensor> terms(const LossInputs& in) override {
    return {{"cwd", module->forward(in.student.tap(student_tap), teacher_map(in.batch, tap))}};
  }
};

struct Mgd : ModuleLoss<ls::MgdDistiller> {
  uint64_t seed;
  static ls::MgdOptions opts(const json& p) {
    ls::MgdOptions o;
    o.alpha = num(p, "alpha");
    o.lambda = num(p, "lambda");
    return o;
  }
  explicit Mgd(const LossSetup& s)
      : ModuleLoss(s, ls::MgdDistiller(student_channels(s, str(s.params, "student_tap")),
                                       tap_channels(s, str(s.params, "tap")), opts(s.params))),
        seed(s.params.at("seed").get<uint64_t>()) {}
  std::map<std::string, torch::Tensor> terms(const LossInputs& in) override {
    // Each sample's mask draw depends on (seed, step, sample) only: a resumed run draws the same
    // masks, and so does a run split over other ranks or micro-batches.
    const torch::Tensor t = teacher_map(in.batch, tap);
    std::vector<torch::Tensor> draws;
    for (const auto& token : in.batch.sample_tokens) {
      auto gen = at::make_generator<at::CPUGeneratorImpl>(
          mix_keys(seed, static_cast<uint64_t>(in.step), key_of(token)));
      draws.push_back(torch::rand({1, 1, t.size(2), t.size(3)}, gen, torch::kFloat32));
    }
    const torch::Tensor u = torch::cat(draws).to(t.device());
    return {{"mgd", module->forward(in.student.tap(student_tap), t, u)}};
  }
};

struct Fgd : ModuleLoss<ls::FgdDistiller> {
  BevGrid teacher_grid;
  static ls::FgdOptions opts(const json& p) {
    ls::FgdOptions o;
    o.temp = num(p, "temp");
    o.alpha = num(p, "alpha");
    o.beta = num(p, "beta");
    o.gamma = num(p, "gamma");
    o.lambda = num(p, "lambda");
    return o;
  }
  explicit Fgd(const LossSetup& s)
      : ModuleLoss(s, ls::FgdDistiller(student_channels(s, str(s.params, "student_tap")),
                                       tap_channels(s, str(s.params, "tap")), opts(s.params))),
        teacher_grid(s.teacher_grid) {}
  std::map<std::string, torch::Tensor> terms(const LossInputs& in) override {
    const auto r = module->forward(in.student.tap(student_tap), teacher_map(in.batch, tap), gt_boxes(in.batch),
                                   teacher_grid);
    return {{"fgd", r.loss}};  // alpha fg + beta bg + gamma mask + lambda rela
  }
};

// ---- TiG-BEV inner depth (§4.1) --------------------------------------------------------------

struct TigInnerDepth : DistillLoss {
  ls::TigInnerDepthOptions o;
  explicit TigInnerDepth(const LossSetup& s) {
    const auto& b = s.student.depth_bins;
    o.dbound = {b.min, b.max, b.step};
    o.weight = num(s.params, "loss_weight");
    BEVKD_CHECK(o.num_bins() == b.count(), s.where, ": the student's ", b.count(), " depth bins do not form "
                "TiG-BEV's arange(", b.min, ", ", b.max, ", ", b.step, ")");
  }
  std::map<std::string, torch::Tensor> terms(const LossInputs& in) override {
    const auto& d = in.student.depth_logits;  // [B, N, D, h, w]
    const auto logits = d.reshape({d.size(0) * d.size(1), d.size(2), d.size(3), d.size(4)});
    return {{"inner_depth", ls::tig_inner_depth_loss(logits, in.batch.depth.depth, in.batch.depth.box_id, o)}};
  }
};

// ---- TiG-BEV inner feature (§4.2) -------------------------------------------------------------

struct TigInnerFeature : DistillLoss {
  std::string tap, student_tap;
  ls::TigInnerFeature module{nullptr};
  static ls::TigInnerFeatureOptions opts(const LossSetup& s) {
    ls::TigInnerFeatureOptions o;
    const auto& p = s.params;
    o.sample_num = p.at("sample_num").get<int64_t>();
    o.enlarge_width = num(p, "enlarge_width");
    o.inter_keypoint_weight = num(p, "inter_keypoint_weight");
    o.inter_channel_weight = num(p, "inter_channel_weight");
    BEVKD_CHECK(o.sample_num >= 2, s.where, ": sample_num ", o.sample_num, " must be >= 2");
    // The reference normalises key points with the LSS grid of its (shared) BEV maps; here that is
    // the student's grid, which covers the teacher's x-y range (DESIGN.md grid rule).
    o.lss = ls::LssGridParams::of(s.student.grid);
    o.exact = p.at("exact").get<bool>();
    o.student_grid = s.student.grid;
    o.teacher_grid = s.teacher_grid;
    return o;
  }
  explicit TigInnerFeature(const LossSetup& s)
      : tap(str(s.params, "tap")), student_tap(str(s.params, "student_tap")) {
    module = register_module("distiller", ls::TigInnerFeature(student_channels(s, student_tap),
                                                               tap_channels(s, tap), opts(s)));
  }
  std::map<std::string, torch::Tensor> terms(const LossInputs& in) override {
    const auto r = module->forward(in.student.tap(student_tap), teacher_map(in.batch, tap), gt_boxes(in.batch));
    return {{"inter_keypoint", r.inter_keypoint}, {"inter_channel", r.inter_channel}};
  }
};

// ---- BEVDistill sparse instance (§3.2) and InfoNCE (§3.3) for a CenterHead student (§11.8) ----

// The reference's queries: a query head's own, every decoder layer (spec §3.2), or a CenterHead's
// top-K cells as one layer (§11.8).
ls::CenterHeadQueries student_queries(const LossInputs& in, const student::StudentConfig& cfg, int64_t k) {
  if (!cfg.query()) return ls::centerhead_queries(in.student.tasks, cfg.head.tasks, cfg.grid, k);
  const auto& q = in.student.query;
  ls::CenterHeadQueries out;
  out.cls_logits = torch::stack(q.cls_logits);
  const auto codes = torch::stack(q.codes);  // [L, B, Q, 10]: x, y, z, log l, log w, log h, sin, cos, vx, vy
  // bevdistill_box_code's layout: x, y, log l, log w, z, log h, sin, cos, vx, vy.
  out.bbox_preds = codes.index_select(-1, torch::tensor({0, 1, 3, 4, 2, 5, 6, 7, 8, 9}, torch::kInt64).to(codes.device()));
  const auto& g = cfg.grid;
  const auto xy = codes.narrow(-1, 0, 2).detach();
  out.points = torch::stack({(xy.select(-1, 0) - g.x_min()) / (g.x_max() - g.x_min()) * 2 - 1,
                             (xy.select(-1, 1) - g.y_min()) / (g.y_max() - g.y_min()) * 2 - 1},
                            -1);
  return out;
}

struct BevDistillBox : DistillLoss {
  student::StudentConfig student;
  int64_t top_k, teacher_top_k;
  bool quality;
  ls::BoxDistillOptions o;
  explicit BevDistillBox(const LossSetup& s)
      : student(s.student), top_k(s.params.at("top_k").get<int64_t>()),
        teacher_top_k(s.params.at("teacher_top_k").get<int64_t>()) {
    const auto w = str(s.params, "weighting");
    BEVKD_CHECK(w == "s2" || w == "q", s.where, ": weighting must be s2 (the release: s = the teacher's max class "
                "probability) or q (the paper's quality, the shards' teacher/quality), got '", w, "'");
    quality = w == "q";
    BEVKD_CHECK(top_k >= 1 && teacher_top_k >= 1, s.where, ": top_k ", top_k, " and teacher_top_k ", teacher_top_k,
                " must be >= 1");
    o.loss_weight = num(s.params, "loss_weight");
  }
  std::map<std::string, torch::Tensor> terms(const LossInputs& in) override {
    const auto q = student_queries(in, student, top_k);
    std::vector<ls::BoxDistillTeacher> teacher;
    for (const auto& t : in.batch.teacher) {
      // The release keeps the teacher's top 50 by score (no threshold, no NMS beyond the teacher's).
      const int64_t m = std::min<int64_t>(teacher_top_k, t.scores.size(0));
      const auto order = std::get<1>(t.scores.topk(m, 0, true, true));
      ls::BoxDistillTeacher bt;
      bt.code = ls::bevdistill_box_code(t.boxes.index_select(0, order));
      bt.probs = t.class_probs.index_select(0, order);
      bt.score = quality ? t.quality.index_select(0, order) : ls::bevdistill_max_prob_score(bt.probs);
      teacher.push_back(std::move(bt));
    }
    return {{"box", ls::bevdistill_box_distill(q.cls_logits, q.bbox_preds, teacher, o).total}};
  }
};

struct BevDistillInfoNce : DistillLoss {
  std::string tap, student_tap;
  student::StudentConfig student;
  int64_t top_k;
  ls::BevDistillInfoNce module{nullptr};
  explicit BevDistillInfoNce(const LossSetup& s)
      : tap(str(s.params, "tap")), student_tap(str(s.params, "student_tap")), student(s.student),
        top_k(s.params.at("top_k").get<int64_t>()) {
    BEVKD_CHECK(top_k >= 1, s.where, ": top_k ", top_k, " must be >= 1");
    ls::InfoNceOptions o;
    o.student_channels = student_channels(s, student_tap);
    o.teacher_channels = tap_channels(s, tap);
    o.mid_channels = s.params.at("mid_channels").get<int64_t>();
    o.temperature = num(s.params, "temperature");
    o.loss_weight = num(s.params, "loss_weight");
    module = register_module("distiller", ls::BevDistillInfoNce(o));
  }
  std::map<std::string, torch::Tensor> terms(const LossInputs& in) override {
    const auto q = student_queries(in, student, top_k);  // points detached
    const auto l = module->forward(in.student.tap(student_tap), teacher_map(in.batch, tap), q.points);
    return {{"infonce", module->options().loss_weight * l}};
  }
};

ShardNeed class_probs_need() {
  return {"teacher/class_probs", "bevkd-precompute run with shard schema >= 1.1 (it writes the teacher's class "
          "probabilities; re-run precompute)", "",
          [](data::LoaderConfig& c) {
            c.teacher_boxes = true;
            c.teacher_class_probs = true;
          }};
}



std::vector<ShardNeed> tap_only(const json& p) { return {tap_need(p.at("tap").get<std::string>())}; }

}  // namespace

std::vector<LossEntry> builtin_loss_entries() {
  // The families of their own files.
  std::vector<LossEntry> x3kd = x3kd_loss_entries(), fd3d = fd3d_loss_entries();
  // Parameters shared with a loss-probe entry are listed in probe_params (trainer key -> probe key)
  // and take the probe's default (loss_registry.cpp); default_params holds the trainer's own keys.
  std::vector<LossEntry> all;
  auto add = [&](LossEntry e, std::vector<std::string> probes, std::vector<std::pair<std::string, std::string>> shared) {
    e.probe_losses = std::move(probes);
    e.probe_params = std::move(shared);
    all.push_back(std::move(e));
  };
  add({"bevdistill_dense",
       "BEVDistill dense foreground-guided feature distillation (spec/losses.md §3.1) on the stored fg_mask", 1.0,
       {{"tap", "head_shared"}, {"student_tap", "head_shared"}},
       [](const json& p) { return std::vector<ShardNeed>{tap_need(p.at("tap").get<std::string>()), fg_need()}; },
       maker<BevDistillDense>()},
      {"bevdistill_dense"}, {{"loss_weight", "loss_weight"}});
  add({"bevdistill_box",
       "BEVDistill sparse instance distillation (spec/losses.md §3.2) for a CenterHead student (§11.8): the "
       "student's top-K cells Hungarian-matched to the teacher's top boxes, s²-weighted L1 (or the paper's q)",
       1.0, {{"top_k", 300}, {"teacher_top_k", 50}, {"weighting", "s2"}},
       [](const json&) { return std::vector<ShardNeed>{teacher_boxes_need(), class_probs_need()}; },
       maker<BevDistillBox>()},
      {"bevdistill_box_distill"}, {{"loss_weight", "loss_weight_l1"}});
  add({"bevdistill_infonce",
       "BEVDistill instance InfoNCE (spec/losses.md §3.3) sampled at the student's top-K cells (§11.8), both "
       "projection heads trained",
       1.0, {{"tap", "neck"}, {"student_tap", "neck"}, {"top_k", 300}, {"mid_channels", 512}}, tap_only,
       maker<BevDistillInfoNce>()},
      {"bevdistill_infonce"}, {{"temperature", "temperature"}, {"loss_weight", "loss_weight"}});
  add({"focaldistiller_heatmap",
       "FocalDistiller's BEV L2 heat-map baseline (spec/losses.md §6), mask from the GT boxes", 1.0,
       {{"tap", "neck"}, {"student_tap", "neck"}}, tap_only, maker<FocalHeatmap>()},
      {"focaldistiller_bev_l2_heatmap"}, {{"loss_weight", "weight"}});
  // FitNet's probe requires loss_weight (the two forms' references differ); the trainer's is 1.
  add({"fitnet", "FitNet hint loss (spec/losses.md §7.1)", 1.0,
       {{"tap", "neck"}, {"student_tap", "neck"}, {"form", "mmrazor"}, {"loss_weight", 1.0}}, tap_only,
       maker<Fitnet>()},
      {"fitnet"}, {{"normalize", "normalize"}});
  add({"cwd", "channel-wise distillation (spec/losses.md §7.2)", 1.0,
       {{"tap", "neck"}, {"student_tap", "neck"}, {"form", "kl"}}, tap_only, maker<Cwd>()},
      {"cwd_kl", "cwd_ce_focaldistiller"}, {{"tau", "tau"}, {"loss_weight", "loss_weight"}});
  add({"mgd", "masked generative distillation (spec/losses.md §7.3)", 1.0,
       {{"tap", "neck"}, {"student_tap", "neck"}, {"seed", 0}}, tap_only, maker<Mgd>()},
      {"mgd"}, {{"alpha", "alpha_mgd"}, {"lambda", "lambda_mgd"}});
  add({"fgd", "focal and global distillation (spec/losses.md §7.4), masks from the GT boxes", 1.0,
       {{"tap", "neck"}, {"student_tap", "neck"}}, tap_only, maker<Fgd>()},
      {"fgd"},
      {{"temp", "temp"}, {"alpha", "alpha_fgd"}, {"beta", "beta_fgd"}, {"gamma", "gamma_fgd"}, {"lambda", "lambda_fgd"}});
  add({"tig_inner_depth", "TiG-BEV inner-depth supervision (spec/losses.md §4.1) on the stored LiDAR points", 1.0,
       json::object(), [](const json&) { return std::vector<ShardNeed>{box_id_need()}; }, maker<TigInnerDepth>()},
      {"tig_inner_depth"}, {{"loss_weight", "inner_depth_weight"}});
  add({"tig_inner_feature",
       "TiG-BEV inner-keypoint and inner-channel distillation (spec/losses.md §4.2) on the GT boxes' enlarged "
       "lattice",
       1.0, {{"tap", "neck"}, {"student_tap", "neck"}}, tap_only, maker<TigInnerFeature>()},
      {"tig_inner_feature"},
      {{"sample_num", "x_sample_num"},
       {"enlarge_width", "enlarge_width"},
       {"inter_keypoint_weight", "inter_keypoint_weight"},
       {"inter_channel_weight", "inter_channel_weight"},
       {"exact", "exact"}});
  for (auto* family : {&x3kd, &fd3d})
    for (auto& e : *family) all.push_back(std::move(e));
  return all;
}

}  // namespace bevkd::train::trainer
