#pragma once
// Paged attention over the KV pool: decode (one query per sequence) and chunked prefill.
//
// Semantics = tests/support/naive_executor.hpp's attention: a query at position p of head h sees
// keys [lo, p], lo = max(0, p - window + 1) on sliding-window layers (0 on global ones); keys
// before the sequence's start come from the pool through kv_index::offset, head_dim static (tables on global
// layers, rings on local ones), keys of this step from the staged rows (kv_append.cuh), so both are
// values the KV codec produced. logit = (q * scale).k, then softcap (Gemma 2), softmax, sum p v.
// GQA: one block serves the G query heads of a KV head, so every K/V tile is read once per group.
//
// Canonical order (math/softmax.hpp), which all three kernels follow, so they agree bit for bit:
//   q.k             math::dot_f32 order: lane d % 16, fmaf ascending d, tree_sum16; a half-warp
//                   computes one dot, its 16 threads being the 16 lanes.
//   logits          queries are pre-scaled as they are staged (math::attention_scaled_query: the
//                   CPU's order), s = dot, then math::softcap_exp if cap > 0.
//   tiles           16 consecutive positions aligned to multiples of 16; per tile
//                   m' = max(m, max s), alpha = exp_f32(m - m'), p = exp_f32(s - m') (masked: 0),
//                   l = l * alpha + tree_sum16(p), acc = acc * alpha, then acc = fmaf(p_j, v_j, acc)
//                   for the tile's valid keys in ascending position.
//   splits          fixed ranges of `split_tokens` absolute positions (math::attention_split, the
//                   CPU's 256, unless a benchmark overrides it; a multiple of 32); each split starts
//                   from the empty state and the splits are merged in ascending order with
//                   math::softmax_merge, starting from the empty state; output = acc / l.
// Tiles or splits without a valid key are exact identities of this recurrence (alpha = exp_f32(0) =
// 1, or everything stays 0), so kernels may skip or visit them freely: which kernel runs, how the
// prompt was chunked and what else is in the batch never change a bit of a query's result.
//
// Kernels
//   decode, single pass   grid (sequence, kv head): walks its splits in order, merging in registers.
//   decode, split-K       grid (sequence, kv head, split): one split per block, partials
//                         [seq][head][split][head_dim + 2] in the workspace, then attn_merge_kernel
//                         merges them in ascending order (flash-decoding). More blocks for long
//                         contexts at small batch; the grid does not depend on sequence lengths
//                         (blocks past a sequence's last split exit), so a captured graph replays.
//   prefill               grid (query tile, kv head) of one sequence's chunk: 16 query rows
//                         (16 / G queries x G heads), the same recurrence per row, split boundaries
//                         at the same absolute positions.
// Specialized on head_dim, GQA group and KV element type (template parameters); window, softcap,
// scale and block size are run-time values: they only change uniform branches and index arithmetic,
// and making them template parameters would multiply the instantiations by four for no measurable
// gain (not measured: no GPU was available).
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include <gemmaforge/backend/cuda/common.cuh>
#include <gemmaforge/backend/cuda/step_meta.cuh>
#include <gemmaforge/core/error.hpp>
#include <gemmaforge/kv/kv_codec.hpp>
#include <gemmaforge/math/attention_order.hpp>
#include <gemmaforge/math/exp.hpp>
#include <gemmaforge/math/softcap.hpp>

