#pragma once
// forward<Model>: one step of the Gemma 1/2/3 forward pass, written once for every generation and
// every backend. It reads top to bottom like the reference (HF modeling_gemma*.py):
//   embed * sqrt(hidden) -> N x block -> final norm -> tied LM head -> final softcap
// and the differences between generations come from the descriptor's traits at compile time:
//   Gemma 1:   h = x + attn(norm(x));                 out = h + mlp(norm(h))
//   Gemma 2/3: h = x + post_norm(attn(in_norm(x)));   out = h + post_norm(mlp(pre_norm(h)))
//   Gemma 3:   QK-norm on q and k before RoPE; RoPE base and window per layer kind.
//   Gemma 2:   attention logits and final logits soft-capped.
// The backend supplies the schedules (CPU threads/SIMD, CUDA kernels); buffers are views into the
// planned workspace, so a step allocates nothing.
#include <cmath>
#include <cstdint>

#include <gemmaforge/core/dtype.hpp>
#include <gemmaforge/kv/kv_pool.hpp>
#include <gemmaforge/math/embedding.hpp>
#include <gemmaforge/model/model_traits.hpp>
#include <gemmaforge/model/weights.hpp>
#include <gemmaforge/runtime/step.hpp>

namespace gemmaforge {

// Workspace views for one step of at most `max_tokens` tokens (regions of plan/arena_layout.hpp).
struct forward_buffers {
  float* x = nullptr;       // [T][hidden] residual stream
  float* xn = nullptr;      // [T][hidden] normed input of a sub-block / its output
  float* q = nullptr;       // [T][q_dim]
  float* k = nullptr;       // [T][kv_dim]
  float* v = nullptr;       // [T][kv_dim]
  float* attn = nullptr;    // [T][q_dim] attention output
  float* gate = nullptr;    // [T][ffn]
  float* up = nullptr;      // [T][ffn]
  float* logits = nullptr;  // [logits rows][vocab]
  std::int32_t* logit_rows = nullptr;  // [logits rows] host: which token row feeds each logits row
};

struct forward_options {
  // Gemma multiplies the embedding by sqrt(hidden) computed in the activation dtype: 25.25 for a
  // bf16 model with hidden 640, 25.2982 in f32. The CPU backend computes in f32; a deployment that
  // wants to match a bf16 reference bit for bit can ask for bf16 rounding here.
  dtype embed_scale_dtype = dtype::f32;
};

// The factor on the token embedding (model_traits::embedding_scale).
template <class Model>
float embedding_factor(dtype d) {
  if constexpr (Model::embedding_scale == embedding_scale_type::sqrt_hidden) return math::embedding_scale(Model::hidden, d);
  else return 1.0f;
}

// The factor on the f32 q.k products (model_traits::query_scale). HF: scaling = head_dim ** -0.5
// (Gemma 1) or query_pre_attn_scalar ** -0.5 (Gemma 2/3).
template <class Model>
constexpr float attention_scale() {
  constexpr int divisor =
      Model::query_scale == query_scale_type::sqrt_key_size ? Model::head_dim : Model::query_pre_attn_scalar;
  return float(1.0 / __builtin_sqrt(double(divisor)));
}

template <class Model, class KvElem, class Backend>
void forward(Backend& be, const model_weights<Model>& w, kv_pool<Model, KvElem>& pool, const step_batch& batch,
             const forward_buffers& buf, const forward_options& opt = {}) {
  constexpr int H = Model::hidden;
  constexpr int F = Model::ffn;
  constexpr float eps = Model::rms_eps;
  const int T = batch.n_tokens;

  be.begin_step(pool, batch);  // e.g. CUDA uploads the step's ids, positions and block tables
  be.embed(w.embedding, batch.tokens, T, embedding_factor<Model>(opt.embed_scale_dtype), buf.x);

  for (int l = 0; l < Model::n_layers; ++l) {
    const layer_weights& lw = w.layers[std::size_t(l)];
    const layer_kind kind = Model::layers::kind(l);

    // ---- attention
    be.rms_norm(buf.x, lw.attn_norm, T, H, eps, buf.xn);
    be.matmul(lw.q, buf.xn, T, buf.q);  // [T][heads * head_dim]
    be.matmul(lw.k, buf.xn, T, buf.k);  // [T][kv_heads * head_dim]
    be.matmul(lw.v, buf.xn, T, buf.v);
    if constexpr (Model::use_qk_norm) {
      be.rms_norm(buf.q, lw.q_norm, T * Model::heads, Model::head_dim, eps, buf.q);
      be.rms_norm(buf.k, lw.k_norm, T * Model::kv_heads, Model::head_dim, eps, buf.k);
    }
    const double theta = Model::rope::theta(kind);
    const float pos_scale = Model::rope::position_scale(kind);
    be.rope(buf.q, batch.positions, T, Model::heads, Model::head_dim, theta, pos_scale);
    be.rope(buf.k, batch.positions, T, Model::kv_heads, Model::head_dim, theta, pos_scale);
    const int window = kind == layer_kind::local ? Model::window : 0;
    be.template attention<Model>(pool, l, batch, buf.q, buf.k, buf.v, window, attention_scale<Model>(),
                                 float(Model::attn_softcap), buf.attn);
    be.template kv_append<Model>(pool, l, batch, buf.k, buf.v);
    be.matmul(lw.o, buf.attn, T, buf.xn);  // [T][hidden]
    if constexpr (Model::post_norm == post_norm_type::rms_norm) be.rms_norm(buf.xn, lw.post_attn_norm, T, H, eps, buf.xn);
    be.add(buf.x, buf.xn, T * H);

    // ---- MLP (GeGLU)
    static_assert(Model::activation == activation_type::gelu_tanh, "forward: the runtime implements GeGLU only");
    be.rms_norm(buf.x, lw.ffn_norm, T, H, eps, buf.xn);
    be.matmul(lw.gate, buf.xn, T, buf.gate);  // [T][ffn]
    be.matmul(lw.up, buf.xn, T, buf.up);
    be.geglu(buf.gate, buf.up, T * F);        // gate <- gelu_tanh(gate) * up
    be.matmul(lw.down, buf.gate, T, buf.xn);  // [T][hidden]
    if constexpr (Model::post_norm == post_norm_type::rms_norm) be.rms_norm(buf.xn, lw.post_ffn_norm, T, H, eps, buf.xn);
    be.add(buf.x, buf.xn, T * H);
  }

  // ---- head: only the rows whose logits are wanted
  int r = 0;
  for (int s = 0; s < batch.n_seqs; ++s) {
    const step_sequence& sq = batch.seqs[s];
    if (sq.want == step_sequence::logits::last) buf.logit_rows[r++] = sq.first_row + sq.n_tokens - 1;
    if (sq.want == step_sequence::logits::all)
      for (int i = 0; i < sq.n_tokens; ++i) buf.logit_rows[r++] = sq.first_row + i;
  }
  if (r == 0) return;
  be.gather_rows(buf.x, buf.logit_rows, r, H, buf.xn);
  be.rms_norm(buf.xn, w.final_norm, r, H, eps, buf.xn);
  be.matmul(w.embedding, buf.xn, r, buf.logits);  // tied head: [r][vocab]
  if constexpr (Model::final_softcap > 0) be.softcap(buf.logits, r * Model::vocab, float(Model::final_softcap));
}

}  // namespace gemmaforge
