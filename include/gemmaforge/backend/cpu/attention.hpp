#pragma once
// Attention of one sequence's chunk on the CPU, for every KV element type.
//
//   attention<Shape, KvElem>(pool, params, q, k_new, v_new, cache, out, scratch)
//     q      [T][heads][head_dim]     queries at positions start .. start + T - 1 (normed, roped)
//     k_new  [T][kv_heads][head_dim]  this chunk's keys/values (f32, normed, roped), not yet in
//     v_new  [T][kv_heads][head_dim]  the cache (append them with kv_append after the layer)
//     cache  keys/values of positions < start (block table or ring, kv/kv_layout.hpp)
//     out    [T][heads][head_dim]
//     scratch >= attention_scratch_bytes<Shape, KvElem>(T, max_context) bytes, 64-byte aligned
//   kv_append<KvElem[, kv_heads, head_dim]>(cache_mut, k_new, v_new, start, T)   encode the chunk into the cache
//
// Query at position p sees keys lo..p, lo = max(0, p - window + 1) (window 0: lo = 0). The chunk's
// own keys are first encoded into scratch in the cache's element type, so every key goes through
// the same decode whether it comes from the cache or the chunk: chunked prefill, decode and
// batching give the same bits. Logits are (q * scale) . k, then cap * tanh(x / cap) if softcap > 0,
// softmax in f32, online (math/softmax.hpp). The canonical order, followed by every ISA:
//   q . k     : 16 lanes over head_dim (lane d % 16, fmaf), tree_sum16
//   softmax   : tiles of 16 positions anchored at multiples of 16; splits of 256 positions anchored
//               at multiples of 256, each computed from a fresh state and folded in ascending
//               order with softmax_merge; out = acc / l
// GQA/MQA: one pass over a KV head's keys serves its `group` query heads (a key is decoded once).
// Threads: over (token, kv head) items; with fewer items than 8 (decode), over (token, kv head,
// split) items whose partial states are merged afterwards — the same folds, the same bits.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include <gemmaforge/backend/cpu/cpu_features.hpp>
#include <gemmaforge/backend/cpu/scratch.hpp>
#include <gemmaforge/backend/cpu/simd.hpp>
#include <gemmaforge/backend/cpu/thread_pool.hpp>
#include <gemmaforge/backend/cpu/x86_intrin.hpp>
#include <gemmaforge/core/dtype.hpp>
#include <gemmaforge/core/error.hpp>
#include <gemmaforge/kv/kv_codec.hpp>
#include <gemmaforge/kv/kv_layout.hpp>
#include <gemmaforge/math/exp.hpp>
#include <gemmaforge/math/reduce.hpp>
#include <gemmaforge/math/softcap.hpp>
#include <gemmaforge/math/attention_order.hpp>
#include <gemmaforge/math/softmax.hpp>
#include <gemmaforge/model/attention_shape.hpp>

namespace gemmaforge::cpu {

struct attention_params {
  int n_tokens = 1;      // T: queries in this chunk
  int start = 0;         // position of the first query (= tokens already in the cache)
  int window = 0;        // sliding window W (0 = global): keys in (p - W, p]
  float scale = 1.0f;    // logit scale, query_pre_attn_scalar^-1/2
  float softcap = 0.0f;  // attention logit cap (Gemma 2: 50), 0 = off
};

namespace detail {

// Where one key/value of the sequence lives, decoded through kv_decode.
template <class KvElem>
struct kv_src {
  const KvElem* k;
  const KvElem* v;
  float ks, vs;
  const float* ks_ptr;  // where ks/vs came from (cache scales are contiguous within a block)
  const float* vs_ptr;
};

template <class Shape, class KvElem>
struct attn_ctx {
  static constexpr int G = Shape::group, D = Shape::head_dim, KVH = Shape::kv_heads, H = Shape::heads;
  attention_params prm;
  const float* q;
  const kv_cache_view* cache;
  kv_index<KVH, D> idx;  // the cache's index math with the model's sizes static
  const KvElem* kc;  // chunk keys [T][KVH][D] in the cache's element type
  const KvElem* vc;
  const float* ks;   // chunk scales [T][KVH] (scaled types)
  const float* vs;
  float* out;