namespace gemmaforge::cuda {

// Everything an attention launch needs besides the shapes (template parameters).
template <class KvElem>
struct attention_args {
  const device_seq* seqs = nullptr;   // device, [n_seqs]
  int n_seqs = 0;
  const float* q = nullptr;           // [T][heads][head_dim], after QK-norm and RoPE
  float* out = nullptr;               // [T][heads][head_dim]
  kv_layer_planes<KvElem> cache;      // this layer's planes and block lists
  kv_fresh_rows<KvElem> fresh;        // this step's keys/values, encoded
  int window = 0;                     // 0 = global layer
  float scale = 1.0f;
  float softcap = 0.0f;               // 0 = off
  int split_tokens = 0;               // positions per split (multiple of 32)
  int max_splits = 1;                 // splits a sequence may need: ceil(max_seq_len / split_tokens)
  float* partials = nullptr;          // split-K: [n_seqs][heads][max_splits][head_dim + 2]
};

enum class attention_schedule : std::uint8_t { automatic, single_pass, split_k };

namespace detail {

// A K/V element as f32: the exact kv_decode value (hardware conversion for f16, a shift for bf16).
template <class KvElem>
__device__ __forceinline__ float kv_value(KvElem e, float scale) {
  if constexpr (std::is_same_v<KvElem, f16>) return f16_bits_to_float(e.bits);
  else if constexpr (std::is_same_v<KvElem, bf16>) return bf16_bits_to_float(e.bits);
  else return kv_decode<KvElem>(e, scale);
}

// Shared-memory tile geometry. K/V stay in their storage type (decoded when read); rows are
// padded by 16 elements so the two half-warps of a warp, which read neighbouring key rows at the
// same columns, hit disjoint banks.
template <int D, class KvElem, int KT>
struct kv_tile {
  static constexpr int kt = KT;
  static constexpr int row = D + 16;
  static constexpr int bytes = 2 * KT * row * int(sizeof(KvElem)) + 2 * KT * 4;
  // Copy unit: 16 bytes (or the whole row when a row is shorter).
  static constexpr int unit = (D * int(sizeof(KvElem))) % 16 == 0 ? 16 : int(sizeof(KvElem));
  static constexpr int units_per_row = D * int(sizeof(KvElem)) / unit;
};

// Cooperative load of keys/values at positions [t, t + KT) that satisfy valid(pos) into shared
// memory (raw elements + per-position scales).
template <int D, class KvElem, int KT, int Threads, class Valid>
// cppcheck-suppress unusedFunction ; called with explicit template arguments, which cppcheck does not read as a call
__device__ __forceinline__ void load_kv_tile(const attention_args<KvElem>& a, const device_seq& s, const kv_index<kv_dynamic, D>& view,
                                             int h, int t, Valid valid, KvElem* k_s, KvElem* v_s, float* ks_s, float* vs_s) {
  using tile = kv_tile<D, KvElem, KT>;
  const int kvh = a.cache.kv_heads;
  for (int i = int(threadIdx.x); i < 2 * KT * tile::units_per_row; i += Threads) {
    const int which = i / (KT * tile::units_per_row);  // 0 = K, 1 = V
    const int rem = i % (KT * tile::units_per_row);
    const int j = rem / tile::units_per_row, u = rem % tile::units_per_row;
    const int pos = t + j;
    if (!valid(pos)) continue;
    const KvElem* src;
    if (pos >= s.start) {
      const int row = s.first_row + pos - s.start;
      src = (which ? a.fresh.v : a.fresh.k) + (std::int64_t(row) * kvh + h) * D;
    } else {
      src = (which ? a.cache.v : a.cache.k) + view.offset(pos, h);
    }
    KvElem* dst = (which ? v_s : k_s) + j * tile::row;
    if constexpr (tile::unit == 16) {
      reinterpret_cast<uint4*>(dst)[u] = __ldg(reinterpret_cast<const uint4*>(src) + u);
    } else {
      dst[u] = src[u];
    }
  }
  if constexpr (kv_has_scale<KvElem>) {
    for (int i = int(threadIdx.x); i < 2 * KT; i += Threads) {
      const int which = i / KT, j = i % KT, pos = t + j;
      if (!valid(pos)) continue;
      float sc;
      if (pos >= s.start) {
        const int row = s.first_row + pos - s.start;
        sc = (which ? a.fresh.v_scale : a.fresh.k_scale)[std::int64_t(row) * kvh + h];
      } else {
        sc = (which ? a.cache.v_scale : a.cache.k_scale)[view.scale_offset(pos, h)];
      }
      (which ? vs_s : ks_s)[j] = sc;
    }
  }
}

// The logit of query row `qrow` (f32 in shared memory, already scaled) against key row j: one
// half-warp, the canonical dot, softcap. Every thread of the warp must call it (shuffles); the
// result is valid in lane 0 of the half-warp.
template <int D, class KvElem>
// cppcheck-suppress unusedFunction ; called with explicit template arguments, which cppcheck does not read as a call
__device__ __forceinline__ float tile_logit(const float* qrow, const KvElem* krow, float kscale, float cap) {
  const int l = int(threadIdx.x) % 16;
  float lane = 0.0f;
#pragma unroll
  for (int i = 0; i < D / 16; ++i) lane = fmaf(qrow[16 * i + l], kv_value<KvElem>(krow[16 * i + l], kscale), lane);
  float s = half_warp_tree_sum16(lane);
  if (cap > 0.0f) s = math::softcap_exp(s, cap);
  return s;
}

// The online-softmax step of one query row over the KT keys of a tile (one warp; lane j = key j,
// half-warp c = canonical tile c). In: x = logit (or -inf where masked), the row's m and l. Out:
// p_j (0 where masked), each canonical tile's alpha, the updated m and l (in every lane).
template <int KT>
// cppcheck-suppress unusedFunction ; called with explicit template arguments, which cppcheck does not read as a call
__device__ __forceinline__ float tile_softmax(float x, bool valid, float& m, float& l, float& alpha0, float& alpha1) {
  const int lane = int(threadIdx.x) % warp_size;
  const int half = lane / 16;
  const float tmax = half_warp_max(valid ? x : -INFINITY);
  const float tm0 = __shfl_sync(full_warp_mask, tmax, 0);
  const float tm1 = __shfl_sync(full_warp_mask, tmax, 16);
  const float m1 = fmaxf(m, tm0);
  const float m2 = KT == 32 ? fmaxf(m1, tm1) : m1;
  const float m_new = half == 0 ? m1 : m2;
  const float m_old = half == 0 ? m : m1;
  const float alpha = math::exp_f32(__fsub_rn(m_old, m_new));  // math::softmax_rescale
  const float p = valid ? math::exp_f32(__fsub_rn(x, m_new)) : 0.0f;
  const float tsum = half_warp_tree_sum16(p);
  alpha0 = __shfl_sync(full_warp_mask, alpha, 0);
  alpha1 = __shfl_sync(full_warp_mask, alpha, 16);
  const float ts0 = __shfl_sync(full_warp_mask, tsum, 0);
  const float ts1 = __shfl_sync(full_warp_mask, tsum, 16);
  l = __fadd_rn(__fmul_rn(l, alpha0), ts0);
  if constexpr (KT == 32) l = __fadd_rn(__fmul_rn(l, alpha1), ts1);
  m = m2;
  return p;
}

// math::softmax_merge of state b into a, for the scalar part: returns (alpha_a, alpha_b).
__device__ __forceinline__ void merge_coefficients(float& m_a, float& l_a, float m_b, float l_b, float& alpha_a, float& alpha_b) {
  const float m = fmaxf(m_a, m_b);
  alpha_a = math::exp_f32(__fsub_rn(m_a, m));
  alpha_b = math::exp_f32(__fsub_rn(m_b, m));
  l_a = __fadd_rn(__fmul_rn(l_a, alpha_a), __fmul_rn(l_b, alpha_b));
  m_a = m;
}

__device__ __forceinline__ float merge_acc(float acc_a, float alpha_a, float acc_b, float alpha_b) {
  return __fadd_rn(__fmul_rn(acc_a, alpha_a), __fmul_rn(acc_b, alpha_b));
}

// ------------------------------------------------------------------------------- decode
template <int D, int G, class KvElem>
struct decode_config {
  static constexpr int threads = 128;
  static constexpr int warps = threads / warp_size;
  static constexpr int kt = sizeof(KvElem) >= 4 ? 16 : 32;  // keys per shared tile: stays < 48 KiB
  using tile = kv_tile<D, KvElem, kt>;
  static constexpr int rows_per_warp = (G + warps - 1) / warps;  // query heads whose softmax a warp runs
  static constexpr int elems = (G * D + threads - 1) / threads;  // output elements per thread
  static constexpr int smem_bytes = tile::bytes + G * D * 4 + G * kt * 4 + G * 2 * 4 + G * 4 * 4;
  static_assert(D % 16 == 0 && G >= 1, "head_dim multiple of 16");
  static_assert(smem_bytes <= 48 * 1024, "decode attention tile must fit static shared memory");
};

template <int D, int G, class KvElem, bool SinglePass>
__global__ void __launch_bounds__(128) attn_decode_kernel(attention_args<KvElem> a) {
  using C = decode_config<D, G, KvElem>;
  constexpr int KT = C::kt;
  constexpr int R = C::rows_per_warp;
  __shared__ __align__(16) KvElem k_s[KT * C::tile::row];
  __shared__ __align__(16) KvElem v_s[KT * C::tile::row];
  __shared__ float ks_s[KT], vs_s[KT];
  __shared__ float q_s[G * D];
  __shared__ float p_s[G * KT];
  __shared__ float alpha_s[G * 2];
  __shared__ float coef_s[G * 4];  // split merge: alpha_run, alpha_split; final l

  const int b = int(blockIdx.x), kh = int(blockIdx.y);
  const device_seq s = a.seqs[b];
  if (s.n_tokens != 1) return;  // prefill rows go through the prefill kernel
  const int p = s.start;
  const int heads = a.cache.kv_heads * G;
  const int lo = a.window > 0 ? max(0, p - a.window + 1) : 0;
  const int S = a.split_tokens;
  const int n_used = p / S + 1;
  const int tid = int(threadIdx.x), warp = tid / warp_size, lane = tid % warp_size, hw = tid / 16;

  int s_begin, s_end;
  if constexpr (SinglePass) {
    s_begin = lo / S;
    s_end = n_used;
  } else {
    s_begin = int(blockIdx.z);
    s_end = s_begin + 1;
    if (s_begin >= n_used) return;
  }

  const kv_index<kv_dynamic, D> view = a.cache.view(s).template index<kv_dynamic, D>();  // head_dim static
  for (int i = tid; i < G * D; i += C::threads)
    q_s[i] = math::attention_scaled_query(a.q[(std::int64_t(s.first_row) * heads + kh * G) * D + i], a.scale);

  float m_run[R], l_run[R], m_cur[R], l_cur[R];
#pragma unroll
  for (int r = 0; r < R; ++r) m_run[r] = m_cur[r] = -INFINITY, l_run[r] = l_cur[r] = 0.0f;
  float acc_run[C::elems], acc[C::elems];
#pragma unroll
  for (int e = 0; e < C::elems; ++e) acc_run[e] = acc[e] = 0.0f;
  __syncthreads();

  for (int sp = s_begin; sp < s_end; ++sp) {
    const int a_lo = max(lo, sp * S), a_hi = min(p + 1, (sp + 1) * S);  // this split's keys: [a_lo, a_hi)
    auto valid = [&](int pos) { return pos >= a_lo && pos < a_hi; };
#pragma unroll
    for (int r = 0; r < R; ++r) m_cur[r] = -INFINITY, l_cur[r] = 0.0f;
#pragma unroll
    for (int e = 0; e < C::elems; ++e) acc[e] = 0.0f;

    for (int t = a_lo / KT * KT; t < a_hi; t += KT) {
      load_kv_tile<D, KvElem, KT, C::threads>(a, s, view, kh, t, valid, k_s, v_s, ks_s, vs_s);
      __syncthreads();
      // Logits: G x KT dots, one half-warp each (neighbouring half-warps take neighbouring keys).
      for (int idx = hw; idx < G * KT; idx += C::threads / 16) {
        const int g = idx / KT, j = idx % KT;
        const float sc = kv_has_scale<KvElem> ? ks_s[j] : 1.0f;
        const float x = tile_logit<D, KvElem>(q_s + g * D, k_s + j * C::tile::row, sc, a.softcap);
        if (tid % 16 == 0) p_s[g * KT + j] = x;
      }
      __syncthreads();
      // Online softmax: warp w runs query heads w, w + warps, ...
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int g = warp + r * C::warps;
        if (g < G) {
          const int j = lane;
          const bool ok = j < KT && valid(t + j);
          const float x = j < KT ? p_s[g * KT + j] : 0.0f;
          float a0, a1;
          const float pj = tile_softmax<KT>(x, ok, m_cur[r], l_cur[r], a0, a1);
          if (j < KT) p_s[g * KT + j] = pj;
          if (lane == 0) {
            alpha_s[2 * g] = a0;
            alpha_s[2 * g + 1] = a1;
          }
        }
      }
      __syncthreads();
#pragma unroll
      for (int e = 0; e < C::elems; ++e) {
        const int i = tid + e * C::threads;
        if (i < G * D) {
          const int g = i / D, d = i % D;
#pragma unroll
          for (int c = 0; c < KT / 16; ++c) {
            acc[e] = __fmul_rn(acc[e], alpha_s[2 * g + c]);
            for (int jj = 0; jj < 16; ++jj) {
              const int j = 16 * c + jj;
              if (!valid(t + j)) continue;
              const float sc = kv_has_scale<KvElem> ? vs_s[j] : 1.0f;
              acc[e] = fmaf(p_s[g * KT + j], kv_value<KvElem>(v_s[j * C::tile::row + d], sc), acc[e]);
            }
          }
        }
      }
      __syncthreads();
    }

    if constexpr (SinglePass) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int g = warp + r * C::warps;
        if (g < G) {
          float aa, ab;
          merge_coefficients(m_run[r], l_run[r], m_cur[r], l_cur[r], aa, ab);
          if (lane == 0) {
            coef_s[4 * g] = aa;
            coef_s[4 * g + 1] = ab;
            coef_s[4 * g + 2] = l_run[r];
          }
        }
      }
      __syncthreads();
#pragma unroll
      for (int e = 0; e < C::elems; ++e) {
        const int i = tid + e * C::threads;
        if (i < G * D) {
          const int g = i / D;
          acc_run[e] = merge_acc(acc_run[e], coef_s[4 * g], acc[e], coef_s[4 * g + 1]);
        }
      }
      __syncthreads();
    } else {
      // Partial of split sp: acc, then m and l.
#pragma unroll
      for (int e = 0; e < C::elems; ++e) {
        const int i = tid + e * C::threads;
        if (i < G * D) {
          const int g = i / D, d = i % D;
          a.partials[((std::int64_t(b) * heads + kh * G + g) * a.max_splits + sp) * (D + 2) + d] = acc[e];
        }
      }
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int g = warp + r * C::warps;
        if (g < G && lane == 0) {
          float* part = a.partials + ((std::int64_t(b) * heads + kh * G + g) * a.max_splits + sp) * (D + 2);
          part[D] = m_cur[r];
          part[D + 1] = l_cur[r];
        }
      }
    }
  }

  if constexpr (SinglePass) {
#pragma unroll
    for (int e = 0; e < C::elems; ++e) {
      const int i = tid + e * C::threads;
      if (i < G * D) {
        const int g = i / D, d = i % D;
        a.out[(std::int64_t(s.first_row) * heads + kh * G + g) * D + d] = __fdiv_rn(acc_run[e], coef_s[4 * g + 2]);
      }
    }
  }
}

