#pragma once
// Random f32 weights for a descriptor, owned by the returned object: lets runtime tests run a
// real forward pass without model files. Values are scaled so logits have a useful spread.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

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

}  // namespace gemmaforge::testing
