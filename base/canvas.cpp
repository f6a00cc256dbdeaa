#include "base/canvas.h"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/fs.h"

namespace bevkd {
namespace {

// 5x7 bitmap font for ASCII 32..126: 7 rows per glyph, bit 4 = leftmost column.
constexpr std::uint8_t kFont[95][7] = {
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},  // ' '
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04},  // !
    {0x0A, 0x0A, 0x0A, 0x00, 0x00, 0x00, 0x00},  // "
    {0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A},  // #
    {0x04, 0x0F, 0x14, 0x0E, 0x05, 0x1E, 0x04},  // $
    {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03},  // %
    {0x0C, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0D},  // &
    {0x0C, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00},  // '
    {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02},  // (
    {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08},  // )
    {0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00},  // *
    {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00},  // +
    {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08},  // ,
    {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00},  // -
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C},  // .
    {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00},  // /
    {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E},  // 0
    {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E},  // 1
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F},  // 2
    {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E},  // 3
    {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02},  // 4
    {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E},  // 5
    {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E},  // 6
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08},  // 7
    {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E},  // 8
    {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C},  // 9
    {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00},  // :
    {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x04, 0x08},  // ;
    {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02},  // <
    {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00},  // =
    {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08},  // >
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04},  // ?
    {0x0E, 0x11, 0x01, 0x0D, 0x15, 0x15, 0x0E},  // @
    {0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11},  // A
    {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E},  // B
    {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E},  // C
    {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C},  // D
    {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F},  // E
    {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10},  // F
    {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F},  // G
    {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11},  // H
    {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E},  // I
    {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C},  // J
    {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11},  // K
    {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F},  // L
    {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11},  // M
    {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11},  // N
    {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E},  // O
    {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10},  // P
    {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D},  // Q
    {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11},  // R
    {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E},  // S
    {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04},  // T
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E},  // U
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04},  // V
    {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A},  // W
    {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11},  // X
    {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04},  // Y
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F},  // Z
    {0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E},  // [
    {0x00, 0x10, 0x08, 0x04, 0x02, 0x01, 0x00},  // backslash
    {0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E},  // ]
    {0x04, 0x0A, 0x11, 0x00, 0x00, 0x00, 0x00},  // ^
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F},  // _
    {0x08, 0x04, 0x02, 0x00, 0x00, 0x00, 0x00},  // `
    {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F},  // a
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E},  // b
    {0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E},  // c
    {0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F},  // d
    {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E},  // e
    {0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08},  // f
    {0x00, 0x0F, 0x11, 0x11, 0x0F, 0x01, 0x0E},  // g
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11},  // h
    {0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E},  // i
    {0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0C},  // j
    {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12},  // k
    {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E},  // l
    {0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11},  // m
    {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11},  // n
    {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E},  // o
    {0x00, 0x00, 0x1E, 0x11, 0x1E, 0x10, 0x10},  // p
    {0x00, 0x00, 0x0D, 0x13, 0x0F, 0x01, 0x01},  // q
    {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10},  // r
    {0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E},  // s
    {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06},  // t
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D},  // u
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04},  // v
    {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A},  // w
    {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11},  // x
    {0x00, 0x00, 0x11, 0x11, 0x0F, 0x01, 0x0E},  // y
    {0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F},  // z
    {0x02, 0x04, 0x04, 0x08, 0x04, 0x04, 0x02},  // {
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04},  // |
    {0x08, 0x04, 0x04, 0x02, 0x04, 0x04, 0x08},  // }
    {0x00, 0x00, 0x08, 0x15, 0x02, 0x00, 0x00},  // ~
};

const std::uint8_t* glyph(char ch) {
  const unsigned char u = static_cast<unsigned char>(ch);
  if (u < 32 || u > 126) return kFont['?' - 32];
  return kFont[u - 32];
}

Rgb lerp_anchors(const Rgb (&anchors)[9], double t) {
  if (std::isnan(t)) return {255, 0, 255};
  t = std::clamp(t, 0.0, 1.0) * 8.0;
  const int i = std::min(7, static_cast<int>(t));
  const double f = t - i;
  auto mix = [f](std::uint8_t a, std::uint8_t b) {
    return static_cast<std::uint8_t>(std::lround(a + (b - a) * f));
  };
  return {mix(anchors[i].r, anchors[i + 1].r), mix(anchors[i].g, anchors[i + 1].g),
          mix(anchors[i].b, anchors[i + 1].b)};
}

}  // namespace

