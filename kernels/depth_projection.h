// LiDAR depth targets for the camera student: the points of the (multi-sweep) cloud projected
// into every camera, keeping the nearest point per pixel of a stride-s grid, with the id of the
// ground-truth box each kept point lies in (TiG-BEV's inner-depth needs it). precompute stores
// the sparse form (shard fields depth/uvd and depth/box_id); the dense form is the depth map
// that BEVDepth-style depth supervision compares with.
//
// For camera n with cam2ego = [R | t] (camera frame: x right, y down, z forward) and
// intrinsics K, an ego-frame point p has camera coordinates q = Rᵀ(p − t), depth q_z, and pixel
// (u, v) = (K q)_xy / (K q)_z (u along the image columns). It is a candidate when
// min_depth <= depth < max_depth and 0 <= u < image_width, 0 <= v < image_height; its stride
// cell is (floor(v / stride), floor(u / stride)). Per cell the nearest candidate wins (ties: the
// lower point index), so results do not depend on thread count or device. Arithmetic is double.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <limits>

namespace bevkd::kernels {

struct DepthProjectionOptions {
  int64_t image_height = 256, image_width = 704;             // the image the intrinsics map to (pixels)
  int64_t stride = 16;                                       // cell = stride x stride pixels
  float min_depth = 1.0f;                                    // m, > 0 (the devkit's min_dist)
  float max_depth = std::numeric_limits<float>::infinity();  // m, exclusive

  int64_t out_height() const { return (image_height + stride - 1) / stride; }  // ceil
  int64_t out_width() const { return (image_width + stride - 1) / stride; }
};

// Nearest point per cell, cells in order (camera, row, column).
struct SparseDepth {
  torch::Tensor uvd;      // [P, 3] float32: u, v (full-resolution pixels of the kept point), depth (m)
  torch::Tensor box_id;   // [P] int32: index into boxes of the first box containing the point, -1 none
  torch::Tensor offsets;  // [Ncam + 1] int64: camera n owns rows offsets[n] .. offsets[n+1]
};

struct DenseDepth {
  torch::Tensor depth;   // [Ncam, out_height, out_width] float32 (m), 0 where no point
  torch::Tensor box_id;  // [Ncam, out_height, out_width] int32, -1 where no point or no box
};

// points:     [P, >= 3] float32, x, y, z first (m, ego frame of the key frame);
// cam2ego:    [Ncam, 4, 4] float32/float64, camera frame -> ego frame;
// intrinsics: [Ncam, 3, 3] float32/float64, including any image resize/crop the caller applied;
// boxes:      undefined, or [G, 7|9] float32 (ego frame, Box convention) — a point lies in a
//             box when inside or on its faces (core point_in_box); the lowest index wins.
// All on one device; results on that device.
SparseDepth project_depth_sparse(const torch::Tensor& points, const torch::Tensor& cam2ego,
                                 const torch::Tensor& intrinsics, const torch::Tensor& boxes,
                                 const DepthProjectionOptions& opts);

DenseDepth project_depth_dense(const torch::Tensor& points, const torch::Tensor& cam2ego,
                               const torch::Tensor& intrinsics, const torch::Tensor& boxes,
                               const DepthProjectionOptions& opts);

}  // namespace bevkd::kernels