  // Sources of positions base + j, j in [j0, j1]. The block lookup (divisions) runs once per
  // cache block, not once per key: it cost more than the key's arithmetic.
  void fill_tile(int base, int j0, int j1, int g, kv_src<KvElem>* keys) const {
    int left = 0;  // keys left in the current cache block
    for (int j = j0; j <= j1; ++j) {
      const int pos = base + j;
      if (pos >= prm.start || left == 0) {
        keys[j] = src(pos, g);
        if (pos < prm.start) left = idx.block_tokens - pos % idx.block_tokens;
      } else {
        keys[j] = keys[j - 1];
        keys[j].k += D;
        keys[j].v += D;
        if constexpr (kv_has_scale<KvElem>) {
          keys[j].ks = keys[j - 1].ks_ptr[1];
          keys[j].vs = keys[j - 1].vs_ptr[1];
          keys[j].ks_ptr = keys[j - 1].ks_ptr + 1;
          keys[j].vs_ptr = keys[j - 1].vs_ptr + 1;
        }
      }
      --left;
    }
  }

  kv_src<KvElem> src(int pos, int g) const {
    kv_src<KvElem> s{};
    if (pos < prm.start) {
      const std::int64_t off = idx.offset(pos, g);
      s.k = static_cast<const KvElem*>(cache->k) + off;
      s.v = static_cast<const KvElem*>(cache->v) + off;
      if constexpr (kv_has_scale<KvElem>) {
        const std::int64_t so = idx.scale_offset(pos, g);
        s.ks_ptr = cache->k_scale + so;
        s.vs_ptr = cache->v_scale + so;
        s.ks = *s.ks_ptr;
        s.vs = *s.vs_ptr;
      } else {
        s.ks = s.vs = 1.0f;
      }
    } else {
      const std::int64_t i = std::int64_t(pos - prm.start) * KVH + g;
      s.k = kc + i * D;
      s.v = vc + i * D;
      if constexpr (kv_has_scale<KvElem>) {
        s.ks = ks[i];
        s.vs = vs[i];
      } else {
        s.ks = s.vs = 1.0f;
      }
    }
    return s;
  }
};

// State of the group's G heads: m[G], l[G], acc[G][D] (contiguous, state_floats floats).
template <int G, int D>
struct group_state {
  float* p;
  float* m() const { return p; }
  float* l() const { return p + G; }
  float* acc(int h) const { return p + 2 * G + std::size_t(h) * D; }
  void reset() const {
    for (int h = 0; h < G; ++h) { p[h] = -INFINITY; p[G + h] = 0.0f; }
    std::memset(p + 2 * G, 0, sizeof(float) * std::size_t(G) * D);
  }
};

// Prefetch key j's K and V vectors of the *next* tile while the current one is computed (one
// key per score-loop iteration, into L2): tiles jump between scrambled cache blocks and the V
// pass walks a tile chunk-major (16 keys x 16 dims). Measured at 32k context, 1 thread (EPYC):
// no prefetch ~170 ns/key, a T0 burst per tile ~260, spread T0 ~210, spread T2 ~130; the
// compute floor with the KV in cache is ~65 ns/key (64 FMA zmm per key and pass for 4 heads).
template <class KvElem, int D>
GF_FORCEINLINE void prefetch_key(const kv_src<KvElem>* next, int j) {
#if GF_X86
  if (!next || !next[j].k) return;
  constexpr int bytes = D * int(sizeof(KvElem));
  for (int o = 0; o < bytes; o += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(next[j].k) + o, _MM_HINT_T2);
    _mm_prefetch(reinterpret_cast<const char*>(next[j].v) + o, _MM_HINT_T2);
  }
#else
  (void)next; (void)j;
#endif
}

// --------------------------------------------------------------------- tile step: scalar
// keys[j] for j in [j0, j1] are valid (positions 16*tile + j); qs: G pre-scaled query heads.
template <class KvElem, int G, int D>
inline void tile_step_scalar(const kv_src<KvElem>* keys, int j0, int j1, const float* qs, float cap, const group_state<G, D>& st) {
  // (no prefetch: the scalar kernel is compute bound)
  float s[G][16];
  float kf[D];
  for (int j = j0; j <= j1; ++j) {
    for (int d = 0; d < D; ++d) kf[d] = kv_decode<KvElem>(keys[j].k[d], keys[j].ks);
    for (int h = 0; h < G; ++h) {
      float v = math::dot_f32(qs + h * D, kf, D);
      if (cap > 0.0f) v = math::softcap_exp(v, cap);
      s[h][j] = v;
    }
  }
  for (int h = 0; h < G; ++h) {
    float mt = -INFINITY;
    for (int j = j0; j <= j1; ++j) mt = fmaxf(mt, s[h][j]);
    const float m_new = fmaxf(st.m()[h], mt);
    const float alpha = math::softmax_rescale(st.m()[h], m_new);
    float p[16];
    for (int j = 0; j < 16; ++j) p[j] = (j >= j0 && j <= j1) ? math::exp_f32(s[h][j] - m_new) : 0.0f;
    float pl[16];
    std::memcpy(pl, p, sizeof p);
    st.l()[h] = st.l()[h] * alpha + math::tree_sum16(pl);
    st.m()[h] = m_new;
    float* acc = st.acc(h);
    for (int d = 0; d < D; ++d) acc[d] = acc[d] * alpha;
    for (int j = j0; j <= j1; ++j)
      for (int d = 0; d < D; ++d) acc[d] = fmaf(p[j], kv_decode<KvElem>(keys[j].v[d], keys[j].vs), acc[d]);
  }
}

#if GF_X86
// --------------------------------------------------------------------- tile step: AVX-512
template <class KvElem>
GF_AVX512_FN __m512 decode16(const KvElem* p, float scale) {
  if constexpr (std::is_same_v<KvElem, float>) {
    (void)scale;
    return _mm512_loadu_ps(p);
  } else if constexpr (std::is_same_v<KvElem, bf16>) {
    (void)scale;
    return simd::load16_bf16(p);
  } else if constexpr (std::is_same_v<KvElem, f16>) {
    (void)scale;
    return simd::load16_f16(p);
  } else if constexpr (std::is_same_v<KvElem, std::int8_t>) {
    const __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
    return _mm512_mul_ps(v, _mm512_set1_ps(scale));
  } else {  // fp8 e4m3: its bits shifted into an f16 are the value * 2^-8, subnormals included
    const __m256i b = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    const __m256i h = _mm256_or_si256(_mm256_slli_epi16(_mm256_and_si256(b, _mm256_set1_epi16(0x7F)), 7),
                                      _mm256_slli_epi16(_mm256_and_si256(b, _mm256_set1_epi16(0x80)), 8));
    const __m512 v = _mm512_mul_ps(_mm512_cvtph_ps(h), _mm512_set1_ps(256.0f));
    return _mm512_mul_ps(v, _mm512_set1_ps(scale));
  }
}

template <class KvElem, int G, int D>
GF_AVX512_FN void tile_step_avx512(const kv_src<KvElem>* keys, int j0, int j1, const float* qs, float cap, const group_state<G, D>& st,
                                   const kv_src<KvElem>* next) {
  constexpr int C = D / 16;
  alignas(64) float s[G][16];
  for (int j = 0; j < j0; ++j) prefetch_key<KvElem, D>(next, j);
  for (int j = j1 + 1; j < 16; ++j) prefetch_key<KvElem, D>(next, j);
  for (int j = j0; j <= j1; ++j) {
    prefetch_key<KvElem, D>(next, j);
    __m512 acc[G];
    for (int h = 0; h < G; ++h) acc[h] = _mm512_setzero_ps();
    for (int c = 0; c < C; ++c) {
      const __m512 kv = decode16<KvElem>(keys[j].k + 16 * c, keys[j].ks);
      for (int h = 0; h < G; ++h) acc[h] = _mm512_fmadd_ps(_mm512_loadu_ps(qs + h * D + 16 * c), kv, acc[h]);
    }
    for (int h = 0; h < G; ++h) s[h][j] = simd::tree16(acc[h]);
  }
  const __mmask16 valid = __mmask16(((1u << (j1 + 1)) - 1u) & ~((1u << j0) - 1u));
  float pj[G][16];
  float alpha[G];
  for (int h = 0; h < G; ++h) {
    __m512 sv = _mm512_maskz_loadu_ps(valid, s[h]);
    if (cap > 0.0f) sv = simd::softcap16(sv, cap);
    sv = _mm512_mask_mov_ps(_mm512_set1_ps(-INFINITY), valid, sv);
    const float mt = _mm512_reduce_max_ps(sv);
    const float m_new = fmaxf(st.m()[h], mt);
    alpha[h] = math::softmax_rescale(st.m()[h], m_new);
    const __m512 p = _mm512_maskz_mov_ps(valid, simd::exp16(_mm512_sub_ps(sv, _mm512_set1_ps(m_new))));
    st.l()[h] = st.l()[h] * alpha[h] + simd::tree16(p);
    st.m()[h] = m_new;
    _mm512_storeu_ps(pj[h], p);
  }
  for (int c = 0; c < C; ++c) {
    __m512 acc[G];
    for (int h = 0; h < G; ++h) acc[h] = _mm512_mul_ps(_mm512_loadu_ps(st.acc(h) + 16 * c), _mm512_set1_ps(alpha[h]));
    for (int j = j0; j <= j1; ++j) {
      const __m512 vv = decode16<KvElem>(keys[j].v + 16 * c, keys[j].vs);
      for (int h = 0; h < G; ++h) acc[h] = _mm512_fmadd_ps(_mm512_set1_ps(pj[h][j]), vv, acc[h]);
    }
    for (int h = 0; h < G; ++h) _mm512_storeu_ps(st.acc(h) + 16 * c, acc[h]);
  }
}

// ----------------------------------------------------------------------- tile step: AVX2
template <class KvElem>
GF_AVX2_FN __m256 decode8(const KvElem* p, float scale) {
  if constexpr (std::is_same_v<KvElem, float>) {
    (void)scale;
    return _mm256_loadu_ps(p);
  } else if constexpr (std::is_same_v<KvElem, bf16>) {
    (void)scale;
    return simd::load8_bf16(p);
  } else if constexpr (std::is_same_v<KvElem, f16>) {
    (void)scale;
    return simd::load8_f16(p);
  } else if constexpr (std::is_same_v<KvElem, std::int8_t>) {
    const __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
    return _mm256_mul_ps(v, _mm256_set1_ps(scale));
  } else {
    const __m128i b = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    const __m128i h = _mm_or_si128(_mm_slli_epi16(_mm_and_si128(b, _mm_set1_epi16(0x7F)), 7),
                                   _mm_slli_epi16(_mm_and_si128(b, _mm_set1_epi16(0x80)), 8));
    const __m256 v = _mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_set1_ps(256.0f));
    return _mm256_mul_ps(v, _mm256_set1_ps(scale));
  }
}

