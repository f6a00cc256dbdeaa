#include "train/losses/x3kd.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "base/error.h"

namespace bevkd::train::losses {
namespace {

namespace F = torch::nn::functional;

bool is_float(const torch::Tensor& t) {
  return t.defined() && (t.scalar_type() == torch::kFloat32 || t.scalar_type() == torch::kFloat64);
}

void check_bev(const char* op, const char* name, const torch::Tensor& t) {
  BEVKD_CHECK(is_float(t) && t.dim() == 4, op, ": ", name, " must be [B, C, H, W] float32/float64, found ",
              t.defined() ? cat(t.sizes(), " ", t.scalar_type()) : std::string("an undefined tensor"));
}

void check_same(const char* op, const char* name_a, const torch::Tensor& a, const char* name_b,
                const torch::Tensor& b) {
  BEVKD_CHECK(a.sizes() == b.sizes(), op, ": ", name_b, " has shape ", b.sizes(), ", expected that of ", name_a, " ",
              a.sizes());
  BEVKD_CHECK(a.scalar_type() == b.scalar_type() && a.device() == b.device(), op, ": ", name_a, " is ", a.scalar_type(),
              " on ", a.device(), " but ", name_b, " is ", b.scalar_type(), " on ", b.device());
}

// Mean over all cells of BCE-with-logits against a constant label.
torch::Tensor bce_mean(const torch::Tensor& logits, double label) {
  return F::binary_cross_entropy_with_logits(logits, torch::full_like(logits, label));
}

// Sets requires_grad = false on a module's parameters for the guard's lifetime, restoring each
// parameter's previous flag afterwards.
class FrozenParameters {
 public:
  explicit FrozenParameters(torch::nn::Module& m) {
    for (auto& p : m.parameters()) {
      saved_.emplace_back(p, p.requires_grad());
      p.set_requires_grad(false);
    }
  }
  ~FrozenParameters() {
    for (auto& [p, flag] : saved_) p.set_requires_grad(flag);
  }
  FrozenParameters(const FrozenParameters&) = delete;
  FrozenParameters& operator=(const FrozenParameters&) = delete;

 private:
  std::vector<std::pair<torch::Tensor, bool>> saved_;
};

}  // namespace

void X3kdOptions::validate() const {
  for (const auto& [name, v] : {std::pair{"w_fd", w_fd}, {"w_at", w_at}, {"w_hm", w_hm}, {"w_reg", w_reg}})
    BEVKD_CHECK(std::isfinite(v) && v >= 0, "x3kd options: ", name, " must be a finite weight >= 0, found ", v);
  BEVKD_CHECK(std::isfinite(qfl_beta) && qfl_beta >= 0, "x3kd options: qfl_beta must be >= 0, found ", qfl_beta);
  BEVKD_CHECK(std::isfinite(score_thr), "x3kd options: score_thr must be finite, found ", score_thr);
  BEVKD_CHECK(std::isfinite(reg_eps) && reg_eps > 0, "x3kd options: reg_eps must be > 0, found ", reg_eps);
}

// ---- X-FD --------------------------------------------------------------------------------

torch::nn::Conv2d x3kd_make_adaptor(int64_t student_channels, int64_t teacher_channels) {
  BEVKD_CHECK(student_channels >= 1 && teacher_channels >= 1, "x3kd adaptor: channel counts must be >= 1, found ",
              student_channels, " -> ", teacher_channels);
  if (student_channels == teacher_channels) return torch::nn::Conv2d{nullptr};
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(student_channels, teacher_channels, 1).bias(true));
}

torch::Tensor x3kd_adapt(const torch::Tensor& s, const torch::nn::Conv2d& adaptor, int64_t height, int64_t width) {
  check_bev("x3kd_adapt", "s", s);
  BEVKD_CHECK(height >= 1 && width >= 1, "x3kd_adapt: the teacher grid must be non-empty, found ", height, " x ",
              width);
  torch::Tensor x = s;
  if (s.size(2) != height || s.size(3) != width)
    x = F::interpolate(x, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{height, width})
                              .mode(torch::kBilinear)
                              .align_corners(false));
  if (adaptor.is_empty()) return x;
  BEVKD_CHECK(adaptor->options.in_channels() == s.size(1), "x3kd_adapt: the adaptor takes ",
              adaptor->options.in_channels(), " channels but s has ", s.size(1));
  return adaptor.ptr()->forward(x);  // the holder is const, the module is not
}

torch::Tensor x3kd_xfd(const torch::Tensor& adapted_s, const torch::Tensor& t, double w_fd) {
  check_bev("x3kd_xfd", "adapted_s", adapted_s);
  check_same("x3kd_xfd", "adapted_s", adapted_s, "t", t);
  return w_fd * (adapted_s - t.detach()).pow(2).mean();
}

