#pragma once
// Weight bytes per storage scheme: which storage format each tensor of a model gets, and what
// the model then weighs. The planner counts what the engine keeps resident:
//  - the embedding once when the LM head is tied to it (every Gemma), twice when untied (Mistral);
//  - norm vectors as f32 (the loader binds them as f32 gains 1 + w, whatever the file stores);
//  - matrices in the scheme's format, rows padded to nothing: every format's block divides the
//    row length it is used for (the q4_k_m rule below makes sure of that, as llama.cpp does).
//
// q4_k_m follows llama.cpp's Q4_K_M mix (llama_tensor_get_type in llama-quant.cpp):
//  - base format Q4_K;
//  - Q6_K for the output matrix, which for a tied model is the token embedding;
//  - Q6_K for attn_v and ffn_down in the "more bits" layers: i < n/8, i >= 7n/8, and every
//    third layer in between ((i - n/8) % 3 == 2), i.e. 9 of Gemma 3 270M's 18 layers;
//  - a K-quant needs rows of a multiple of 256 weights. When a row (the tensor's input dim) is
//    not, llama.cpp falls back: Q4_K -> Q5_0 and Q6_K -> Q8_0 (32-weight blocks), and to F16 if
//    even 32 does not divide it. Gemma 3 270M's hidden size 640 = 2.5 x 256 is such a case: its
//    file stores token_embd as Q8_0 and attn_q/k/v and ffn_gate/up as Q5_0 (or Q8_0 for the
//    "more bits" attn_v), while attn_output (rows of 1024) and ffn_down (rows of 2048) stay K-quants.
// With this rule the estimate for gemma-3-270m equals the tensor data of the real Q4_K_M file
// byte for byte (246,587,904 B; the file's other 6.5 MB are the tokenizer and metadata), see
// tests/unit/plan_weights_test.cpp.
// q8_0 is llama.cpp's Q8_0 (every matrix Q8_0, F16 where a row is not a multiple of 32).
#include <cstdint>

#include <gemmaforge/core/format.hpp>
#include <gemmaforge/core/units.hpp>
#include <gemmaforge/model/tensor_list.hpp>
#include <gemmaforge/plan/serving_config.hpp>

namespace gemmaforge {

namespace detail {

// llama.cpp's use_more_bits(i_layer, n_layers).
constexpr bool q4_k_m_more_bits(int layer, int n_layers) {
  return layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2;
}

// llama.cpp's fallback for a format whose block does not divide the row.
constexpr tensor_format compatible_format(tensor_format f, std::uint64_t cols) {
  if (cols % block_elems(f) == 0) return f;
  if (f == tensor_format::q4_k) f = tensor_format::q5_0;
  else if (f == tensor_format::q6_k) f = tensor_format::q8_0;
  if (cols % block_elems(f) == 0) return f;
  return tensor_format::f16;
}

}  // namespace detail

// The storage format of one matrix (the q4_k_m rule gives some roles more bits). `layer` is the
// layer index (ignored for embedding/output), `cols` the row length (input features), `tied`
// whether the embedding doubles as the LM head.
constexpr tensor_format weight_format(weight_scheme s, tensor_role role, int layer, int n_layers, std::uint64_t cols,
                                      bool tied) {
  tensor_format f = tensor_format::f32;
  switch (s) {
    case weight_scheme::f32: return tensor_format::f32;
    case weight_scheme::bf16: return tensor_format::bf16;
    case weight_scheme::f16: return tensor_format::f16;
    case weight_scheme::q8_0: f = tensor_format::q8_0; break;
    case weight_scheme::q4_k_m: {
      const bool head = role == tensor_role::output || (tied && role == tensor_role::embedding);
      const bool more = (role == tensor_role::v || role == tensor_role::down) &&
                        detail::q4_k_m_more_bits(layer, n_layers);
      f = head || more ? tensor_format::q6_k : tensor_format::q4_k;
      break;
    }
  }
  return detail::compatible_format(f, cols);
}

constexpr std::uint64_t matrix_bytes(tensor_format f, std::uint64_t rows, std::uint64_t cols) {
  return rows * row_bytes(f, cols);
}

// Every resident byte of a model's weights under a scheme: each tensor of the model's list
// (model/tensor_list.hpp), matrices in the scheme's format, norms as f32.
template <class Model>
constexpr std::uint64_t weight_bytes(weight_scheme s) {
  std::uint64_t bytes = 0;
  for_each_tensor<Model>([&](const tensor_spec& t) {
    if (t.is_vector()) bytes += t.shape[0] * 4;
    else bytes += matrix_bytes(weight_format(s, t.role, t.layer, Model::n_layers, t.shape[1], Model::tied_embedding),
                               t.shape[0], t.shape[1]);
  });
  return bytes;
}

// The weights as a GPU backend uploads them into its arena: each tensor of the list on its own
// 256-byte boundary, the norm vectors as f32, plus two RoPE inverse-frequency tables. Exact for
// the scheme; the executor reports the figure of the file it loaded (a file may mix formats).
template <class Model>
constexpr std::uint64_t device_weight_bytes(weight_scheme s) {
  constexpr std::uint64_t a = 256;
  std::uint64_t bytes = 0;
  for_each_tensor<Model>([&](const tensor_spec& t) {
    if (!is_bound(t)) return;  // an untied head: the GPU backend runs tied models only
    if (t.is_vector()) bytes += round_up(t.shape[0] * 4, a);
    else bytes += round_up(matrix_bytes(weight_format(s, t.role, t.layer, Model::n_layers, t.shape[1], Model::tied_embedding),
                                        t.shape[0], t.shape[1]), a);
  });
  return bytes + 2 * round_up(std::uint64_t(Model::head_dim) / 2 * 4, a);
}

}  // namespace gemmaforge
