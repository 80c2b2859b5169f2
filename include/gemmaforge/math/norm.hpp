#pragma once
// RMSNorm of Gemma: y = x * rsqrt(mean(x^2) + eps) * g, g = 1 + w, in f32 — HF's
//   x.float() * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)  then  * (1.0 + w.float()),
// with torch's rsqrt being 1 / sqrt (a correctly rounded sqrt, then a division). The mean is the
// canonical 16-lane sum of squares (math/reduce.hpp) divided by n; torch sums in another order,
// so the results agree to a few ulp, not bit for bit.
//
// Norm weights are bound as gains once (model/weights.hpp): HF files store w, GGUF files store
// w + 1 already, so the binder calls gemma_norm_gain() for HF weights only and kernels never add 1.
#include <cmath>

#include <gemmaforge/core/macros.hpp>
#include <gemmaforge/math/reduce.hpp>

namespace gemmaforge::math {

GF_HOST_DEVICE constexpr float gemma_norm_gain(float w) { return 1.0f + w; }

// 1 / sqrt(mean(x^2) + eps): the factor every element of the row is multiplied by.
GF_HOST_DEVICE float rms_inv(const float* x, int n, float eps) {
  const float mean = sum_squares(x, n) / float(n);
  return 1.0f / sqrtf(mean + eps);
}

// y[i] = (x[i] * r) * g[i]: two roundings, in HF's order. In place (y == x) is fine.
GF_HOST_DEVICE void rmsnorm_row(const float* x, const float* gain, float* y, int n, float eps) {
  const float r = rms_inv(x, n, eps);
  for (int i = 0; i < n; ++i) y[i] = (x[i] * r) * gain[i];
}

}  // namespace gemmaforge::math
