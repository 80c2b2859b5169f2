#pragma once
// A naive, single-threaded executor for tests: every op written as the plainest loop, straight
// from the reference formulas (HF modeling_gemma*.py), independent of the optimised backends.
// It runs the engine and the forward pass without the SIMD kernels, and serves as a second
// opinion when a golden test fails. Weight formats: f32, f16, bf16 (what tiny models use).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <stdexcept>
#include <vector>

#include <gemmaforge/core/dtype.hpp>
#include <gemmaforge/core/tensor.hpp>
#include <gemmaforge/kv/kv_codec.hpp>
#include <gemmaforge/kv/kv_pool.hpp>
#include <gemmaforge/model/weights.hpp>
#include <gemmaforge/plan/arena_layout.hpp>
#include <gemmaforge/step/step.hpp>

namespace gemmaforge::testing {

class naive_executor {
 public:
  // The CPU backend's layout (its scratch regions go unused here).
  static constexpr backend_kind backend = backend_kind::cpu;
  void describe_layout(layout_inputs& in) const { in.backend = backend; }
  template <class Model, class KvElem>
  arena_memory allocate_arena(const arena_layout& L) {
    arena_.assign(L.arena_bytes / sizeof(double) + 1, 0.0);
    return arena_memory{reinterpret_cast<std::byte*>(arena_.data()), nullptr};
  }
  copy_fn kv_copy() const { return host_copy; }
  template <class Model>
  const model_weights<Model>& prepare_weights(const model_weights<Model>& w) const { return w; }
  template <class Model, class KvElem>
  step_view begin_step(kv_pool<Model, KvElem>&, const step_batch& batch) { return host_step_view(batch); }
  template <class Body>
  void run_step(const step_view&, Body&& body) { body(); }
  const float* logits_to_host(const float* logits, std::size_t) const { return logits; }

  static float weight(const weight_view& w, std::int64_t r, std::int64_t c) {
    const std::byte* row = w.row(r);
    switch (w.format) {
      case tensor_format::f32: { float f; std::memcpy(&f, row + 4 * c, 4); return f; }
      case tensor_format::f16: { std::uint16_t b; std::memcpy(&b, row + 2 * c, 2); return to_float(f16::from_bits(b)); }
      case tensor_format::bf16: { std::uint16_t b; std::memcpy(&b, row + 2 * c, 2); return to_float(bf16::from_bits(b)); }
      default: throw std::runtime_error("naive_executor: unsupported weight format");
    }
  }

  void embed(const weight_view& e, const step_view& st, float scale, float* out) {
    const std::int32_t* tokens = st.tokens;
    for (int t = 0; t < st.n_tokens; ++t)
      for (std::int64_t c = 0; c < e.cols; ++c) out[t * e.cols + c] = weight(e, tokens[t], c) * scale;
  }

  void rms_norm(const float* in, const float* gain, int rows, int cols, float eps, float* out) {
    for (int r = 0; r < rows; ++r) {
      double ss = 0;  // the reference accumulates in f32; double here only tightens the check
      for (int c = 0; c < cols; ++c) ss += double(in[r * cols + c]) * in[r * cols + c];
      const float inv = 1.0f / std::sqrt(float(ss / cols) + eps);
      for (int c = 0; c < cols; ++c) out[r * cols + c] = in[r * cols + c] * inv * gain[c];
    }
  }

  // No quantized path: the input is the f32 rows.
  struct quantized_input {
    const float* x = nullptr;
  };
  quantized_input quantize_input(const float* x, int, std::initializer_list<const weight_view*>) const { return {x}; }

  void matmul(const weight_view& w, const quantized_input& in, int T, float* y) {
    const float* x = in.x;
    std::vector<float> tmp(std::size_t(T) * std::size_t(w.rows));
    for (int t = 0; t < T; ++t)
      for (std::int64_t r = 0; r < w.rows; ++r) {
        double acc = 0;
        for (std::int64_t c = 0; c < w.cols; ++c) acc += double(weight(w, r, c)) * x[t * w.cols + c];
        tmp[std::size_t(t * w.rows + r)] = float(acc);
      }
    std::memcpy(y, tmp.data(), tmp.size() * sizeof(float));
  }

  void rope(float* x, const step_view& st, int heads, int d, double theta, float pos_scale) {
    const std::int32_t* pos = st.positions;
    for (int t = 0; t < st.n_tokens; ++t)
      for (int h = 0; h < heads; ++h) {
        float* v = x + (std::size_t(t) * heads + h) * d;
        for (int i = 0; i < d / 2; ++i) {
          const float inv_freq = 1.0f / std::pow(float(theta), float(2 * i) / float(d));
          const float angle = float(pos[t]) * pos_scale * inv_freq;
          const float c = std::cos(angle), s = std::sin(angle);
          const float a = v[i], b = v[i + d / 2];
          v[i] = a * c - b * s;
          v[i + d / 2] = b * c + a * s;
        }
      }
  }

