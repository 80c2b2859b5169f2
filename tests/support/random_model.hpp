#pragma once
// Random f32 weights for a descriptor, owned by the returned object: lets runtime tests run a
// real forward pass without model files. Values are scaled so logits have a useful spread.
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include <gemmaforge/model/weights.hpp>

namespace gemmaforge::testing {

template <class Model>
struct random_model {
  explicit random_model(std::uint32_t seed = 42) : rng(seed) {
    constexpr int H = Model::hidden, F = Model::ffn;
    w.embedding = matrix(Model::vocab, H, 1.0f);
    w.final_norm = gains(H);
    for (auto& l : w.layers) {
      l.q = matrix(Model::q_dim, H, 1.0f / std::sqrt(float(H)));
      l.k = matrix(Model::kv_dim, H, 1.0f / std::sqrt(float(H)));
      l.v = matrix(Model::kv_dim, H, 1.0f / std::sqrt(float(H)));
      l.o = matrix(H, Model::q_dim, 1.0f / std::sqrt(float(Model::q_dim)));
      l.gate = matrix(F, H, 1.0f / std::sqrt(float(H)));
      l.up = matrix(F, H, 1.0f / std::sqrt(float(H)));
      l.down = matrix(H, F, 1.0f / std::sqrt(float(F)));
      l.attn_norm = gains(H);
      l.ffn_norm = gains(H);
      if constexpr (Model::post_norms) {
        l.post_attn_norm = gains(H);
        l.post_ffn_norm = gains(H);
      }
      if constexpr (Model::qk_norm) {
        l.q_norm = gains(Model::head_dim);
        l.k_norm = gains(Model::head_dim);
      }
    }
  }
  random_model(const random_model&) = delete;

  weight_view matrix(int rows, int cols, float scale) {
    std::normal_distribution<float> d(0.0f, scale);
    auto& buf = storage.emplace_back(std::size_t(rows) * std::size_t(cols));
    for (auto& x : buf) x = d(rng);
    return weight_view{tensor_format::f32, reinterpret_cast<const std::byte*>(buf.data()), rows, cols};
  }
  const float* gains(int n) {
    std::normal_distribution<float> d(0.0f, 0.3f);
    auto& buf = storage.emplace_back(std::size_t(n));
    for (auto& x : buf) x = 1.0f + d(rng);
    return buf.data();
  }

  std::mt19937 rng;
  std::vector<std::vector<float>> storage;  // reserve-free: vectors of vectors keep data stable
  model_weights<Model> w;
};

}  // namespace gemmaforge::testing
