#pragma once
// model_descriptor<...>: everything about a model's shape that is fixed at compile time.
// A concrete model is a named struct deriving from one instantiation (gemma_3_270m, ...), so
// compiler errors and type lists show readable names. What the layers compute is named by the
// traits (model/model_traits.hpp), never inferred from the generation; the generation only names
// the file formats' architecture ("gemma3") and picks the default traits.
#include <concepts>
#include <cstdint>
#include <string_view>

#include <gemmaforge/model/attention_shape.hpp>
#include <gemmaforge/model/layer_pattern.hpp>
#include <gemmaforge/model/model_traits.hpp>
#include <gemmaforge/model/rope.hpp>

namespace gemmaforge {

// Architecture generation: the name the file formats give it, and the default traits.
enum class family : std::uint8_t { gemma1, gemma2, gemma3, mistral };

constexpr model_traits default_traits(family f) {
  switch (f) {
    case family::gemma1: return traits::gemma1;
    case family::gemma2: return traits::gemma2;
    case family::gemma3: return traits::gemma3;
    case family::mistral: return traits::mistral;
  }
  return {};
}

constexpr std::string_view to_string(family f) {
  switch (f) {
    case family::gemma1: return "gemma";
    case family::gemma2: return "gemma2";
    case family::gemma3: return "gemma3";
    case family::mistral: return "mistral";
  }
  return "?";
}

// Prompt formats (rendered by tokenizer/chat_template.hpp).
enum class chat_template : std::uint8_t {
  gemma,     // <start_of_turn>user\n...<end_of_turn>\n<start_of_turn>model\n
  openchat,  // GPT4 Correct User: ...<end_of_turn>GPT4 Correct Assistant:
  none,      // base/planning-only models
};

template <int Vocab, int Hidden, int Ffn, int MaxPositions>
struct model_dims {
  static_assert(Vocab > 0 && Hidden > 0 && Ffn > 0 && MaxPositions > 0, "model_dims: sizes must be positive");
  static constexpr int vocab = Vocab;
  static constexpr int hidden = Hidden;
  static constexpr int ffn = Ffn;
  static constexpr int max_positions = MaxPositions;
};

// Soft-capping of attention logits and final logits: cap * tanh(x / cap); 0 = none (Gemma 2 only).
template <int AttnCap = 0, int FinalCap = 0>
struct softcaps {
  static_assert(AttnCap >= 0 && FinalCap >= 0, "softcaps must be >= 0 (0 = off)");
  static constexpr int attn = AttnCap;
  static constexpr int final_logits = FinalCap;
};

template <family Family, class Dims, class Attention, class Layers, class Rope, int QueryPreAttnScalar,
          class Caps = softcaps<>, chat_template Chat = chat_template::gemma,
          model_traits Traits = default_traits(Family)>
struct model_descriptor {
  // ---- shapes
  using dims = Dims;
  using attention = Attention;  // attention_shape<heads, kv_heads, head_dim>
  using layers = Layers;        // layer pattern: which layers are global / windowed
  using rope = Rope;            // rope_params<global θ, local θ, linear scale>
  using caps = Caps;

  static constexpr family arch = Family;
  static constexpr int vocab = Dims::vocab;
  static constexpr int hidden = Dims::hidden;
  static constexpr int ffn = Dims::ffn;
  static constexpr int max_positions = Dims::max_positions;
  static constexpr int n_layers = Layers::layers;
  static constexpr int heads = Attention::heads;
  static constexpr int kv_heads = Attention::kv_heads;
  static constexpr int head_dim = Attention::head_dim;
  static constexpr int q_dim = Attention::q_dim;
  static constexpr int kv_dim = Attention::kv_dim;
  static constexpr int window = Layers::window;  // 0 when every layer is global

