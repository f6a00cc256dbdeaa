// Depth supervision at the depth net's stride, from the stored LiDAR points of one camera
// (shard depth/uvd, depth/box_id) moved by the image augmentation A (image_aug.h).
//
// BEVDepth's get_downsampled_gt_depth, on the sparse points: a point (u, v, d) of the original
// image goes to (u', v') = A (u, v); it lies on augmented pixel (round(v'), round(u')) =
// (floor(v' + 1/2), floor(u' + 1/2)) (pixel centres at integers), is dropped outside the
// augmented image, and falls in the stride cell (floor(row / stride), floor(col / stride)) — the
// cell covers pixels [c * stride, (c + 1) * stride), the receptive field of a stride-s feature.
// Per cell the nearest point wins (ties: the lower point index) — all points with d > 0 compete,
// then a cell whose nearest point is outside [min_depth, max_depth) is emptied, as BEVDepth
// (it min-pools the dense map, then zeroes out-of-range bins): a point nearer than min_depth
// masks the cell instead of letting a farther point through.
//
// Differs from TiG-BEV's rasteriser (rasterize_depth_points in train/losses/tig_bev.h, branch
// losses2) in two ways, both following the respective upstream code: (1) TiG assigns a point to
// cell (round(v' / stride), round(u' / stride)) — cells centred on multiples of the stride, half
// a cell (plus half a pixel) away from these floor cells, and the last half cell of each row and
// column falls off the map; (2) TiG keeps only points in [min_depth, max_depth) before taking the
// nearest, so a point nearer than min_depth lets a farther one through. The box-id map has the
// same meaning in both (stored gt row + 1, 0 = none). A TiG-BEV loss given DepthTargets::box_id
// sees BEVDepth's cells, not the TiG reference's (the batch does not carry the stored points).
#pragma once

#include <cstdint>

#include "train/data/image_aug.h"

namespace bevkd::train::data {

struct DepthPoolOptions {
  std::int64_t image_height = 256, image_width = 704;  // the augmented image (pixels)
  std::int64_t stride = 16;                             // cells: ceil(size / stride) per axis
  double min_depth = 2.0, max_depth = 58.0;             // m, [min, max)
  std::int64_t out_height() const { return (image_height + stride - 1) / stride; }
  std::int64_t out_width() const { return (image_width + stride - 1) / stride; }
};

// uvd:    [P, 3] float32 row-major: u, v (original image pixels), depth (m);
// box_id: [P] int32 (0-based gt row, -1 none) or nullptr;
// depth_out:  [out_height, out_width] float32 (m), written entirely, 0 = no point;
// box_out:    [out_height, out_width] int64, written entirely (box_id + 1 of the cell's nearest
//             point, 0 = none or no point), or nullptr.
void min_pool_depth(const float* uvd, const std::int32_t* box_id, std::int64_t num_points, const Affine2& a,
                    const DepthPoolOptions& opts, float* depth_out, std::int64_t* box_out);

}  // namespace bevkd::train::data
