// A small deterministic random generator for the synthetic dataset: xoshiro256** seeded by
// splitmix64, with its own uniform and normal draws (the standard library's distributions
// differ between implementations; these give the same numbers everywhere).
#pragma once

#include <cmath>
#include <cstdint>

namespace bevkd::core::synth {

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

}  // namespace bevkd::core::synth