// Merge of the split-K partials of one (decode sequence, query head), ascending splits.
template <int D>
// cppcheck-suppress unusedFunction ; launched with <<<...>>>, which cppcheck does not read as a call
__global__ void attn_merge_kernel(const device_seq* __restrict__ seqs, const float* __restrict__ partials, int heads,
                                  int max_splits, int split_tokens, int window, float* __restrict__ out) {
  const int b = int(blockIdx.x), h = int(blockIdx.y);
  const device_seq s = seqs[b];
  if (s.n_tokens != 1) return;
  const int p = s.start;
  const int lo = window > 0 ? max(0, p - window + 1) : 0;
  const int n_used = p / split_tokens + 1;
  const float* base = partials + (std::int64_t(b) * heads + h) * max_splits * (D + 2);
  for (int d = int(threadIdx.x); d < D; d += int(blockDim.x)) {
    float m = -INFINITY, l = 0.0f, acc = 0.0f;
    for (int sp = lo / split_tokens; sp < n_used; ++sp) {
      const float* part = base + std::int64_t(sp) * (D + 2);
      float aa, ab;
      merge_coefficients(m, l, part[D], part[D + 1], aa, ab);
      acc = merge_acc(acc, aa, part[d], ab);
    }
    out[(std::int64_t(s.first_row) * heads + h) * D + d] = __fdiv_rn(acc, l);
  }
}

