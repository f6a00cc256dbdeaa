#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "storage/half.h"
#include "storage/quantize.h"

namespace bevkd::storage {
namespace {

TEST(Half, EveryHalfRoundTripsThroughFloat) {
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    const float f = half_to_float(static_cast<std::uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_EQ(float_to_half(f) & 0x7C00u, 0x7C00u);
      EXPECT_NE(float_to_half(f) & 0x03FFu, 0u) << h;
      continue;
    }
    EXPECT_EQ(float_to_half(f), h) << "half 0x" << std::hex << h << " -> " << f;
  }
}

TEST(Half, KnownValues) {
  EXPECT_EQ(float_to_half(1.0f), 0x3C00);
  EXPECT_EQ(float_to_half(-2.0f), 0xC000);
  EXPECT_EQ(float_to_half(65504.0f), 0x7BFF);
  EXPECT_EQ(float_to_half(65520.0f), 0x7C00);  // ties to even -> overflow to inf
  EXPECT_EQ(float_to_half(65519.0f), 0x7BFF);
  EXPECT_EQ(float_to_half(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(float_to_half(5.960464477539063e-08f), 0x0001);  // smallest subnormal
  EXPECT_EQ(float_to_half(2.9802322387695312e-08f), 0x0000);  // half of it: tie to even -> 0
  EXPECT_EQ(float_to_half(6.103515625e-05f), 0x0400);  // smallest normal
  EXPECT_EQ(half_to_float(0x3555), 0.333251953125f);
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even (1.0); 1 + 3*2^-11 rounds up.
  EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3C00);
  EXPECT_EQ(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
}

TEST(Half, RoundingIsToNearest) {
  // For many floats, the chosen half is at least as close as its neighbours.
  for (int k = 0; k < 20000; ++k) {
    const float f = std::ldexp(static_cast<float>(k * 7919 % 10007) / 10007.0f + 0.5f, (k % 40) - 24) * (k % 2 ? 1 : -1);
    const std::uint16_t h = float_to_half(f);
    const double err = std::fabs(double(half_to_float(h)) - f);
    for (int d : {-1, 1}) {
      const std::uint16_t n = static_cast<std::uint16_t>(h + d);
      if ((n & 0x7C00) == 0x7C00 || ((n ^ h) & 0x8000)) continue;
      EXPECT_LE(err, std::fabs(double(half_to_float(n)) - f)) << f;
    }
  }
}

TEST(Quantize, PerChannelSymmetricInt8WithinHalfAStep) {
  const std::int64_t C = 3, HW = 50;
  std::vector<float> x(C * HW);
  for (std::int64_t i = 0; i < C * HW; ++i) x[i] = (i / HW == 1) ? 0.f : std::sin(0.37f * i) * (1 + i / HW);
  std::vector<std::int8_t> q(C * HW);
  std::vector<float> scale(C), back(C * HW);
  quantize_int8(x.data(), C, HW, q.data(), scale.data());
  EXPECT_FLOAT_EQ(scale[1], 1.f);  // all-zero channel
  dequantize_int8(q.data(), scale.data(), C, HW, back.data());
  for (std::int64_t i = 0; i < C * HW; ++i) EXPECT_LE(std::fabs(back[i] - x[i]), scale[i / HW] / 2 + 1e-7f) << i;
  EXPECT_EQ(*std::max_element(q.begin(), q.begin() + HW), 127);
}

}  // namespace
}  // namespace bevkd::storage
