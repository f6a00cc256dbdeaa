// Focal and global distillation (Yang et al., CVPR 2022; yzd-v/FGD FeatureLoss, copied verbatim
// into BEVDistill's l2_loss.py), spec/losses.md §7.4. With S the (aligned) student map and T
// the teacher map, both [N, C, H, W]:
//   A_S(x) = H*W * softmax_{HW}(mean_c |x| / temp)        spatial attention   [N, H, W]
//   A_C(x) = C   * softmax_C(mean_hw |x| / temp)          channel attention   [N, C]
//   fg   = sum (sqrt(A_S(T)) sqrt(A_C(T)) sqrt(M_fg) (S - T))^2 / N     (TEACHER attention on both)
//   bg   = the same with M_bg
//   mask = sum |A_C(S) - A_C(T)| / N + sum |A_S(S) - A_S(T)| / N
//   rela = sum (S + GC_s(S) - T - GC_t(T))^2 / N
//          GC(x) = add(context), context = sum_hw x * softmax_hw(conv_mask(x))  [N, C, 1, 1],
//          add = Conv1x1(C/2 -> C) . ReLU . LayerNorm([C/2, 1, 1], eps 1e-5) . Conv1x1(C -> C/2)
//   L    = alpha fg + beta bg + gamma mask + lambda rela
// Defaults temp 0.5, alpha 1e-3, beta 5e-4, gamma 1e-3, lambda 5e-6. Both GC blocks are trainable
// (the teacher-side one too; only T itself is constant).
//
// Foreground mask: a box (x1, y1, x2, y2) in image pixels covers the cells
//   columns floor(x1 * W / img_w) .. ceil(x2 * W / img_w), rows floor(y1 * H / img_h) .. ceil(y2 * H / img_h)
// inclusive at both ends (float32 arithmetic, as upstream); M_fg = max over boxes of
// 1 / (rows * cols) with rows, cols the UNCLIPPED extents; M_bg = [M_fg == 0] / count (left 0 when
// every cell is foreground). Extents reaching past the map are clipped to it. Upstream slices with
// Python indices, which clips at H and W but turns a negative start into an index from the end (a box
// partly left of / above the map then marks nothing); bevkd clips negative starts to 0, the intended
// behaviour. For BEV use the "image" is the grid: fgd_cell_boxes() turns rotated DESIGN boxes into
// their axis-aligned extents in cell units and the mask uses img_shape = (H, W).
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <array>
#include <utility>
#include <vector>

#include "base/bev_grid.h"

