// BEV pooling for lift-splat-shoot (the camera student's view transform, BEVDepth's "voxel
// pooling"), built on the BEVPoolv2 idea: the frustum point -> BEV cell mapping is computed
// once per frustum geometry, sorted into runs of points that share a cell (intervals), and
// reused by every forward and backward pass with that geometry.
//
//   out[b, c, y, x] = sum over frustum points (b, n, d, h, w) that fall into cell (y, x) of
//                     depth[b, n, d, h, w] * feat[b, n, h, w, c]
//
// A frustum point (ego-frame xyz, metres) falls into column x = floor((px - x_min) / dx) and
// row y = floor((py - y_min) / dy) (float32), and is dropped when x or y is outside the grid or
// pz is outside [z_min, z_max); the z extent is a single cell (BEVDepth and TiG-BEV use one).
// Unlike the reference implementations, which truncate toward zero (.long()) and so also keep
// points up to one cell below x_min / y_min in column / row 0, points outside the grid are
// always dropped.
#pragma once

#include <torch/types.h>

#include <array>
#include <cstdint>

#include "base/bev_grid.h"

namespace bevkd::kernels {

// The precomputed mapping. K = kept points, I = occupied BEV cells, J = feature pixels with at
// least one kept point. All index tensors are int32 on the device of the frustum points.
struct BevPoolGeometry {
  // The input shapes it was prepared for: depth [batch, num_cams, depth_bins, feat_h, feat_w],
  // feat [batch, num_cams, feat_h, feat_w, C], output [batch, C, grid_h, grid_w].
  int64_t batch = 0, num_cams = 0, depth_bins = 0, feat_h = 0, feat_w = 0;
  int64_t grid_h = 0, grid_w = 0;

  // Kept points sorted by BEV cell, ties in point order.
  torch::Tensor ranks_depth;       // [K] flat index into depth (= the frustum point's index)
  torch::Tensor ranks_feat;        // [K] flat index of the feature row (b, n, h, w) in feat
  torch::Tensor ranks_bev;         // [K] flat BEV cell b·H·W + y·W + x
  torch::Tensor interval_starts;   // [I] first position of each run of equal ranks_bev
  torch::Tensor interval_lengths;  // [I] its length
  // The same kept points sorted by feature row, ties in point order (for the gradient of
  // feat without atomics).
  torch::Tensor feat_ranks_depth;       // [K]
  torch::Tensor feat_ranks_feat;        // [K]
  torch::Tensor feat_ranks_bev;         // [K]
  torch::Tensor feat_interval_starts;   // [J]
  torch::Tensor feat_interval_lengths;  // [J]

  int64_t num_kept() const { return ranks_depth.defined() ? ranks_depth.size(0) : 0; }
  torch::Device device() const { return ranks_depth.device(); }
  // A copy on another device (e.g. a geometry prepared once on the CPU, used on the GPU).
  BevPoolGeometry to(const torch::Device& device) const;
};

// points: [B, N, D, Hf, Wf, 3] float32 — the ego-frame position (m) of every frustum point
// (batch, camera, depth bin, feature row, feature column), as the student's geometry step
// computes it. CPU or CUDA; the geometry lives on the same device.
BevPoolGeometry bev_pool_prepare(const torch::Tensor& points, const BevGrid& grid);

// depth: [B, N, D, Hf, Wf] float32 or float64 (the depth distribution per feature pixel);
// feat:  [B, N, Hf, Wf, C] same dtype (image features, channel-last);
// geom:  from bev_pool_prepare with the same B, N, D, Hf, Wf, on the same device.
// Returns [B, C, H, W] (row <-> y, column <-> x), 0 in cells without points. Differentiable
// with respect to depth and feat (an autograd Function; the backward uses the precomputed
// intervals, so it needs no atomics and is deterministic).
torch::Tensor bev_pool(const torch::Tensor& depth, const torch::Tensor& feat, const BevPoolGeometry& geom);

}  // namespace bevkd::kernels