template <class KvElem, int G, int D>
GF_AVX2_FN void tile_step_avx2(const kv_src<KvElem>* keys, int j0, int j1, const float* qs, float cap, const group_state<G, D>& st,
                               const kv_src<KvElem>* next) {
  constexpr int C = D / 16;
  alignas(32) float s[G][16];
  for (int j = 0; j < j0; ++j) prefetch_key<KvElem, D>(next, j);
  for (int j = j1 + 1; j < 16; ++j) prefetch_key<KvElem, D>(next, j);
  for (int j = j0; j <= j1; ++j) {
    prefetch_key<KvElem, D>(next, j);
    __m256 lo[G], hi[G];
    for (int h = 0; h < G; ++h) lo[h] = hi[h] = _mm256_setzero_ps();
    for (int c = 0; c < C; ++c) {
      const __m256 k0 = decode8<KvElem>(keys[j].k + 16 * c, keys[j].ks);
      const __m256 k1 = decode8<KvElem>(keys[j].k + 16 * c + 8, keys[j].ks);
      for (int h = 0; h < G; ++h) {
        lo[h] = _mm256_fmadd_ps(_mm256_loadu_ps(qs + h * D + 16 * c), k0, lo[h]);
        hi[h] = _mm256_fmadd_ps(_mm256_loadu_ps(qs + h * D + 16 * c + 8), k1, hi[h]);
      }
    }
    for (int h = 0; h < G; ++h) s[h][j] = simd::tree16(lo[h], hi[h]);
  }
  float pj[G][16];
  float alpha[G];
  for (int h = 0; h < G; ++h) {
    alignas(32) float sv[16];
    for (int j = 0; j < 16; ++j) sv[j] = (j >= j0 && j <= j1) ? s[h][j] : 0.0f;
    __m256 a = _mm256_load_ps(sv), b = _mm256_load_ps(sv + 8);
    if (cap > 0.0f) { a = simd::softcap8(a, cap); b = simd::softcap8(b, cap); }
    _mm256_store_ps(sv, a);
    _mm256_store_ps(sv + 8, b);
    float mt = -INFINITY;
    for (int j = j0; j <= j1; ++j) mt = fmaxf(mt, sv[j]);
    const float m_new = fmaxf(st.m()[h], mt);
    alpha[h] = math::softmax_rescale(st.m()[h], m_new);
    const __m256 mn = _mm256_set1_ps(m_new);
    alignas(32) float p[16];
    _mm256_store_ps(p, simd::exp8(_mm256_sub_ps(_mm256_load_ps(sv), mn)));
    _mm256_store_ps(p + 8, simd::exp8(_mm256_sub_ps(_mm256_load_ps(sv + 8), mn)));
    for (int j = 0; j < 16; ++j) pj[h][j] = (j >= j0 && j <= j1) ? p[j] : 0.0f;
    st.l()[h] = st.l()[h] * alpha[h] + simd::tree16(_mm256_loadu_ps(pj[h]), _mm256_loadu_ps(pj[h] + 8));
    st.m()[h] = m_new;
  }
  for (int c = 0; c < 2 * C; ++c) {
    __m256 acc[G];
    for (int h = 0; h < G; ++h) acc[h] = _mm256_mul_ps(_mm256_loadu_ps(st.acc(h) + 8 * c), _mm256_set1_ps(alpha[h]));
    for (int j = j0; j <= j1; ++j) {
      const __m256 vv = decode8<KvElem>(keys[j].v + 8 * c, keys[j].vs);
      for (int h = 0; h < G; ++h) acc[h] = _mm256_fmadd_ps(_mm256_set1_ps(pj[h][j]), vv, acc[h]);
    }
    for (int h = 0; h < G; ++h) _mm256_storeu_ps(st.acc(h) + 8 * c, acc[h]);
  }
}
#endif