namespace bevkd::train::losses {

struct FgdOptions {
  double temp = 0.5;
  double alpha = 1e-3;   // alpha_fgd (fg)
  double beta = 5e-4;    // beta_fgd (bg)
  double gamma = 1e-3;   // gamma_fgd (mask); RetinaNet configs use 5e-4
  double lambda = 5e-6;  // lambda_fgd (rela)
};

// One global-context block (upstream conv_mask_* and channel_add_conv_*), for C channels.
struct FgdGlobalContextParams {
  torch::Tensor conv_mask_w;  // [1, C, 1, 1]
  torch::Tensor conv_mask_b;  // [1]
  torch::Tensor add_w1;       // [C/2, C, 1, 1]
  torch::Tensor add_b1;       // [C/2]
  torch::Tensor ln_w;         // [C/2, 1, 1]
  torch::Tensor ln_b;         // [C/2, 1, 1]
  torch::Tensor add_w2;       // [C, C/2, 1, 1]
  torch::Tensor add_b2;       // [C]
};

struct FgdParams {
  torch::Tensor align_w;  // [C, Cs, 1, 1] iff Cs != C (1x1 conv with bias)
  torch::Tensor align_b;  // [C]          iff Cs != C
  FgdGlobalContextParams gc_s, gc_t;
};

struct FgdMasks {
  torch::Tensor fg;  // [N, H, W]
  torch::Tensor bg;  // [N, H, W]
};

struct FgdLoss {
  torch::Tensor fg, bg, mask, rela;  // unweighted scalars
  torch::Tensor loss;                // alpha fg + beta bg + gamma mask + lambda rela
};

// Masks from 2D boxes: boxes[i] [n_i, 4] float (x1, y1, x2, y2) in pixels of an image of
// img_shape = (img_h, img_w) (one size for the batch, as loss-probe's img_shape); n_i may be 0.
// Returns masks of `options` (dtype, device) with N = boxes.size().
FgdMasks fgd_masks(const std::vector<torch::Tensor>& boxes, const std::array<double, 2>& img_shape, int64_t H,
                   int64_t W, const torch::TensorOptions& options);

// Axis-aligned extents, in cell units of `grid`, of the BEV footprints of rotated boxes:
// boxes [K, >= 7] (DESIGN Box, metres) -> [K, 4] float32 (x1, y1, x2, y2) with
// x = (x_ego - x_min) / dx (column units) and y = (y_ego - y_min) / dy (row units).
torch::Tensor fgd_cell_boxes(const torch::Tensor& boxes, const BevGrid& grid);

// fgd_masks of the cell boxes of every sample's rotated boxes, img_shape = (grid.H, grid.W).
FgdMasks fgd_masks_bev(const std::vector<torch::Tensor>& boxes, const BevGrid& grid,
                       const torch::TensorOptions& options);

// (A_S [N, H, W], A_C [N, C]) of x [N, C, H, W].
std::pair<torch::Tensor, torch::Tensor> fgd_attention(const torch::Tensor& x, double temp);

// x + GC(x) for x [N, C, H, W].
torch::Tensor fgd_global_context(const torch::Tensor& x, const FgdGlobalContextParams& p);

// s: [N, Cs, H, W] float32/float64 student map (differentiable; aligned inside iff Cs != C);
// t: [N, C, H, W] teacher map (constant, cast to s's dtype); masks: [N, H, W] (fgd_masks*).
FgdLoss fgd_loss(const torch::Tensor& s, const torch::Tensor& t, const FgdMasks& masks, const FgdParams& params,
                 const FgdOptions& opts = {});

// The same with the masks built from pixel boxes (loss-probe's form).
FgdLoss fgd_loss(const torch::Tensor& s, const torch::Tensor& t, const std::vector<torch::Tensor>& boxes_px,
                 const std::array<double, 2>& img_shape, const FgdParams& params, const FgdOptions& opts = {});

// Owns FGD's trainable parts with upstream's names and initialisation: `align` (iff Cs != C),
// `conv_mask_s`, `conv_mask_t` (1x1 C -> 1, Kaiming normal fan-in (ReLU gain), bias 0),
// `channel_add_conv_s`, `channel_add_conv_t` (Conv C -> C/2, LayerNorm([C/2,1,1]), ReLU,
// Conv C/2 -> C with weight and bias 0). A student map on another grid is first resized
// bilinearly to the teacher's H x W (spec/losses.md §11.3).
class FgdDistillerImpl : public torch::nn::Module {
 public:
  FgdDistillerImpl(int64_t student_channels, int64_t teacher_channels, FgdOptions opts = {});

  // boxes: B tensors [K_b, >= 7] (DESIGN Box, the view's ego frame); grid: the teacher map's grid.
  FgdLoss forward(const torch::Tensor& s, const torch::Tensor& t, const std::vector<torch::Tensor>& boxes,
                  const BevGrid& grid);
  // 2D pixel boxes of an img_shape image (upstream's detection form).
  FgdLoss forward_pixel_boxes(const torch::Tensor& s, const torch::Tensor& t, const std::vector<torch::Tensor>& boxes_px,
                              const std::array<double, 2>& img_shape);

  FgdParams params() const;
  const FgdOptions& options() const { return opts_; }

  torch::nn::Conv2d align{nullptr};  // null when the channel counts agree
  torch::nn::Conv2d conv_mask_s{nullptr}, conv_mask_t{nullptr};
  torch::nn::Sequential channel_add_conv_s{nullptr}, channel_add_conv_t{nullptr};

 private:
  FgdOptions opts_;
};
TORCH_MODULE(FgdDistiller);

}  // namespace bevkd::train::losses
