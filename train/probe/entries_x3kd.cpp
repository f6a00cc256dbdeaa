// Probe entry of spec/loss_probe.md for X³KD (§5, provisional: no public code; bevkd's
// definitions). A term (X-FD, X-AT, X-OD) is evaluated when all of its inputs are given; a term
// with only part of its inputs, or no complete term, is refused (exit 2).
#include <torch/torch.h>

#include "train/losses/x3kd.h"
#include "train/probe/entries.h"
#include "train/probe/entry_util.h"

namespace bevkd::train::probe {
namespace {

using P = ParamSpec;

const std::vector<std::string> kFd = {"s", "t"};
const std::vector<std::string> kAt = {"disc_logits_student", "disc_logits_teacher"};
const std::vector<std::string> kOd = {"s_hm_logits", "t_hm", "s_reg", "t_code", "t_cell", "t_score"};

// Whether a term's inputs are all there; refuses a term with only part of them.
bool term_present(const ProbeInputs& in, const std::string& term, const std::vector<std::string>& names) {
  std::vector<std::string> have, missing;
  for (const std::string& n : names) (in.has(n) ? have : missing).push_back(n);
  if (have.empty()) return false;
  if (!missing.empty()) {
    std::string m;
    for (const std::string& n : missing) m += (m.empty() ? "" : ", ") + n;
    BEVKD_PROBE_CHECK(false, "input ", missing[0], ": missing (term ", term, " has ", have[0], " but not ", m, ")");
  }
  return true;
}

ProbeEntry x3kd_entry() {
  ProbeEntry e;
  e.name = "x3kd";
  e.section = "§5";
  e.summary =
      "X³KD (provisional): X-FD w_fd·mean((A(S) − T)²), X-AT BCE generator/discriminator, X-OD QFL heat map + "
      "score-weighted L1 regression; each term evaluated when its inputs are given";
  e.partial_outputs = true;
  e.inputs = {
      InputSpec::floating("s", {"B", "Cs", "H", "W"}, "X-FD: student BEV map").with_grad().optional(),
      InputSpec::floating("t", {"B", "C", "H'", "W'"}, "X-FD: teacher tap (may be on another grid)").optional(),
      InputSpec::floating("adaptor_w", {"C", "Cs", "1", "1"}, "X-FD: 1x1 adaptor A, iff Cs != C").optional(),
      InputSpec::floating("adaptor_b", {"C"}, "X-FD: iff Cs != C").optional(),
      InputSpec::floating("disc_logits_student", {"B", "1", "h", "w"}, "X-AT: D(A(S))").with_grad().optional(),
      InputSpec::floating("disc_logits_teacher", {"B", "1", "h", "w"}, "X-AT: D(T)").optional(),
      InputSpec::floating("s_hm_logits", {"B", "K", "H", "W"}, "X-OD: student heat-map logits").with_grad().optional(),
      InputSpec::floating("t_hm", {"B", "K", "H", "W"}, "X-OD: teacher heat map in [0, 1]").optional(),
      InputSpec::floating("s_reg", {"B", "R", "H", "W"}, "X-OD: student regression maps").with_grad().optional(),
      InputSpec::floating("t_code", {"J_b", "R"}, "X-OD: code(b_j)").sample_wise().optional(),
      InputSpec::int64("t_cell", {"J_b", "2"}, "X-OD: (row, col) of c_j").sample_wise().optional(),
      InputSpec::floating("t_score", {"J_b"}, "X-OD: s_j").sample_wise().optional()};
  e.params = {P::with_default("w_fd", 1),     P::with_default("w_at", 0.1),        P::with_default("w_hm", 1),
              P::with_default("w_reg", 0.25), P::with_default("qfl_beta", 2, "β"), P::with_default("score_thr", 0.1)};
  e.values = {"xfd", "gen_loss", "disc_loss", "xod_hm", "xod_reg", "xod"};
  e.grads = {"grad_s_xfd", "grad_disc_logits_student_gen_loss", "grad_s_hm_logits_xod", "grad_s_reg_xod"};
  e.validate = [](const ProbeInputs& in, const Params& p) {
    const bool fd = term_present(in, "X-FD", kFd), at = term_present(in, "X-AT", kAt),
               od = term_present(in, "X-OD", kOd);
    BEVKD_PROBE_CHECK(fd || at || od,
                      "input s: missing (no complete term: give X-FD's s, t; X-AT's "
                      "disc_logits_student, disc_logits_teacher; or X-OD's s_hm_logits, t_hm, s_reg, "
                      "t_code_b*, t_cell_b*, t_score_b*)");
    if (fd) {
      const int64_t cs = in.size("Cs"), c = in.size("C");
      require_inputs_iff(in, {"adaptor_w", "adaptor_b"}, cs != c,
                         cat("Cs = ", cs, cs != c ? " != " : " == ", "C = ", c));
    } else {
      BEVKD_PROBE_CHECK(!in.has("adaptor_w") && !in.has("adaptor_b"), "input ",
                        in.has("adaptor_w") ? "adaptor_w" : "adaptor_b", ": extra (no X-FD term)");
    }
    if (od) {
      const int64_t H = in.size("H"), W = in.size("W");
      const auto& cells = in.samples("t_cell");
      for (size_t b = 0; b < cells.size(); ++b) {
        const torch::Tensor& cell = cells[b];
        if (cell.numel() == 0) continue;
        const bool inside = (cell.select(1, 0) >= 0).all().item<bool>() && (cell.select(1, 0) < H).all().item<bool>() &&
                            (cell.select(1, 1) >= 0).all().item<bool>() && (cell.select(1, 1) < W).all().item<bool>();
        BEVKD_PROBE_CHECK(inside, "input t_cell_b", b, ": a (row, col) outside the ", H, " x ", W, " grid");
      }
    }
    for (const char* k : {"w_fd", "w_at", "w_hm", "w_reg"}) {
      const double v = p.number(k);
      if (!(std::isfinite(v) && v >= 0)) p.refuse(k, "expected a finite weight >= 0");
    }
    const double beta = p.number("qfl_beta");
    if (!(std::isfinite(beta) && beta >= 0)) p.refuse("qfl_beta", "expected a finite number >= 0");
    if (!std::isfinite(p.number("score_thr"))) p.refuse("score_thr", "expected a finite number");
  };
  e.run = [](const ProbeContext& c) {
    const Params& p = c.params;
    losses::X3kdOptions o;
    o.w_fd = p.number("w_fd");
    o.w_at = p.number("w_at");
    o.w_hm = p.number("w_hm");
    o.w_reg = p.number("w_reg");
    o.qfl_beta = p.number("qfl_beta");
    o.score_thr = p.number("score_thr");
    ProbeOutput out;
    std::vector<std::pair<std::string, torch::Tensor>> grads;
    if (c.in.has("s")) {
      const torch::Tensor& s = c.in.tensor("s");
      const torch::Tensor& t = c.in.tensor("t");
      torch::nn::Conv2d adaptor{nullptr};
      if (c.in.has("adaptor_w")) {
        adaptor = torch::nn::Conv2d(torch::nn::Conv2dOptions(c.in.size("Cs"), c.in.size("C"), 1));
        adaptor->to(s.scalar_type());
        torch::NoGradGuard no_grad;
        adaptor->weight.copy_(c.in.tensor("adaptor_w"));
        adaptor->bias.copy_(c.in.tensor("adaptor_b"));
      }
      const torch::Tensor xfd = losses::x3kd_xfd(losses::x3kd_adapt(s, adaptor, t.size(2), t.size(3)), t, o.w_fd);
      out.value("xfd", xfd);
      if (c.want_grad) grads.emplace_back("grad_s_xfd", c.in.grad_of(xfd, "s"));
    }
    if (c.in.has("disc_logits_student")) {
      const torch::Tensor& ls = c.in.tensor("disc_logits_student");
      const torch::Tensor& lt = c.in.tensor("disc_logits_teacher");
      const torch::Tensor gen = losses::x3kd_xat_generator_from_logits(ls, o.w_at);
      out.value("gen_loss", gen);
      out.value("disc_loss", losses::x3kd_xat_discriminator_from_logits(lt, ls));
      if (c.want_grad)
        grads.emplace_back("grad_disc_logits_student_gen_loss", c.in.grad_of(gen, "disc_logits_student"));
    }
    if (c.in.has("s_hm_logits")) {
      std::vector<losses::X3kdTeacherBoxes> teacher;
      const auto &code = c.in.samples("t_code"), &cell = c.in.samples("t_cell"), &score = c.in.samples("t_score");
      for (size_t b = 0; b < code.size(); ++b) teacher.push_back({code[b], cell[b], score[b]});
      const losses::X3kdXodLoss r =
          losses::x3kd_xod(c.in.tensor("s_hm_logits"), c.in.tensor("t_hm"), c.in.tensor("s_reg"), teacher, o);
      out.value("xod_hm", r.hm);
      out.value("xod_reg", r.reg);
      out.value("xod", r.total);
      if (c.want_grad) {
        grads.emplace_back("grad_s_hm_logits_xod", c.in.grad_of(r.total, "s_hm_logits"));
        grads.emplace_back("grad_s_reg_xod", c.in.grad_of(r.total, "s_reg"));
      }
    }
    for (auto& [f, g] : grads) out.grad(f, g);
    return out;
  };
  return e;
}

}  // namespace

void register_x3kd_probes(Registry& r) { r.add(x3kd_entry()); }

}  // namespace bevkd::train::probe