// One split of one (token, kv head): positions [b, e) ∩ [lo, p], from a fresh state.
template <class Shape, class KvElem>
inline void attend_split(const attn_ctx<Shape, KvElem>& c, cpu_isa isa, int g, int lo, int p, int b, int e, const float* qs,
                         const group_state<Shape::group, Shape::head_dim>& st) {
  constexpr int G = Shape::group, D = Shape::head_dim;
  st.reset();
  const int first = std::max(lo, b), last = std::min(p, e - 1);
  if (first > last) return;
  // Double-buffered key sources: tile i + 1's are known (and prefetched) while tile i runs.
  kv_src<KvElem> buf[2][16] = {};
  auto range = [&](int tile, int& j0, int& j1) {
    const int base = tile * 16;
    j0 = std::max(first, base) - base;
    j1 = std::min(last, base + 15) - base;
  };
  int j0, j1;
  range(first / 16, j0, j1);
  c.fill_tile((first / 16) * 16, j0, j1, g, buf[0]);
  for (int tile = first / 16, cur = 0; tile <= last / 16; ++tile, cur ^= 1) {
    range(tile, j0, j1);
    const kv_src<KvElem>* keys = buf[cur];
    const kv_src<KvElem>* next = nullptr;
    if (tile < last / 16) {
      int n0, n1;
      range(tile + 1, n0, n1);
      for (int j = 0; j < 16; ++j) buf[cur ^ 1][j] = kv_src<KvElem>{};
      c.fill_tile((tile + 1) * 16, n0, n1, g, buf[cur ^ 1]);
      next = buf[cur ^ 1];
    }
#if GF_X86
    if (isa == cpu_isa::avx512) { tile_step_avx512<KvElem, G, D>(keys, j0, j1, qs, c.prm.softcap, st, next); continue; }
    if (isa == cpu_isa::avx2) { tile_step_avx2<KvElem, G, D>(keys, j0, j1, qs, c.prm.softcap, st, next); continue; }
#endif
    (void)next;
    tile_step_scalar<KvElem, G, D>(keys, j0, j1, qs, c.prm.softcap, st);
  }
}

