#pragma once
// grammar_constraint: the runtime hook (runtime/token_constraint.hpp) backed by a compiled
// grammar, a framed_matcher and the shared token trie.
//
// Memory per request, allocated here (before submit) and never in a step: the matcher state
// (sizeof(framed_state): max_depth frames of 16 bytes, ~0.5 KiB) and the mask scratch
// (mask_work_bytes: one framed_state per byte of the longest token, plus a bit per token; for
// Gemma 3's 262,144 tokens request_bytes() is logged at start-up). The compiled grammar is shared
// with the parsed request; the trie by every request.
#include <limits>
#include <memory>
#include <span>
#include <string>

#include <gemmaforge/grammar/framed_matcher.hpp>
#include <gemmaforge/grammar/token_mask.hpp>
#include <gemmaforge/grammar/token_trie.hpp>
#include <gemmaforge/runtime/token_constraint.hpp>

namespace gemmaforge::grammar {

struct frame_text {
  std::string opener, closer;  // e.g. "```json\n" and "\n```" around a tool call
  bool free_first = false;     // free text may come first (tool_choice auto)
};

class grammar_constraint final : public token_constraint {
 public:
  grammar_constraint(std::shared_ptr<const compiled_grammar> g, std::shared_ptr<const token_trie> trie, const frame_text& frame = {})
      : g_(std::move(g)), trie_(std::move(trie)), m_(*g_, frame.opener, frame.closer, frame.free_first), state_(m_.start()),
        work_(*trie_) {}

  void mask(float* logits, std::int32_t vocab, std::span<const std::int32_t> end_ids) override {
    if (broken_) return;
    allowed_tokens(m_, state_, *trie_, work_);
    apply_mask(logits, std::min(vocab, trie_->vocab()), work_, m_.accepting(state_), end_ids);
    // Rows wider than the tokenizer's vocabulary (padded embeddings): those ids are never text.
    for (std::int32_t i = trie_->vocab(); i < vocab; ++i) logits[i] = -std::numeric_limits<float>::infinity();
  }

  void accept(std::int32_t token) override {
    if (broken_ || token < 0 || token >= trie_->vocab()) return;
    // An end id or another special token has no bytes: nothing to feed.
    if (!m_.feed_all(state_, trie_->token_bytes(token))) broken_ = true;
  }

  // For the caller after the request: did the output follow the grammar to its end?
  bool broken() const { return broken_; }
  bool complete() const { return m_.complete(state_); }
  bool in_call() const { return m_.in_call(state_); }

  // What one request holds beyond the shared grammar and trie.
  static std::uint64_t request_bytes(const token_trie& t) { return sizeof(grammar_constraint) + mask_work_bytes<framed_state>(t); }

 private:
  std::shared_ptr<const compiled_grammar> g_;
  std::shared_ptr<const token_trie> trie_;
  framed_matcher m_;
  framed_state state_;
  mask_work<framed_state> work_;
  bool broken_ = false;
};

}  // namespace gemmaforge::grammar
