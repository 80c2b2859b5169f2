#pragma once
// log(sum_i exp(x_i)) over a row of logits: the normalizer of log_softmax, which perplexity
// evaluates for every scored row over the whole vocabulary (262144 exponentials a row). The
// order every schedule follows (so the scalar reference, AVX2 and AVX-512 give the same bits):
//   m = max_i x_i; if m is not finite (an empty or all -inf row), the result is m;
//   16 double lanes, element i adds double(exp_f32(x_i - m)) to lane i % 16 in ascending i
//   (an x_i = -inf adds exactly 0: exp_f32 returns 0 below -88);
//   s = the lanes summed by reduce.hpp's tree (in double); result m + log(s).
// exp_f32 (<= 2 ulp) instead of a libm double exp: the lanes in double keep the sum of 2^18 terms
// from drifting; the whole row's relative error stays ~1e-7, far below what perplexity shows.
// The host runs it through cpu::log_sum_exp (backend/cpu/ops.hpp: 0.1 ms for a 262144-entry row on
// AVX-512, against 1.5 ms for a libm double exp per entry and ~8 ms for this scalar form on a
// baseline x86-64 build, where fmaf and rintf are library calls). runtime/logprobs.hpp keeps its
// own double-exp sum: the scheduler includes no backend, and one row per sampled token is cheap.
#include <cmath>
#include <cstdint>

#include <gemmaforge/core/macros.hpp>
#include <gemmaforge/math/exp.hpp>
#include <gemmaforge/math/reduce.hpp>

namespace gemmaforge::math {

// The maximum, -inf for n = 0 (NaN elements are skipped).
GF_HOST_DEVICE float row_max(const float* x, std::int64_t n) {
  float m = -INFINITY;
  for (std::int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// The scalar reference; `m` = row_max(x, n), finite.
GF_HOST_DEVICE double log_sum_exp_from(const float* x, std::int64_t n, float m) {
  double lane[reduce_lanes] = {};
  for (std::int64_t i = 0; i < n; ++i) lane[i % reduce_lanes] += double(exp_f32(x[i] - m));
  return double(m) + std::log(tree_sum16(lane));
}

GF_HOST_DEVICE double log_sum_exp(const float* x, std::int64_t n) {
  const float m = row_max(x, n);
  if (!std::isfinite(m)) return double(m);
  return log_sum_exp_from(x, n, m);
}

}  // namespace gemmaforge::math
