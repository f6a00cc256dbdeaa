// bevkd's one seeded random generator: xoshiro256** seeded by splitmix64, with its own uniform,
// normal, bounded-integer and shuffle draws. The standard library's distributions and
// std::shuffle are implementation-defined; these give the same numbers on every platform, so a
// seed means the same dataset (bevkd-synth), the same epoch order (ShardStream), the same
// augmentation and the same masks everywhere.
//
// Keyed streams: every random choice that must not depend on how work is split (threads,
// workers, ranks) draws from Rng(mix_keys(seed, epoch, sample, ...)), never from a shared
// generator.
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace bevkd {

inline std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Mixes several integers into one 64-bit key (order matters).
inline std::uint64_t mix_keys(std::uint64_t a, std::uint64_t b = 0, std::uint64_t c = 0, std::uint64_t d = 0) {
  std::uint64_t s = a;
  std::uint64_t h = splitmix64(s);
  s = h ^ b;
  h = splitmix64(s);
  s = h ^ c;
  h = splitmix64(s);
  s = h ^ d;
  return splitmix64(s);
}

class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    for (auto& x : s_) x = splitmix64(seed);
  }
  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double a, double b) { return a + (b - a) * uniform(); }
  int uniform_int(int n) { return static_cast<int>(uniform() * n); }  // [0, n)
  // Uniform in [0, n) without modulo bias (rejection sampling); n >= 1.
  std::uint64_t below(std::uint64_t n) {
    const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % n);
    std::uint64_t x;
    do x = next();
    while (x >= limit);
    return x % n;
  }
  // Fisher-Yates over [first, last).
  template <typename It>
  void shuffle(It first, It last) {
    const auto n = static_cast<std::uint64_t>(last - first);
    for (std::uint64_t i = n; i > 1; --i) std::swap(*(first + static_cast<std::ptrdiff_t>(i - 1)), *(first + static_cast<std::ptrdiff_t>(below(i))));
  }
  template <typename T>
  void shuffle(std::vector<T>& v) { shuffle(v.begin(), v.end()); }
  bool chance(double p) { return uniform() < p; }
  double normal() {  // Box-Muller
    double u = uniform();
    while (u <= 0) u = uniform();
    const double v = uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
  }
  double normal(double mean, double sd) { return mean + sd * normal(); }
  // A cheap approximately normal draw (sum of four 16-bit uniforms, unit variance, |x| < 3.5)
  // for per-point and per-pixel sensor noise.
  double approx_normal() {
    const std::uint64_t b = next();
    const double sum = static_cast<double>(b & 0xFFFF) + static_cast<double>((b >> 16) & 0xFFFF) +
                       static_cast<double>((b >> 32) & 0xFFFF) + static_cast<double>(b >> 48);
    return (sum / 65536.0 - 2.0) * 1.7320508075688772;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

// A 64-bit key of a string (FNV-1a), for keyed streams named by tokens: mix_keys(seed, key_of(token)).
inline std::uint64_t key_of(std::string_view s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace bevkd