// ------------------------------------------------------------------------------ prefill
template <int D, int G, class KvElem>
struct prefill_config {
  static constexpr int threads = 128;
  static constexpr int warps = threads / warp_size;
  static constexpr int rows = 16;          // query rows (query, head) per block
  static constexpr int queries = rows / G; // queries per block
  static constexpr int kt = 32;
  using tile = kv_tile<D, KvElem, kt>;
  static constexpr int rows_per_warp = rows / warps;
  static constexpr int elems = rows * D / threads;
  static constexpr int smem_bytes = tile::bytes + rows * D * 4 + rows * kt * 4 + rows * 2 * 4 + rows * 4 * 4;
  static_assert(rows % G == 0, "GQA group must divide the 16 query rows of a block");
  static_assert((rows * D) % threads == 0, "whole output elements per thread");
  // Dynamic shared memory: the launcher raises the limit above 48 KiB; 99 KiB is sm_89's maximum.
  static_assert(smem_bytes <= 99 * 1024, "prefill attention tile must fit an RTX 4090 SM's shared memory");
};

template <int D, int G, class KvElem>
__global__ void __launch_bounds__(128) attn_prefill_kernel(attention_args<KvElem> a, int seq_index) {
  using C = prefill_config<D, G, KvElem>;
  constexpr int KT = C::kt, RW = C::rows_per_warp, NR = C::rows;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  KvElem* k_s = reinterpret_cast<KvElem*>(smem_raw);
  KvElem* v_s = k_s + KT * C::tile::row;
  float* ks_s = reinterpret_cast<float*>(v_s + KT * C::tile::row);
  float* vs_s = ks_s + KT;
  float* q_s = vs_s + KT;
  float* p_s = q_s + NR * D;
  float* alpha_s = p_s + NR * KT;
  float* coef_s = alpha_s + NR * 2;

  const device_seq s = a.seqs[seq_index];
  const int kh = int(blockIdx.y);
  const int i0 = int(blockIdx.x) * C::queries;  // first query of the block within the chunk
  const int heads = a.cache.kv_heads * G;
  const int tid = int(threadIdx.x), warp = tid / warp_size, lane = tid % warp_size, hw = tid / 16;
  const int S = a.split_tokens;

  // Row r = (query i0 + r / G, head kh * G + r % G).
  auto row_pos = [&](int r) { return s.start + i0 + r / G; };
  auto row_active = [&](int r) { return i0 + r / G < s.n_tokens; };
  auto row_lo = [&](int r) { return a.window > 0 ? max(0, row_pos(r) - a.window + 1) : 0; };
  const int last_q = min(s.n_tokens, i0 + C::queries) - 1;
  const int p_max = s.start + last_q;
  const int lo_min = a.window > 0 ? max(0, s.start + i0 - a.window + 1) : 0;

  const kv_index<kv_dynamic, D> view = a.cache.view(s).template index<kv_dynamic, D>();  // head_dim static
  for (int i = tid; i < NR * D; i += C::threads) {
    const int r = i / D, d = i % D;
    const std::int64_t qi = (std::int64_t(s.first_row + i0 + r / G) * heads + kh * G + r % G) * D + d;
    q_s[i] = row_active(r) ? math::attention_scaled_query(a.q[qi], a.scale) : 0.0f;
  }

  float m_run[RW], l_run[RW], m_cur[RW], l_cur[RW];
#pragma unroll
  for (int k = 0; k < RW; ++k) m_run[k] = m_cur[k] = -INFINITY, l_run[k] = l_cur[k] = 0.0f;
  float acc_run[C::elems], acc[C::elems];
#pragma unroll
  for (int e = 0; e < C::elems; ++e) acc_run[e] = acc[e] = 0.0f;
  __syncthreads();

  auto merge_split = [&]() {
#pragma unroll
    for (int k = 0; k < RW; ++k) {
      const int r = warp + k * C::warps;
      float aa, ab;
      merge_coefficients(m_run[k], l_run[k], m_cur[k], l_cur[k], aa, ab);
      m_cur[k] = -INFINITY;
      l_cur[k] = 0.0f;
      if (lane == 0) {
        coef_s[4 * r] = aa;
        coef_s[4 * r + 1] = ab;
        coef_s[4 * r + 2] = l_run[k];
      }
    }
    __syncthreads();
#pragma unroll
    for (int e = 0; e < C::elems; ++e) {
      const int r = (tid + e * C::threads) / D;
      acc_run[e] = merge_acc(acc_run[e], coef_s[4 * r], acc[e], coef_s[4 * r + 1]);
      acc[e] = 0.0f;
    }
    __syncthreads();
  };

  const int t_begin = lo_min / KT * KT;
  for (int t = t_begin; t <= p_max; t += KT) {
    if (t > t_begin && t % S == 0) merge_split();
    auto any_valid = [&](int pos) { return pos >= lo_min && pos <= p_max; };
    load_kv_tile<D, KvElem, KT, C::threads>(a, s, view, kh, t, any_valid, k_s, v_s, ks_s, vs_s);
    __syncthreads();
    for (int idx = hw; idx < NR * KT; idx += C::threads / 16) {
      const int r = idx / KT, j = idx % KT;
      const float sc = kv_has_scale<KvElem> ? ks_s[j] : 1.0f;
      // Keys outside [lo_min, p_max] were not loaded: give the dot zeros instead of stale shared memory.
      const bool loaded = any_valid(t + j);
      const float x = tile_logit<D, KvElem>(q_s + r * D, k_s + j * C::tile::row, sc, a.softcap);
      if (tid % 16 == 0) p_s[r * KT + j] = loaded ? x : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < RW; ++k) {
      const int r = warp + k * C::warps;
      const int pos = t + lane;
      const bool ok = row_active(r) && pos >= row_lo(r) && pos <= row_pos(r);
      float a0, a1;
      const float pj = tile_softmax<KT>(p_s[r * KT + lane], ok, m_cur[k], l_cur[k], a0, a1);
      p_s[r * KT + lane] = pj;
      if (lane == 0) {
        alpha_s[2 * r] = a0;
        alpha_s[2 * r + 1] = a1;
      }
    }
    __syncthreads();
#pragma unroll
    for (int e = 0; e < C::elems; ++e) {
      const int i = tid + e * C::threads;
      const int r = i / D, d = i % D;
      const int rp = row_pos(r), rl = row_lo(r);
      const bool act = row_active(r);
#pragma unroll
      for (int c = 0; c < KT / 16; ++c) {
        acc[e] = __fmul_rn(acc[e], alpha_s[2 * r + c]);
        for (int jj = 0; jj < 16; ++jj) {
          const int j = 16 * c + jj, pos = t + j;
          if (!act || pos < rl || pos > rp) continue;
          const float sc = kv_has_scale<KvElem> ? vs_s[j] : 1.0f;
          acc[e] = fmaf(p_s[r * KT + j], kv_value<KvElem>(v_s[j * C::tile::row + d], sc), acc[e]);
        }
      }
    }
    __syncthreads();
  }
  merge_split();
#pragma unroll
  for (int e = 0; e < C::elems; ++e) {
    const int i = tid + e * C::threads;
    const int r = i / D, d = i % D;
    if (row_active(r))
      a.out[(std::int64_t(s.first_row + i0 + r / G) * heads + kh * G + r % G) * D + d] = __fdiv_rn(acc_run[e], coef_s[4 * r + 2]);
  }
}

}  // namespace detail

