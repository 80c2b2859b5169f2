#pragma once
// Physical layout of the KV pool, shared by the CPU and CUDA attention kernels and the pool.
//
// The pool is split into blocks of `block_tokens` tokens. For one layer, a block holds
//   K plane: [kv_head][block_tokens][head_dim] elements    (a head's tokens are contiguous, so a
//   V plane: [kv_head][block_tokens][head_dim] elements     GQA group streams one K/V run per block)
//   scales:  [kv_head][block_tokens] f32 for K and for V   (only for fp8 / int8 elements: one
//                                                           scale per (token, head) vector)
// and a layer's plane is blocks * that, so element (block b, head h, token-in-block j, dim d) sits
// at ((b * kv_heads + h) * block_tokens + j) * head_dim + d.
//
// A sequence finds position t through its block list:
//   global layers: blocks = the sequence's block table, block of t = blocks[t / block_tokens]
//   local layers:  blocks = the sequence's ring,        block of t = blocks[(t / block_tokens) % n_blocks]
// Both are the same formula with a modulo that never wraps for tables: one code path.
#include <cstdint>
#include <type_traits>

#include <gemmaforge/core/dtype.hpp>
#include <gemmaforge/core/macros.hpp>

namespace gemmaforge {

// What attention reads for one (sequence, layer): K/V planes of that layer and the sequence's
// block list. Pointers are host or device memory depending on the backend.
struct kv_cache_view {
  const void* k = nullptr;            // layer K plane, element type = the pool's KV dtype
  const void* v = nullptr;            // layer V plane
  const float* k_scale = nullptr;     // [block][kv_head][block_tokens]; fp8/int8 only
  const float* v_scale = nullptr;
  const std::int32_t* blocks = nullptr;  // block ids (table or ring)
  std::int32_t n_blocks = 0;             // entries in `blocks`
  std::int32_t block_tokens = 16;
  std::int32_t kv_heads = 1;
  std::int32_t head_dim = 0;

  // Element offset of (position t, kv head h, dim 0) in the K/V planes.
  GF_HOST_DEVICE std::int64_t offset(std::int32_t t, std::int32_t h) const {
    const std::int32_t b = blocks[(t / block_tokens) % n_blocks];
    return ((std::int64_t(b) * kv_heads + h) * block_tokens + t % block_tokens) * head_dim;
  }
  // Offset of the (t, h) scale in the scale planes.
  GF_HOST_DEVICE std::int64_t scale_offset(std::int32_t t, std::int32_t h) const {
    const std::int32_t b = blocks[(t / block_tokens) % n_blocks];
    return (std::int64_t(b) * kv_heads + h) * block_tokens + t % block_tokens;
  }
};

// Mutable twin used when appending new keys/values.
struct kv_cache_mut_view {
  void* k = nullptr;
  void* v = nullptr;
  float* k_scale = nullptr;
  float* v_scale = nullptr;
  const std::int32_t* blocks = nullptr;
  std::int32_t n_blocks = 0;
  std::int32_t block_tokens = 16;
  std::int32_t kv_heads = 1;
  std::int32_t head_dim = 0;

  GF_HOST_DEVICE kv_cache_view as_const() const {
    return kv_cache_view{k, v, k_scale, v_scale, blocks, n_blocks, block_tokens, kv_heads, head_dim};
  }
};

// Does a KV element type carry a per-vector scale?
template <class KvElem>
inline constexpr bool kv_has_scale = std::is_same_v<KvElem, fp8_e4m3> || std::is_same_v<KvElem, std::int8_t>;

}  // namespace gemmaforge