namespace colors {

Rgb categorical(int k) {
  static constexpr Rgb kPalette[10] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                       {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127},
                                       {188, 189, 34},  {23, 190, 207}};
  return kPalette[((k % 10) + 10) % 10];
}

// Anchor colours of matplotlib's viridis / inferno at t = 0, 1/8, ..., 1.
Rgb viridis(double t) {
  static constexpr Rgb kA[9] = {{68, 1, 84},    {71, 44, 122},  {59, 81, 139},  {44, 113, 142}, {33, 144, 141},
                                {39, 173, 129}, {92, 200, 99},  {170, 220, 50}, {253, 231, 37}};
  return lerp_anchors(kA, t);
}

Rgb inferno(double t) {
  static constexpr Rgb kA[9] = {{0, 0, 4},     {31, 12, 72},   {85, 15, 109},  {136, 34, 106}, {186, 54, 85},
                                {227, 89, 51}, {249, 140, 10}, {249, 201, 50}, {252, 255, 164}};
  return lerp_anchors(kA, t);
}

}  // namespace colors

Canvas::Canvas(int width, int height, Rgb background) : width_(width), height_(height) {
  BEVKD_CHECK(width > 0 && height > 0 && width <= 1 << 15 && height <= 1 << 15,
              "canvas size must be 1..32768 pixels per side, found ", width, "x", height);
  pixels_.resize(static_cast<std::size_t>(width) * height * 3);
  reset_clip();
  fill(background);
}

Rgb Canvas::get(int x, int y) const {
  BEVKD_ASSERT(x >= 0 && y >= 0 && x < width_ && y < height_, "pixel ", x, ",", y);
  const std::size_t i = (static_cast<std::size_t>(y) * width_ + x) * 3;
  return {pixels_[i], pixels_[i + 1], pixels_[i + 2]};
}

void Canvas::set_clip(int x0, int y0, int x1, int y1) {
  if (x0 > x1) std::swap(x0, x1);
  if (y0 > y1) std::swap(y0, y1);
  clip_ = {std::max(x0, 0), std::max(y0, 0), std::min(x1, width_ - 1), std::min(y1, height_ - 1)};
}

void Canvas::reset_clip() { clip_ = {0, 0, width_ - 1, height_ - 1}; }

bool Canvas::drawable(int x, int y) const { return x >= clip_[0] && y >= clip_[1] && x <= clip_[2] && y <= clip_[3]; }

void Canvas::set(int x, int y, Rgb c) {
  if (!drawable(x, y)) return;
  const std::size_t i = (static_cast<std::size_t>(y) * width_ + x) * 3;
  pixels_[i] = c.r;
  pixels_[i + 1] = c.g;
  pixels_[i + 2] = c.b;
}

void Canvas::blend(int x, int y, Rgb c, double alpha) {
  if (!drawable(x, y)) return;
  alpha = std::clamp(alpha, 0.0, 1.0);
  const std::size_t i = (static_cast<std::size_t>(y) * width_ + x) * 3;
  auto mix = [alpha](std::uint8_t under, std::uint8_t over) {
    return static_cast<std::uint8_t>(std::lround(under * (1 - alpha) + over * alpha));
  };
  pixels_[i] = mix(pixels_[i], c.r);
  pixels_[i + 1] = mix(pixels_[i + 1], c.g);
  pixels_[i + 2] = mix(pixels_[i + 2], c.b);
}

void Canvas::fill(Rgb c) {
  for (std::size_t i = 0; i < pixels_.size(); i += 3) {
    pixels_[i] = c.r;
    pixels_[i + 1] = c.g;
    pixels_[i + 2] = c.b;
  }
}

void Canvas::fill_rect(int x0, int y0, int x1, int y1, Rgb c) {
  if (x0 > x1) std::swap(x0, x1);
  if (y0 > y1) std::swap(y0, y1);
  x0 = std::max(x0, 0);
  y0 = std::max(y0, 0);
  x1 = std::min(x1, width_ - 1);
  y1 = std::min(y1, height_ - 1);
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) set(x, y, c);
}

void Canvas::rect(int x0, int y0, int x1, int y1, Rgb c, int thickness) {
  for (int t = 0; t < thickness; ++t) {
    line(x0 + t, y0 + t, x1 - t, y0 + t, c);
    line(x0 + t, y1 - t, x1 - t, y1 - t, c);
    line(x0 + t, y0 + t, x0 + t, y1 - t, c);
    line(x1 - t, y0 + t, x1 - t, y1 - t, c);
  }
}

