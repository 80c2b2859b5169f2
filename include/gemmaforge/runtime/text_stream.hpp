#pragma once
// Streaming detokenization for the engine: token ids in, complete UTF-8 text out. A token may end
// in the middle of a character (byte-fallback pieces such as <0xE2>), so bytes are held back until
// the character is complete; nothing half-formed ever reaches a callback or a client. The byte
// assembly is utf8_stream (io/utf8.hpp), the one the tokenizer's decode() runs too: invalid bytes
// become U+FFFD here exactly as there. Unlike decode(), the stream of a continuation keeps a
// leading space (" Berlin" after "The capital is").
#include <cstdint>
#include <string_view>

#include <gemmaforge/io/utf8.hpp>
#include <gemmaforge/tokenizer/token_text_interface.hpp>

namespace gemmaforge {

class text_stream {
 public:
  text_stream() = default;
  explicit text_stream(const token_text* text) : text_(text) { stream_.reserve(64); }

  // Text completed by this token (a view valid until the next call).
  std::string_view push(std::int32_t id) {
    if (!text_) return {};
    text_->append_bytes(id, stream_.pending());
    return stream_.take();
  }

  // End of stream: an unfinished character held back becomes U+FFFD.
  std::string_view flush() { return stream_.take(true); }

 private:
  const token_text* text_ = nullptr;
  utf8_stream stream_;
};

}  // namespace gemmaforge
