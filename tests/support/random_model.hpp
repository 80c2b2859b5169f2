#pragma once
// Random f32 weights for a descriptor, owned by the returned object: lets runtime tests run a
// real forward pass without model files. Values are scaled so logits have a useful spread.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include <gemmaforge/core/dtype.hpp>
#include <gemmaforge/model/tensor_list.hpp>
#include <gemmaforge/model/weights.hpp>

namespace gemmaforge::testing {

template <class Model>
struct random_model {
  // Every tensor of the model's list, in its order (the draws are the same as before the list).
  explicit random_model(std::uint32_t seed = 42) : rng(seed) {
    for_each_tensor<Model>([&](const tensor_spec& t) {
      if (!is_bound(t)) return;
      const int rows = int(t.shape[0]), cols = int(t.shape[1]);
      if (is_norm(t.role)) gain_in(w, t) = gains(rows);
      else matrix_in(w, t) = matrix(rows, cols, t.role == tensor_role::embedding ? 1.0f : 1.0f / std::sqrt(float(cols)));
    });
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

// Re-encode the f32 layer matrices of `w` as q8_0 (scale amax / 127 per 32-block, rounded to f16,
// quants rounded to nearest), stored in `store`: the quantized-weight paths (int8/int16
// activations) on a random model. The embedding (and the tied LM head) stays f32.
template <class Model>
void requantize_layers_q8_0(model_weights<Model>& w, std::vector<std::vector<std::byte>>& store) {
  auto requant = [&](weight_view& v) {
    const std::uint64_t nb = std::uint64_t(v.rows) * std::uint64_t(v.cols) / 32;
    auto& buf = store.emplace_back(nb * 34);
    const float* src = reinterpret_cast<const float*>(v.data);
    for (std::uint64_t b = 0; b < nb; ++b) {
      float amax = 0;
      for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(src[32 * b + i]));
      const std::uint16_t dh = to_f16(amax / 127.0f).bits;
      std::memcpy(buf.data() + 34 * b, &dh, 2);
      const float dd = to_float(f16::from_bits(dh));
      for (int i = 0; i < 32; ++i) {
        const int q = dd > 0 ? int(std::lrint(src[32 * b + i] / dd)) : 0;
        buf[34 * b + 2 + std::size_t(i)] = std::byte(std::uint8_t(std::int8_t(std::clamp(q, -127, 127))));
      }
    }
    v = weight_view{tensor_format::q8_0, buf.data(), v.rows, v.cols};
  };
  for (auto& l : w.layers)
    for (weight_view* v : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) requant(*v);
}

}  // namespace gemmaforge::testing
