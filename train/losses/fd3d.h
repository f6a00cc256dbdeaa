// FD3D (Zeng et al., CVPR 2023) distillation terms of spec/losses.md §6, from the paper's
// equations 3–14 (no code was released): selective masked generative distillation (SMGD) and
// query-based focal distillation (QFD), as pure functions of tensors, plus SMGD's generator G
// as a module. The focal queries (their boxes and sampling positions) come from FD3D's
// distillation head, which is not part of this file.
//
// Shapes: BEV tensors [B, C, H, W] (row ↔ y, column ↔ x), float32 or float64, one dtype and
// device per call; teacher tensors are constants. Every loss returns a 0-dim tensor of the
// inputs' dtype and works for any B >= 1.
//
//   I^fg = fd3d_instance_mask(focal_boxes, student_grid, opts)     // 0 inside focal boxes
//   torch::Tensor u = torch::rand({B, 1, Hs, Ws}, trainer_generator)  // the trainer's seeded RNG
//   loss = fd3d_smgd(S, T, I^fg, u, G, smgd_opts)                    // λ·L_SMGD
//        + fd3d_qfd(S, T, positions, adaptor, qfd_opts)              // η·L_QFD (0 when N_f = 0)
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <vector>

#include "base/bev_grid.h"

namespace bevkd::train::losses {

// ---- SMGD --------------------------------------------------------------------------------

struct Fd3dSmgdOptions {
  double tau = 2.0;         // τ of the softmax over cells
  double mask_ratio = 0.5;  // r: a cell inside a focal box is masked where u < r
  double weight = 0.25;     // λ

  void validate() const;  // throws bevkd::Error naming the bad field
};

// I^fg [B, 1, H, W] on `grid` (eq. 3–4): 0 at every cell whose centre lies inside (edges
// included) the top-down footprint of one of sample b's focal boxes, 1 elsewhere.
// focal_boxes[b]: [N_b, 7|9] float (ego frame, Box: x, y, z, l, w, h, yaw[, vx, vy]); N_b may
// be 0. The result has `options`' dtype and device.
torch::Tensor fd3d_instance_mask(const std::vector<torch::Tensor>& focal_boxes, const BevGrid& grid,
                                 const torch::TensorOptions& options);

// I^m = I^fg ∨ I^r with I^r = 0 where u < r, 1 elsewhere (eq. 5–6): a cell is masked (0) only
// inside a focal box and when drawn. instance_mask, u [B, 1, H, W] -> [B, 1, H, W] of 0/1 in
// instance_mask's dtype. u is uniform in [0, 1), drawn by the caller (spec §11.6).
torch::Tensor fd3d_selective_mask(const torch::Tensor& instance_mask, const torch::Tensor& u, double mask_ratio);

// G (eq. 7): two 3×3 convs with a ReLU between, Cs -> C -> C; with `upsample` (the student grid
// is half the teacher's) the first is a 3×3 transposed conv with stride 2 (padding 1, output
// padding 1), which doubles H and W. [B, Cs, Hs, Ws] -> [B, C, Hs·k, Ws·k], k = 2 or 1.
// Parameters: "conv1.weight" [C, Cs, 3, 3] and "conv1.bias" (with upsample "deconv1.weight"
// [Cs, C, 3, 3] and "deconv1.bias"), "conv2.weight" [C, C, 3, 3] and "conv2.bias".
class Fd3dGeneratorImpl : public torch::nn::Module {
 public:
  Fd3dGeneratorImpl(int64_t student_channels, int64_t teacher_channels, bool upsample = false);
  torch::Tensor forward(const torch::Tensor& x);

  bool upsample() const { return upsample_; }

 private:
  bool upsample_;
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};
  torch::nn::ConvTranspose2d deconv1_{nullptr};
};
TORCH_MODULE(Fd3dGenerator);

// The distribution term (eq. 8–9): weight · τ²/C · Σ_c Σ_i φ(T_ci) log(φ(T_ci)/φ(F̂_ci)),
// φ the softmax over the H·W cells of each channel at temperature τ, averaged over the batch.
// generated [B, C, H, W] = F̂ (∂), t [B, C, H, W].
torch::Tensor fd3d_smgd_kl(const torch::Tensor& generated, const torch::Tensor& t, double tau, double weight);

// λ·L_SMGD with F̂ = G(S · I^m). s [B, Cs, Hs, Ws] (∂) student BEV features; t [B, C, H, W]
// with (H, W) = G's output grid; instance_mask and u [B, 1, Hs, Ws] on the student's grid.
// With no focal box (I^fg = 1) nothing is masked and the loss is the plain generative KL.
torch::Tensor fd3d_smgd(const torch::Tensor& s, const torch::Tensor& t, const torch::Tensor& instance_mask,
                        const torch::Tensor& u, Fd3dGenerator& generator, const Fd3dSmgdOptions& opts);

// ---- QFD ---------------------------------------------------------------------------------

struct Fd3dQfdOptions {
  // x_min, y_min, x_max, y_max (m) of the BEV maps' extent (the grid's range; no default, as no
  // module keeps its own range). A position p maps to g = 2(p − min)/(max − min) − 1.
  std::array<double, 4> bev_range{0, 0, 0, 0};
  double weight = 0.001;     // η
  double range_eps = 1e-12;  // min–max normalisation divides by max(max − min, range_eps)

  static Fd3dQfdOptions from_grid(const BevGrid& grid);
  void validate() const;
};

// η·L_QFD (eq. 12–14): both maps are sampled bilinearly (grid_sample, zeros padding,
// align_corners=False) at every focal query's M·K positions; each side's samples of one query
// are min–max normalised over all its M·K·C values, (x − min)/max(max − min, ε); then
//   L_QFD = 1/N_f · Σ_q Σ_m Σ_k ‖F̃^S_mqk − F̃^T_mqk‖²,  N_f = Σ_b N_b.
// s [B, Cs, Hs, Ws] (∂) student BEV features; t [B, C, H, W] teacher; the maps may have
// different grids over the same range. adaptor: a 1×1 conv Cs -> C applied to s before
// sampling, required exactly when Cs ≠ C (else an empty holder). positions[b]: [N_b, M, K, 2]
// float (x, y) in metres (ego frame), N_b may be 0. Returns 0 (no graph) when N_f = 0.
torch::Tensor fd3d_qfd(const torch::Tensor& s, const torch::Tensor& t, const std::vector<torch::Tensor>& positions,
                       const torch::nn::Conv2d& adaptor, const Fd3dQfdOptions& opts);

}  // namespace bevkd::train::losses
