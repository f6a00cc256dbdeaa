// Probe entries of spec/loss_probe.md for FD3D (§6, provisional: no released code; bevkd follows
// the paper's equations): fd3d_qfd and fd3d_smgd.
#include <torch/torch.h>

#include "train/losses/fd3d.h"
#include "train/probe/entries.h"
#include "train/probe/entry_util.h"

namespace bevkd::train::probe {
namespace {

using P = ParamSpec;

// Copies `value` into the module parameter `name` (no gradient is taken with respect to it).
void load_parameter(torch::nn::Module& m, const std::string& name, const torch::Tensor& value) {
  torch::NoGradGuard no_grad;
  torch::Tensor* p = m.named_parameters().find(name);
  BEVKD_ASSERT(p != nullptr, "no parameter ", name);
  BEVKD_ASSERT(p->sizes() == value.sizes(), "parameter ", name, " has shape ", p->sizes(), ", given ", value.sizes());
  p->copy_(value);
}

ProbeEntry fd3d_qfd_entry() {
  ProbeEntry e;
  e.name = "fd3d_qfd";
  e.section = "§6";
  e.summary = "FD3D query-based focal distillation (provisional): η·L_QFD at the focal queries' positions";
  e.inputs = {
      InputSpec::floating("s_bev", {"B", "Cs", "Hs", "Ws"}, "student BEV map").with_grad(),
      InputSpec::floating("t_bev", {"B", "C", "H", "W"}, "teacher BEV map"),
      InputSpec::floating("positions", {"N_b", "M", "K", "2"}, "focal query positions (x, y) in metres").sample_wise(),
      InputSpec::floating("adaptor_w", {"C", "Cs", "1", "1"}, "1x1 adaptor on S, iff Cs != C").optional(),
      InputSpec::floating("adaptor_b", {"C"}, "iff Cs != C").optional()};
  e.params = {P::with_default("bev_range", {-51.2, -51.2, 51.2, 51.2}, "[x_min, y_min, x_max, y_max] (m)"),
              P::with_default("loss_weight", 0.001, "η")};
  e.values = {"loss"};
  e.grads = {"grad_s_bev"};
  e.validate = [](const ProbeInputs& in, const Params& p) {
    const int64_t cs = in.size("Cs"), c = in.size("C");
    require_inputs_iff(in, {"adaptor_w", "adaptor_b"}, cs != c, cat("Cs = ", cs, cs != c ? " != " : " == ", "C = ", c));
    const std::vector<double> r = finite_numbers(p, "bev_range", 4, 4);
    if (!(r[0] < r[2] && r[1] < r[3])) p.refuse("bev_range", "expected x_min < x_max and y_min < y_max");
    finite_param(p, "loss_weight");
  };
  e.run = [](const ProbeContext& c) {
    losses::Fd3dQfdOptions o;
    const std::vector<double> r = c.params.numbers("bev_range", 4, 4);
    o.bev_range = {r[0], r[1], r[2], r[3]};
    o.weight = c.params.number("loss_weight");
    const torch::Tensor& s = c.in.tensor("s_bev");
    torch::nn::Conv2d adaptor{nullptr};
    if (c.in.has("adaptor_w")) {
      adaptor = torch::nn::Conv2d(torch::nn::Conv2dOptions(c.in.size("Cs"), c.in.size("C"), 1));
      adaptor->to(s.scalar_type());
      load_parameter(*adaptor, "weight", c.in.tensor("adaptor_w"));
      load_parameter(*adaptor, "bias", c.in.tensor("adaptor_b"));
    }
    const torch::Tensor loss = losses::fd3d_qfd(s, c.in.tensor("t_bev"), c.in.samples("positions"), adaptor, o);
    ProbeOutput out;
    out.value("loss", loss);
    if (c.want_grad) out.grad("grad_s_bev", c.in.grad_of(loss, "s_bev"));
    return out;
  };
  return e;
}

ProbeEntry fd3d_smgd_entry() {
  ProbeEntry e;
  e.name = "fd3d_smgd";
  e.section = "§6";
  e.summary = "FD3D selective masked generative distillation (provisional): λ·τ²/C·KL_HW(φ(T) ‖ φ(G(S·I^m)))";
  e.inputs = {InputSpec::floating("s", {"B", "Cs", "H", "W"}, "student map on the teacher's grid").with_grad(),
              InputSpec::floating("t", {"B", "C", "H", "W"}, "teacher map"),
              InputSpec::floating("u", {"B", "1", "H", "W"}, "uniform draws; I^r = 0 where u < r"),
              InputSpec::floating("region", {"B", "1", "H", "W"}, "1 − I^fg: 1 inside a focal box"),
              InputSpec::floating("gen_w1", {"C", "Cs", "3", "3"}, "G conv 1"),
              InputSpec::floating("gen_b1", {"C"}),
              InputSpec::floating("gen_w2", {"C", "C", "3", "3"}, "G conv 2"),
              InputSpec::floating("gen_b2", {"C"})};
  e.params = {P::with_default("tau", 2, "τ"), P::with_default("mask_ratio", 0.5, "r"),
              P::with_default("loss_weight", 0.25, "λ")};
  e.values = {"loss"};
  e.grads = {"grad_s"};
  e.validate = [](const ProbeInputs&, const Params& p) {
    if (!(finite_param(p, "tau") > 0)) p.refuse("tau", "expected a positive temperature");
    number_in(p, "mask_ratio", 0, 1);
    finite_param(p, "loss_weight");
  };
  e.run = [](const ProbeContext& c) {
    losses::Fd3dSmgdOptions o;
    o.tau = c.params.number("tau");
    o.mask_ratio = c.params.number("mask_ratio");
    o.weight = c.params.number("loss_weight");
    const torch::Tensor& s = c.in.tensor("s");
    losses::Fd3dGenerator g(c.in.size("Cs"), c.in.size("C"), /*upsample=*/false);
    g->to(s.scalar_type());
    load_parameter(*g, "conv1.weight", c.in.tensor("gen_w1"));
    load_parameter(*g, "conv1.bias", c.in.tensor("gen_b1"));
    load_parameter(*g, "conv2.weight", c.in.tensor("gen_w2"));
    load_parameter(*g, "conv2.bias", c.in.tensor("gen_b2"));
    const torch::Tensor instance_mask = 1 - c.in.tensor("region");
    const torch::Tensor loss = losses::fd3d_smgd(s, c.in.tensor("t"), instance_mask, c.in.tensor("u"), g, o);
    ProbeOutput out;
    out.value("loss", loss);
    if (c.want_grad) out.grad("grad_s", c.in.grad_of(loss, "s"));
    return out;
  };
  return e;
}

}  // namespace

void register_fd3d_probes(Registry& r) {
  r.add(fd3d_qfd_entry());
  r.add(fd3d_smgd_entry());
}

}  // namespace bevkd::train::probe
