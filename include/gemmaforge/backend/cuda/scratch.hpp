#pragma once
// The CUDA executor's scratch sizes, host-compilable (no CUDA headers): the planner adds them to
// the layout (plan/arena_layout.hpp) wherever it runs, and cuda_executor carves them by name.
//   cuda_step_meta       the step description (tokens, positions, row -> sequence, logit rows,
//                        sequences, block lists) on the device; cuda_meta_pinned is its host twin
//   cuda_act_quant       int8/int16 activations of the widest input (matvec.cuh); only with
//                        block-quantized weights
//   cuda_stage_*         a chunk's keys/values (and scales) in the cache's codec before append
//   cuda_attn_partials   split-K decode partials: [seqs][heads][splits][head_dim + 2]
//   cuda_cublaslt_*      cuBLASLt's workspace and its bf16 staging (only with prefill_gemm::cublaslt)
//   cuda_logits_host     pinned logits rows copied back each step
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include <gemmaforge/core/units.hpp>
#include <gemmaforge/math/attention_order.hpp>
#include <gemmaforge/plan/serving_config.hpp>

namespace gemmaforge::cuda {

// Keys per decode split: the canonical split (math/attention_order.hpp, the CPU's too) unless a
// benchmark overrides it; and the splits a context of max_seq_len positions can span.
constexpr std::int32_t attention_split_tokens(std::uint64_t /*max_seq_len*/, std::int32_t override_tokens = 0) {
  return math::attention_split_tokens(override_tokens);
}
constexpr std::int32_t attention_max_splits(std::uint64_t max_seq_len, std::int32_t override_tokens = 0) {
  return math::attention_max_splits(int(max_seq_len), math::attention_split_tokens(override_tokens));
}

// ints per sequence in the block lists: its global table, then its ring.
constexpr std::int32_t block_list_stride(std::uint64_t max_seq_len, std::uint64_t block_tokens, std::uint64_t window) {
  const std::uint64_t bt = block_tokens > 0 ? block_tokens : 1;
  const std::uint64_t table = ceil_div(max_seq_len > 0 ? max_seq_len : 1, bt);
  const std::uint64_t ring = window > 0 ? std::min(ceil_div(window, bt) + 1, table) : 0;
  return std::int32_t(table + ring);
}

namespace detail {

// Layout of the per-step description in int32 units (device and pinned staging alike).
struct meta_layout {
  std::size_t tokens = 0, positions = 0, row_seq = 0, logit_rows = 0, seqs = 0, lists = 0, total = 0;
  std::int32_t list_stride = 0;  // ints per sequence: its table then its ring
  static constexpr std::size_t seq_ints = 6;  // a device_seq, in int32 (static_assert in executor.cuh)

  static constexpr meta_layout make(int max_tokens, int max_logits, int max_seqs, int list_stride) {
    meta_layout m;
    auto up = [](std::size_t n) { return (n + 63) / 64 * 64; };  // 256-byte aligned sections
    std::size_t at = 0;
    m.tokens = at; at += up(std::size_t(max_tokens));
    m.positions = at; at += up(std::size_t(max_tokens));
    m.row_seq = at; at += up(std::size_t(max_tokens));
    m.logit_rows = at; at += up(std::size_t(std::max(max_logits, max_tokens)));
    m.seqs = at; at += up(std::size_t(max_seqs) * seq_ints);
    m.lists = at; at += up(std::size_t(max_seqs) * std::size_t(list_stride));
    m.total = at;
    m.list_stride = list_stride;
    return m;
  }
};

}  // namespace detail

// Quantized activations (matvec.cuh carves them): `digits` int8 planes of T x cols, then per-32
// scales and quant sums. digits = 1: int8 activations (math::quantize_act_block); 2: 15-bit
// activations as two int8 digits (math::quantize_act_block15); 0: the model has no block-quantized
// weights, so nothing is quantized and there is no region.
constexpr std::size_t act_quant_bytes(int T, int cols, int digits) {
  if (digits <= 0) return 0;
  const std::size_t nb = std::size_t(T) * std::size_t(cols / 32);
  auto up = [](std::size_t n) { return (n + 255) / 256 * 256; };
  return up(std::size_t(T) * std::size_t(cols)) * std::size_t(digits) + up(nb * 4) + up(nb * 4);
}

inline constexpr std::size_t cublaslt_workspace_bytes = 32u << 20;  // NVIDIA's recommendation for Hopper
inline constexpr std::size_t cublaslt_panel_bytes = 32u << 20;      // dequantized weight rows per call
constexpr std::size_t cublaslt_scratch_bytes(int T, int cols) {
  return (std::size_t(T) * std::size_t(cols) * 2 + 255) / 256 * 256 + cublaslt_panel_bytes;
}


// The executor options that change its scratch.
struct scratch_options {
  bool cublaslt = false;               // prefill_gemm::cublaslt
  std::int32_t attn_split_tokens = 0;  // 0 = attention_split_tokens(max_seq_len)
  std::int32_t act_digits = 0;         // act_quant_bytes: 0 (no quantized weights), 1 (int8), 2 (int16)
};

}  // namespace gemmaforge::cuda
