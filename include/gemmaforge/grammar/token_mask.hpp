#pragma once
// The token mask of one step: which tokens the matcher accepts whole from its current state,
// found by one walk of the token trie (token_trie.hpp) that copies the matcher state per trie node
// and skips a subtree at the first byte the matcher rejects.
//
// Cost per step is bounded by the trie's size (every node visited at most once) and in practice
// by the few prefixes the grammar allows: outside strings only tokens made of JSON punctuation,
// digits, literals and whitespace survive their first bytes; inside a string the plain tokens are
// a precomputed bit set and only the small not-plain trie is walked. bench/bench_grammar_mask.cpp
// measures it against a decode step.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <vector>

#include <gemmaforge/grammar/matcher.hpp>
#include <gemmaforge/grammar/token_trie.hpp>

namespace gemmaforge::grammar {

// Scratch of one mask computation: a matcher state per trie depth and a bit per token. Sized
// once per request (mask_work_bytes), reused every step.
template <class State = matcher_state>
struct mask_work {
  std::vector<State> states;
  std::vector<std::uint64_t> bits;

  explicit mask_work(const token_trie& t) : states(t.max_token_bytes() + 1), bits((std::size_t(t.vocab()) + 63) / 64) {}
};

template <class State = matcher_state>
std::uint64_t mask_work_bytes(const token_trie& t) {
  return (t.max_token_bytes() + 1) * sizeof(State) + (std::size_t(t.vocab()) + 63) / 64 * sizeof(std::uint64_t);
}

// Sets w.bits to the tokens whose bytes the matcher accepts from `s`. Returns how many trie
// nodes were visited (for tests and benchmarks).
// M is matcher or framed_matcher (framed_matcher.hpp): state_type, feed, complete,
// in_plain_string, unconstrained, and a copy_state for its state.
template <class M>
std::size_t allowed_tokens(const M& m, const typename M::state_type& s, const token_trie& trie, mask_work<typename M::state_type>& w) {
  const trie_nodes* t = &trie.all();
  if (m.unconstrained(s)) {
    std::fill(w.bits.begin(), w.bits.end(), ~std::uint64_t(0));
    return 0;
  }
  if (m.in_plain_string(s)) {
    std::copy(trie.plain_bits().begin(), trie.plain_bits().end(), w.bits.begin());
    t = &trie.not_plain();
  } else {
    std::fill(w.bits.begin(), w.bits.end(), 0);
  }
  if (m.complete(s)) return 0;
  copy_state(w.states[0], s);
  const std::size_t n = t->size();
  std::size_t visited = 0;
  for (std::size_t i = 0; i < n;) {
    ++visited;
    const std::size_t d = t->depth[i];
    auto& cur = w.states[d];
    copy_state(cur, w.states[d - 1]);
    if (!m.feed(cur, t->byte[i])) {
      i = std::size_t(t->skip[i]);
      continue;
    }
    for (std::int32_t k = t->token_begin[i]; k < t->token_begin[i + 1]; ++k) {
      const auto id = std::uint32_t(t->token_ids[std::size_t(k)]);
      w.bits[id / 64] |= std::uint64_t(1) << (id % 64);
    }
    ++i;
  }
  return visited;
}

// Applies w.bits to a logits row: disallowed tokens get -inf. End ids keep their logit only where
// the output may end; at a dead end (no token allowed and no end possible, e.g. the nesting
// bound reached) they are allowed anyway so the sequence ends instead of sampling garbage.
template <class State>
void apply_mask(float* logits, std::int32_t vocab, const mask_work<State>& w, bool may_end, std::span<const std::int32_t> end_ids) {
  constexpr float ninf = -std::numeric_limits<float>::infinity();
  constexpr std::size_t max_ends = 8;
  float saved[max_ends];
  const std::size_t n_ends = std::min(end_ids.size(), max_ends);
  for (std::size_t e = 0; e < n_ends; ++e) saved[e] = end_ids[e] >= 0 && end_ids[e] < vocab ? logits[end_ids[e]] : ninf;
  bool any = false;
  const std::size_t words = (std::size_t(vocab) + 63) / 64;
  for (std::size_t wi = 0; wi < words; ++wi) {
    const std::uint64_t b = w.bits[wi];
    if (b == ~std::uint64_t(0)) {
      any = true;
      continue;
    }
    any = any || b != 0;
    const std::size_t base = wi * 64, end = std::min<std::size_t>(base + 64, std::size_t(vocab));
    for (std::size_t i = base; i < end; ++i)
      if (!((b >> (i - base)) & 1)) logits[i] = ninf;
  }
  const bool allow_end = may_end || !any;
  for (std::size_t e = 0; e < n_ends; ++e)
    if (end_ids[e] >= 0 && end_ids[e] < vocab) logits[end_ids[e]] = allow_end ? saved[e] : ninf;
}

}  // namespace gemmaforge::grammar
