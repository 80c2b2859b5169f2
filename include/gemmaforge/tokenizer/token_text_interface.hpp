#pragma once
// token_text: what the engine needs from a tokenizer to stream text, and nothing more: the raw
// bytes a token stands for (byte-fallback pieces as their byte, the SentencePiece space marker as
// ' ', control tokens as nothing). The tokenizer implements it (tokenizer/token_text.hpp); the
// runtime's text_stream reads it. Kept apart from tokenizer.hpp so that the runtime needs no
// SentencePiece headers, and so that the arrow runs one way: runtime -> tokenizer.
#include <cstdint>
#include <string>

namespace gemmaforge {

class token_text {
 public:
  virtual ~token_text() = default;
  virtual void append_bytes(std::int32_t id, std::string& out) const = 0;
};

}  // namespace gemmaforge
