#pragma once
// stream_detokenizer: turns generated ids into text as they arrive, emitting only whole UTF-8
// characters. A character can be split across tokens in two ways: byte-fallback tokens
// (<0xE2><0x82><0xAC> is "€") and, in principle, multi-byte pieces cut mid-character; either way
// the bytes wait in a small buffer until the character is complete. Bytes that can never form a
// character become U+FFFD (one per maximal invalid subpart), as soon as that is certain; flush()
// does the same for an unfinished tail at the end of a stream. The byte assembly is utf8_stream
// (io/utf8.hpp), the engine's text_stream runs the same one; this class adds what belongs to the
// start of a whole text: the dummy-prefix space a SentencePiece model puts before the first word
// is dropped. tokenizer::decode() is this class run over the whole sequence, so both always agree;
// the engine's stream of a *continuation* keeps that space (" Berlin" after "The capital is"),
// which is the one difference (tests/unit/tokenizer_test.cpp checks both).
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
    text_.pending().append(b);
    return std::string(text_.take());
  }

  // Whatever is left at the end of the stream (an unfinished character becomes U+FFFD).
  std::string flush() {
    std::string out(text_.take(true));
    first_ = true;
    return out;
  }

  void reset() {
    text_.clear();
    first_ = true;
  }

  // Bytes held back waiting for the rest of a character (at most 3).
  std::size_t pending_bytes() const { return text_.pending_bytes(); }

 private:
  const tokenizer* tok_;
  decode_options opts_;
  utf8_stream text_;
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