  template <class Model, class KvElem>
  void attention(kv_pool<Model, KvElem>& pool, int layer, const step_view& st, const float* q, const float* k,
                 const float* v, int window, float scale, float softcap, float* out) {
    const step_batch& batch = *st.batch;
    constexpr int H = Model::heads, KVH = Model::kv_heads, D = Model::head_dim, G = H / KVH;
    for (int s = 0; s < batch.n_seqs; ++s) {
      const step_sequence& sq = batch.seqs[s];
      const kv_cache_view cache = pool.view(sq.slot, layer).as_const();
      const auto* kc = static_cast<const KvElem*>(cache.k);
      const auto* vc = static_cast<const KvElem*>(cache.v);
      auto load = [&](const float* fresh, const KvElem* plane, const float* scales, int pos, int kvh, float* dst) {
        if (pos >= sq.start) {
          std::memcpy(dst, fresh + (std::size_t(sq.first_row + pos - sq.start) * KVH + kvh) * D, D * sizeof(float));
          kv_round_trip<KvElem>(dst, D);
        } else {
          const float sc = scales ? scales[cache.scale_offset(pos, kvh)] : 1.0f;
          for (int d = 0; d < D; ++d) dst[d] = kv_decode<KvElem>(plane[cache.offset(pos, kvh) + d], sc);
        }
      };
      std::vector<float> kk(D), vv(D), logits, acc(D);
      for (int i = 0; i < sq.n_tokens; ++i) {
        const int p = sq.start + i;
        const int lo = window > 0 ? std::max(0, p - window + 1) : 0;
        for (int h = 0; h < H; ++h) {
          const float* qh = q + (std::size_t(sq.first_row + i) * H + h) * D;
          logits.assign(std::size_t(p - lo) + 1, 0.0f);
          float mx = -INFINITY;
          for (int j = lo; j <= p; ++j) {
            load(k, kc, cache.k_scale, j, h / G, kk.data());
            float dot = 0;
            for (int d = 0; d < D; ++d) dot += qh[d] * kk[std::size_t(d)];
            float l = dot * scale;
            if (softcap > 0) l = softcap * std::tanh(l / softcap);
            logits[std::size_t(j - lo)] = l;
            mx = std::max(mx, l);
          }
          double sum = 0;
          for (auto& l : logits) sum += l = std::exp(l - mx);
          std::fill(acc.begin(), acc.end(), 0.0f);
          for (int j = lo; j <= p; ++j) {
            load(v, vc, cache.v_scale, j, h / G, vv.data());
            const float w = float(logits[std::size_t(j - lo)] / sum);
            for (int d = 0; d < D; ++d) acc[std::size_t(d)] += w * vv[std::size_t(d)];
          }
          std::memcpy(out + (std::size_t(sq.first_row + i) * H + h) * D, acc.data(), D * sizeof(float));
        }
      }
    }
  }

  template <class Model, class KvElem>
  void kv_append(kv_pool<Model, KvElem>& pool, int layer, const step_view& st, const float* k, const float* v) {
    const step_batch& batch = *st.batch;
    constexpr int KVH = Model::kv_heads, D = Model::head_dim;
    for (int s = 0; s < batch.n_seqs; ++s) {
      const step_sequence& sq = batch.seqs[s];
      const kv_cache_mut_view cache = pool.view(sq.slot, layer);
      for (int i = 0; i < sq.n_tokens; ++i)
        for (int h = 0; h < KVH; ++h) {
          const int pos = sq.start + i;
          const std::size_t src = (std::size_t(sq.first_row + i) * KVH + h) * D;
          const float ks = kv_encode_vector<KvElem>(k + src, D, static_cast<KvElem*>(cache.k) + cache.as_const().offset(pos, h));
          const float vs = kv_encode_vector<KvElem>(v + src, D, static_cast<KvElem*>(cache.v) + cache.as_const().offset(pos, h));
          if (cache.k_scale) {
            cache.k_scale[cache.as_const().scale_offset(pos, h)] = ks;
            cache.v_scale[cache.as_const().scale_offset(pos, h)] = vs;
          }
        }
    }
  }

  void geglu(float* gate, const float* up, int n) {
    for (int i = 0; i < n; ++i) {
      const float x = gate[i];
      const float g = 0.5f * x * (1.0f + std::tanh(0.7978845608028654f * (x + 0.044715f * x * x * x)));
      gate[i] = g * up[i];
    }
  }
  void add(float* x, const float* y, int n) {
    for (int i = 0; i < n; ++i) x[i] += y[i];
  }
  void gather_rows(const step_view& st, const float* src, int cols, float* dst) {
    for (int r = 0; r < st.n_logits_rows; ++r)
      std::memmove(dst + std::size_t(r) * cols, src + std::size_t(st.logit_rows[r]) * cols, cols * sizeof(float));
  }
  void softcap(float* x, int n, float cap) {
    for (int i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] / cap);
  }

 private:
  std::vector<double> arena_;
};

}  // namespace gemmaforge::testing
