#pragma once
// workspace_layout<Model>(cfg): every scratch buffer one engine step needs, with its exact size.
// The runtime allocates the arena's workspace from this layout and nothing else (nothing on the
// request path allocates), so this is the one place to change when a kernel needs more scratch;
// the memory plan counts `total`, so the plan and the allocation cannot drift apart.
//
// A step runs T = min(prefill_chunk, max_seq_len) + max_batch token rows: the decode rows of the
// running sequences plus at most one prefill chunk (a chunk longer than max_seq_len is never
// needed). Activations are f32 between kernels whatever the weight format.
//
// Buffers (rows x columns, element size):
//   residual      [T, hidden]  f32  residual stream
//   normed        [T, hidden]  f32  norm outputs feeding the projections; reused as the output
//                                   of the o-projection and of ffn_down before their post-norms
//   q             [T, q_dim]   f32  queries after QK-norm and RoPE
//   k, v          [T, kv_dim]  f32  the chunk's keys/values (rounded through the KV codec, then
//                                   appended to the pool after the layer's attention)
//   attn_out      [T, q_dim]   f32  attention output, input of the o-projection
//   gate, up      [T, ffn]     f32  GeGLU halves; gelu(gate) * up is written back into gate
//   logits        [max_batch, vocab] f32   one row per sequence that samples this step
//   sampling      [max_batch, vocab] 8 B   (probability, token id) pairs for top-k / top-p
//   attn_partials [max_batch, heads, attn_kv_splits, head_dim + 2] f32
//                                   split-K decode: a decode row of one head is split over
//                                   attn_kv_splits key ranges (to fill the GPU at batch 1); each
//                                   split leaves its partial output, running max and sum
//   attn_scores   [T, heads, attn_key_tile] f32
//                                   one tile of attention logits per (row, head): attention
//                                   walks the keys in tiles of 64 with an online softmax, so no
//                                   buffer grows with the context ([T, heads, max_seq_len] f32
//                                   would be 256 MiB for Gemma 7B at 8k)
//   q8_act        [T, max(hidden, q_dim, ffn)] as Q8 blocks: 32 int8 + one f32 scale = 36 B
//                                   per 32 values; the activation side of integer dot products
//                                   with Q8_0 / K-quant weights
//   token_meta    [T, 4] i32       token id, position, sequence slot, logits row
//   block_tables  [max_batch, ceil(max_seq_len / block_tokens) + ring_blocks] i32
//                                   each sequence's global block table and its ring (one list
//                                   serves every layer: a block id indexes each layer's plane)
// Each buffer starts on a 256-byte boundary (cudaMalloc's alignment, and a multiple of every
// vector width the kernels use).
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <gemmaforge/core/units.hpp>
#include <gemmaforge/plan/kv_bytes.hpp>
#include <gemmaforge/plan/serving_config.hpp>

namespace gemmaforge {

inline constexpr std::uint64_t workspace_alignment = 256;
inline constexpr std::uint64_t attn_kv_splits = 32;  // decode split-K factor (covers 132 SMs at batch 1, 4+ heads)
inline constexpr std::uint64_t attn_key_tile = 64;   // keys per online-softmax tile
inline constexpr std::uint64_t q8_block_values = 32;
inline constexpr std::uint64_t q8_block_bytes = 32 + 4;

struct workspace_buffer {
  std::string_view name;
  std::uint64_t bytes = 0;   // exact size
  std::uint64_t offset = 0;  // from the start of the workspace, aligned
};

struct workspace_sizes {
  std::uint64_t step_tokens = 0;  // T
  std::uint64_t residual = 0;
  std::uint64_t normed = 0;
  std::uint64_t q = 0;
  std::uint64_t k = 0;
  std::uint64_t v = 0;
  std::uint64_t attn_out = 0;
  std::uint64_t gate = 0;
  std::uint64_t up = 0;
  std::uint64_t logits = 0;
  std::uint64_t sampling = 0;
  std::uint64_t attn_partials = 0;
  std::uint64_t attn_scores = 0;
  std::uint64_t q8_act = 0;
  std::uint64_t token_meta = 0;
  std::uint64_t block_tables = 0;
  std::uint64_t total = 0;  // sum of the buffers, each rounded up to workspace_alignment

  static constexpr std::size_t buffer_count = 15;

  // Names, sizes and offsets in allocation order: the runtime carves its arena with these.
  constexpr std::array<workspace_buffer, buffer_count> buffers() const {
    std::array<workspace_buffer, buffer_count> b{{
        {"residual", residual, 0},       {"normed", normed, 0},     {"q", q, 0},
        {"k", k, 0},                     {"v", v, 0},               {"attn_out", attn_out, 0},
        {"gate", gate, 0},               {"up", up, 0},             {"logits", logits, 0},
        {"sampling", sampling, 0},       {"attn_partials", attn_partials, 0},
        {"attn_scores", attn_scores, 0}, {"q8_act", q8_act, 0},     {"token_meta", token_meta, 0},
        {"block_tables", block_tables, 0},
    }};
    std::uint64_t at = 0;
    for (workspace_buffer& x : b) {
      x.offset = at;
      at += round_up(x.bytes, workspace_alignment);
    }
    return b;
  }
};

template <class Model>
constexpr workspace_sizes workspace_layout(const serving_config& c) {
  workspace_sizes w;
  const std::uint64_t chunk = c.prefill_chunk < c.max_seq_len ? c.prefill_chunk : c.max_seq_len;
  const std::uint64_t t = chunk + c.max_batch;
  const std::uint64_t batch = c.max_batch;
  const std::uint64_t hidden = std::uint64_t(Model::hidden);
  const std::uint64_t q_dim = std::uint64_t(Model::q_dim);
  const std::uint64_t kv_dim = std::uint64_t(Model::kv_dim);
  const std::uint64_t ffn = std::uint64_t(Model::ffn);
  const std::uint64_t vocab = std::uint64_t(Model::vocab);
  const std::uint64_t heads = std::uint64_t(Model::heads);
  const std::uint64_t head_dim = std::uint64_t(Model::head_dim);
  std::uint64_t widest = hidden > q_dim ? hidden : q_dim;
  widest = widest > ffn ? widest : ffn;

  w.step_tokens = t;
  w.residual = t * hidden * 4;
  w.normed = t * hidden * 4;
  w.q = t * q_dim * 4;
  w.k = t * kv_dim * 4;
  w.v = t * kv_dim * 4;
  w.attn_out = t * q_dim * 4;
  w.gate = t * ffn * 4;
  w.up = t * ffn * 4;
  w.logits = batch * vocab * 4;
  w.sampling = batch * vocab * 8;
  w.attn_partials = batch * heads * attn_kv_splits * (head_dim + 2) * 4;
  w.attn_scores = t * heads * attn_key_tile * 4;
  w.q8_act = t * ceil_div(widest, q8_block_values) * q8_block_bytes;
  w.token_meta = t * 4 * 4;
  w.block_tables = batch * (ceil_div(c.max_seq_len, c.block_tokens) + ring_blocks<Model>(c)) * 4;

  const auto list = w.buffers();
  const workspace_buffer& last = list[list.size() - 1];
  w.total = last.offset + round_up(last.bytes, workspace_alignment);
  return w;
}

}  // namespace gemmaforge
