#pragma once
// token_constraint: what a request can carry to restrict the tokens it may generate (structured
// output, tool calls: grammar/grammar_constraint.hpp). The engine calls mask() on the request's
// logits row right before sampling, and accept() with the token it sampled, on the thread that
// runs steps; both backends sample on the host, so one hook serves them all.
//
// An implementation allocates nothing in these calls: its state and scratch are sized when it is
// made (before submit), which is when a request's memory is decided.
#include <cstdint>
#include <span>

namespace gemmaforge {

class token_constraint {
 public:
  virtual ~token_constraint() = default;
  // Set the logits of disallowed tokens to -inf. `end_ids` are the ids that end a generation
  // (eos, <end_of_turn>): allowed only where the constrained output may end, and the only ones
  // allowed once it must.
  virtual void mask(float* logits, std::int32_t vocab, std::span<const std::int32_t> end_ids) = 0;
  // The token sampled from the masked row.
  virtual void accept(std::int32_t token) = 0;
};

}  // namespace gemmaforge
