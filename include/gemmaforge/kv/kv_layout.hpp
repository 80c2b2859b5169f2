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

// An extent of the layout that is read at run time. The other extents are compile-time constants
// where the kernel knows them (a model descriptor's kv_heads and head_dim), as in CuTe's mixed
// static/dynamic layouts: the index math below is then multiplications by constants.
inline constexpr std::int32_t kv_dynamic = -1;

// The index math of the layout above, with kv_heads and head_dim static (or kv_dynamic: taken from
// the run-time fields) and the run-time facts of one (sequence, layer): its block list, how many
// entries it has, and block_tokens (a serving-config choice, not a model fact).
template <std::int32_t KvHeads, std::int32_t HeadDim>
struct kv_index {
  const std::int32_t* blocks = nullptr;
  std::int32_t n_blocks = 0;
  std::int32_t block_tokens = 16;
  std::int32_t dyn_kv_heads = KvHeads;  // read only when KvHeads is kv_dynamic
  std::int32_t dyn_head_dim = HeadDim;  // read only when HeadDim is kv_dynamic

  GF_HOST_DEVICE constexpr std::int32_t kv_heads() const { return KvHeads == kv_dynamic ? dyn_kv_heads : KvHeads; }
  GF_HOST_DEVICE constexpr std::int32_t head_dim() const { return HeadDim == kv_dynamic ? dyn_head_dim : HeadDim; }
  // Offset of the (position t, kv head h) scale in the scale planes ([block][kv_head][block_tokens]).
  GF_HOST_DEVICE std::int64_t scale_offset(std::int32_t t, std::int32_t h) const {
    const std::int32_t b = blocks[(t / block_tokens) % n_blocks];
    return (std::int64_t(b) * kv_heads() + h) * block_tokens + t % block_tokens;
  }
  // Element offset of (position t, kv head h, dim 0) in the K/V planes.
  GF_HOST_DEVICE std::int64_t offset(std::int32_t t, std::int32_t h) const { return scale_offset(t, h) * head_dim(); }
};

// What attention reads for one (sequence, layer): K/V planes of that layer and the sequence's
// block list. Pointers are host or device memory depending on the backend. The sizes travel as
// run-time ints so that one view type serves every model; kernels that know the model take
// index<KvHeads, HeadDim>() once and do their index math with the static sizes.
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

  // The index math with kv_heads / head_dim static where given. The caller states the sizes it
  // was compiled for; a view of another shape is a bug in the caller (checked on the host).
  template <std::int32_t KvHeads = kv_dynamic, std::int32_t HeadDim = kv_dynamic>
  GF_HOST_DEVICE kv_index<KvHeads, HeadDim> index() const {
    return kv_index<KvHeads, HeadDim>{blocks, n_blocks, block_tokens, kv_heads, head_dim};
  }
  // Does this view have the shape a kernel compiled for (KvHeads, HeadDim) expects?
  template <std::int32_t KvHeads, std::int32_t HeadDim>
  GF_HOST_DEVICE bool has_shape() const {
    return (KvHeads == kv_dynamic || kv_heads == KvHeads) && (HeadDim == kv_dynamic || head_dim == HeadDim);
  }
  // Element offset of (position t, kv head h, dim 0) in the K/V planes (all sizes at run time).
  GF_HOST_DEVICE std::int64_t offset(std::int32_t t, std::int32_t h) const { return index().offset(t, h); }
  // Offset of the (t, h) scale in the scale planes.
  GF_HOST_DEVICE std::int64_t scale_offset(std::int32_t t, std::int32_t h) const { return index().scale_offset(t, h); }
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
