#pragma once
// The step description as the kernels read it from device memory. The executor uploads it once per
// step (begin_step) in one copy; kernels index it instead of receiving per-step values as launch
// arguments, which is what lets a captured decode graph be replayed for the next step unchanged.
#include <cstdint>

#include <gemmaforge/core/macros.hpp>
#include <gemmaforge/kv/kv_layout.hpp>

namespace gemmaforge::cuda {

// One sequence of the step (step/step.hpp's step_sequence plus where its block lists are).
struct device_seq {
  std::int32_t start = 0;      // position of its first token in this step
  std::int32_t n_tokens = 0;   // tokens in this step (1 = decode)
  std::int32_t first_row = 0;  // its first row in the step's token arrays
  std::int32_t table = 0;      // offset of its global block table in the block-list array
  std::int32_t ring = 0;       // offset of its ring (sliding-window layers)
  std::int32_t pad_ = 0;
};

// K/V planes of one layer and how to find a sequence's blocks: kv_cache_view's fields minus the
// per-sequence pointer, which comes from the device block lists.
template <class KvElem>
struct kv_layer_planes {
  KvElem* k = nullptr;
  KvElem* v = nullptr;
  float* k_scale = nullptr;  // fp8 / int8 only
  float* v_scale = nullptr;
  const std::int32_t* lists = nullptr;  // device: every sequence's table and ring, concatenated
  std::int32_t n_blocks = 0;            // entries in one sequence's list (table or ring length)
  std::int32_t block_tokens = 16;
  std::int32_t kv_heads = 1;
  std::int32_t head_dim = 0;
  bool local = false;                   // sliding-window layer: use the ring, not the table

  // The same kv_cache_view (and so the same offset formula) the CPU kernels and the pool use.
  GF_HOST_DEVICE kv_cache_view view(const device_seq& s) const {
    return kv_cache_view{k,        v, k_scale, v_scale, lists + (local ? s.ring : s.table), n_blocks,
                         block_tokens, kv_heads, head_dim};
  }
};

// This step's keys/values, already encoded into the KV element type ([T][kv_heads][head_dim] and
// one scale per (row, head) for fp8/int8): attention reads positions >= a sequence's start from here,
// so they are exactly what the cache will hold once kv_append has run (kv/kv_codec.hpp's contract).
template <class KvElem>
struct kv_fresh_rows {
  const KvElem* k = nullptr;
  const KvElem* v = nullptr;
  const float* k_scale = nullptr;
  const float* v_scale = nullptr;
};

}  // namespace gemmaforge::cuda
