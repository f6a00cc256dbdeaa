// The int8 variant of teacher features (schemas/shard_v1.json, teacher/features/{tap}):
// symmetric per-channel quantisation, value = q * scale[c].
#pragma once

#include <cstdint>

namespace bevkd::storage {

// x [C, HW] (float16 bits, or float32) -> q [C, HW] int8 and scale [C] float32 with
// scale[c] = max_i |x[c, i]| / 127 (1 for an all-zero channel), q = round(x / scale) in
// [-127, 127]. The round trip error is at most scale[c] / 2 per element.
void quantize_int8(const std::uint16_t* x_half, std::int64_t C, std::int64_t HW, std::int8_t* q, float* scale);
void quantize_int8(const float* x, std::int64_t C, std::int64_t HW, std::int8_t* q, float* scale);
// out [C, HW] float32 = q * scale[c].
void dequantize_int8(const std::int8_t* q, const float* scale, std::int64_t C, std::int64_t HW, float* out);

}  // namespace bevkd::storage
