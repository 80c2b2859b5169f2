#pragma once
// Host references for the [cuda] tests that spell out the canonical orders step by step, with the
// math/ functions (compiled with -ffp-contract=off), so the kernels can be checked bit for bit.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include <gemmaforge/kv/kv_codec.hpp>
#include <gemmaforge/kv/kv_pool.hpp>
#include <gemmaforge/math/exp.hpp>
#include <gemmaforge/math/reduce.hpp>
#include <gemmaforge/math/softcap.hpp>
#include <gemmaforge/math/softmax.hpp>
#include <gemmaforge/runtime/step.hpp>

namespace gf_cuda_test {

namespace gf = gemmaforge;

// Attention in the canonical order of backend/cuda/attention.cuh and math/softmax.hpp, over a host
// pool that does not hold this step's keys yet (they come from k/v, rounded through the codec).
template <class Model, class Kv>
void canonical_attention(gf::kv_pool<Model, Kv>& pool, int layer, const gf::step_batch& batch, const float* q,
                         const float* k, const float* v, int window, float scale, float cap, int split_tokens, float* out) {
  constexpr int H = Model::heads, KVH = Model::kv_heads, D = Model::head_dim, G = H / KVH;
  for (int si = 0; si < batch.n_seqs; ++si) {
    const gf::step_sequence& sq = batch.seqs[si];
    const gf::kv_cache_view cache = pool.view(sq.slot, layer).as_const();
    auto load = [&](const float* fresh, const void* plane, const float* scales, int pos, int kvh, float* dst) {
      if (pos >= sq.start) {
        std::memcpy(dst, fresh + (std::size_t(sq.first_row + pos - sq.start) * KVH + kvh) * D, D * sizeof(float));
        gf::kv_round_trip<Kv>(dst, D);
      } else {
        const float sc = scales ? scales[cache.scale_offset(pos, kvh)] : 1.0f;
        const Kv* p = static_cast<const Kv*>(plane) + cache.offset(pos, kvh);
        for (int d = 0; d < D; ++d) dst[d] = gf::kv_decode<Kv>(p[d], sc);
      }
    };
    for (int i = 0; i < sq.n_tokens; ++i) {
      const int p = sq.start + i;
      const int lo = window > 0 ? std::max(0, p - window + 1) : 0;
      for (int h = 0; h < H; ++h) {
        const float* qh = q + (std::size_t(sq.first_row + i) * H + h) * D;
        gf::math::softmax_state run;
        std::vector<float> acc_run(D, 0.0f);
        for (int sp = lo / split_tokens; sp <= p / split_tokens; ++sp) {
          const int a_lo = std::max(lo, sp * split_tokens), a_hi = std::min(p + 1, (sp + 1) * split_tokens);
          gf::math::softmax_state st;
          std::vector<float> acc(D, 0.0f);
          for (int t0 = a_lo / 16 * 16; t0 < a_hi; t0 += 16) {
            float s[16], pj[16];
            bool valid[16];
            std::vector<std::vector<float>> vv(16, std::vector<float>(D));
            float tmax = -INFINITY;
            for (int j = 0; j < 16; ++j) {
              const int pos = t0 + j;
              valid[j] = pos >= a_lo && pos < a_hi;
              if (!valid[j]) continue;
              std::vector<float> kk(D);
              load(k, cache.k, cache.k_scale, pos, h / G, kk.data());
              load(v, cache.v, cache.v_scale, pos, h / G, vv[std::size_t(j)].data());
              float x = gf::math::dot_f32(qh, kk.data(), D) * scale;
              if (cap > 0.0f) x = gf::math::softcap_exp(x, cap);
              s[j] = x;
              tmax = std::fmax(tmax, x);
            }
            const float m_new = std::fmax(st.m, tmax);
            const float alpha = gf::math::softmax_rescale(st.m, m_new);
            for (int j = 0; j < 16; ++j) pj[j] = valid[j] ? gf::math::exp_f32(s[j] - m_new) : 0.0f;
            float lanes[16];
            std::memcpy(lanes, pj, sizeof lanes);
            st.l = st.l * alpha + gf::math::tree_sum16(lanes);
            for (int d = 0; d < D; ++d) {
              acc[std::size_t(d)] = acc[std::size_t(d)] * alpha;
              for (int j = 0; j < 16; ++j)
                if (valid[j]) acc[std::size_t(d)] = std::fma(pj[j], vv[std::size_t(j)][std::size_t(d)], acc[std::size_t(d)]);
            }
            st.m = m_new;
          }
          gf::math::softmax_merge(run, acc_run.data(), st, acc.data(), D);
        }
        float* o = out + (std::size_t(sq.first_row + i) * H + h) * D;
        for (int d = 0; d < D; ++d) o[d] = acc_run[std::size_t(d)] / run.l;
      }
    }
  }
}

}  // namespace gf_cuda_test
