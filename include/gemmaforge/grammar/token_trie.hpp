#pragma once
// token_trie: the vocabulary as a byte trie, built once at start-up, in preorder arrays so a walk
// is a loop over an index that jumps past a subtree (`skip`) as soon as the matcher rejects its
// prefix.
//
// The bytes of a token are what the tokenizer decodes it to (tokenizer::token_bytes: "▁" is a
// space, <0xNN> the byte NN); tokens that decode to nothing (special tokens) are not in the trie
// and so never allowed by a mask (end-of-generation ids are handled by the mask itself).
//
// Two tries: every token, and only the tokens that are not "plain string text" (any byte that is
// '"', '\\' or a control character, or bytes that are not complete UTF-8). Inside a JSON string
// every plain token keeps the matcher where it is, so the mask there is the precomputed plain set
// plus a walk of the second, much smaller trie (XGrammar's observation that most of the
// vocabulary is context-independent, specialised to the one context where that matters most).
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

#include <gemmaforge/io/utf8.hpp>

namespace gemmaforge::grammar {

struct trie_nodes {
  std::vector<std::uint8_t> byte;        // the byte on the edge into the node
  std::vector<std::uint16_t> depth;      // 1 = a child of the root
  std::vector<std::int32_t> skip;        // index of the first node after this one's subtree
  std::vector<std::int32_t> token_begin; // tokens ending here: token_ids[token_begin[i], token_begin[i + 1])
  std::vector<std::int32_t> token_ids;

  std::size_t size() const { return byte.size(); }
  std::uint64_t bytes() const {
    return byte.size() * (sizeof(std::uint8_t) + sizeof(std::uint16_t) + 2 * sizeof(std::int32_t)) +
           token_ids.size() * sizeof(std::int32_t);
  }
};

class token_trie {
 public:
  // `token_bytes[id]` for every id of the vocabulary; an empty string is a token never generated
  // as text (a special token).
  explicit token_trie(const std::vector<std::string>& token_bytes) : vocab_(std::int32_t(token_bytes.size())) {
    plain_.assign((token_bytes.size() + 63) / 64, 0);
    std::vector<std::int32_t> all, other;
    for (std::int32_t id = 0; id < vocab_; ++id) {
      const std::string& b = token_bytes[std::size_t(id)];
      if (b.empty()) continue;
      all.push_back(id);
      max_len_ = std::max(max_len_, b.size());
      if (plain_string_text(b)) plain_[std::size_t(id) / 64] |= std::uint64_t(1) << (id % 64);
      else other.push_back(id);
    }
    offsets_.reserve(token_bytes.size() + 1);
    offsets_.push_back(0);
    for (const auto& b : token_bytes) {
      text_ += b;
      offsets_.push_back(std::uint32_t(text_.size()));
    }
    build(all_, all, token_bytes);
    build(other_, other, token_bytes);
  }

  std::int32_t vocab() const { return vocab_; }
  std::string_view token_bytes(std::int32_t id) const {
    return std::string_view(text_).substr(offsets_[std::size_t(id)], offsets_[std::size_t(id) + 1] - offsets_[std::size_t(id)]);
  }
  std::size_t max_token_bytes() const { return max_len_; }
  const trie_nodes& all() const { return all_; }
  const trie_nodes& not_plain() const { return other_; }
  // Bit per token id: the token is plain string text.
  const std::vector<std::uint64_t>& plain_bits() const { return plain_; }
  std::uint64_t bytes() const {
    return all_.bytes() + other_.bytes() + plain_.size() * sizeof(std::uint64_t) + text_.size() + offsets_.size() * sizeof(std::uint32_t);
  }

  static bool plain_string_text(std::string_view b) {
    for (char ch : b) {
      const auto c = std::uint8_t(ch);
      if (c < 0x20 || c == '"' || c == '\\') return false;
    }
    return is_valid_utf8(b);
  }

 private:
  static void build(trie_nodes& t, std::vector<std::int32_t> ids, const std::vector<std::string>& bytes) {
    std::stable_sort(ids.begin(), ids.end(), [&](std::int32_t a, std::int32_t b) { return bytes[std::size_t(a)] < bytes[std::size_t(b)]; });
    // Sorted order is preorder: each string's nodes follow its longest common prefix with the
    // previous one; a string's tokens attach to the node created last (or the same node again
    // for equal strings: several ids may decode to the same bytes).
    std::vector<std::int32_t> path;  // node index per depth - 1
    std::string_view prev;
    auto close_to = [&](std::size_t len) {
      while (path.size() > len) {
        t.skip[std::size_t(path.back())] = std::int32_t(t.size());
        path.pop_back();
      }
    };
    for (const std::int32_t id : ids) {
      const std::string_view s = bytes[std::size_t(id)];
      std::size_t common = 0;
      while (common < s.size() && common < prev.size() && s[common] == prev[common]) ++common;
      close_to(common);
      for (std::size_t i = common; i < s.size(); ++i) {
        path.push_back(std::int32_t(t.size()));
        t.byte.push_back(std::uint8_t(s[i]));
        t.depth.push_back(std::uint16_t(i + 1));
        t.skip.push_back(0);
        t.token_begin.push_back(std::int32_t(t.token_ids.size()));
      }
      t.token_ids.push_back(id);
      prev = s;
    }
    close_to(0);
    t.token_begin.push_back(std::int32_t(t.token_ids.size()));
  }

  std::int32_t vocab_ = 0;
  std::size_t max_len_ = 0;
  trie_nodes all_, other_;
  std::vector<std::uint64_t> plain_;
  std::string text_;                   // every token's bytes, back to back
  std::vector<std::uint32_t> offsets_; // token id -> its bytes in text_
};

}  // namespace gemmaforge::grammar
