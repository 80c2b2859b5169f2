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
#include <gemmaforge/step/step.hpp>

#include "support/canonical_attention.hpp"

namespace gf_cuda_test {

namespace gf = gemmaforge;

// Attention in the canonical order (support/canonical_attention.hpp, which the CPU backend is
// pinned to bit for bit), over a host pool that does not hold this step's keys yet (they come from
// k/v, rounded through the codec).
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
        gf_test::canonical_attention_row(
            q + (std::size_t(sq.first_row + i) * H + h) * D, D, lo, p, scale, cap, split_tokens,
            [&](int pos, float* dst) { load(k, cache.k, cache.k_scale, pos, h / G, dst); },
            [&](int pos, float* dst) { load(v, cache.v, cache.v_scale, pos, h / G, dst); },
            out + (std::size_t(sq.first_row + i) * H + h) * D);
      }
    }
  }
}

}  // namespace gf_cuda_test
