// FocalDistiller's released "HeatmapDistiller" baseline (spec/losses.md §6; OpenDriveLab
// BEVPerception-Survey-Recipe a0b2d72, nuScenes_playground/FocalDistiller): a Gaussian-masked
// squared error on the BEV features,
//   L = weight · Σ_{b,c,h,w} (S·M − T·M)² / Σ_{b,h,w} M      (the effective weight is M²)
// with M the Gaussian heat-map mask of the GT boxes (§2, min_radius 2) drawn on the detection
// head's grid and resized to the features with torch's legacy 'nearest'. FD3D itself (SMGD, QFD)
// is another issue. No trainable parts.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "train/losses/gaussian_fg.h"

namespace bevkd::train::losses {

// torch.nn.functional.interpolate(mode='nearest') (the legacy rule): dst cell i reads source
// cell min(floor(i · (in/out)), in − 1), the scale in float32 as torch computes it.
//   map: [B, C, h, w] any dtype -> [B, C, H, W]
torch::Tensor legacy_nearest_resize(const torch::Tensor& map, int64_t H, int64_t W);

// The mask M from GT boxes: per sample, gaussian_fg_map on the detection head's heat-map grid
// `heat_map` (its grid is (ny, nx) voxels / out_size_factor; min_radius 2 in the release), then
// legacy_nearest_resize to the features' (H, W). boxes[b]: [K_b, 9] float DESIGN.md Box.
// Returns [B, 1, H, W] float32.
torch::Tensor focaldistiller_heat_mask(const std::vector<torch::Tensor>& boxes, const kernels::GaussianOptions& heat_map,
                                       int64_t H, int64_t W);

// weight · Σ(S·M − T·M)² / ΣM, 0 when ΣM = 0.
//   s:    [B, C, H, W] float, student BEV features
//   t:    [B, C, H, W] same dtype, teacher BEV features (detached here)
//   mask: [B, 1, H, W] any float dtype (cast to s's), M
// Gradient to s only: 2·weight·(S·M − T·M)·M / ΣM.
torch::Tensor focaldistiller_bev_l2_heatmap(const torch::Tensor& s, const torch::Tensor& t, const torch::Tensor& mask,
                                            double weight = 0.1);

}  // namespace bevkd::train::losses
