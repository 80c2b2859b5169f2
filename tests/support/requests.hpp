// Request builders shared by the engine tests (CPU and CUDA): a random prompt that starts with
// BOS, a prompt continued by random ids, and a greedy request that returns token ids only.
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

// prefix followed by n - 1 random ids (random_prompt's draws without its BOS): a conversation
// continued, or a shared system prompt with a per-request tail.
inline std::vector<std::int32_t> continued(std::vector<std::int32_t> prefix, std::mt19937& rng, int n) {
  const auto tail = random_prompt(rng, n);
  prefix.insert(prefix.end(), tail.begin() + 1, tail.end());
  return prefix;
}

inline generation_request greedy(std::vector<std::int32_t> prompt, int max_tokens) {
  generation_request r;
  r.prompt = std::move(prompt);
  r.stop.max_tokens = max_tokens;
  r.decode_text = false;
  return r;
}

}  // namespace gemmaforge::testing
