#include "train/data/image_aug.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "base/math.h"

namespace bevkd::train::data {

namespace {
}  // namespace

Affine2 Affine2::scale_about_pixel_centres(double s) {
  Affine2 a;
  a.m[0] = {s, 0, 0.5 * s - 0.5};
  a.m[1] = {0, s, 0.5 * s - 0.5};
  return a;
}

Affine2 Affine2::translation(double tu, double tv) {
  Affine2 a;
  a.m[0][2] = tu;
  a.m[1][2] = tv;
  return a;
}

Affine2 Affine2::flip_u(std::int64_t width) {
  Affine2 a;
  a.m[0] = {-1, 0, static_cast<double>(width - 1)};
  return a;
}

Affine2 Affine2::rotation_deg(double deg, double cu, double cv) {
  const double r = deg * kPi / 180.0, c = std::cos(r), s = std::sin(r);
  Affine2 a;
  a.m[0] = {c, s, cu - (c * cu + s * cv)};
  a.m[1] = {-s, c, cv - (-s * cu + c * cv)};
  return a;
}

Affine2 Affine2::operator*(const Affine2& b) const {
  Affine2 o;
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) {
      double v = 0;
      for (int k = 0; k < 3; ++k) v += m[r][k] * b.m[k][c];
      o.m[r][c] = v;
    }
  return o;
}

Affine2 Affine2::inverse() const {
  const double det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
  BEVKD_CHECK(std::isfinite(det) && std::abs(det) > 1e-12, "image augmentation: affine matrix is singular (det ",
              det, ")");
  Affine2 o;
  o.m[0][0] = m[1][1] / det;
  o.m[0][1] = -m[0][1] / det;
  o.m[1][0] = -m[1][0] / det;
  o.m[1][1] = m[0][0] / det;
  o.m[0][2] = -(o.m[0][0] * m[0][2] + o.m[0][1] * m[1][2]);
  o.m[1][2] = -(o.m[1][0] * m[0][2] + o.m[1][1] * m[1][2]);
  return o;
}

ImageAugParams draw_image_aug(const ImageAugConfig& cfg, std::int64_t width, std::int64_t height, Rng* rng) {
  const double fH = static_cast<double>(cfg.final_size[0]), fW = static_cast<double>(cfg.final_size[1]);
  ImageAugParams p;
  double bottom = 0;
  if (rng != nullptr) {
    p.resize = rng->uniform(cfg.resize_range[0], cfg.resize_range[1]);
    if (cfg.reference_width > 0) p.resize *= cfg.reference_width / static_cast<double>(width);
    bottom = rng->uniform(cfg.bottom_crop_range[0], cfg.bottom_crop_range[1]);
  } else {
    p.resize = std::max(fH / static_cast<double>(height), fW / static_cast<double>(width));
    bottom = 0.5 * (cfg.bottom_crop_range[0] + cfg.bottom_crop_range[1]);
  }
  const auto new_w = static_cast<std::int64_t>(static_cast<double>(width) * p.resize);
  const auto new_h = static_cast<std::int64_t>(static_cast<double>(height) * p.resize);
  p.crop_y = static_cast<std::int64_t>((1.0 - bottom) * static_cast<double>(new_h)) - cfg.final_size[0];
  const double slack = static_cast<double>(std::max<std::int64_t>(0, new_w - cfg.final_size[1]));
  if (rng != nullptr) {
    p.crop_x = static_cast<std::int64_t>(rng->uniform(0.0, slack));
    p.flip = rng->chance(cfg.flip_prob);
    p.rotation_deg = rng->uniform(cfg.rotation_range[0], cfg.rotation_range[1]);
  } else {
    p.crop_x = static_cast<std::int64_t>(slack / 2);
  }
  return p;
}

Affine2 image_aug_matrix(const ImageAugParams& p, const ImageAugConfig& cfg) {
  const std::int64_t fH = cfg.final_size[0], fW = cfg.final_size[1];
  Affine2 a = Affine2::translation(-static_cast<double>(p.crop_x), -static_cast<double>(p.crop_y)) *
              Affine2::scale_about_pixel_centres(p.resize);
  if (p.flip) a = Affine2::flip_u(fW) * a;
  if (p.rotation_deg != 0)
    a = Affine2::rotation_deg(p.rotation_deg, 0.5 * static_cast<double>(fW - 1), 0.5 * static_cast<double>(fH - 1)) * a;
  return a;
}

void warp_normalize(const std::uint8_t* rgb, std::int64_t width, std::int64_t height, const Affine2& src_from_out,
                    std::int64_t out_height, std::int64_t out_width, const std::array<double, 3>& mean,
                    const std::array<double, 3>& std, float* out) {
  float scale[3], bias[3];
  for (int c = 0; c < 3; ++c) {
    scale[c] = static_cast<float>(1.0 / (255.0 * std[c]));
    bias[c] = static_cast<float>(-mean[c] / std[c]);
  }
  const std::int64_t plane = out_height * out_width;
  const double xmin = -0.5, xmax = static_cast<double>(width) - 0.5;
  const double ymin = -0.5, ymax = static_cast<double>(height) - 0.5;
  const auto& m = src_from_out.m;
  const std::int64_t row_bytes = width * 3;
  for (std::int64_t i = 0; i < out_height; ++i) {
    float* o0 = out + i * out_width;
    float* o1 = o0 + plane;
    float* o2 = o1 + plane;
    const double v = static_cast<double>(i);
    // The source position moves by (m00, m10) per output column; double keeps the drift far
    // below a pixel over a row.
    double x = m[0][1] * v + m[0][2], y = m[1][1] * v + m[1][2];
    for (std::int64_t j = 0; j < out_width; ++j, x += m[0][0], y += m[1][0]) {
      if (!(x >= xmin && x < xmax && y >= ymin && y < ymax)) {
        o0[j] = bias[0];
        o1[j] = bias[1];
        o2[j] = bias[2];
        continue;
      }
      // floor() by truncation: x + 1 > 0 inside the image.
      const auto x0 = static_cast<std::int64_t>(x + 1.0) - 1, y0 = static_cast<std::int64_t>(y + 1.0) - 1;
      const float fx = static_cast<float>(x - static_cast<double>(x0)), fy = static_cast<float>(y - static_cast<double>(y0));
      // Edge pixels extend to the image border (x in [-1/2, 0) samples column 0).
      const std::int64_t xa = x0 < 0 ? 0 : x0, xb = x0 + 1 < width ? x0 + 1 : width - 1;
      const std::int64_t ya = y0 < 0 ? 0 : y0, yb = y0 + 1 < height ? y0 + 1 : height - 1;
      const std::uint8_t* p00 = rgb + ya * row_bytes + xa * 3;
      const std::uint8_t* p01 = rgb + ya * row_bytes + xb * 3;
      const std::uint8_t* p10 = rgb + yb * row_bytes + xa * 3;
      const std::uint8_t* p11 = rgb + yb * row_bytes + xb * 3;
      const float w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
      float px[3];
      for (int c = 0; c < 3; ++c)
        px[c] = w00 * static_cast<float>(p00[c]) + w01 * static_cast<float>(p01[c]) +
                w10 * static_cast<float>(p10[c]) + w11 * static_cast<float>(p11[c]);
      o0[j] = px[0] * scale[0] + bias[0];
      o1[j] = px[1] * scale[1] + bias[1];
      o2[j] = px[2] * scale[2] + bias[2];
    }
  }
}

}  // namespace bevkd::train::data
