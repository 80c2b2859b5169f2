#pragma once
// The CPU executor's scratch, as regions of the planned arena (plan/arena_layout.hpp adds them;
// cpu_executor::carve takes them by these names). Sizes for a step of T = step_tokens(cfg) rows
// and sequences of max_seq_len positions:
//   cpu_act_quant  [T] quantized activation rows of the widest input (hidden, q_dim, ffn), in
//                  the 15-bit biased layout (int16_block_sums'), the largest of the integer
//                  layouts, so --matmul can be any precision without replanning
//                  (backend/cpu/act_quant.hpp)
//   cpu_gemm_pack  int16_block_sums' packed weight units, one per thread, for the widest input
//                  (backend/cpu/gemm_block_sums.hpp); planned only when the layout is told the
//                  thread count (layout_inputs::cpu_threads > 0)
//   cpu_attention  the chunk's keys/values in the cache's element type plus split-K partial
//                  states (detail::attn_layout below)
//   cpu_rope       two cos/sin tables of [T][head_dim / 2] and their inverse frequencies (one per
//                  RoPE configuration of a step: Gemma 3's local and global layers differ)
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include <gemmaforge/backend/cpu/act_quant.hpp>
#include <gemmaforge/backend/cpu/gemm_pack_layout.hpp>
#include <gemmaforge/core/dtype.hpp>
#include <gemmaforge/core/units.hpp>
#include <gemmaforge/kv/kv_codec.hpp>
#include <gemmaforge/math/attention_order.hpp>
#include <gemmaforge/plan/serving_config.hpp>

namespace gemmaforge::cpu {

inline constexpr int attention_split = math::attention_split;  // shared with CUDA (math/attention_order.hpp)
inline constexpr int rope_configurations = 2;

namespace detail {

// Fewer (token, kv head) items than this: parallelise over splits too.
inline constexpr int attention_split_items = 8;

constexpr std::size_t align64(std::size_t n) { return (n + 63) & ~std::size_t(63); }

template <class Shape, class KvElem>
struct attn_layout {
  static constexpr int G = Shape::group, D = Shape::head_dim, KVH = Shape::kv_heads;
  static constexpr bool scaled = kv_has_scale<KvElem>;
  static constexpr std::size_t state_floats = std::size_t(G) * (D + 2);  // m[G], l[G], acc[G][D]
  std::size_t kc = 0, vc = 0, ks = 0, vs = 0, partials = 0, bytes = 0;
  constexpr attn_layout(int T, int max_context) {
    const std::size_t elems = std::size_t(T) * KVH * D;
    kc = 0;
    vc = align64(kc + elems * sizeof(KvElem));
    ks = align64(vc + elems * sizeof(KvElem));
    vs = align64(ks + (scaled ? std::size_t(T) * KVH * 4 : 0));
    partials = align64(vs + (scaled ? std::size_t(T) * KVH * 4 : 0));
    std::size_t part = 0;
    if (T * KVH < attention_split_items) {
      const std::size_t splits = std::size_t(max_context) / attention_split + 2;
      part = std::size_t(T) * KVH * splits * state_floats * 4;
    }
    bytes = align64(partials + part);
  }
};

}  // namespace detail

struct scratch_sizes {
  std::uint64_t act_quant = 0, attention = 0, rope = 0, gemm_pack = 0;
};

template <class Model, class KvElem>
constexpr scratch_sizes scratch_for(const serving_config& c, int threads = 0) {
  const std::uint64_t T = step_tokens(c);
  const int widest = std::max({Model::hidden, Model::q_dim, Model::ffn});
  const std::uint64_t half = std::uint64_t(Model::head_dim / 2);
  scratch_sizes s;
  s.act_quant = make_act_layout(int(round_up(std::uint64_t(widest), 32)), true, true).row_bytes * T;
  s.gemm_pack = threads > 0 ? gemm_pack_scratch_bytes(int(round_up(std::uint64_t(widest), 32)), threads) : 0;
  s.attention = detail::attn_layout<typename Model::attention, KvElem>(int(T), int(c.max_seq_len)).bytes;
  s.rope = std::uint64_t(rope_configurations) * (half + 2 * half * T) * sizeof(float);
  return s;
}

// The same for the KV type the config names.
template <class Model>
constexpr scratch_sizes scratch_for(const serving_config& c, int threads = 0) {
  switch (c.kv) {
    case dtype::f32: return scratch_for<Model, float>(c, threads);
    case dtype::f16: return scratch_for<Model, f16>(c, threads);
    case dtype::bf16: return scratch_for<Model, bf16>(c, threads);
    case dtype::fp8_e4m3: return scratch_for<Model, fp8_e4m3>(c, threads);
    case dtype::int8: return scratch_for<Model, std::int8_t>(c, threads);
  }
  return {};
}

}  // namespace gemmaforge::cpu
