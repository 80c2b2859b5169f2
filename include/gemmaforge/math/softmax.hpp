#pragma once
// Online softmax (running max m, running sum l, and an accumulator the caller owns), with a
// merge for split-K partials. Canonical order, followed by the CPU attention (scalar and SIMD)
// and meant for CUDA:
//   keys are taken in tiles of 16 consecutive positions (aligned to absolute position 16k);
//   per tile:  m' = max(m, max_j s_j);  alpha = exp(m - m');  p_j = exp(s_j - m')  (masked: 0)
//              l = l * alpha + tree_sum16(p);   acc = acc * alpha, then acc += p_j * v_j for the
//              tile's valid keys in ascending position (fmaf)
//   splits (fixed ranges of absolute positions) are merged in ascending order with merge();
//   output = acc / l.
// Because tiles and splits are anchored to absolute positions, a query's result does not depend
// on how the prompt was chunked, how many tokens share the step, or how many threads ran it.
#include <cmath>

#include <gemmaforge/core/macros.hpp>
#include <gemmaforge/math/exp.hpp>

namespace gemmaforge::math {

inline constexpr int softmax_tile = 16;

struct softmax_state {
  float m = -INFINITY;  // running max of the logits seen
  float l = 0.0f;       // running sum of exp(logit - m)
};

// exp(a - b) with the convention exp(-inf - -inf) = 0 (an empty state merges as identity).
GF_HOST_DEVICE float softmax_rescale(float m_old, float m_new) { return exp_f32(m_old - m_new); }

// Merge partial b into a (acc_a, acc_b: n values each): the split-K combine.
GF_HOST_DEVICE void softmax_merge(softmax_state& a, float* acc_a, const softmax_state& b, const float* acc_b, int n) {
  const float m = fmaxf(a.m, b.m);
  const float alpha_a = softmax_rescale(a.m, m);
  const float alpha_b = softmax_rescale(b.m, m);
  a.l = a.l * alpha_a + b.l * alpha_b;
  for (int i = 0; i < n; ++i) acc_a[i] = acc_a[i] * alpha_a + acc_b[i] * alpha_b;
  a.m = m;
}

}  // namespace gemmaforge::math
