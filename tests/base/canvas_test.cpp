#include "tests/support/expect_error.h"
#include "base/canvas.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "base/error.h"
#include "base/fs.h"

namespace bevkd {
namespace {

TEST(Canvas, PngRoundTripKeepsEveryPixel) {
  Canvas c(37, 21, colors::kWhite);
  for (int y = 0; y < c.height(); ++y)
    for (int x = 0; x < c.width(); ++x)
      c.set(x, y, {static_cast<std::uint8_t>(x * 7), static_cast<std::uint8_t>(y * 11),
                   static_cast<std::uint8_t>((x * y) % 256)});
  const std::string path =
      (std::filesystem::temp_directory_path() / ("bevkd_canvas_" + std::to_string(::getpid()) + ".png")).string();
  c.save_png(path);
  const Canvas back = load_png(path);
  ASSERT_EQ(back.width(), 37);
  ASSERT_EQ(back.height(), 21);
  EXPECT_EQ(back.rgb(), c.rgb());
  std::filesystem::remove(path);
}

TEST(Canvas, DrawingIsClippedAndExact) {
  Canvas c(10, 10, colors::kBlack);
  c.line(-5, 5, 20, 5, colors::kRed);  // clipped horizontal line
  for (int x = 0; x < 10; ++x) EXPECT_EQ(c.get(x, 5), colors::kRed);
  EXPECT_EQ(c.get(0, 4), colors::kBlack);
  c.fill_rect(2, 2, 3, 3, colors::kGreen);
  EXPECT_EQ(c.get(2, 2), colors::kGreen);
  EXPECT_EQ(c.get(3, 3), colors::kGreen);
  EXPECT_EQ(c.get(4, 4), colors::kBlack);
  c.line(NAN, 0, 3, 3, colors::kBlue);  // ignored, no crash
  c.blend(9, 9, colors::kWhite, 0.5);
  EXPECT_EQ(c.get(9, 9).r, 128);
}

TEST(Canvas, ClipRectangleLimitsDrawing) {
  Canvas c(10, 10, colors::kBlack);
  c.set_clip(2, 2, 5, 5);
  c.line(0, 3, 9, 3, colors::kRed);
  for (int x = 0; x < 10; ++x) EXPECT_EQ(c.get(x, 3), (x >= 2 && x <= 5) ? colors::kRed : colors::kBlack) << x;
  c.blend(7, 7, colors::kWhite, 1.0);
  EXPECT_EQ(c.get(7, 7), colors::kBlack);
  c.reset_clip();
  c.line(0, 8, 9, 8, colors::kGreen);
  EXPECT_EQ(c.get(0, 8), colors::kGreen);
  EXPECT_EQ(c.get(9, 8), colors::kGreen);
}

TEST(Canvas, TextUsesTheBitmapFont) {
  Canvas c(12, 7, colors::kWhite);
  c.text(0, 0, "I-", colors::kBlack);
  // 'I' row 0 = 0x0E -> columns 1..3 set
  EXPECT_EQ(c.get(0, 0), colors::kWhite);
  EXPECT_EQ(c.get(1, 0), colors::kBlack);
  EXPECT_EQ(c.get(3, 0), colors::kBlack);
  EXPECT_EQ(c.get(4, 0), colors::kWhite);
  // '-' starts at x = 6, row 3 = 0x1F
  for (int x = 6; x < 11; ++x) EXPECT_EQ(c.get(x, 3), colors::kBlack);
  EXPECT_EQ(c.get(6, 2), colors::kWhite);
  EXPECT_EQ(Canvas::text_width("abc", 2), 36);
}

TEST(Canvas, ColorMapsAreOrderedAndHandleNan) {
  EXPECT_EQ(colors::viridis(0.0), (Rgb{68, 1, 84}));
  EXPECT_EQ(colors::viridis(1.0), (Rgb{253, 231, 37}));
  EXPECT_EQ(colors::viridis(7.0), colors::viridis(1.0));
  EXPECT_EQ(colors::inferno(NAN), (Rgb{255, 0, 255}));
  EXPECT_FALSE(colors::categorical(0) == colors::categorical(1));
}

TEST(Canvas, GrayPngRoundTripAndColourPngsAreNotGray) {
  std::vector<std::uint8_t> px(7 * 5);
  for (std::size_t i = 0; i < px.size(); ++i) px[i] = static_cast<std::uint8_t>(i * 7);
  const std::string dir = std::filesystem::temp_directory_path().string();
  const std::string gray = dir + "/bevkd_gray_" + std::to_string(::getpid()) + ".png";
  write_file_atomic(gray, encode_png_gray(px.data(), 7, 5));
  const std::string bytes = read_file(gray);
  EXPECT_EQ(static_cast<int>(bytes[25]), 0) << "IHDR colour type: gray";
  EXPECT_EQ(static_cast<int>(bytes[24]), 8) << "IHDR bit depth";
  const GrayImage g = load_png_gray(gray);
  EXPECT_EQ(g.width, 7);
  EXPECT_EQ(g.height, 5);
  EXPECT_EQ(g.pixels, px);
  const std::string rgb = dir + "/bevkd_rgb_" + std::to_string(::getpid()) + ".png";
  Canvas(4, 4, Rgb{1, 2, 3}).save_png(rgb);
  try {
    load_png_gray(rgb);
    ADD_FAILURE() << "an RGB PNG read as gray";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("PNG colour type 2, bit depth 8, expected single-channel 8-bit"),
              std::string::npos)
        << e.what();
  }
  std::remove(gray.c_str());
  std::remove(rgb.c_str());
}

TEST(Canvas, BadSizeAndUnreadablePngAreErrors) {
  EXPECT_ERROR_WITH(Canvas(0, 5), "canvas size must be 1..32768 pixels per side, found 0x5");
  const std::string path =
      (std::filesystem::temp_directory_path() / ("bevkd_notpng_" + std::to_string(::getpid()) + ".png")).string();
  {
    FILE* f = std::fopen(path.c_str(), "w");
    std::fputs("definitely not a png", f);
    std::fclose(f);
  }
  try {
    load_png(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ": not a readable PNG"), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace bevkd
