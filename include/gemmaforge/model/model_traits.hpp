#pragma once
// model_traits: what a model's layers *do*, as named values (gemma.cpp's LayerConfig names them:
// PostNormType, use_qk_norm, QueryScaleType, ActivationType). The forward pass, the binder and the
// tensor list read these, never the generation: a model with Gemma 3's QK-norm and Gemma 2's
// softcaps is a new traits value, not a new `if (family == ...)` in every layer of the code.
// The softcaps and the sliding window are shapes of the descriptor (softcaps<>, the layer pattern).
#include <cstdint>

namespace gemmaforge {

// Norms on the output of the attention and MLP sub-blocks, before the residual add.
enum class post_norm_type : std::uint8_t {
  none,      // Gemma 1: h = x + attn(norm(x))
  rms_norm,  // Gemma 2/3: h = x + post_norm(attn(pre_norm(x))), and the same around the MLP
};

// The factor on the q.k products.
enum class query_scale_type : std::uint8_t {
  sqrt_key_size,       // head_dim^-1/2 (HF Gemma 1)
  sqrt_pre_attn_scalar // query_pre_attn_scalar^-1/2 (HF Gemma 2/3: 144 and 168 on the 27B models)
};

// The MLP's gated activation.
enum class activation_type : std::uint8_t {
  gelu_tanh,  // GeGLU: down(gelu_tanh(gate(x)) * up(x)), every Gemma
  silu,       // SwiGLU (Mistral: planning only, the runtime does not implement it)
};

// What multiplies the token embedding.
enum class embedding_scale_type : std::uint8_t {
  none,         // Mistral
  sqrt_hidden,  // Gemma: sqrt(hidden), rounded to the activation dtype (math/embedding.hpp)
};

// The norms' gain convention.
enum class norm_gain_type : std::uint8_t {
  one_plus_w,  // Gemma: x * (1 + w)
  w,           // Llama/Mistral: x * w
};

struct model_traits {
  post_norm_type post_norm = post_norm_type::none;
  bool use_qk_norm = false;  // RMSNorm over head_dim on q and k before RoPE (Gemma 3)
  query_scale_type query_scale = query_scale_type::sqrt_pre_attn_scalar;
  activation_type activation = activation_type::gelu_tanh;
  embedding_scale_type embedding_scale = embedding_scale_type::sqrt_hidden;
  norm_gain_type norm_gain = norm_gain_type::one_plus_w;
  bool tied_embedding = true;  // the LM head is the embedding matrix
  // RMSNorm epsilon as its inverse (1e-6 -> 1000000): an integer, so that a traits value can be a
  // template argument for every compiler the project uses (clang 14 has no float template arguments).
  std::uint32_t rms_eps_inverse = 1000000;

  constexpr float rms_eps() const { return float(1.0 / double(rms_eps_inverse)); }
};

namespace traits {
inline constexpr model_traits gemma1{.query_scale = query_scale_type::sqrt_key_size};
inline constexpr model_traits gemma2{.post_norm = post_norm_type::rms_norm};
inline constexpr model_traits gemma3{.post_norm = post_norm_type::rms_norm, .use_qk_norm = true};
inline constexpr model_traits mistral{.activation = activation_type::silu,
                                      .embedding_scale = embedding_scale_type::none,
                                      .norm_gain = norm_gain_type::w,
                                      .tied_embedding = false,
                                      .rms_eps_inverse = 100000};
}  // namespace traits

}  // namespace gemmaforge
