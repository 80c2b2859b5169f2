#pragma once
// One query row of attention in the canonical order, spelled out step by step with the math/
// functions (the host compiles them with -ffp-contract=off): the scale folded into the query
// (math::attention_scaled_query), q.k as math::dot_f32, tiles of 16 keys anchored at multiples of
// 16, splits of `split_tokens` positions anchored at multiples of it, each from the empty state,
// merged in ascending order. tests/unit/attention_order_test.cpp ties it to the CPU backend bit for
// bit and tests/cuda/reference.hpp uses it for the CUDA kernels, so CPU == reference == CUDA.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include <gemmaforge/math/attention_order.hpp>
#include <gemmaforge/math/exp.hpp>
#include <gemmaforge/math/reduce.hpp>
#include <gemmaforge/math/softcap.hpp>
#include <gemmaforge/math/softmax.hpp>

namespace gf_test {

// key(pos, dst) / value(pos, dst) write the decoded D-vector of position pos; out gets D floats.
template <class KeyFn, class ValueFn>
void canonical_attention_row(const float* q, int D, int lo, int p, float scale, float cap, int split_tokens, KeyFn key,
                             ValueFn value, float* out) {
  namespace m = gemmaforge::math;
  std::vector<float> qs(static_cast<std::size_t>(D));
  for (int d = 0; d < D; ++d) qs[std::size_t(d)] = m::attention_scaled_query(q[d], scale);
  m::softmax_state run;
  std::vector<float> acc_run(static_cast<std::size_t>(D), 0.0f), kk(static_cast<std::size_t>(D));
  std::vector<std::vector<float>> vv(16, std::vector<float>(static_cast<std::size_t>(D)));
  for (int sp = lo / split_tokens; sp <= p / split_tokens; ++sp) {
    const int a_lo = std::max(lo, sp * split_tokens), a_hi = std::min(p + 1, (sp + 1) * split_tokens);
    m::softmax_state st;
    std::vector<float> acc(static_cast<std::size_t>(D), 0.0f);
    for (int t0 = a_lo / 16 * 16; t0 < a_hi; t0 += 16) {
      float s[16] = {}, pj[16];
      bool valid[16];
      float tmax = -INFINITY;
      for (int j = 0; j < 16; ++j) {
        const int pos = t0 + j;
        valid[j] = pos >= a_lo && pos < a_hi;
        if (!valid[j]) continue;
        key(pos, kk.data());
        value(pos, vv[std::size_t(j)].data());
        float x = m::dot_f32(qs.data(), kk.data(), D);
        if (cap > 0.0f) x = m::softcap_exp(x, cap);
        s[j] = x;
        tmax = std::fmax(tmax, x);
      }
      const float m_new = std::fmax(st.m, tmax);
      const float alpha = m::softmax_rescale(st.m, m_new);
      for (int j = 0; j < 16; ++j) pj[j] = valid[j] ? m::exp_f32(s[j] - m_new) : 0.0f;
      float lanes[16];
      std::memcpy(lanes, pj, sizeof lanes);
      st.l = st.l * alpha + m::tree_sum16(lanes);
      for (int d = 0; d < D; ++d) {
        float& a = acc[std::size_t(d)];
        a = a * alpha;
        for (int j = 0; j < 16; ++j)
          if (valid[j]) a = std::fma(pj[j], vv[std::size_t(j)][std::size_t(d)], a);
      }
      st.m = m_new;
    }
    m::softmax_merge(run, acc_run.data(), st, acc.data(), D);
  }
  for (int d = 0; d < D; ++d) out[d] = acc_run[std::size_t(d)] / run.l;
}

}  // namespace gf_test
