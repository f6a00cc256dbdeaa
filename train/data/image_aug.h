// Image augmentation as one affine matrix (BEVDepth's img_transform, written exactly).
//
// Pixel convention (train/data/batch.h): continuous coordinates with pixel centres at integers,
// u = column, v = row; pixel (i, j) covers u in [j - 1/2, j + 1/2), v in [i - 1/2, i + 1/2).
// A maps an ORIGINAL pixel to an AUGMENTED pixel, A = Rot * Flip * Crop * Resize:
//   Resize by s:  u' = s (u + 1/2) - 1/2           (the same in v; an image of W pixels spans
//                                                   [-1/2, W - 1/2) before and s W after)
//   Crop at (x0, y0): u' = u - x0, v' = v - y0
//   Flip:         u' = (fW - 1) - u                (mirror about the crop's centre column)
//   Rotation by r degrees, counter-clockwise as displayed (PIL's Image.rotate, BEVDepth's
//   get_rot), about the crop's centre ((fW - 1) / 2, (fH - 1) / 2):
//                 [u'; v'] = [[cos r, sin r], [-sin r, cos r]] [u - cu; v - cv] + [cu; cv]
// BEVDepth's own matrices drop the half-pixel terms (u' = s u, u' = fW - u); they are kept here
// so that A K is the exact camera matrix of the augmented image.
//
// The image is produced by inverse mapping: augmented pixel p samples the decoded source at
// A_src^-1 p, bilinearly, where A_src = A * D^-1 and D the DCT downscale of the decoder
// (u_dec = f (u + 1/2) - 1/2 for a JPEG decoded at factor f). Samples outside the source are
// black (0), as PIL's crop and rotate fill, before normalisation.
#pragma once

#include <array>
#include <cstdint>

#include "base/rng.h"
#include "train/data/loader_config.h"

namespace bevkd::train::data {

// 2-D affine map as a 3x3 matrix (last row 0 0 1), row-major, acting on (u, v, 1).
struct Affine2 {
  std::array<std::array<double, 3>, 3> m{{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}};

  static Affine2 identity() { return {}; }
  static Affine2 scale_about_pixel_centres(double s);  // Resize above
  static Affine2 translation(double tu, double tv);
  static Affine2 flip_u(std::int64_t width);           // u -> (width - 1) - u
  static Affine2 rotation_deg(double deg, double cu, double cv);
  Affine2 operator*(const Affine2& b) const;            // (this * b)(p) = this(b(p))
  Affine2 inverse() const;                              // throws bevkd::Error if singular
  void apply(double u, double v, double* ou, double* ov) const {
    *ou = m[0][0] * u + m[0][1] * v + m[0][2];
    *ov = m[1][0] * u + m[1][1] * v + m[1][2];
  }
};

// One camera's augmentation parameters (BEVDepth's sample_ida_augmentation).
struct ImageAugParams {
  double resize = 1;         // s
  std::int64_t crop_x = 0;   // x0, y0: top-left of the crop in the resized image (pixels)
  std::int64_t crop_y = 0;
  bool flip = false;
  double rotation_deg = 0;
};

// Training: drawn from `rng` (resize, bottom-crop fraction, horizontal offset, flip, rotation in
// this order) — resized size (int(W s), int(H s)), crop_y = int((1 - b) * newH) - fH,
// crop_x = int(U(0, max(0, newW - fW))). Evaluation (rng == nullptr): s = max(fH / H, fW / W),
// b = mean(bottom_crop_range), crop_x = int(max(0, newW - fW) / 2), no flip, no rotation.
ImageAugParams draw_image_aug(const ImageAugConfig& cfg, std::int64_t width, std::int64_t height, Rng* rng);

// A for `p` (original pixel -> augmented pixel) with the output size cfg.final_size.
Affine2 image_aug_matrix(const ImageAugParams& p, const ImageAugConfig& cfg);

// Writes the augmented, normalised image: out [3, fH, fW] float32 (planar RGB),
// out[c] = (x / 255 - mean[c]) / std[c] with x the bilinear sample of `rgb` at
// src_from_out(u, v) (source pixels; black outside [-1/2, W - 1/2) x [-1/2, H - 1/2)).
// rgb: [height, width, 3] uint8.
void warp_normalize(const std::uint8_t* rgb, std::int64_t width, std::int64_t height, const Affine2& src_from_out,
                    std::int64_t out_height, std::int64_t out_width, const std::array<double, 3>& mean,
                    const std::array<double, 3>& std, float* out);

}  // namespace bevkd::train::data
