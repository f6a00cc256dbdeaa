// TiG-BEV (Huang et al. 2022; reference code ADLab3Ds/TiG-BEV, detector tig_bev.py): the two
// "target inner-geometry" terms, as the reference computes them (spec/losses.md §4).
//
//  * Inner-depth supervision (§4.1). Needs no teacher: LiDAR depth and box-id maps per camera
//    at the student's depth stride. rasterize_depth_points() builds them from the shard's
//    depth/uvd and depth/box_id after the image augmentation (data loader, CPU, per camera);
//    tig_inner_depth_loss() compares them with the depth-net logits.
//
//      p = softmax_D(logits),  d = sum_d p_d * bin_d  (bins = arange(dbound), START values)
//      per image i and box k with pixels P_ik: r = argmin_{P_ik} |d - d_gt| (first in row-major
//      order on ties); ref_pred = d[r] (detached), ref_gt = d_gt[r]
//      L = weight * sum_fg ((d - ref_pred) - (d_gt - ref_gt))^2 / max(#fg, 1)
//
//  * Inner-feature distillation (§4.2): an n x n lattice (edges included) on every GT box
//    enlarged by 2 x 1.6 m, sampled bilinearly (zeros padding, align_corners = false) on the
//    student and teacher BEV maps, giving F_S [K, Cs, N], F_T [K, C, N], N = n^2.
//      inter-keypoint: G = F^T F [K, N, N], rows L2-normalised (eps 1e-12);
//                      L_kp = w_kp * mean_{K,N} sum_j (G_S - G_T)^2          (w_kp = 100)
//      inter-channel:  F_S <- embed(F_S) (1x1 conv Cs -> C, bias), G = F F^T [K, C, C],
//                      rows L2-normalised; L_ch = w_ch * mean_{K,C} sum_j (G_S - G_T)^2  (w_ch = 10)
//    Key points are normalised with the LSS grid (bx, dx, nx) as upstream:
//      g = clip(((p - (bx - dx/2)) / dx / (nx - 1)) * 2 - 1, -1, 1)
//    which stretches positions by nx/(nx-1) (128/127: up to ~1 cell at the far edge) whatever
//    the map's resolution. `exact = true` instead samples every map at the true positions on
//    its own grid: g = clip(2 (p - min) / (max - min) - 1, -1, 1). Both clip before sampling,
//    so points off the map sample the border band (half-weighted by the zero padding).
//    Boxes are DESIGN.md Boxes; only the physical rectangle matters (both losses are invariant to
//    a consistent permutation of the key points), but the corners are built in mmdet3d's order
//    (loss_util.h box_bev_corners) so that the lattice matches the reference point for point.
//    The lattice and its normalisation are computed in float32, as upstream does on its float32
//    boxes, then cast to the maps' dtype.
//
// Every function works for any batch size; a batch without boxes (or without foreground pixels)
// gives a zero connected to the graph, never NaN. Teacher maps are constants (detached) and are
// cast to the student's dtype. float32 and float64.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <vector>

#include "base/bev_grid.h"

namespace bevkd::train::losses {

// ---- inner depth (§4.1) -----------------------------------------------------------------

struct TigInnerDepthOptions {
  std::array<double, 3> dbound{1.0, 60.0, 1.0};  // [start, stop, step) of the depth bins (m)
  double weight = 1.0;                            // inner_depth_weight

  // Number of bins of arange(start, stop, step) = ceil((stop - start) / step); throws for a
  // non-positive step or an empty range.
  int64_t num_bins() const;
};

// depth_logits: [B*N, D, h, w] float32/float64 — depth-net logits, camera-major within a sample
//               (row b*N + n), D = opts.num_bins();
// depth_gt:     [B, N, h, w] float (metres, 0 = no LiDAR point);
// fg_gt:        [B, N, h, w] integer — 0 = background, k >= 1 = the k-th box of the sample
//               (1-based; ids of different samples may overlap, each image is handled alone).
// Returns the weighted scalar loss in depth_logits' dtype; gradient flows to depth_logits only.
torch::Tensor tig_inner_depth_loss(const torch::Tensor& depth_logits, const torch::Tensor& depth_gt,
                                   const torch::Tensor& fg_gt, const TigInnerDepthOptions& opts = {});

// The depth and fg-id maps of one camera at the student's depth stride, from the points stored
// in the shard (depth/uvd, depth/box_id) after an image augmentation (resize, crop, flip, rotation).
struct DepthRasterOptions {
  int64_t stride = 16;        // student depth stride (pixels of the augmented image per cell)
  double min_depth = 1.0;     // dbound[0], inclusive (m)
  double max_depth = 60.0;    // dbound[1], exclusive (m)
};

struct DepthRaster {
  torch::Tensor depth;  // [h, w] float32, metres; 0 where no point
  torch::Tensor fg;     // [h, w] int64; 0 = background or no point, k = box_id + 1 of the kept point
};

// For every point (u, v, depth) of the ORIGINAL image with box id b (row of the sample's
// gt/boxes, -1 = none):
//   (u', v', 1)^T = A (u, v, 1)^T      A = `pixel_transform`, row-major 3x3 affine (last row 0 0 1)
//   column = round(u' / stride), row = round(v' / stride)   (round half to even, like torch.round)
//   kept when 0 <= row < h, 0 <= column < w and min_depth <= depth < max_depth,
// with h = image_height / stride, w = image_width / stride (floor, as upstream's height //
// downsample), image_height x image_width the AUGMENTED image. Per cell the nearest point wins
// (upstream sorts by rank + depth/100; ties on equal depth: the lower point index); its box id
// + 1 goes to fg. Non-finite points are skipped. Arithmetic in double.
// Throws bevkd::Error for a non-affine transform, bad sizes or a box id below -1.
void rasterize_depth_points(const float* uvd, const int32_t* box_id, int64_t num_points,
                            const std::array<double, 9>& pixel_transform, int64_t image_height,
                            int64_t image_width, const DepthRasterOptions& opts, float* depth_out, int64_t* fg_out);

// Tensor form: uvd [P, 3] float32 (px, px, m), box_id [P] int32/int64 (CPU); returns CPU maps.
DepthRaster rasterize_depth_points(const torch::Tensor& uvd, const torch::Tensor& box_id,
                                   const std::array<double, 9>& pixel_transform, int64_t image_height,
                                   int64_t image_width, const DepthRasterOptions& opts = {});

// ---- inner feature (§4.2) ---------------------------------------------------------------

// BEVDet/LSS view-transformer grid used by upstream's key-point normalisation: bx = cell centre
// of the first cell (x_min + dx/2), dx = cell size, nx = cells, for x and y (the reference config:
// bx -50.8, dx 0.8, nx 128). No default: the trainer derives it from the student's BEV grid
// (of()), loss-probe reads it from params.json as the reference code does.
struct LssGridParams {
  std::array<double, 2> bx{0, 0};
  std::array<double, 2> dx{0, 0};
  std::array<int64_t, 2> nx{0, 0};