template <class Shape>
inline void query_range(const attention_params& prm, int t, int& lo, int& p) {
  p = prm.start + t;
  lo = prm.window > 0 ? std::max(0, p - prm.window + 1) : 0;
}

// Scaled query heads of group g of token t: qs[h][d] = q * scale.
template <class Shape>
inline void scaled_queries(const attention_params& prm, const float* q, int t, int g, float* qs) {
  constexpr int G = Shape::group, D = Shape::head_dim, H = Shape::heads;
  const float* src = q + (std::size_t(t) * H + std::size_t(g) * G) * D;
  for (int i = 0; i < G * D; ++i) qs[i] = math::attention_scaled_query(src[i], prm.scale);
}

template <class Shape>
inline void write_output(float* out, int t, int g, const float* state) {
  constexpr int G = Shape::group, D = Shape::head_dim, H = Shape::heads;
  const float* l = state + G;
  for (int h = 0; h < G; ++h) {
    float* o = out + (std::size_t(t) * H + std::size_t(g) * G + h) * D;
    const float* acc = state + 2 * G + std::size_t(h) * D;
    for (int d = 0; d < D; ++d) o[d] = acc[d] / l[h];
  }
}

template <int G, int D>
inline void merge_state(float* a, const float* b) {
  for (int h = 0; h < G; ++h) {
    math::softmax_state sa{a[h], a[G + h]}, sb{b[h], b[G + h]};
    math::softmax_merge(sa, a + 2 * G + std::size_t(h) * D, sb, b + 2 * G + std::size_t(h) * D, D);
    a[h] = sa.m;
    a[G + h] = sa.l;
  }
}

}  // namespace detail

