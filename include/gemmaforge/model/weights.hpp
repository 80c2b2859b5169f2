#pragma once
// model_weights<Model>: the bound tensors of one model, as views. The io layer fills it from a
// GGUF file or an HF directory (io/weight_binding.hpp) and owns the memory; the forward pass only
// reads it. Norm weights are normalised at bind time to one convention: f32 *gains* g = 1 + w
// (HF stores w; GGUF stores w + 1 already), so every kernel multiplies by g and never adds 1.
#include <array>

#include <gemmaforge/core/tensor.hpp>

namespace gemmaforge {

struct layer_weights {
  weight_view q, k, v, o;     // q: [q_dim, hidden], k/v: [kv_dim, hidden], o: [hidden, q_dim]
  weight_view gate, up, down; // gate/up: [ffn, hidden], down: [hidden, ffn]
  const float* attn_norm = nullptr;       // [hidden] before attention (HF input_layernorm)
  const float* post_attn_norm = nullptr;  // [hidden] after attention (post_norm_type::rms_norm), else nullptr
  const float* ffn_norm = nullptr;        // [hidden] before the MLP (Gemma 1: post_attention_layernorm)
  const float* post_ffn_norm = nullptr;   // [hidden] after the MLP (post_norm_type::rms_norm), else nullptr
  const float* q_norm = nullptr;          // [head_dim] QK-norm (use_qk_norm), else nullptr
  const float* k_norm = nullptr;          // [head_dim]
};

// The whole-model tensors, apart from the per-layer array so that model/tensor_list.hpp can name
// them with member pointers that do not depend on the model.
struct global_weights {
  weight_view embedding;             // [vocab, hidden]; also the tied LM head
  const float* final_norm = nullptr; // [hidden]
};

// Which tensors a model has, their names and shapes: model/tensor_list.hpp.
template <class Model>
struct model_weights : global_weights {
  std::array<layer_weights, Model::n_layers> layers{};
};

}  // namespace gemmaforge
