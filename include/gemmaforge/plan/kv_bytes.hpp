#pragma once
// KV cache sizes, following the pool layout of kv/kv_layout.hpp: per layer and token, K and V
// vectors of kv_heads x head_dim elements, plus one f32 scale per (token, head) for K and for V
// when the element type is fp8 or int8.
//
// Global layers keep every position of a sequence: their bytes grow with the context and are what
// the planner's "capacity in tokens" counts. Local (sliding-window) layers only need the last
// `window` positions: each sequence gets a ring of blocks per local layer, a fixed cost.
#include <cstdint>

#include <gemmaforge/core/dtype.hpp>
#include <gemmaforge/core/units.hpp>
#include <gemmaforge/plan/serving_config.hpp>

namespace gemmaforge {

constexpr bool kv_dtype_has_scale(dtype kv) { return kv == dtype::fp8_e4m3 || kv == dtype::int8; }

// K + V of one token in one layer, scales included.
template <class Model>
constexpr std::uint64_t kv_bytes_per_token_per_layer(dtype kv) {
  const std::uint64_t elems = 2ull * std::uint64_t(Model::kv_dim);
  const std::uint64_t scales = kv_dtype_has_scale(kv) ? 2ull * std::uint64_t(Model::kv_heads) * 4ull : 0ull;
  return elems * size_of(kv) + scales;
}

// One token in every global layer: the unit of the planner's capacity.
template <class Model>
constexpr std::uint64_t kv_bytes_per_token(dtype kv) {
  return kv_bytes_per_token_per_layer<Model>(kv) * std::uint64_t(Model::layers::global_layers());
}

// One token in every local layer.
template <class Model>
constexpr std::uint64_t local_kv_bytes_per_token(dtype kv) {
  return kv_bytes_per_token_per_layer<Model>(kv) * std::uint64_t(Model::layers::local_layers());
}

// One token in every layer: what an engine without window-bounded KV (vLLM in 2024) pays, and the
// "per token" column of the reference table (§3).
template <class Model>
constexpr std::uint64_t kv_bytes_per_token_all_layers(dtype kv) {
  return kv_bytes_per_token_per_layer<Model>(kv) * std::uint64_t(Model::n_layers);
}

// KV of one sequence of `tokens` positions when local layers keep exactly the window: the
// reference table's "window-bounded" column. (The pool's rings keep up to one block more.)
template <class Model>
constexpr std::uint64_t kv_bytes_window_bounded(dtype kv, std::uint64_t tokens) {
  const std::uint64_t w = std::uint64_t(Model::window);
  const std::uint64_t local_tokens = tokens < w ? tokens : w;
  return kv_bytes_per_token<Model>(kv) * tokens + local_kv_bytes_per_token<Model>(kv) * local_tokens;
}

// Blocks in one local layer's ring for one sequence. A chunk's keys are appended after the
// chunk's attention, so the ring must still hold the window - 1 positions before the oldest
// query of the next chunk while the block being written is partly filled: ceil(window / block)
// + 1 blocks do (docs/architecture.md, "Attention over a chunk"). A sequence never has more
// positions than max_seq_len, so the ring never needs more blocks than that takes.
template <class Model>
constexpr std::uint64_t ring_blocks(const serving_config& c) {
  if (Model::layers::local_layers() == 0) return 0;
  const std::uint64_t by_window = ceil_div(std::uint64_t(Model::window), c.block_tokens) + 1;
  const std::uint64_t by_length = ceil_div(c.max_seq_len, c.block_tokens);
  return by_window < by_length ? by_window : by_length;
}

// The rings of one sequence over all local layers.
template <class Model>
constexpr std::uint64_t ring_bytes_per_sequence(const serving_config& c) {
  return ring_blocks<Model>(c) * c.block_tokens * local_kv_bytes_per_token<Model>(c.kv);
}

}  // namespace gemmaforge
