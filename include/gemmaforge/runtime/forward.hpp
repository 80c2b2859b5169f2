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
//
// The executor contract, all of it visible here:
//   auto st = be.begin_step(pool, batch)   uploads what the backend needs, returns the step_view
//                                          (step/step.hpp) that the ops reading the batch take
//   be.run_step(st, body)                  runs body (the ops); the one place a backend may capture
//                                          or replay the step instead (CUDA decode graphs)
//   auto xq = be.quantize_input(x, T, {&w1, &w2})
//                                          the input of the matmuls by w1, w2 in the form they read
//                                          (int8/int16 rows for quantized weights at a quantized
//                                          precision, else just x): quantized once for q/k/v and
//                                          once for gate/up; valid until the next quantize_input
//   be.matmul(w, xq, T, y)                 y = W x
//   embed rms_norm rope attention kv_append geglu add gather_rows softcap
//   be.logits_to_host(logits, n)           after the step: the logits in host memory
#include <cmath>
#include <cstdint>

#include <gemmaforge/core/dtype.hpp>
#include <gemmaforge/kv/kv_pool.hpp>
#include <gemmaforge/math/embedding.hpp>
#include <gemmaforge/model/model_traits.hpp>
#include <gemmaforge/model/weights.hpp>
#include <gemmaforge/step/step.hpp>

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
  float* logits = nullptr;  // [logits rows][vocab] (rows: step_batch::logit_rows)
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

// The ops of one step, in the reference's order. `st` is what begin_step returned.
template <class Model, class KvElem, class Backend>
void forward_ops(Backend& be, const model_weights<Model>& w, kv_pool<Model, KvElem>& pool, const step_view& st,
                 const forward_buffers& buf, const forward_options& opt) {
  constexpr int H = Model::hidden;
  constexpr int F = Model::ffn;
  constexpr float eps = Model::rms_eps;
  const int T = st.n_tokens;

  be.embed(w.embedding, st, embedding_factor<Model>(opt.embed_scale_dtype), buf.x);

  for (int l = 0; l < Model::n_layers; ++l) {
    const layer_weights& lw = w.layers[std::size_t(l)];
    const layer_kind kind = Model::layers::kind(l);

    // ---- attention
    be.rms_norm(buf.x, lw.attn_norm, T, H, eps, buf.xn);
    const auto xq = be.quantize_input(buf.xn, T, {&lw.q, &lw.k, &lw.v});
    be.matmul(lw.q, xq, T, buf.q);  // [T][heads * head_dim]
    be.matmul(lw.k, xq, T, buf.k);  // [T][kv_heads * head_dim]
    be.matmul(lw.v, xq, T, buf.v);
    if constexpr (Model::use_qk_norm) {
      be.rms_norm(buf.q, lw.q_norm, T * Model::heads, Model::head_dim, eps, buf.q);
      be.rms_norm(buf.k, lw.k_norm, T * Model::kv_heads, Model::head_dim, eps, buf.k);
    }
    const double theta = Model::rope::theta(kind);
    const float pos_scale = Model::rope::position_scale(kind);
    be.rope(buf.q, st, Model::heads, Model::head_dim, theta, pos_scale);
    be.rope(buf.k, st, Model::kv_heads, Model::head_dim, theta, pos_scale);
    const int window = kind == layer_kind::local ? Model::window : 0;
    be.template attention<Model>(pool, l, st, buf.q, buf.k, buf.v, window, attention_scale<Model>(),
                                 float(Model::attn_softcap), buf.attn);
    be.template kv_append<Model>(pool, l, st, buf.k, buf.v);
    be.matmul(lw.o, be.quantize_input(buf.attn, T, {&lw.o}), T, buf.xn);  // [T][hidden]
    if constexpr (Model::post_norm == post_norm_type::rms_norm) be.rms_norm(buf.xn, lw.post_attn_norm, T, H, eps, buf.xn);
    be.add(buf.x, buf.xn, T * H);

    // ---- MLP (GeGLU)
    static_assert(Model::activation == activation_type::gelu_tanh, "forward: the runtime implements GeGLU only");
    be.rms_norm(buf.x, lw.ffn_norm, T, H, eps, buf.xn);
    const auto hq = be.quantize_input(buf.xn, T, {&lw.gate, &lw.up});
    be.matmul(lw.gate, hq, T, buf.gate);  // [T][ffn]
    be.matmul(lw.up, hq, T, buf.up);
    be.geglu(buf.gate, buf.up, T * F);    // gate <- gelu_tanh(gate) * up
    be.matmul(lw.down, be.quantize_input(buf.gate, T, {&lw.down}), T, buf.xn);  // [T][hidden]
    if constexpr (Model::post_norm == post_norm_type::rms_norm) be.rms_norm(buf.xn, lw.post_ffn_norm, T, H, eps, buf.xn);
    be.add(buf.x, buf.xn, T * H);
  }

  // ---- head: only the rows whose logits are wanted (chosen by the scheduler: step_batch::logit_rows)
  const int r = st.n_logits_rows;
  if (r == 0) return;
  be.gather_rows(st, buf.x, H, buf.xn);
  be.rms_norm(buf.xn, w.final_norm, r, H, eps, buf.xn);
  be.matmul(w.embedding, be.quantize_input(buf.xn, r, {&w.embedding}), r, buf.logits);  // tied head: [r][vocab]
  if constexpr (Model::final_softcap > 0) be.softcap(buf.logits, r * Model::vocab, float(Model::final_softcap));
}

// One step: begin it, then run its ops through the backend's run_step (which may replay a captured
// graph of them instead). The logits are read afterwards with be.logits_to_host.
template <class Model, class KvElem, class Backend>
void forward(Backend& be, const model_weights<Model>& w, kv_pool<Model, KvElem>& pool, const step_batch& batch,
             const forward_buffers& buf, const forward_options& opt = {}) {
  const step_view st = be.begin_step(pool, batch);
  be.run_step(st, [&] { forward_ops<Model>(be, w, pool, st, buf, opt); });
}

}  // namespace gemmaforge
