// Probe entries of spec/loss_probe.md for the classic baselines: §7.2 cwd_kl and
// cwd_ce_focaldistiller, §7.3 mgd, §7.4 fgd, §7.1 fitnet. The spec writes their batch as N.
#include <torch/torch.h>

#include "train/losses/cwd.h"
#include "train/losses/fgd.h"
#include "train/losses/fitnet.h"
#include "train/losses/mgd.h"
#include "train/probe/entries.h"
#include "train/probe/entry_util.h"

namespace bevkd::train::probe {
namespace {

using P = ParamSpec;

// A finite number parameter.
// The "iff Cs != C" align inputs.
void require_align_iff(const ProbeInputs& in, const std::string& w, const std::string& b) {
  const int64_t cs = in.size("Cs"), c = in.size("C");
  require_inputs_iff(in, {w, b}, cs != c, cat("Cs = ", cs, cs != c ? " != " : " == ", "C = ", c));
}

ProbeEntry cwd_entry(const std::string& name, losses::CwdForm form) {
  ProbeEntry e;
  e.name = name;
  e.section = "§7.2";
  e.summary = form == losses::CwdForm::kKl
                  ? "channel-wise distillation, KL form: w·τ²·Σ p_T(log p_T − log p_S)/(N·C), softmax over H·W"
                  : "channel-wise distillation, FocalDistiller's cross-entropy form: w·τ²·Σ −p_T log p_S/(N·C)";
  e.batch_symbol = "N";
  e.inputs = {InputSpec::floating("s", {"N", "C", "H", "W"}, "student map").with_grad(),
              InputSpec::floating("t", {"N", "C", "H", "W"}, "teacher map")};
  e.params = {P::with_default("tau", 1, "τ"), P::with_default("loss_weight", 1, "w")};
  e.values = {"loss"};
  e.grads = {"grad_s"};
  e.validate = [](const ProbeInputs&, const Params& p) {
    if (!(finite_param(p, "tau") > 0)) p.refuse("tau", "expected a positive temperature");
    finite_param(p, "loss_weight");
  };
  e.run = [form](const ProbeContext& c) {
    losses::CwdOptions o;
    o.tau = c.params.number("tau");
    o.loss_weight = c.params.number("loss_weight");
    o.form = form;
    const torch::Tensor loss = losses::cwd_loss(c.in.tensor("s"), c.in.tensor("t"), o);
    ProbeOutput out;
    out.value("loss", loss);
    if (c.want_grad) out.grad("grad_s", c.in.grad_of(loss, "s"));
    return out;
  };
  return e;
}

ProbeEntry mgd_entry() {
  ProbeEntry e;
  e.name = "mgd";
  e.section = "§7.3";
  e.summary = "masked generative distillation: α·Σ(G(align(S)·M) − T)²/N, M = 0 where u > 1 − λ";
  e.batch_symbol = "N";
  e.inputs = {InputSpec::floating("s", {"N", "Cs", "H", "W"}, "student map").with_grad(),
              InputSpec::floating("t", {"N", "C", "H", "W"}, "teacher map"),
              InputSpec::floating("u", {"N", "1", "H", "W"}, "uniform draws; M = 0 where u > 1 − λ"),
              InputSpec::floating("gen_w1", {"C", "C", "3", "3"}, "generator conv 1"),
              InputSpec::floating("gen_b1", {"C"}),
              InputSpec::floating("gen_w2", {"C", "C", "3", "3"}, "generator conv 2"),
              InputSpec::floating("gen_b2", {"C"}),
              InputSpec::floating("align_w", {"C", "Cs", "1", "1"}, "1x1 align conv, iff Cs != C").optional(),
              InputSpec::floating("align_b", {"C"}, "iff Cs != C").optional()};
  e.params = {P::with_default("alpha_mgd", 2e-5, "α"), P::with_default("lambda_mgd", 0.65, "λ, the masked fraction")};
  e.values = {"loss"};
  e.grads = {"grad_s"};
  e.validate = [](const ProbeInputs& in, const Params& p) {
    require_align_iff(in, "align_w", "align_b");
    finite_param(p, "alpha_mgd");
    number_in(p, "lambda_mgd", 0, 1);
  };
  e.run = [](const ProbeContext& c) {
    losses::MgdParams mp;
    if (c.in.has("align_w")) {
      mp.align_w = c.in.tensor("align_w");
      mp.align_b = c.in.tensor("align_b");
    }
    mp.gen_w1 = c.in.tensor("gen_w1");
    mp.gen_b1 = c.in.tensor("gen_b1");
    mp.gen_w2 = c.in.tensor("gen_w2");
    mp.gen_b2 = c.in.tensor("gen_b2");
    losses::MgdOptions o;
    o.alpha = c.params.number("alpha_mgd");
    o.lambda = c.params.number("lambda_mgd");
    const torch::Tensor loss = losses::mgd_loss(c.in.tensor("s"), c.in.tensor("t"), c.in.tensor("u"), mp, o);
    ProbeOutput out;
    out.value("loss", loss);
    if (c.want_grad) out.grad("grad_s", c.in.grad_of(loss, "s"));
    return out;
  };
  return e;
}

// One global-context block's inputs, side "s" or "t".
std::vector<InputSpec> gc_inputs(const std::string& side) {
  return {InputSpec::floating("conv_mask_" + side + "_w", {"1", "C", "1", "1"}, "GC_" + side + " context conv"),
          InputSpec::floating("conv_mask_" + side + "_b", {"1"}),
          InputSpec::floating("add_" + side + "_w1", {"C/2", "C", "1", "1"}, "GC_" + side + " add conv 1"),
          InputSpec::floating("add_" + side + "_b1", {"C/2"}),
          InputSpec::floating("add_" + side + "_ln_w", {"C/2", "1", "1"}, "GC_" + side + " LayerNorm (eps 1e-5)"),
          InputSpec::floating("add_" + side + "_ln_b", {"C/2", "1", "1"}),
          InputSpec::floating("add_" + side + "_w2", {"C", "C/2", "1", "1"}, "GC_" + side + " add conv 2"),
          InputSpec::floating("add_" + side + "_b2", {"C"})};
}

losses::FgdGlobalContextParams gc_params(const ProbeInputs& in, const std::string& side) {
  losses::FgdGlobalContextParams g;
  g.conv_mask_w = in.tensor("conv_mask_" + side + "_w");
  g.conv_mask_b = in.tensor("conv_mask_" + side + "_b");
  g.add_w1 = in.tensor("add_" + side + "_w1");
  g.add_b1 = in.tensor("add_" + side + "_b1");
  g.ln_w = in.tensor("add_" + side + "_ln_w");
  g.ln_b = in.tensor("add_" + side + "_ln_b");
  g.add_w2 = in.tensor("add_" + side + "_w2");
  g.add_b2 = in.tensor("add_" + side + "_b2");
  return g;
}

ProbeEntry fgd_entry() {
  ProbeEntry e;
  e.name = "fgd";
  e.section = "§7.4";
  e.summary = "focal and global distillation: α·fg + β·bg + γ·mask + λ·rela";
  e.batch_symbol = "N";
  e.inputs = {InputSpec::floating("s", {"N", "Cs", "H", "W"}, "student map").with_grad(),
              InputSpec::floating("t", {"N", "C", "H", "W"}, "teacher map"),
              InputSpec::floating("gt_boxes", {"n_b", "4"}, "x1, y1, x2, y2 in image pixels").sample_wise(),
              InputSpec::floating("align_w", {"C", "Cs", "1", "1"}, "1x1 align conv, iff Cs != C").optional(),
              InputSpec::floating("align_b", {"C"}, "iff Cs != C").optional()};
  for (const std::string side : {"s", "t"})
    for (InputSpec& s : gc_inputs(side)) e.inputs.push_back(std::move(s));
  e.params = {P::with_default("temp", 0.5),
              P::with_default("alpha_fgd", 1e-3, "α (fg)"),
              P::with_default("beta_fgd", 5e-4, "β (bg)"),
              P::with_default("gamma_fgd", 1e-3, "γ (mask)"),
              P::with_default("lambda_fgd", 5e-6, "λ (rela)"),
              P::required("img_shape", "[h, w] of the image the boxes are in")};
  e.values = {"fg_loss", "bg_loss", "mask_loss", "rela_loss", "loss"};
  e.grads = {"grad_s"};
  e.debug_files = {"mask_fg", "mask_bg"};
  e.validate = [](const ProbeInputs& in, const Params& p) {
    require_align_iff(in, "align_w", "align_b");
    BEVKD_PROBE_CHECK(in.size("C") % 2 == 0, "input t: ", in.size("C"),
                      " channels, expected an even C (GC blocks use C/2)");
    if (!(finite_param(p, "temp") > 0)) p.refuse("temp", "expected a positive temperature");
    for (const char* k : {"alpha_fgd", "beta_fgd", "gamma_fgd", "lambda_fgd"}) finite_param(p, k);
    positive_xy(p, "img_shape");
  };
  e.run = [](const ProbeContext& c) {
    losses::FgdParams fp;
    if (c.in.has("align_w")) {
      fp.align_w = c.in.tensor("align_w");
      fp.align_b = c.in.tensor("align_b");
    }
    fp.gc_s = gc_params(c.in, "s");
    fp.gc_t = gc_params(c.in, "t");
    losses::FgdOptions o;
    o.temp = c.params.number("temp");
    o.alpha = c.params.number("alpha_fgd");
    o.beta = c.params.number("beta_fgd");
    o.gamma = c.params.number("gamma_fgd");
    o.lambda = c.params.number("lambda_fgd");
    const std::vector<double> img = c.params.numbers("img_shape", 2, 3);
    const std::array<double, 2> img_shape{img[0], img[1]};
    const torch::Tensor& s = c.in.tensor("s");
    const std::vector<torch::Tensor>& boxes = c.in.samples("gt_boxes");
    const losses::FgdLoss r = losses::fgd_loss(s, c.in.tensor("t"), boxes, img_shape, fp, o);
    ProbeOutput out;
    out.value("fg_loss", r.fg);
    out.value("bg_loss", r.bg);
    out.value("mask_loss", r.mask);
    out.value("rela_loss", r.rela);
    out.value("loss", r.loss);
    if (c.want_grad) out.grad("grad_s", c.in.grad_of(r.loss, "s"));
    if (c.want_debug) {
      const losses::FgdMasks m =
          losses::fgd_masks(boxes, img_shape, c.in.size("H"), c.in.size("W"), s.options().requires_grad(false));
      out.array("mask_fg", m.fg.to(torch::kFloat64));
      out.array("mask_bg", m.bg.to(torch::kFloat64));
    }
    return out;
  };
  return e;
}

ProbeEntry fitnet_entry() {
  ProbeEntry e;
  e.name = "fitnet";
  e.section = "§7.1";
  e.summary = "FitNet hint: mmrazor w·Σ(ŝ − t̂)²/N (per-sample L2-normalised if normalize) or plain w·mean((r(S) − T)²)";
  e.batch_symbol = "N";
  e.inputs = {InputSpec::floating("s", {"N", "Cs", "H", "W"}, "student map").with_grad(),
              InputSpec::floating("t", {"N", "C", "H", "W"}, "teacher map"),
              InputSpec::floating("regressor_w", {"C", "Cs", "1", "1"}, "r, a plain 1x1 conv"),
              InputSpec::floating("regressor_b", {"C"})};
  e.params = {P::required("variant", "\"mmrazor\" or \"plain\""), P::required("loss_weight", "w"),
              P::with_default("normalize", true, "mmrazor only; must be false for plain")};
  e.values = {"loss"};
  e.grads = {"grad_s"};
  e.validate = [](const ProbeInputs&, const Params& p) {
    const std::string v = p.string("variant");
    if (v != "mmrazor" && v != "plain") p.refuse("variant", "expected \"mmrazor\" or \"plain\"");
    finite_param(p, "loss_weight");
    if (v == "plain" && p.boolean("normalize")) p.refuse("normalize", "must be false for variant \"plain\"");
  };
  e.run = [](const ProbeContext& c) {
    losses::FitnetOptions o;
    o.form = c.params.string("variant") == "plain" ? losses::FitnetForm::kPlain : losses::FitnetForm::kMmrazor;
    o.loss_weight = c.params.number("loss_weight");
    o.normalize = c.params.boolean("normalize");
    const torch::Tensor loss = losses::fitnet_loss(c.in.tensor("s"), c.in.tensor("t"), c.in.tensor("regressor_w"),
                                                   c.in.tensor("regressor_b"), o);
    ProbeOutput out;
    out.value("loss", loss);
    if (c.want_grad) out.grad("grad_s", c.in.grad_of(loss, "s"));
    return out;
  };
  return e;
}

}  // namespace

void register_baseline_probes(Registry& r) {
  r.add(cwd_entry("cwd_kl", losses::CwdForm::kKl));
  r.add(cwd_entry("cwd_ce_focaldistiller", losses::CwdForm::kCrossEntropy));
  r.add(mgd_entry());
  r.add(fgd_entry());
  r.add(fitnet_entry());
}

}  // namespace bevkd::train::probe