  // ---- numerics (named traits: model/model_traits.hpp)
  static constexpr post_norm_type post_norm = Traits.post_norm;
  static constexpr bool post_norms = Traits.post_norm != post_norm_type::none;
  static constexpr bool use_qk_norm = Traits.use_qk_norm;
  static constexpr query_scale_type query_scale = Traits.query_scale;
  static constexpr activation_type activation = Traits.activation;
  static constexpr embedding_scale_type embedding_scale = Traits.embedding_scale;
  static constexpr norm_gain_type norm_gain = Traits.norm_gain;
  static constexpr bool tied_embedding = Traits.tied_embedding;
  static constexpr float rms_eps = Traits.rms_eps();
  // Attention logits are q.k * query_pre_attn_scalar^-1/2 (Gemma 2 27B: 144, not head_dim); with
  // query_scale_type::sqrt_key_size the descriptor must give head_dim here (checked below).
  static constexpr int query_pre_attn_scalar = QueryPreAttnScalar;
  // Soft-capping: cap * tanh(x / cap), 0 = off.
  static constexpr int attn_softcap = Caps::attn;
  static constexpr int final_softcap = Caps::final_logits;
  static constexpr chat_template chat = Chat;
  // What the runtime implements: GeGLU with the head tied to the embedding. The others (Mistral)
  // are descriptors for the memory planner's baseline.
  static constexpr bool runnable = Traits.activation == activation_type::gelu_tanh && Traits.tied_embedding;

  // ---- derived sizes
  static constexpr std::uint64_t embedding_params = std::uint64_t(Dims::vocab) * Dims::hidden;
  static constexpr std::uint64_t attention_params_per_layer =
      std::uint64_t(Dims::hidden) * (Attention::q_dim + 2 * Attention::kv_dim) +  // q, k, v
      std::uint64_t(Attention::q_dim) * Dims::hidden;                             // o
  static constexpr std::uint64_t mlp_params_per_layer = 3ull * Dims::hidden * Dims::ffn;  // gate, up, down
  static constexpr std::uint64_t norm_params_per_layer =
      std::uint64_t(post_norms ? 4 : 2) * Dims::hidden + (use_qk_norm ? 2ull * Attention::head_dim : 0ull);
  static constexpr std::uint64_t params_per_layer =
      attention_params_per_layer + mlp_params_per_layer + norm_params_per_layer;
  // Total parameters, the tied embedding counted once (an untied head counted separately).
  static constexpr std::uint64_t param_count =
      embedding_params * (tied_embedding ? 1 : 2) + params_per_layer * Layers::layers + Dims::hidden;

  // ---- self-validation
  static_assert(Dims::hidden % head_dim_vector_width == 0, "hidden must be a multiple of the vector width");
  static_assert(Dims::ffn % head_dim_vector_width == 0, "ffn must be a multiple of the vector width");
  static_assert(QueryPreAttnScalar > 0, "query_pre_attn_scalar must be positive");
  static_assert(Layers::window < Dims::max_positions, "a sliding window must be shorter than the context");
  static_assert(Traits.query_scale != query_scale_type::sqrt_key_size || QueryPreAttnScalar == Attention::head_dim,
                "query_scale_type::sqrt_key_size scales by head_dim^-1/2: give head_dim as query_pre_attn_scalar");
};

// Rows an HF checkpoint's embedding may carry beyond the text vocabulary (Gemma 3 4B+: 64 image
// tokens, 262208 rows against the 262144 text tokens their GGUF files keep). The binder accepts
// them and binds a view of the first `vocab` rows: text generation never produces those ids.
template <class M>
constexpr int extra_embedding_rows() {
  if constexpr (requires { M::hf_extra_embedding_rows; }) return M::hf_extra_embedding_rows;
  else return 0;
}

// Type trait: is T a model descriptor (derived from some model_descriptor instantiation)?
template <class T>
concept model_descriptor_type = requires {
  { T::name } -> std::convertible_to<std::string_view>;
  typename T::attention;
  typename T::layers;
  typename T::rope;
  T::param_count;
};

}  // namespace gemmaforge