// Scratch bytes for a chunk of T tokens when the sequence may reach max_context positions.
template <class Shape, class KvElem>
constexpr std::size_t attention_scratch_bytes(int n_tokens, int max_context) {
  return detail::attn_layout<Shape, KvElem>(n_tokens, max_context).bytes;
}

template <class Shape, class KvElem>
inline void attention(thread_pool& pool, const attention_params& prm, const float* q, const float* k_new, const float* v_new,
                      const kv_cache_view& cache, float* out, std::byte* scratch, cpu_isa isa = default_cpu_isa()) {
  using L = detail::attn_layout<Shape, KvElem>;
  using state_t = detail::group_state<Shape::group, Shape::head_dim>;
  constexpr int G = Shape::group, D = Shape::head_dim, KVH = Shape::kv_heads;
  constexpr std::size_t qs_floats = std::size_t(G) * D;
  static_assert(D % 16 == 0, "attention: head_dim must be a multiple of 16");
  isa = clamp_cpu_isa(isa);
  const int T = prm.n_tokens;
  if (T <= 0) return;
  if (!cache.has_shape<KVH, D>()) throw error(errc::internal, "cpu::attention: the KV view's kv_heads/head_dim are not the kernel's");
  const L lay(T, prm.start + T);

  // The chunk's K/V in the cache's element type (what kv_append will store).
  auto* kc = reinterpret_cast<KvElem*>(scratch + lay.kc);
  auto* vc = reinterpret_cast<KvElem*>(scratch + lay.vc);
  auto* ks = reinterpret_cast<float*>(scratch + lay.ks);
  auto* vs = reinterpret_cast<float*>(scratch + lay.vs);
  for (std::int64_t i = 0; i < std::int64_t(T) * KVH; ++i) {
    const float sk = kv_encode_vector<KvElem>(k_new + i * D, D, kc + i * D);
    const float sv = kv_encode_vector<KvElem>(v_new + i * D, D, vc + i * D);
    if constexpr (L::scaled) { ks[i] = sk; vs[i] = sv; }
  }

  detail::attn_ctx<Shape, KvElem> c{prm, q, &cache, cache.index<KVH, D>(), kc, vc, ks, vs, out};
  const int items = T * KVH;
  const int first_split = [&] {
    int lo, p;
    detail::query_range<Shape>(prm, 0, lo, p);
    return lo / attention_split;
  }();
  const int last_split = (prm.start + T - 1) / attention_split;
  const int n_splits = last_split - first_split + 1;

  if (items >= detail::attention_split_items || pool.size() == 1 || n_splits == 1) {
    // One item per (token, kv head), splits folded in order.
    pool.parallel_for(items, 1, [&](std::int64_t b, std::int64_t e) {
      alignas(64) float qs[qs_floats];
      alignas(64) float run[L::state_floats];
      alignas(64) float part[L::state_floats];
      const state_t rs{run}, ps{part};
      for (std::int64_t it = b; it < e; ++it) {
        const int t = int(it / KVH), g = int(it % KVH);
        int lo, p;
        detail::query_range<Shape>(prm, t, lo, p);
        detail::scaled_queries<Shape>(prm, q, t, g, qs);
        rs.reset();
        for (int s = lo / attention_split; s <= p / attention_split; ++s) {
          detail::attend_split<Shape, KvElem>(c, isa, g, lo, p, s * attention_split, (s + 1) * attention_split, qs, ps);
          detail::merge_state<Shape::group, Shape::head_dim>(run, part);
        }
        detail::write_output<Shape>(out, t, g, run);
      }
    });
    return;
  }

  // Few items (decode): one task per (token, kv head, split), partial states merged afterwards.
  float* partials = reinterpret_cast<float*>(scratch + lay.partials);
  const int n_tasks = items * n_splits;
  pool.parallel_for(n_tasks, 1, [&](std::int64_t b, std::int64_t e) {
    alignas(64) float qs[qs_floats];
    for (std::int64_t task = b; task < e; ++task) {
      const int it = int(task / n_splits), s = first_split + int(task % n_splits);
      const int t = it / KVH, g = it % KVH;
      int lo, p;
      detail::query_range<Shape>(prm, t, lo, p);
      const state_t ps{partials + std::size_t(task) * L::state_floats};
      if (s < lo / attention_split || s > p / attention_split) { ps.reset(); continue; }  // outside this query's range
      detail::scaled_queries<Shape>(prm, q, t, g, qs);
      detail::attend_split<Shape, KvElem>(c, isa, g, lo, p, s * attention_split, (s + 1) * attention_split, qs, ps);
    }
  });
  for (int it = 0; it < items; ++it) {
    const int t = it / KVH, g = it % KVH;
    int lo, p;
    detail::query_range<Shape>(prm, t, lo, p);
    alignas(64) float run[L::state_floats];
    const state_t rs{run};
    rs.reset();
    for (int s = lo / attention_split; s <= p / attention_split; ++s)
      detail::merge_state<Shape::group, Shape::head_dim>(run, partials + (std::size_t(it) * n_splits + std::size_t(s - first_split)) * L::state_floats);
    detail::write_output<Shape>(out, t, g, run);
  }
}

