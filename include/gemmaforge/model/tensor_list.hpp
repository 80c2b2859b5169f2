#pragma once
// for_each_tensor<Model>(f): the one list of a model's tensors. f is called once per tensor, in a
// fixed order, with its tensor_spec: role, layer, shape, the member of model_weights it binds to,
// its GGUF and HF names, and whether a file must have it. The binder (io/weight_binding.hpp), the
// byte counters (plan/weight_bytes.hpp) and the CUDA uploader (backend/cuda/executor.cuh) all walk
// this list, so a new tensor or a new model's naming is one edit here (gemma.cpp's ForEachTensor,
// llama.cpp's LLM_TENSOR_NAMES).
//
//   GGUF name                     HF name (under the text model's prefix, "model.")  role
//   token_embd.weight             embed_tokens.weight                            embedding (tied head)
//   output.weight                 lm_head.weight (top level)                     output (untied head)
//   output_norm.weight            norm.weight                                    final_norm
//   blk.N.attn_q|k|v.weight       layers.N.self_attn.q|k|v_proj.weight           q, k, v
//   blk.N.attn_output.weight      layers.N.self_attn.o_proj.weight               o
//   blk.N.ffn_gate|up|down.weight layers.N.mlp.gate|up|down_proj.weight          gate, up, down
//   blk.N.attn_norm.weight        layers.N.input_layernorm.weight                attn_norm
//   blk.N.post_attention_norm     layers.N.post_attention_layernorm (post norms) post_attn_norm
//   blk.N.ffn_norm.weight         layers.N.pre_feedforward_layernorm (post norms) ffn_norm
//                                 layers.N.post_attention_layernorm (no post norms: Gemma 1's
//                                 pre-MLP norm keeps the HF name of its position)
//   blk.N.post_ffw_norm.weight    layers.N.post_feedforward_layernorm            post_ffn_norm
//   blk.N.attn_q_norm|k_norm      layers.N.self_attn.q_norm|k_norm               q_norm, k_norm
#include <array>
#include <cstdint>
#include <string_view>

#include <gemmaforge/model/descriptor.hpp>
#include <gemmaforge/model/weights.hpp>

namespace gemmaforge {

enum class tensor_role : std::uint8_t {
  embedding, output, final_norm,
  q, k, v, o, gate, up, down,
  attn_norm, post_attn_norm, ffn_norm, post_ffn_norm, q_norm, k_norm,
};

constexpr std::string_view to_string(tensor_role r) {
  switch (r) {
    case tensor_role::embedding: return "embedding";
    case tensor_role::output: return "output";
    case tensor_role::final_norm: return "final_norm";
    case tensor_role::q: return "q";
    case tensor_role::k: return "k";
    case tensor_role::v: return "v";
    case tensor_role::o: return "o";
    case tensor_role::gate: return "gate";
    case tensor_role::up: return "up";
    case tensor_role::down: return "down";
    case tensor_role::attn_norm: return "attn_norm";
    case tensor_role::post_attn_norm: return "post_attn_norm";
    case tensor_role::ffn_norm: return "ffn_norm";
    case tensor_role::post_ffn_norm: return "post_ffn_norm";
    case tensor_role::q_norm: return "q_norm";
    case tensor_role::k_norm: return "k_norm";
  }
  return "?";
}

// Norm vectors bind as f32 gains; everything else is a matrix (weight_view).
constexpr bool is_norm(tensor_role r) {
  return r == tensor_role::final_norm || r == tensor_role::attn_norm || r == tensor_role::post_attn_norm ||
         r == tensor_role::ffn_norm || r == tensor_role::post_ffn_norm || r == tensor_role::q_norm ||
         r == tensor_role::k_norm;
}

// A pointer to a member of C of type T. Spelled through this alias because nvcc's host-side
// rewrite of `T C::* name` adds parentheses that GCC then warns about (-Wparentheses).
template <class T, class C>
using member_ptr = T C::*;

// Where a tensor lands in model_weights: a member of the whole-model part or of one layer's part.
// Exactly one of the four is set, except for tensors the runtime never binds (an untied head).
struct tensor_member {
  member_ptr<weight_view, global_weights> model_matrix = nullptr;
  member_ptr<const float*, global_weights> model_gain = nullptr;
  member_ptr<weight_view, layer_weights> layer_matrix = nullptr;
  member_ptr<const float*, layer_weights> layer_gain = nullptr;
};

struct tensor_spec {
  tensor_role role;
  int layer = -1;                      // -1: a whole-model tensor
  std::array<std::uint64_t, 2> shape;  // [rows, cols] outermost first; cols == 0: a vector of rows
  tensor_member member;
  std::string_view gguf_name;          // after "blk.N." for a layer's tensor
  std::string_view hf_name;            // after "<prefix>layers.N." (after "<prefix>" for whole-model ones)
  bool required = true;                // false: bound when the file has it, skipped when not

