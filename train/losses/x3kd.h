// X³KD (Klingner et al., CVPR 2023): the cross-modal distillation terms of spec/losses.md §5 as
// pure functions of tensors, plus the method's trainable parts (the X-AT discriminator; the
// X-FD adaptor is a plain 1×1 torch::nn::Conv2d made by x3kd_make_adaptor). No public code
// exists; bevkd's definitions (§5) are the reference. X-IS is out of scope (no perspective-view
// instance-segmentation teacher is stored).
//
// Typical use in a training step (student features S, teacher tap T, discriminator D with its
// own optimizer; spec §5 "X-AT"):
//
//   const torch::Tensor as = x3kd_adapt(S, adaptor, T.size(2), T.size(3));     // A(S)
//   torch::Tensor loss = x3kd_xfd(as, T, opts.w_fd)                             // X-FD
//                      + x3kd_xat_generator_loss(D, as, opts.w_at)              // X-AT, D frozen
//                      + x3kd_xod(s_hm_logits, t_hm, s_reg, teacher_boxes, opts).total;  // X-OD
//   student_optimizer.zero_grad(); loss.backward(); student_optimizer.step();   // D untouched
//   const torch::Tensor d_loss = x3kd_xat_discriminator_loss(D, T, as);         // on A(S).detach()
//   disc_optimizer.zero_grad(); d_loss.backward(); disc_optimizer.step();       // S untouched
//
// Shapes: BEV tensors [B, C, H, W] (row ↔ y, column ↔ x), float32 or float64, one dtype and
// device per call; teacher tensors are constants (no gradient reaches them). Every loss returns
// a 0-dim tensor of the inputs' dtype and works for any B >= 1 and for samples without teacher
// boxes (they add 0, never NaN).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace bevkd::train::losses {

// Weights and constants of §5 (defaults as the spec and spec/loss_probe.md give them).
struct X3kdOptions {
  double w_fd = 1.0;       // X-FD weight
  double w_at = 0.1;       // X-AT generator weight (the discriminator loss is unweighted)
  double w_hm = 1.0;       // X-OD heat-map term
  double w_reg = 0.25;     // X-OD regression term
  double qfl_beta = 2.0;   // β of the quality focal loss
  double score_thr = 0.1;  // teacher boxes with score >= this enter the regression term
  double reg_eps = 1e-6;   // ε of max(ε, Σ s_j)

  void validate() const;  // throws bevkd::Error naming the bad field
};

// ---- X-FD --------------------------------------------------------------------------------

// The 1×1 conv adaptor A from student channels to teacher channels (with bias), or an empty
// holder (torch::nn::Conv2d{nullptr}) when the counts are equal (spec §11.3: one adaptor rule).
torch::nn::Conv2d x3kd_make_adaptor(int64_t student_channels, int64_t teacher_channels);

// A(S) on the teacher's grid: s [B, Cs, Hs, Ws] is resized bilinearly (align_corners=False,
// edge-clamped as torch's interpolate) to height × width when the grids differ, then passed
// through `adaptor` when it is non-empty. Returns [B, C, height, width].
torch::Tensor x3kd_adapt(const torch::Tensor& s, const torch::nn::Conv2d& adaptor, int64_t height, int64_t width);

// X-FD = w_fd · mean_{b,c,h,w} (A(S) − T)². adapted_s [B, C, H, W] = x3kd_adapt(S, …) (∂),
// t [B, C, H, W] the teacher tap.
torch::Tensor x3kd_xfd(const torch::Tensor& adapted_s, const torch::Tensor& t, double w_fd);

// ---- X-AT --------------------------------------------------------------------------------

// D: 3×3 conv (C → 256) · LeakyReLU(0.2) · 3×3 conv (256 → 256) · LeakyReLU(0.2) · 1×1 conv
// (256 → 1): one logit per BEV cell, [B, C, H, W] -> [B, 1, H, W]. Padding keeps H × W.
class X3kdDiscriminatorImpl : public torch::nn::Module {
 public:
  explicit X3kdDiscriminatorImpl(int64_t in_channels, int64_t hidden_channels = 256);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
};
TORCH_MODULE(X3kdDiscriminator);

