// A small RGB raster canvas for the pictures bevkd writes (bevkd-inspect render, PR curves,
// training plots): pixels, lines, rectangles, polygons, circles, text in a built-in 5x7 bitmap
// font, colour maps, and PNG output through libpng. No LibTorch.
//
// Coordinates are pixels: x to the right, y down, (0, 0) the top-left pixel's centre.
// Everything outside the canvas is clipped silently.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bevkd {

struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb& o) const { return r == o.r && g == o.g && b == o.b; }
};

namespace colors {
inline constexpr Rgb kBlack{0, 0, 0};
inline constexpr Rgb kWhite{255, 255, 255};
inline constexpr Rgb kGrey{128, 128, 128};
inline constexpr Rgb kLightGrey{220, 220, 220};
inline constexpr Rgb kRed{228, 26, 28};
inline constexpr Rgb kGreen{77, 175, 74};
inline constexpr Rgb kBlue{55, 126, 184};
inline constexpr Rgb kOrange{255, 127, 0};
inline constexpr Rgb kPurple{152, 78, 163};
inline constexpr Rgb kYellow{255, 221, 0};
inline constexpr Rgb kCyan{0, 190, 210};
// A qualitative palette of 10 distinguishable colours (one per detection class).
Rgb categorical(int k);
// Perceptually ordered maps for t in [0, 1] (clamped; NaN -> magenta).
Rgb viridis(double t);
Rgb inferno(double t);
}  // namespace colors

class Canvas {
 public:
  Canvas(int width, int height, Rgb background = colors::kWhite);

  int width() const { return width_; }
  int height() const { return height_; }
  Rgb get(int x, int y) const;
  const std::vector<std::uint8_t>& rgb() const { return pixels_; }  // row-major, 3 bytes/pixel

  // Drawing (set, blend and everything built on them) touches only pixels inside the clip
  // rectangle (inclusive corners; default: the whole canvas). fill() ignores it.
  void set_clip(int x0, int y0, int x1, int y1);
  void reset_clip();

  void set(int x, int y, Rgb c);
  // Alpha-blends c over the pixel (alpha in [0, 1]).
  void blend(int x, int y, Rgb c, double alpha);
  void fill(Rgb c);
  void fill_rect(int x0, int y0, int x1, int y1, Rgb c);  // inclusive corners
  void rect(int x0, int y0, int x1, int y1, Rgb c, int thickness = 1);
  // Line between two real-valued points (Bresenham on rounded ends), `thickness` pixels wide.
  void line(double x0, double y0, double x1, double y1, Rgb c, int thickness = 1);
  void dashed_line(double x0, double y0, double x1, double y1, Rgb c, int dash = 4, int thickness = 1);
  // Closed polygon outline through the points (x, y pairs).
  void polygon(const std::vector<std::array<double, 2>>& pts, Rgb c, int thickness = 1);
  void circle(double cx, double cy, double radius, Rgb c, bool filled = false);

  // Text in the built-in 5x7 font (ASCII 32..126; other bytes draw as '?'), top-left at
  // (x, y), each font pixel drawn as a scale x scale block; 6*scale pixels per character.
  void text(int x, int y, std::string_view s, Rgb c, int scale = 1);
  static int text_width(std::string_view s, int scale = 1) { return static_cast<int>(s.size()) * 6 * scale; }
  static int text_height(int scale = 1) { return 7 * scale; }
  // Text rotated 90 degrees counter-clockwise (reading bottom to top), for y-axis labels;
  // (x, y) is the bottom-left corner of the rotated text.
  void text_vertical(int x, int y, std::string_view s, Rgb c, int scale = 1);

  // Copies another canvas with its top-left at (x, y).
  void paste(const Canvas& other, int x, int y);

  // Writes an 8-bit RGB PNG. Throws bevkd::Error naming the path on failure. Written
  // atomically (temporary file + rename).
  void save_png(const std::string& path) const;
  // Encodes to PNG bytes in memory.
  std::string encode_png() const;

 private:
  bool drawable(int x, int y) const;

  int width_, height_;
  std::vector<std::uint8_t> pixels_;
  std::array<int, 4> clip_{};  // x0, y0, x1, y1
};

// Decodes an 8-bit RGB or RGBA PNG (alpha dropped); for tests and tools.
Canvas load_png(const std::string& path);

// An 8-bit single-channel image, row-major [height, width] (e.g. a map mask).
struct GrayImage {
  int width = 0, height = 0;
  std::vector<std::uint8_t> pixels;
};
// Encodes 8-bit gray pixels [height, width] as a single-channel PNG (colour type 0, bit depth 8).
std::string encode_png_gray(const std::uint8_t* pixels, int width, int height);
// Decodes a single-channel 8-bit PNG; throws bevkd::Error naming the path for any other format
// (colour, alpha, palette, 16-bit) or an unreadable file.
GrayImage load_png_gray(const std::string& path);

}  // namespace bevkd