  constexpr bool is_vector() const { return shape[1] == 0; }
};

// f(const tensor_spec&) for every tensor of Model, in file order: embedding, (untied head), final
// norm, then per layer the matrices and the norms.
template <class Model, class F>
constexpr void for_each_tensor(F&& f) {
  using gw = global_weights;
  using lw = layer_weights;
  constexpr std::uint64_t V = Model::vocab, H = Model::hidden, Fd = Model::ffn, Q = Model::q_dim,
                          KV = Model::kv_dim, D = Model::head_dim;
  auto model_matrix = [](member_ptr<weight_view, gw> m) { return tensor_member{.model_matrix = m}; };
  auto model_gain = [](member_ptr<const float*, gw> m) { return tensor_member{.model_gain = m}; };
  auto matrix = [](member_ptr<weight_view, lw> m) { return tensor_member{.layer_matrix = m}; };
  auto gain = [](member_ptr<const float*, lw> m) { return tensor_member{.layer_gain = m}; };

  f(tensor_spec{tensor_role::embedding, -1, {V, H}, model_matrix(&gw::embedding), "token_embd.weight", "embed_tokens.weight"});
  if constexpr (!Model::tied_embedding)
    f(tensor_spec{tensor_role::output, -1, {V, H}, {}, "output.weight", "lm_head.weight"});
  f(tensor_spec{tensor_role::final_norm, -1, {H, 0}, model_gain(&gw::final_norm), "output_norm.weight", "norm.weight"});
  constexpr bool post_norms = Model::post_norm != post_norm_type::none;
  for (int l = 0; l < Model::n_layers; ++l) {
    f(tensor_spec{tensor_role::q, l, {Q, H}, matrix(&lw::q), "attn_q.weight", "self_attn.q_proj.weight"});
    f(tensor_spec{tensor_role::k, l, {KV, H}, matrix(&lw::k), "attn_k.weight", "self_attn.k_proj.weight"});
    f(tensor_spec{tensor_role::v, l, {KV, H}, matrix(&lw::v), "attn_v.weight", "self_attn.v_proj.weight"});
    f(tensor_spec{tensor_role::o, l, {H, Q}, matrix(&lw::o), "attn_output.weight", "self_attn.o_proj.weight"});
    f(tensor_spec{tensor_role::gate, l, {Fd, H}, matrix(&lw::gate), "ffn_gate.weight", "mlp.gate_proj.weight"});
    f(tensor_spec{tensor_role::up, l, {Fd, H}, matrix(&lw::up), "ffn_up.weight", "mlp.up_proj.weight"});
    f(tensor_spec{tensor_role::down, l, {H, Fd}, matrix(&lw::down), "ffn_down.weight", "mlp.down_proj.weight"});
    f(tensor_spec{tensor_role::attn_norm, l, {H, 0}, gain(&lw::attn_norm), "attn_norm.weight", "input_layernorm.weight"});
    f(tensor_spec{tensor_role::ffn_norm, l, {H, 0}, gain(&lw::ffn_norm), "ffn_norm.weight",
                  post_norms ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight"});
    if constexpr (post_norms) {
      f(tensor_spec{tensor_role::post_attn_norm, l, {H, 0}, gain(&lw::post_attn_norm), "post_attention_norm.weight",
                    "post_attention_layernorm.weight"});
      f(tensor_spec{tensor_role::post_ffn_norm, l, {H, 0}, gain(&lw::post_ffn_norm), "post_ffw_norm.weight",
                    "post_feedforward_layernorm.weight"});
    }
    if constexpr (Model::use_qk_norm) {
      f(tensor_spec{tensor_role::q_norm, l, {D, 0}, gain(&lw::q_norm), "attn_q_norm.weight", "self_attn.q_norm.weight"});
      f(tensor_spec{tensor_role::k_norm, l, {D, 0}, gain(&lw::k_norm), "attn_k_norm.weight", "self_attn.k_norm.weight"});
    }
  }
}

// The slot of a matrix / a norm's gains in a model_weights (W: model_weights<M>, const or not).
template <class W>
constexpr auto& matrix_in(W& w, const tensor_spec& t) {
  return t.layer < 0 ? w.*t.member.model_matrix : w.layers[std::size_t(t.layer)].*t.member.layer_matrix;
}
template <class W>
constexpr auto& gain_in(W& w, const tensor_spec& t) {
  return t.layer < 0 ? w.*t.member.model_gain : w.layers[std::size_t(t.layer)].*t.member.layer_gain;
}

// Whether the runtime binds this tensor (an untied head is counted by the planner only).
constexpr bool is_bound(const tensor_spec& t) {
  return t.member.model_matrix || t.member.model_gain || t.member.layer_matrix || t.member.layer_gain;
}

}  // namespace gemmaforge
