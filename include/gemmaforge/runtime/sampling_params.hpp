#pragma once
// Sampling parameters and stop conditions of one request, with validation that turns bad values
// into one clear error (the server maps it to a 400, the CLIs to exit code 2).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <gemmaforge/core/error.hpp>

namespace gemmaforge {

// OpenAI's logit_bias: added to a token's logit before sampling; -100 bans the token outright.
struct logit_bias_entry {
  std::int32_t token = 0;
  float bias = 0.0f;  // in [-100, 100]
};
inline constexpr float logit_bias_ban = -100.0f;
inline constexpr std::size_t max_logit_bias_entries = 1024;

struct sampling_params {
  float temperature = 0.0f;        // 0 = greedy (argmax)
  std::int32_t top_k = 0;          // 0 = off
  float top_p = 1.0f;              // in (0, 1]; 1 = off
  float min_p = 0.0f;              // in [0, 1); 0 = off
  float repetition_penalty = 1.0f; // > 0; 1 = off
  float frequency_penalty = 0.0f;  // OpenAI semantics, in [-2, 2]
  float presence_penalty = 0.0f;   // OpenAI semantics, in [-2, 2]
  std::int32_t penalty_last_n = 64;// history window the penalties look at (prompt + output)
  std::uint64_t seed = 0;          // same seed + same inputs -> same tokens (on one backend)
  std::vector<logit_bias_entry> logit_bias;  // ids are checked against the vocabulary at submission
};

struct stop_conditions {
  std::int32_t max_tokens = 256;          // new tokens at most
  std::vector<std::string> stop_strings;  // stop when the output text contains one (excluded from it)
  std::vector<std::int32_t> stop_ids;     // extra stop ids (eos and <end_of_turn> are always stops)
  bool ignore_eos = false;                // benchmarks: run to max_tokens
};

// Throws gf::error(errc::invalid_argument) naming the first bad field.
inline void validate(const sampling_params& p) {
  auto bad = [](const std::string& what) { throw error(errc::invalid_argument, what); };
  if (!std::isfinite(p.temperature) || p.temperature < 0.0f) bad("temperature must be >= 0 (0 = greedy)");
  if (p.top_k < 0) bad("top_k must be >= 0 (0 = off)");
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) bad("top_p must be in (0, 1]");
  if (!(p.min_p >= 0.0f && p.min_p < 1.0f)) bad("min_p must be in [0, 1)");
  if (!(p.repetition_penalty > 0.0f) || !std::isfinite(p.repetition_penalty)) bad("repetition_penalty must be > 0 (1 = off)");
  if (!(p.frequency_penalty >= -2.0f && p.frequency_penalty <= 2.0f)) bad("frequency_penalty must be in [-2, 2]");
  if (!(p.presence_penalty >= -2.0f && p.presence_penalty <= 2.0f)) bad("presence_penalty must be in [-2, 2]");
  if (p.penalty_last_n < 0) bad("penalty_last_n must be >= 0");
  if (p.logit_bias.size() > max_logit_bias_entries)
    bad("logit_bias has " + std::to_string(p.logit_bias.size()) + " entries; at most " + std::to_string(max_logit_bias_entries) +
        " are supported");
  for (const auto& b : p.logit_bias) {
    if (b.token < 0) bad("logit_bias token id " + std::to_string(b.token) + " is negative");
    if (!(b.bias >= -100.0f && b.bias <= 100.0f)) bad("logit_bias for token " + std::to_string(b.token) + " must be in [-100, 100]");
  }
}

inline void validate(const stop_conditions& s) {
  if (s.max_tokens < 0) throw error(errc::invalid_argument, "max_tokens must be >= 0");
  for (const auto& str : s.stop_strings)
    if (str.empty()) throw error(errc::invalid_argument, "stop strings must not be empty");
}

}  // namespace gemmaforge
