#pragma once
// The tokenizer seen through the engine's token_text interface (token_text_interface.hpp): the
// raw bytes of a token, special tokens as nothing.
#include <memory>

#include <gemmaforge/tokenizer/token_text_interface.hpp>
#include <gemmaforge/tokenizer/tokenizer.hpp>

namespace gemmaforge {

class tokenizer_text final : public token_text {
 public:
  explicit tokenizer_text(std::shared_ptr<const tokenizer> t) : tok_(std::move(t)) {}
  void append_bytes(std::int32_t id, std::string& out) const override { out.append(tok_->token_bytes(id)); }

 private:
  std::shared_ptr<const tokenizer> tok_;
};

}  // namespace gemmaforge
