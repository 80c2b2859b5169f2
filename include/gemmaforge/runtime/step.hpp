#pragma once
// One forward step: a flat batch of tokens from several sequences (vLLM-style). Decode rows of
// running sequences and at most one prefill chunk share every matmul; attention runs per sequence.
#include <cstdint>

namespace gemmaforge {

struct step_sequence {
  std::int32_t slot = 0;        // KV pool slot of the sequence
  std::int32_t start = 0;       // position of its first token in this step (= tokens already cached)
  std::int32_t n_tokens = 0;    // its tokens in this step (1 for decode, a chunk for prefill)
  std::int32_t first_row = 0;   // index of its first token in the step's token array
  // Logits: none, the last token's (decode / final prefill chunk), or every token's (perplexity).
  // Logits rows are assigned in sequence order: the first sequence that wants logits gets row 0.
  enum class logits : std::uint8_t { none, last, all } want = logits::last;
};

struct step_batch {
  const std::int32_t* tokens = nullptr;     // [n_tokens]
  const std::int32_t* positions = nullptr;  // [n_tokens], start + i within each sequence
  std::int32_t n_tokens = 0;
  const step_sequence* seqs = nullptr;      // [n_seqs]
  std::int32_t n_seqs = 0;
  std::int32_t n_logits_rows = 0;           // rows of logits the step writes
};

}  // namespace gemmaforge
