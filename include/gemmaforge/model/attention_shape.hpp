#pragma once
// attention_shape<Heads, KvHeads, HeadDim>: the facts every attention kernel specializes on.
// Models that share a shape share kernels (Gemma 3 1B and 270M both are <4, 1, 256>).
namespace gemmaforge {

// Vector width the CPU and CUDA kernels tile head_dim by (16 floats = one AVX-512 register,
// 16 lanes of a half-warp): every head_dim must be a multiple of it.
inline constexpr int head_dim_vector_width = 16;

template <int Heads, int KvHeads, int HeadDim>
struct attention_shape {
  static_assert(Heads > 0 && KvHeads > 0 && HeadDim > 0, "attention_shape: all sizes must be positive");
  static_assert(Heads % KvHeads == 0, "attention_shape: query heads must be a multiple of KV heads (GQA groups)");
  static_assert(HeadDim % head_dim_vector_width == 0, "attention_shape: head_dim must be a multiple of the vector width (16)");
  static_assert(HeadDim % 2 == 0, "attention_shape: RoPE rotates pairs, head_dim must be even");

  static constexpr int heads = Heads;        // query heads
  static constexpr int kv_heads = KvHeads;   // key/value heads
  static constexpr int head_dim = HeadDim;
  static constexpr int group = Heads / KvHeads;  // query heads served by one KV head (GQA/MQA)
  static constexpr int q_dim = Heads * HeadDim;
  static constexpr int kv_dim = KvHeads * HeadDim;
};

}  // namespace gemmaforge
