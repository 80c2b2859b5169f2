#pragma once
// Log-probabilities in OpenAI's response shapes, collected per choice while tokens arrive.
//   chat:        "logprobs": {"content": [{"token", "logprob", "bytes", "top_logprobs": [{"token",
//                "logprob", "bytes"}...]}...], "refusal": null}
//   completions: "logprobs": {"tokens": [...], "token_logprobs": [...], "top_logprobs": [{token:
//                logprob}...], "text_offset": [...]}; with echo the prompt's tokens come first, the
//                first of them with null (nothing predicts it).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <gemmaforge/runtime/logprobs.hpp>
#include <gemmaforge/tokenizer/tokenizer.hpp>

namespace gemmaforge::serve {

// One choice's tokens with their log-probabilities. Appended on the engine thread (the token
// callback), read after the choice is done or under the stream's channel lock. `k` alternatives
// per token; storage is reserved for the request's max_tokens at submission.
class logprob_log {
 public:
  logprob_log() = default;
  explicit logprob_log(std::int32_t k) : k_(k) {}
  void reserve(std::size_t tokens) {
    ids_.reserve(tokens);
    lps_.reserve(tokens);
    top_ids_.reserve(tokens * std::size_t(k_));
    top_lps_.reserve(tokens * std::size_t(k_));
    n_top_.reserve(tokens);
  }
  void append(std::int32_t token, const token_logprobs& lp);
  // A token nothing predicts (the first prompt token under echo): null logprob, no alternatives.
  void append_unscored(std::int32_t token);
  std::size_t size() const { return ids_.size(); }
  std::int32_t k() const { return k_; }
  double cumulative() const;  // sum of the tokens' logprobs (best_of ranks choices by it)

  std::int32_t id(std::size_t i) const { return ids_[i]; }
  float logprob(std::size_t i) const { return lps_[i]; }
  std::int32_t n_top(std::size_t i) const { return n_top_[i]; }
  std::int32_t top_id(std::size_t i, std::int32_t j) const { return top_ids_[i * std::size_t(k_) + std::size_t(j)]; }
  float top_logprob(std::size_t i, std::int32_t j) const { return top_lps_[i * std::size_t(k_) + std::size_t(j)]; }

 private:
  std::int32_t k_ = 0;
  std::vector<std::int32_t> ids_;
  std::vector<float> lps_;  // NaN: null
  std::vector<std::int32_t> n_top_;
  std::vector<std::int32_t> top_ids_;
  std::vector<float> top_lps_;
};

// Tokens [begin, end) of the log.
nlohmann::ordered_json chat_logprobs_json(const logprob_log& log, std::size_t begin, std::size_t end, const tokenizer& tok);
// Completions' shape over `prompt` (echo; may be null) then `log`'s tokens [begin, end);
// text_offset counts bytes from `offset` on.
nlohmann::ordered_json completion_logprobs_json(const logprob_log* prompt, const logprob_log& log, std::size_t begin, std::size_t end,
                                                const tokenizer& tok, std::size_t offset = 0);

}  // namespace gemmaforge::serve
