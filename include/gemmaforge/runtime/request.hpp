#pragma once
// A generation request as the engine sees it, and what callers get back: a handle to wait on,
// cancel, and read results from; a callback that receives tokens and text as they are made.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <gemmaforge/runtime/logprobs.hpp>
#include <gemmaforge/runtime/sampling_params.hpp>
#include <gemmaforge/runtime/stop_matcher.hpp>
#include <gemmaforge/runtime/text_stream.hpp>
#include <gemmaforge/runtime/token_constraint.hpp>

namespace gemmaforge {

enum class finish_reason : std::uint8_t { none, stop, length, cancelled, error };

constexpr std::string_view to_string(finish_reason r) {
  switch (r) {
    case finish_reason::none: return "none";
    case finish_reason::stop: return "stop";
    case finish_reason::length: return "length";
    case finish_reason::cancelled: return "cancelled";
    case finish_reason::error: return "error";
  }
  return "?";
}

// One callback call: a new token (with the text it completed, which may be empty while a UTF-8
// character or a possible stop string is incomplete), or the final event (token == -1).
struct token_event {
  std::int32_t token = -1;
  std::string_view text;
  bool finished = false;
  finish_reason reason = finish_reason::none;
  // generation_request::logprobs >= 0: the token's log-probability and its alternatives. Points
  // into the engine's sampler workspace: valid during the callback only (copy what you keep).
  const token_logprobs* logprobs = nullptr;
};

using token_callback = std::function<void(const token_event&)>;

struct request_timings {
  std::chrono::steady_clock::time_point submitted, admitted, first_token, finished;
  double prefill_seconds() const { return std::chrono::duration<double>(first_token - admitted).count(); }
  double decode_seconds() const { return std::chrono::duration<double>(finished - first_token).count(); }
};

struct generation_request {
  std::vector<std::int32_t> prompt;  // token ids, BOS included if wanted
  sampling_params sampling;
  stop_conditions stop;
  bool decode_text = true;           // stream detokenized text (needs the engine's tokenizer)
  // Length of a prompt prefix other requests are likely to share (a system prompt). The engine ends
  // a prefill chunk at its last full KV block and caches it, so later requests skip it.
  std::int32_t shared_prefix = 0;
  token_callback on_token;           // called on the engine thread; keep it short
  // Restricts the tokens sampled (structured output, tool calls): masks each logits row right
  // before sampling and sees each sampled token. Null = unconstrained.
  std::shared_ptr<token_constraint> constraint;
  // Prompt scoring (perplexity): when set, the engine computes the logits of every prompt position
  // and calls this with each row in position order (row = logits predicting position + 1).
  // max_tokens may be 0: the request then ends after its prompt.
  std::function<void(std::int32_t position, const float* logits)> on_prompt_logits;
  // Prompt positions before this one need no logits (llama-perplexity scores only the second half
  // of each chunk and computes only those rows): on_prompt_logits sees positions >= it, and the
  // LM head runs on those rows only.
  std::int32_t prompt_logits_from = 0;
  // -1: no log-probabilities. 0..max_top_logprobs: each token event carries the sampled token's
  // log-probability and this many most likely alternatives (runtime/logprobs.hpp).
  std::int32_t logprobs = -1;
};

// Shared between the caller and the engine thread. Fields written by the engine are read by the
// caller only after wait() returned (the mutex orders them).
class request_state {
 public:
  // ---- caller side
  void cancel() { cancel_requested_.store(true, std::memory_order_relaxed); }
  bool cancel_requested() const { return cancel_requested_.load(std::memory_order_relaxed); }

  void wait() const {
    std::unique_lock lock(mutex_);
    done_cv_.wait(lock, [&] { return done_; });
  }
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> d) const {
    std::unique_lock lock(mutex_);
    return done_cv_.wait_for(lock, d, [&] { return done_; });
  }
  bool done() const {
    std::lock_guard lock(mutex_);
    return done_;
  }

  // Results (valid after wait()).
  const std::vector<std::int32_t>& output_tokens() const { return output_; }
  const std::string& text() const { return text_; }
  finish_reason reason() const { return reason_; }
  const std::string& error_message() const { return error_; }
  std::int32_t prompt_tokens() const { return prompt_tokens_; }
  std::int32_t completion_tokens() const { return std::int32_t(output_.size()); }
  std::int32_t reused_tokens() const { return reused_tokens_; }  // prompt tokens served from the prefix cache
  const request_timings& timings() const { return timings_; }
  std::uint64_t id() const { return id_; }

  // ---- engine side: written by the engine only (private, hence the trailing underscores)
 private:
  friend class scheduler;

  generation_request req;
  std::uint64_t id_ = 0;
  std::vector<std::int32_t> tokens_;   // prompt + output, reserved up front (no growth in steps)
  std::vector<std::int32_t> output_;
  std::string text_;
  std::int32_t prompt_tokens_ = 0;
  std::int32_t reused_tokens_ = 0;
  std::int32_t max_total_ = 0;          // prompt + max new tokens, capped by the context
  std::int32_t slot_ = -1;
  std::int32_t prefilled_ = 0;          // prompt tokens whose K/V are cached
  finish_reason reason_ = finish_reason::none;
  std::string error_;
  request_timings timings_;
  text_stream detok_;
  stop_matcher stops_;
  // A group (submit_group: n sequences over one prompt). The first request leads: it is admitted
  // only when the pool could hold all group_size_ sequences, and prefills the prompt; the others
  // (leader_ set) are admitted once its prompt blocks are in the prefix cache and share them.
  std::int32_t group_size_ = 1;
  std::shared_ptr<request_state> leader_;

  void mark_done() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    done_cv_.notify_all();
  }

  std::atomic<bool> cancel_requested_{false};
  mutable std::mutex mutex_;
  mutable std::condition_variable done_cv_;
  bool done_ = false;
};

using request_handle = std::shared_ptr<request_state>;

}  // namespace gemmaforge
