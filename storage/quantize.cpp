#include "storage/quantize.h"

#include <algorithm>
#include <cmath>

#include "storage/half.h"

namespace bevkd::storage {
namespace {

template <typename Get>
void quantize(Get get, std::int64_t C, std::int64_t HW, std::int8_t* q, float* scale) {
  for (std::int64_t c = 0; c < C; ++c) {
    float m = 0.f;
    for (std::int64_t i = 0; i < HW; ++i) m = std::max(m, std::fabs(get(c * HW + i)));
    const float s = m > 0.f ? m / 127.f : 1.f;
    scale[c] = s;
    for (std::int64_t i = 0; i < HW; ++i) {
      const float v = std::nearbyint(get(c * HW + i) / s);
      q[c * HW + i] = static_cast<std::int8_t>(std::clamp(v, -127.f, 127.f));
    }
  }
}

}  // namespace

void quantize_int8(const std::uint16_t* x_half, std::int64_t C, std::int64_t HW, std::int8_t* q, float* scale) {
  quantize([x_half](std::int64_t i) { return half_to_float(x_half[i]); }, C, HW, q, scale);
}

void quantize_int8(const float* x, std::int64_t C, std::int64_t HW, std::int8_t* q, float* scale) {
  quantize([x](std::int64_t i) { return x[i]; }, C, HW, q, scale);
}

void dequantize_int8(const std::int8_t* q, const float* scale, std::int64_t C, std::int64_t HW, float* out) {
  for (std::int64_t c = 0; c < C; ++c)
    for (std::int64_t i = 0; i < HW; ++i) out[c * HW + i] = static_cast<float>(q[c * HW + i]) * scale[c];
}

}  // namespace bevkd::storage
