#pragma once
// Counter-based random numbers shared by the CPU and CUDA samplers: the u-th draw of a request is
// a pure function of (seed, counter), so the same seed and inputs give the same tokens on a
// backend, whatever else runs in the batch and in whatever order rows are processed.
#include <cstdint>

#include <gemmaforge/core/macros.hpp>

namespace gemmaforge {

// SplitMix64 finaliser: a bijective 64-bit mixer with full avalanche.
GF_HOST_DEVICE constexpr std::uint64_t mix64(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Uniform float in [0, 1) with 24 random bits (every value exactly representable).
GF_HOST_DEVICE constexpr float uniform01(std::uint64_t seed, std::uint64_t counter) {
  const std::uint64_t r = mix64(seed ^ mix64(counter + 0x632be59bd9b4e019ull));
  return float(r >> 40) * (1.0f / 16777216.0f);
}

}  // namespace gemmaforge
