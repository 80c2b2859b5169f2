#pragma once
// Streaming detokenization for the engine: token ids in, complete UTF-8 text out. A token may end
// in the middle of a character (byte-fallback pieces such as <0xE2>), so bytes are held back until
// the character is complete; nothing half-formed ever reaches a callback or a client.
#include <cstdint>
#include <string>
#include <string_view>

namespace gemmaforge {

// What the engine needs from a tokenizer: the raw bytes a token stands for (byte-fallback pieces
// as their byte, the SentencePiece space marker as ' ', control tokens as nothing).
class token_text {
 public:
  virtual ~token_text() = default;
  virtual void append_bytes(std::int32_t id, std::string& out) const = 0;
};

namespace detail {
// Length of the UTF-8 sequence a lead byte announces (1 for ASCII and for invalid bytes, which are
// passed through rather than held forever).
constexpr int utf8_sequence_length(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c & 0xe0) == 0xc0) return 2;
  if ((c & 0xf0) == 0xe0) return 3;
  if ((c & 0xf8) == 0xf0) return 4;
  return 1;
}
}  // namespace detail

class text_stream {
 public:
  text_stream() = default;
  explicit text_stream(const token_text* text) : text_(text) { buf_.reserve(64); }

  // Bytes completed by this token (a view valid until the next call).
  std::string_view push(std::int32_t id) {
    if (!text_) return {};
    buf_.erase(0, emitted_);
    emitted_ = 0;
    text_->append_bytes(id, buf_);
    emitted_ = complete_prefix(buf_);
    return std::string_view(buf_).substr(0, emitted_);
  }

  // End of stream: whatever is held back (an incomplete character) is released as is.
  std::string_view flush() {
    buf_.erase(0, emitted_);
    emitted_ = buf_.size();
    return buf_;
  }

 private:
  // Longest prefix of s that ends on a UTF-8 character boundary.
  static std::size_t complete_prefix(const std::string& s) {
    const std::size_t n = s.size();
    // Look back at most 3 bytes for the lead byte of the last character.
    for (std::size_t back = 1; back <= 4 && back <= n; ++back) {
      const auto c = static_cast<unsigned char>(s[n - back]);
      if ((c & 0xc0) == 0x80) continue;  // continuation byte
      const int len = detail::utf8_sequence_length(c);
      return std::size_t(len) <= back ? n : n - back;
    }
    return n;  // only continuation bytes (invalid): pass them through
  }

  const token_text* text_ = nullptr;
  std::string buf_;
  std::size_t emitted_ = 0;
};

}  // namespace gemmaforge
