#pragma once
// stream_detokenizer: turns generated ids into text as they arrive, emitting only whole UTF-8
// characters. A character can be split across tokens in two ways: byte-fallback tokens
// (<0xE2><0x82><0xAC> is "€") and, in principle, multi-byte pieces cut mid-character; either way
// the bytes wait in a small buffer until the character is complete. Bytes that can never form a
// character become U+FFFD (one per maximal invalid subpart), as soon as that is certain; flush()
// does the same for an unfinished tail at the end of a stream.
// tokenizer::decode() is this class run over the whole sequence, so both always agree.
#include <span>
#include <string>
#include <string_view>

#include <gemmaforge/io/utf8.hpp>
#include <gemmaforge/tokenizer/tokenizer.hpp>

namespace gemmaforge {

class stream_detokenizer {
 public:
  explicit stream_detokenizer(const tokenizer& tok, const decode_options& o = {}) : tok_(&tok), opts_(o) {}

  // Text completed by this token (possibly empty).
  std::string push(int id) {
    std::string_view b = tok_->token_bytes(id, opts_.skip_special);
    if (first_ && !b.empty()) {
      // A model trained with a dummy prefix space starts every text with one; drop it once.
      if (tok_->strips_leading_space() && b.front() == ' ') b.remove_prefix(1);
      first_ = false;
    }
    pending_.append(b);
    return drain(false);
  }

  // Whatever is left at the end of the stream (an unfinished character becomes U+FFFD).
  std::string flush() {
    std::string out = drain(true);
    first_ = true;
    return out;
  }

  void reset() {
    pending_.clear();
    first_ = true;
  }

  // Bytes held back waiting for the rest of a character (at most 3).
  std::size_t pending_bytes() const { return pending_.size(); }

 private:
  std::string drain(bool at_end) {
    std::string out;
    std::size_t i = 0;
    const std::string_view s = pending_;
    while (i < s.size()) {
      std::size_t prefix = 0;
      const std::size_t n = detail::utf8_sequence_at(s, i, &prefix);
      if (n > 0) {
        out.append(s.substr(i, n));
        i += n;
      } else if (prefix > 0 && !at_end) {
        break;  // a valid start of a character whose remaining bytes have not arrived yet
      } else {
        out.append(utf8_replacement);
        i += detail::utf8_invalid_run(s, i);
      }
    }
    pending_.erase(0, i);
    return out;
  }

  const tokenizer* tok_;
  decode_options opts_;
  std::string pending_;
  bool first_ = true;
};

inline std::string tokenizer::decode(std::span<const int> ids, const decode_options& o) const {
  stream_detokenizer s(*this, o);
  std::string out;
  for (int id : ids) out += s.push(id);
  out += s.flush();
  return out;
}

inline stream_detokenizer tokenizer::stream(const decode_options& o) const { return stream_detokenizer(*this, o); }

}  // namespace gemmaforge
