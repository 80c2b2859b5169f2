#pragma once
// The canonical summation order of gemmaforge: 16 lane accumulators (element i goes to lane
// i % 16, accumulated in ascending i), then a pairwise tree over lanes: l += l + 8, l += l + 4,
// l += l + 2, l += l + 1. One AVX-512 register, two AVX2 registers (lanes 0-7 and 8-15) and a
// CUDA half-warp all hold the 16 lanes naturally, so every schedule that follows this order gets
// the same bits, and a row's sum never depends on what else is being computed (batch invariance).
//
// Numerics assume no floating-point contraction beyond the explicit fmaf calls (the gemmaforge
// CMake target adds -ffp-contract=off; GCC's ISO modes default to it).
#include <cmath>

#include <gemmaforge/core/macros.hpp>

namespace gemmaforge::math {

inline constexpr int reduce_lanes = 16;

// Tree over 16 lanes (destroys `lane`).
GF_HOST_DEVICE float tree_sum16(float* lane) {
  for (int w = 8; w >= 1; w /= 2)
    for (int l = 0; l < w; ++l) lane[l] = lane[l] + lane[l + w];
  return lane[0];
}

// The same tree in double (math/log_sum_exp.hpp's lanes).
GF_HOST_DEVICE double tree_sum16(double* lane) {
  for (int w = 8; w >= 1; w /= 2)
    for (int l = 0; l < w; ++l) lane[l] = lane[l] + lane[l + w];
  return lane[0];
}

// Tree over 8 lanes (destroys `lane`): l += l + 4, l += l + 2, l += l + 1.
GF_HOST_DEVICE float tree_sum8(float* lane) {
  for (int w = 4; w >= 1; w /= 2)
    for (int l = 0; l < w; ++l) lane[l] = lane[l] + lane[l + w];
  return lane[0];
}

// Canonical dot product sum_i a[i] * b[i] (fmaf per element).
GF_HOST_DEVICE float dot_f32(const float* a, const float* b, int n) {
  float lane[16] = {};
  for (int i = 0; i < n; ++i) lane[i % 16] = fmaf(a[i], b[i], lane[i % 16]);
  return tree_sum16(lane);
}

// Canonical sum of squares sum_i x[i]^2.
GF_HOST_DEVICE float sum_squares(const float* x, int n) {
  float lane[16] = {};
  for (int i = 0; i < n; ++i) lane[i % 16] = fmaf(x[i], x[i], lane[i % 16]);
  return tree_sum16(lane);
}

}  // namespace gemmaforge::math