// ---- X-AT --------------------------------------------------------------------------------

X3kdDiscriminatorImpl::X3kdDiscriminatorImpl(int64_t in_channels, int64_t hidden_channels) {
  BEVKD_CHECK(in_channels >= 1 && hidden_channels >= 1, "x3kd discriminator: channel counts must be >= 1, found ",
              in_channels, " and ", hidden_channels);
  conv1_ =
      register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, hidden_channels, 3).padding(1)));
  conv2_ = register_module("conv2",
                           torch::nn::Conv2d(torch::nn::Conv2dOptions(hidden_channels, hidden_channels, 3).padding(1)));
  conv3_ = register_module("conv3", torch::nn::Conv2d(torch::nn::Conv2dOptions(hidden_channels, 1, 1)));
}

torch::Tensor X3kdDiscriminatorImpl::forward(const torch::Tensor& x) {
  const auto leaky = F::LeakyReLUFuncOptions().negative_slope(0.2);
  return conv3_->forward(F::leaky_relu(conv2_->forward(F::leaky_relu(conv1_->forward(x), leaky)), leaky));
}

torch::Tensor x3kd_xat_generator_from_logits(const torch::Tensor& disc_logits_student, double w_at) {
  check_bev("x3kd X-AT", "disc_logits_student", disc_logits_student);
  BEVKD_CHECK(disc_logits_student.size(1) == 1, "x3kd X-AT: disc_logits_student must have 1 channel, found ",
              disc_logits_student.sizes());
  return w_at * bce_mean(disc_logits_student, 1.0);
}

torch::Tensor x3kd_xat_discriminator_from_logits(const torch::Tensor& disc_logits_teacher,
                                                 const torch::Tensor& disc_logits_student) {
  check_bev("x3kd X-AT", "disc_logits_teacher", disc_logits_teacher);
  check_bev("x3kd X-AT", "disc_logits_student", disc_logits_student);
  BEVKD_CHECK(disc_logits_teacher.size(1) == 1 && disc_logits_student.size(1) == 1,
              "x3kd X-AT: discriminator logits must have 1 channel, found ", disc_logits_teacher.sizes(), " and ",
              disc_logits_student.sizes());
  BEVKD_CHECK(disc_logits_teacher.size(0) == disc_logits_student.size(0),
              "x3kd X-AT: teacher and student logits have different batch sizes, ", disc_logits_teacher.sizes(),
              " and ", disc_logits_student.sizes());
  return bce_mean(disc_logits_teacher, 1.0) + bce_mean(disc_logits_student, 0.0);
}

torch::Tensor x3kd_xat_generator_loss(X3kdDiscriminator& d, const torch::Tensor& adapted_s, double w_at) {
  const FrozenParameters frozen(*d);
  return x3kd_xat_generator_from_logits(d->forward(adapted_s), w_at);
}

torch::Tensor x3kd_xat_discriminator_loss(X3kdDiscriminator& d, const torch::Tensor& t,
                                          const torch::Tensor& adapted_s) {
  check_same("x3kd X-AT", "t", t, "adapted_s", adapted_s);
  return x3kd_xat_discriminator_from_logits(d->forward(t.detach()), d->forward(adapted_s.detach()));
}

double x3kd_discriminator_accuracy(const torch::Tensor& disc_logits_teacher, const torch::Tensor& disc_logits_student) {
  const torch::NoGradGuard no_grad;
  const double right = (disc_logits_teacher > 0).sum().item<double>() + (disc_logits_student < 0).sum().item<double>();
  const double n = static_cast<double>(disc_logits_teacher.numel() + disc_logits_student.numel());
  return n > 0 ? right / n : 0.0;
}

// ---- X-OD --------------------------------------------------------------------------------