void Canvas::line(double fx0, double fy0, double fx1, double fy1, Rgb c, int thickness) {
  if (!std::isfinite(fx0) || !std::isfinite(fy0) || !std::isfinite(fx1) || !std::isfinite(fy1)) return;
  // Clamp absurd coordinates so the loop below stays bounded.
  const double lim = 4.0 * std::max(width_, height_) + 16;
  auto clampc = [lim](double v) { return std::clamp(v, -lim, lim); };
  int x0 = static_cast<int>(std::lround(clampc(fx0))), y0 = static_cast<int>(std::lround(clampc(fy0)));
  const int x1 = static_cast<int>(std::lround(clampc(fx1))), y1 = static_cast<int>(std::lround(clampc(fy1)));
  const int dx = std::abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
  const int dy = -std::abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
  int err = dx + dy;
  const int lo = -(thickness - 1) / 2, hi = thickness / 2;
  while (true) {
    for (int oy = lo; oy <= hi; ++oy)
      for (int ox = lo; ox <= hi; ++ox) set(x0 + ox, y0 + oy, c);
    if (x0 == x1 && y0 == y1) break;
    const int e2 = 2 * err;
    if (e2 >= dy) {
      err += dy;
      x0 += sx;
    }
    if (e2 <= dx) {
      err += dx;
      y0 += sy;
    }
  }
}

void Canvas::dashed_line(double x0, double y0, double x1, double y1, Rgb c, int dash, int thickness) {
  const double len = std::hypot(x1 - x0, y1 - y0);
  if (!(len > 0) || !std::isfinite(len)) return;
  const int n = static_cast<int>(std::ceil(len / dash));
  for (int k = 0; k < n; k += 2) {
    const double t0 = k * dash / len, t1 = std::min(1.0, (k + 1) * dash / len);
    line(x0 + (x1 - x0) * t0, y0 + (y1 - y0) * t0, x0 + (x1 - x0) * t1, y0 + (y1 - y0) * t1, c, thickness);
  }
}

void Canvas::polygon(const std::vector<std::array<double, 2>>& pts, Rgb c, int thickness) {
  for (std::size_t k = 0; k < pts.size(); ++k) {
    const auto& a = pts[k];
    const auto& b = pts[(k + 1) % pts.size()];
    line(a[0], a[1], b[0], b[1], c, thickness);
  }
}

void Canvas::circle(double cx, double cy, double radius, Rgb c, bool filled) {
  if (!(radius >= 0) || !std::isfinite(cx) || !std::isfinite(cy)) return;
  const int r = static_cast<int>(std::ceil(radius));
  for (int y = static_cast<int>(std::floor(cy)) - r; y <= static_cast<int>(std::ceil(cy)) + r; ++y) {
    for (int x = static_cast<int>(std::floor(cx)) - r; x <= static_cast<int>(std::ceil(cx)) + r; ++x) {
      const double d = std::hypot(x - cx, y - cy);
      if (filled ? d <= radius + 0.5 : std::abs(d - radius) <= 0.5) set(x, y, c);
    }
  }
}

void Canvas::text(int x, int y, std::string_view s, Rgb c, int scale) {
  for (std::size_t k = 0; k < s.size(); ++k) {
    const std::uint8_t* g = glyph(s[k]);
    const int ox = x + static_cast<int>(k) * 6 * scale;
    for (int row = 0; row < 7; ++row)
      for (int col = 0; col < 5; ++col)
        if (g[row] & (0x10 >> col)) fill_rect(ox + col * scale, y + row * scale, ox + col * scale + scale - 1,
                                              y + row * scale + scale - 1, c);
  }
}

void Canvas::text_vertical(int x, int y, std::string_view s, Rgb c, int scale) {
  // Character k occupies rows [y - 6*scale*(k+1), y - 6*scale*k); glyph row r maps to column x + r.
  for (std::size_t k = 0; k < s.size(); ++k) {
    const std::uint8_t* g = glyph(s[k]);
    const int base_y = y - static_cast<int>(k) * 6 * scale;
    for (int row = 0; row < 7; ++row)
      for (int col = 0; col < 5; ++col)
        if (g[row] & (0x10 >> col)) {
          const int px = x + row * scale, py = base_y - (col + 1) * scale;
          fill_rect(px, py, px + scale - 1, py + scale - 1, c);
        }
  }
}