// From logits [B, 1, h, w] (float), each BCE-with-logits averaged over the B·h·w cells:
//   generator     w_at · BCE(D(A(S)), 1)                      (∂ disc_logits_student)
//   discriminator BCE(D(T), 1) + BCE(D(A(S).detach()), 0)
torch::Tensor x3kd_xat_generator_from_logits(const torch::Tensor& disc_logits_student, double w_at);
torch::Tensor x3kd_xat_discriminator_from_logits(const torch::Tensor& disc_logits_teacher,
                                                 const torch::Tensor& disc_logits_student);

// The two X-AT losses as the trainer computes them (the intended use):
// * generator: D's parameters are set requires_grad = false while D(A(S)) is built (and
//   restored after), so backward of this loss reaches A(S) and the student but accumulates
//   nothing into D;
// * discriminator: D sees t and adapted_s.detach(), so backward of this loss reaches D only.
torch::Tensor x3kd_xat_generator_loss(X3kdDiscriminator& d, const torch::Tensor& adapted_s, double w_at);
torch::Tensor x3kd_xat_discriminator_loss(X3kdDiscriminator& d, const torch::Tensor& t, const torch::Tensor& adapted_s);

// The discriminator's accuracy for logging: the share of cells it classifies right (teacher
// logit > 0, student logit < 0) over both maps. A double in [0, 1].
double x3kd_discriminator_accuracy(const torch::Tensor& disc_logits_teacher, const torch::Tensor& disc_logits_student);

// ---- X-OD --------------------------------------------------------------------------------

// One sample's teacher boxes for the regression term (J rows, J may be 0):
struct X3kdTeacherBoxes {
  torch::Tensor code;   // [J, R] float: code(b_j), the student head's regression coding of box j
  torch::Tensor cell;   // [J, 2] int64: (row, col) of the cell c_j holding the box centre, in the grid
  torch::Tensor score;  // [J] float: the teacher's confidence s_j
};

struct X3kdXodLoss {
  torch::Tensor hm;     // L_hm = Σ_{b,k,h,w} QFL(σ(S_hm), T_hm) / max(1, Σ_b J_b)
  torch::Tensor reg;    // L_reg = Σ_{b,j: s_j >= thr} s_j ‖reg_S(c_j) − code_j‖₁ / max(ε, Σ s_j)
  torch::Tensor total;  // w_hm · hm + w_reg · reg
};

// QFL(p, y) = −|y − p|^β · (y log p + (1 − y) log(1 − p)), p = σ(x), evaluated from the logit
// x (BCE-with-logits form, finite for any logit). x, y same shape -> elementwise.
torch::Tensor quality_focal_loss(const torch::Tensor& logits, const torch::Tensor& target, double beta);

// s_hm_logits [B, K, H, W] (∂) student heat-map logits; t_hm [B, K, H, W] teacher heat map in
// [0, 1]; s_reg [B, R, H, W] (∂) student regression maps; teacher[b] that sample's boxes.
// "#teacher boxes" is Σ_b J_b (all given boxes, before the score threshold).
// The two X-OD terms on their own, for callers that gather the predictions themselves (a
// CenterHead with several task groups, whose regression maps differ per task):
//   L_hm  from s_hm_logits, t_hm [B, K, H, W] and num_boxes = Σ_b J_b;
//   L_reg from pred [J, R] (∂) the student's regression at each box's cell, code [J, R] and
//         score [J] over the whole batch (J may be 0: the result is 0).
torch::Tensor x3kd_xod_hm(const torch::Tensor& s_hm_logits, const torch::Tensor& t_hm, int64_t num_boxes,
                          const X3kdOptions& opts);
torch::Tensor x3kd_xod_reg(const torch::Tensor& pred, const torch::Tensor& code, const torch::Tensor& score,
                           const X3kdOptions& opts);

X3kdXodLoss x3kd_xod(const torch::Tensor& s_hm_logits, const torch::Tensor& t_hm, const torch::Tensor& s_reg,
                     const std::vector<X3kdTeacherBoxes>& teacher, const X3kdOptions& opts);

}  // namespace bevkd::train::losses
