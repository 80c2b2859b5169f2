#pragma once
// The two choices of attention's canonical order that live outside math/softmax.hpp and that every
// backend must make the same way to produce the same bits (backend/cpu/attention.hpp and
// backend/cuda/attention.cuh both call these; tests/unit/attention_order_test.cpp pins them):
//   scale   the logit scale is folded into the query, one rounding per element, before the dot:
//           (q * scale) . k. (q . k) * scale rounds differently unless scale is a power of two,
//           i.e. for every model whose query_pre_attn_scalar is not 4^n (Gemma 2/3 27B: 144, 168).
//   splits  fixed ranges of `attention_split` absolute positions, each folded from the empty
//           state and merged in ascending order (math::softmax_merge). Every merge rounds, so the
//           split length is part of the result: it is one constant, not a per-deployment choice.
#include <gemmaforge/core/macros.hpp>

namespace gemmaforge::math {

inline constexpr int attention_split = 256;  // positions per split (a multiple of the 16-key tile and of 32)

GF_HOST_DEVICE float attention_scaled_query(float q, float scale) { return q * scale; }

// The split length a deployment runs with: `requested` > 0 overrides (a benchmark may try larger
// splits; results then differ from the CPU backend's in the last bits), 0 means the canonical one.
GF_HOST_DEVICE constexpr int attention_split_tokens(int requested) { return requested > 0 ? requested : attention_split; }

// Number of splits a context of `max_seq_len` positions can span.
GF_HOST_DEVICE constexpr int attention_max_splits(int max_seq_len, int split_tokens) {
  return (max_seq_len > 0 ? max_seq_len : 1) / split_tokens + ((max_seq_len > 0 ? max_seq_len : 1) % split_tokens != 0);
}

}  // namespace gemmaforge::math