// ------------------------------------------------------------------------------ launchers
// Decode rows (sequences with n_tokens == 1) of the step. `schedule` picks the kernel; both give the
// same bits. Split-K needs a.partials ([n_seqs][heads][max_splits][D + 2] floats).
template <int D, int G, class KvElem>
status launch_attention_decode(const attention_args<KvElem>& a, attention_schedule schedule, cudaStream_t stream) noexcept {
  if (a.seqs == nullptr || a.q == nullptr || a.out == nullptr || a.cache.kv_heads <= 0 || a.cache.head_dim != D || a.n_seqs < 0 ||
      a.split_tokens <= 0 || a.split_tokens % 32 != 0 || a.max_splits <= 0)
    return status::invalid_argument;
  if (a.n_seqs == 0) return status::ok;
  const bool split = schedule == attention_schedule::split_k && a.max_splits > 1;
  if (split) {
    if (a.partials == nullptr) return status::invalid_argument;
    const dim3 grid(unsigned(a.n_seqs), unsigned(a.cache.kv_heads), unsigned(a.max_splits));
    detail::attn_decode_kernel<D, G, KvElem, false><<<grid, 128, 0, stream>>>(a);
    if (detail::launch_status() != status::ok) return status::cuda_error;
    const dim3 mgrid(unsigned(a.n_seqs), unsigned(a.cache.kv_heads * G));
    detail::attn_merge_kernel<D><<<mgrid, D < 128 ? 32 : 128, 0, stream>>>(a.seqs, a.partials, a.cache.kv_heads * G,
                                                                          a.max_splits, a.split_tokens, a.window, a.out);
  } else {
    const dim3 grid(unsigned(a.n_seqs), unsigned(a.cache.kv_heads));
    detail::attn_decode_kernel<D, G, KvElem, true><<<grid, 128, 0, stream>>>(a);
  }
  return detail::launch_status();
}