// Encode the chunk's keys/values into the cache at positions start .. start + T - 1. KvHeads and
// HeadDim: the model's sizes, static in the index math when given (kv_dynamic: the view's).
template <class KvElem, std::int32_t KvHeads = kv_dynamic, std::int32_t HeadDim = kv_dynamic>
inline void kv_append(const kv_cache_mut_view& cache, const float* k_new, const float* v_new, int start, int T) {
  const kv_cache_view view = cache.as_const();
  if (!view.has_shape<KvHeads, HeadDim>()) throw error(errc::internal, "cpu::kv_append: the KV view's kv_heads/head_dim are not the caller's");
  const kv_index<KvHeads, HeadDim> ro = view.index<KvHeads, HeadDim>();
  const int D = ro.head_dim(), KVH = ro.kv_heads();
  for (int t = 0; t < T; ++t)
    for (int g = 0; g < KVH; ++g) {
      const std::int64_t off = ro.offset(start + t, g);
      const std::size_t i = (std::size_t(t) * KVH + g) * D;
      const float sk = kv_encode_vector<KvElem>(k_new + i, D, static_cast<KvElem*>(cache.k) + off);
      const float sv = kv_encode_vector<KvElem>(v_new + i, D, static_cast<KvElem*>(cache.v) + off);
      if constexpr (kv_has_scale<KvElem>) {
        const std::int64_t so = ro.scale_offset(start + t, g);
        cache.k_scale[so] = sk;
        cache.v_scale[so] = sv;
      }
    }
}

}  // namespace gemmaforge::cpu