torch::Tensor quality_focal_loss(const torch::Tensor& logits, const torch::Tensor& target, double beta) {
  const torch::Tensor bce = F::binary_cross_entropy_with_logits(
      logits, target, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
  return (target - torch::sigmoid(logits)).abs().pow(beta) * bce;
}

torch::Tensor x3kd_xod_hm(const torch::Tensor& s_hm_logits, const torch::Tensor& t_hm, int64_t num_boxes,
                          const X3kdOptions& opts) {
  check_same("x3kd X-OD", "s_hm_logits", s_hm_logits, "t_hm", t_hm);
  return quality_focal_loss(s_hm_logits, t_hm.detach(), opts.qfl_beta).sum() /
         static_cast<double>(std::max<int64_t>(1, num_boxes));
}

torch::Tensor x3kd_xod_reg(const torch::Tensor& pred, const torch::Tensor& code, const torch::Tensor& score,
                           const X3kdOptions& opts) {
  constexpr const char* kOp = "x3kd X-OD";
  BEVKD_CHECK(pred.dim() == 2 && code.sizes() == pred.sizes() && score.dim() == 1 && score.size(0) == pred.size(0),
              kOp, ": pred ", pred.sizes(), ", code ", code.sizes(), " and score ", score.sizes(),
              " must be [J, R], [J, R] and [J]");
  const torch::Tensor s = score.to(pred.options()).detach();
  const torch::Tensor keep = (s >= opts.score_thr).nonzero().squeeze(1);
  if (keep.numel() == 0) return torch::zeros({}, pred.options());
  const torch::Tensor sk = s.index_select(0, keep);
  const torch::Tensor l1 = (pred.index_select(0, keep) - code.to(pred.options()).detach().index_select(0, keep)).abs();
  return (sk * l1.sum(1)).sum() / sk.sum().clamp_min(opts.reg_eps);
}

X3kdXodLoss x3kd_xod(const torch::Tensor& s_hm_logits, const torch::Tensor& t_hm, const torch::Tensor& s_reg,
                     const std::vector<X3kdTeacherBoxes>& teacher, const X3kdOptions& opts) {
  constexpr const char* kOp = "x3kd X-OD";
  opts.validate();
  check_bev(kOp, "s_hm_logits", s_hm_logits);
  check_same(kOp, "s_hm_logits", s_hm_logits, "t_hm", t_hm);
  check_bev(kOp, "s_reg", s_reg);
  const int64_t B = s_hm_logits.size(0), H = s_hm_logits.size(2), W = s_hm_logits.size(3), R = s_reg.size(1);
  BEVKD_CHECK(s_reg.size(0) == B && s_reg.size(2) == H && s_reg.size(3) == W, kOp, ": s_reg has shape ", s_reg.sizes(),
              ", expected [B, R, H, W] with B, H, W = ", B, ", ", H, ", ", W, " of s_hm_logits");
  BEVKD_CHECK(s_reg.scalar_type() == s_hm_logits.scalar_type(), kOp, ": s_reg is ", s_reg.scalar_type(),
              " but s_hm_logits is ", s_hm_logits.scalar_type());
  BEVKD_CHECK(static_cast<int64_t>(teacher.size()) == B, kOp, ": ", teacher.size(),
              " samples of teacher boxes for a batch of ", B);

  const auto opt = s_reg.options();
  int64_t num_boxes = 0;
  std::vector<torch::Tensor> preds, codes, scores;
  for (int64_t b = 0; b < B; ++b) {
    const X3kdTeacherBoxes& tb = teacher[b];
    const int64_t J = tb.code.defined() ? tb.code.size(0) : 0;
    BEVKD_CHECK(tb.code.defined() && tb.code.dim() == 2 && tb.code.size(1) == R && is_float(tb.code), kOp, ": sample ",
                b, ": code must be [J, R] float with R = ", R, " (s_reg's channels), found ",
                tb.code.defined() ? cat(tb.code.sizes()) : std::string("undefined"));
    BEVKD_CHECK(tb.cell.defined() && tb.cell.dim() == 2 && tb.cell.size(0) == J && tb.cell.size(1) == 2 &&
                    tb.cell.scalar_type() == torch::kInt64,
                kOp, ": sample ", b, ": cell must be [J, 2] int64 (row, col) with J = ", J, ", found ",
                tb.cell.defined() ? cat(tb.cell.sizes(), " ", tb.cell.scalar_type()) : std::string("undefined"));
    BEVKD_CHECK(tb.score.defined() && tb.score.dim() == 1 && tb.score.size(0) == J && is_float(tb.score), kOp,
                ": sample ", b, ": score must be [J] float with J = ", J, ", found ",
                tb.score.defined() ? cat(tb.score.sizes()) : std::string("undefined"));
    num_boxes += J;
    if (J == 0) continue;
    const torch::Tensor cell = tb.cell.to(s_reg.device());
    const torch::Tensor row = cell.select(1, 0), col = cell.select(1, 1);
    const bool inside = ((row >= 0) & (row < H) & (col >= 0) & (col < W)).all().item<bool>();
    BEVKD_CHECK(inside, kOp, ": sample ", b, ": a teacher box cell lies outside the ", H, " x ", W,
                " grid (callers drop boxes whose centre is off the grid)");
    preds.push_back(s_reg[b].reshape({R, H * W}).index_select(1, row * W + col).t());  // [J, R]
    codes.push_back(tb.code.to(opt));
    scores.push_back(tb.score.to(opt));
  }
  X3kdXodLoss out;
  out.hm = x3kd_xod_hm(s_hm_logits, t_hm, num_boxes, opts);
  out.reg = preds.empty() ? torch::zeros({}, opt)
                          : x3kd_xod_reg(torch::cat(preds), torch::cat(codes), torch::cat(scores), opts);
  out.total = opts.w_hm * out.hm + opts.w_reg * out.reg;
  return out;
}

}  // namespace bevkd::train::losses