// The chunk of sequence `seq_index` (host-known n_tokens of it, > 0).
template <int D, int G, class KvElem>
status launch_attention_prefill(const attention_args<KvElem>& a, int seq_index, int n_tokens, cudaStream_t stream) noexcept {
  using C = detail::prefill_config<D, G, KvElem>;
  if (a.seqs == nullptr || a.q == nullptr || a.out == nullptr || a.cache.kv_heads <= 0 || a.cache.head_dim != D || seq_index < 0 ||
      seq_index >= a.n_seqs || a.split_tokens <= 0 || a.split_tokens % 32 != 0)
    return status::invalid_argument;
  if (n_tokens <= 0) return status::ok;
  // The attribute belongs to the current device's context: remember it per device (a process-wide
  // flag would skip it on a second GPU). Set on the first (eager) launch; prefill is never captured.
  constexpr int max_devices = 64;
  static bool attribute_set[max_devices] = {};
  int device = 0;
  if (const cudaError_t e = cudaGetDevice(&device); e != cudaSuccess) {
    detail::last_launch_error() = e;
    return status::cuda_error;
  }
  if (device >= max_devices || !attribute_set[device]) {
    if (detail::allow_dynamic_smem(detail::attn_prefill_kernel<D, G, KvElem>, C::smem_bytes) != status::ok)
      return status::cuda_error;
    if (device < max_devices) attribute_set[device] = true;
  }
  const dim3 grid(unsigned(detail::ceil_div(n_tokens, C::queries)), unsigned(a.cache.kv_heads));
  detail::attn_prefill_kernel<D, G, KvElem><<<grid, C::threads, C::smem_bytes, stream>>>(a, seq_index);
  return detail::launch_status();
}

}  // namespace gemmaforge::cuda