void Canvas::paste(const Canvas& other, int x, int y) {
  for (int yy = 0; yy < other.height(); ++yy)
    for (int xx = 0; xx < other.width(); ++xx) set(x + xx, y + yy, other.get(xx, yy));
}

std::string Canvas::encode_png() const {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = static_cast<png_uint_32>(width_);
  img.height = static_cast<png_uint_32>(height_);
  img.format = PNG_FORMAT_RGB;
  png_alloc_size_t size = 0;
  BEVKD_CHECK(png_image_write_to_memory(&img, nullptr, &size, 0, pixels_.data(), 0, nullptr),
              "PNG encoding failed: ", img.message);
  std::string out(size, '\0');
  BEVKD_CHECK(png_image_write_to_memory(&img, out.data(), &size, 0, pixels_.data(), 0, nullptr),
              "PNG encoding failed: ", img.message);
  out.resize(size);
  png_image_free(&img);
  return out;
}

void Canvas::save_png(const std::string& path) const {
  try {
    write_file_atomic(path, encode_png());
  } catch (const Error& e) {
    BEVKD_FAIL("cannot write PNG ", path, ": ", e.what());
  }
}

Canvas load_png(const std::string& path) {
  const std::string bytes = read_file(path);
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  BEVKD_CHECK(png_image_begin_read_from_memory(&img, bytes.data(), bytes.size()), path,
              ": not a readable PNG (", img.message, ")");
  img.format = PNG_FORMAT_RGB;
  std::vector<std::uint8_t> buf(PNG_IMAGE_SIZE(img));
  const bool ok = png_image_finish_read(&img, nullptr, buf.data(), 0, nullptr);
  const std::string msg = img.message;
  png_image_free(&img);
  BEVKD_CHECK(ok, path, ": PNG decoding failed (", msg, ")");
  Canvas c(static_cast<int>(img.width), static_cast<int>(img.height));
  for (int y = 0; y < c.height(); ++y)
    for (int x = 0; x < c.width(); ++x) {
      const std::size_t i = (static_cast<std::size_t>(y) * c.width() + x) * 3;
      c.set(x, y, {buf[i], buf[i + 1], buf[i + 2]});
    }
  return c;
}

std::string encode_png_gray(const std::uint8_t* pixels, int width, int height) {
  BEVKD_CHECK(width > 0 && height > 0, "encode_png_gray: image size ", width, "x", height, " is empty");
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = static_cast<png_uint_32>(width);
  img.height = static_cast<png_uint_32>(height);
  img.format = PNG_FORMAT_GRAY;
  png_alloc_size_t size = 0;
  BEVKD_CHECK(png_image_write_to_memory(&img, nullptr, &size, 0, pixels, 0, nullptr), "PNG encoding failed: ",
              img.message);
  std::string out(size, '\0');
  BEVKD_CHECK(png_image_write_to_memory(&img, out.data(), &size, 0, pixels, 0, nullptr), "PNG encoding failed: ",
              img.message);
  out.resize(size);
  png_image_free(&img);
  return out;
}

GrayImage load_png_gray(const std::string& path) {
  const std::string bytes = read_file(path);
  // The colour type as stored (IHDR, bytes 24-25: bit depth, colour type), not as converted.
  BEVKD_CHECK(bytes.size() > 26 && bytes.compare(12, 4, "IHDR") == 0, path, ": not a readable PNG");
  const int depth = static_cast<unsigned char>(bytes[24]), colour = static_cast<unsigned char>(bytes[25]);
  BEVKD_CHECK(colour == 0 && depth == 8, path, ": PNG colour type ", colour, ", bit depth ", depth,
              ", expected single-channel 8-bit (colour type 0, bit depth 8)");
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  BEVKD_CHECK(png_image_begin_read_from_memory(&img, bytes.data(), bytes.size()), path,
              ": not a readable PNG (", img.message, ")");
  img.format = PNG_FORMAT_GRAY;
  GrayImage g;
  g.width = static_cast<int>(img.width);
  g.height = static_cast<int>(img.height);
  g.pixels.resize(PNG_IMAGE_SIZE(img));
  const bool ok = png_image_finish_read(&img, nullptr, g.pixels.data(), 0, nullptr);
  const std::string msg = img.message;
  png_image_free(&img);
  BEVKD_CHECK(ok, path, ": PNG decoding failed (", msg, ")");
  return g;
}

}  // namespace bevkd