  static LssGridParams of(const BevGrid& grid);
};

struct TigInnerFeatureOptions {
  int64_t sample_num = 24;             // n (x_sample_num = y_sample_num), >= 2
  double enlarge_width = 1.6;          // m added on every side; <= 0: the box itself
  double inter_keypoint_weight = 100.0;
  double inter_channel_weight = 10.0;
  LssGridParams lss;                   // reference normalisation (exact = false); required
  bool exact = false;                  // sample at the true positions on each map's own grid
  BevGrid student_grid;                // exact only: the student map's grid (shape checked)
  BevGrid teacher_grid;                // exact only: the teacher map's grid (shape checked)
};

// [K, 4, 2] float32 corners p0..p3 (metres) of the enlarged boxes, mmdet3d order (see above).
torch::Tensor tig_box_corners(const torch::Tensor& boxes, double enlarge_width);

// [K, n, n, 2] float32 lattice (x, y) in metres from corners [K, 4, 2]:
//   grid[k, i, j] = p0 + (p1 - p0) * j/(n-1) + (p2 - p0) * i/(n-1)
// built like upstream (two linspace lattices added; linspace's symmetric float32 evaluation).
torch::Tensor tig_keypoint_lattice(const torch::Tensor& corners, int64_t n);

// Normalised, clipped grid_sample coordinates [K, n, n, 2] float32 of a lattice in metres.
torch::Tensor tig_normalize_lss(const torch::Tensor& lattice, const LssGridParams& lss);
torch::Tensor tig_normalize_exact(const torch::Tensor& lattice, const BevGrid& grid);

// Samples map [B, C, H, W] at grids[b] [K_b, n, n, 2] (normalised (x, y)) for every sample b
// (grids.size() == B); returns [sum K_b, C, n, n] in batch order (bilinear, zeros,
// align_corners = false). A sample with K_b = 0 contributes no rows.
torch::Tensor tig_sample_keypoints(const torch::Tensor& map, const std::vector<torch::Tensor>& grids);

// Unweighted inter-keypoint / inter-channel terms of already sampled key points:
// fs [K, Cs, n, n], ft [K, C, n, n] (same K and n; for the channel term Cs == C after embed).
// K = 0 gives a connected zero.
torch::Tensor tig_inter_keypoint_loss(const torch::Tensor& fs, const torch::Tensor& ft);
torch::Tensor tig_inter_channel_loss(const torch::Tensor& fs_embedded, const torch::Tensor& ft);

struct TigInnerFeatureLoss {
  torch::Tensor inter_keypoint;  // scalar, weighted (inter_keypoint_weight)
  torch::Tensor inter_channel;   // scalar, weighted (inter_channel_weight)
};

// s_bev:   [B, Cs, H, W] float32/float64, student BEV map (row = y, column = x), differentiable;
// t_bev:   [B, C, H', W'] teacher BEV map (any float dtype; constant), same metric range;
// boxes:   B tensors [K_b, >= 7] (DESIGN Box, ego frame of the view, metres); K_b may be 0;
// embed_w: [C, Cs, 1, 1], embed_b: [C] — the inter-channel embedding (1x1 conv with bias).
TigInnerFeatureLoss tig_inner_feature_loss(const torch::Tensor& s_bev, const torch::Tensor& t_bev,
                                           const std::vector<torch::Tensor>& boxes, const torch::Tensor& embed_w,
                                           const torch::Tensor& embed_b, const TigInnerFeatureOptions& opts);

// The trainable part of TiG-BEV's inner-feature distillation: the 1x1 embed conv (Cs -> C, bias),
// applied to the sampled student key points of the inter-channel term only.
class TigInnerFeatureImpl : public torch::nn::Module {
 public:
  TigInnerFeatureImpl(int64_t student_channels, int64_t teacher_channels, TigInnerFeatureOptions opts);
  TigInnerFeatureLoss forward(const torch::Tensor& s_bev, const torch::Tensor& t_bev,
                              const std::vector<torch::Tensor>& boxes);
  const TigInnerFeatureOptions& options() const { return opts_; }
  torch::nn::Conv2d embed{nullptr};

 private:
  TigInnerFeatureOptions opts_;
};
TORCH_MODULE(TigInnerFeature);

}  // namespace bevkd::train::losses
