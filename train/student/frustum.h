// The lift-splat frustum: one point per (depth bin, feature row, feature column) of a camera,
// placed in the augmented image the student sees and carried into the ego frame of the view.
//
// Image coordinates (train/data/batch.h): continuous, pixel centres at integers, u = column,
// v = row, of the augmented image. The depth net's feature cell (r, c) at stride s covers the
// pixels s·r .. s·r + s − 1 (rows) and s·c .. s·c + s − 1 (columns); its frustum sample sits at the
// centre of that block:
//   u_c = s·c + (s − 1)/2,   v_r = s·r + (s − 1)/2.
// (BEVDepth uses linspace(0, W − 1, W / s), which spreads the samples from the first to the last
// pixel instead; kernels/depth_projection bins a LiDAR point at continuous u into column
// floor(u / s), half a pixel to the right of these blocks.)
//
// Depth bins: bin k covers depths [min + k·step, min + (k + 1)·step), k = 0 .. D − 1 with
// D = round((max − min) / step) — the bins BEVDepth's depth loss one-hot encodes. The frustum
// sample of bin k is at the bin's centre (value = "center", default) or at its start
// (value = "start", BEVDepth's and TiG-BEV's frustum).
//
// Depth is the camera-frame z (along the optical axis), as the LiDAR depth targets. A sample
// (u, v, d) goes to
//   camera:          q = d · (A K)^-1 [u, v, 1]ᵀ           (intrinsics = A K; A's last row is 0 0 1)
//   key-frame ego:   p = R q + t                          (cam2ego = [R | t])
//   ego of the view: p' = bda · p                          (bda: rotation, scale, flips)
// computed in float64 and returned as float32, the dtype kernels/bev_pool takes.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>

namespace bevkd::train::student {

struct DepthBins {
  double min = 2.0;    // m, > 0
  double max = 58.0;   // m, exclusive
  double step = 0.5;   // m
  std::string value = "center";  // the frustum depth of a bin: "center" or "start" (BEVDepth)

  void validate(const std::string& where) const;  // throws bevkd::Error naming the field
  int64_t count() const;                           // D
  double start(int64_t k) const { return min + static_cast<double>(k) * step; }
  double value_of(int64_t k) const;                // the frustum depth of bin k
  // The bin holding depth d (m): floor((d − min) / step), or −1 when d is outside [min, max).
  int64_t index_of(double d) const;

  template <class V>
  void fields(V& v) {
    v("min", min);
    v("max", max);
    v("step", step);
    v("value", value);
  }
};

struct FrustumSpec {
  int64_t image_height = 256, image_width = 704;  // the augmented image (pixels)
  int64_t stride = 16;                            // the depth net's stride (pixels per feature cell)
  DepthBins bins;

  int64_t feat_height() const { return image_height / stride; }
  int64_t feat_width() const { return image_width / stride; }
  void validate(const std::string& where) const;  // image size divisible by the stride
};

// [D, h, w, 3] float64: (u, v, d) of every frustum sample (augmented pixels, m).
torch::Tensor make_frustum(const FrustumSpec& spec);

// frustum:    [D, h, w, 3] float64 from make_frustum (any device);
// intrinsics: [B, N, 3, 3] float32/64 = A K (augmented pixels);
// cam2ego:    [B, N, 4, 4] float32/64 camera -> key-frame ego (m);
// bda:        [B, 3, 3] float32/64 key-frame ego -> ego of the view.
// Returns [B, N, D, h, w, 3] float32: the samples in the ego frame of the view (m), on the
// frustum's device. Throws bevkd::Error on shape mismatches or a singular A K.
torch::Tensor frustum_points(const torch::Tensor& frustum, const torch::Tensor& intrinsics,
                             const torch::Tensor& cam2ego, const torch::Tensor& bda);

}  // namespace bevkd::train::student
