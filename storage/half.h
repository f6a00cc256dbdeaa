// IEEE 754 binary16 ("float16") <-> float32 conversion, bit-exact, without compiler support for
// _Float16: teacher tensors are stored as float16 and bevkd-inspect, the tests and the fixtures
// need to read and write them on any CPU.
//
// float_to_half rounds to nearest, ties to even; overflow gives +-inf, NaN stays NaN (quiet),
// values below the smallest subnormal round to +-0. half_to_float is exact.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bevkd::storage {

float half_to_float(std::uint16_t h);
std::uint16_t float_to_half(float f);

// Bulk conversions of n elements (the buffers must not overlap).
void half_to_float(const std::uint16_t* src, float* dst, std::size_t n);
void float_to_half(const float* src, std::uint16_t* dst, std::size_t n);

inline bool half_is_finite(std::uint16_t h) { return (h & 0x7C00u) != 0x7C00u; }

}  // namespace bevkd::storage
