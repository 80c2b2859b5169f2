// Request builders shared by the engine tests (CPU and CUDA): a random prompt that starts with
// BOS, and a greedy request that returns token ids only.
#pragma once

#include <gemmaforge/runtime/request.hpp>

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace gemmaforge::testing {

// n ids: BOS (2) then uniform draws from [3, max_id]; ids 0..2 are the special tokens.
inline std::vector<std::int32_t> random_prompt(std::mt19937& rng, int n, int max_id = 511) {
  std::uniform_int_distribution<int> d(3, max_id);
  std::vector<std::int32_t> v;
  v.reserve(std::size_t(n > 1 ? n : 1));
  v.push_back(2);
  while (int(v.size()) < n) v.push_back(d(rng));
  return v;
}

inline generation_request greedy(std::vector<std::int32_t> prompt, int max_tokens) {
  generation_request r;
  r.prompt = std::move(prompt);
  r.stop.max_tokens = max_tokens;
  r.decode_text = false;
  return r;
}

}  // namespace gemmaforge::testing
