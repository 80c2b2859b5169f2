#pragma once
// The step contract between the scheduler (runtime/) and the backends (backend/): what one forward
// step computes, and the view of it the executor's ops take. It sits below both, so neither
// includes the other.
//
// A step is a flat batch of tokens from several sequences (vLLM-style): decode rows of running
// sequences and at most one prefill chunk share every matmul; attention runs per sequence.
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
  // logits::all: the first tokens of the step that need none (< n_tokens; a perplexity chunk's
  // first half, which it does not score).
  std::int32_t logits_skip = 0;
};

// Built by the scheduler (host memory). The logits rows are chosen here, once: every consumer (the
// forward pass, a backend's upload) reads `logit_rows`, none derives them again from `want`.
struct step_batch {
  const std::int32_t* tokens = nullptr;      // [n_tokens]
  const std::int32_t* positions = nullptr;   // [n_tokens], start + i within each sequence
  std::int32_t n_tokens = 0;
  const step_sequence* seqs = nullptr;       // [n_seqs]
  std::int32_t n_seqs = 0;
  const std::int32_t* logit_rows = nullptr;  // [n_logits_rows] token row that feeds each logits row
  std::int32_t n_logits_rows = 0;            // rows of logits the step writes
};

// The logits rows `seqs` ask for, in sequence order, written to `rows` (room for every token);
// returns how many. The one place that turns step_sequence::want into rows.
inline std::int32_t choose_logit_rows(const step_sequence* seqs, std::int32_t n_seqs, std::int32_t* rows) {
  std::int32_t r = 0;
  for (std::int32_t s = 0; s < n_seqs; ++s) {
    const step_sequence& sq = seqs[s];
    if (sq.want == step_sequence::logits::last) rows[r++] = sq.first_row + sq.n_tokens - 1;
    if (sq.want == step_sequence::logits::all)
      for (std::int32_t i = sq.logits_skip; i < sq.n_tokens; ++i) rows[r++] = sq.first_row + i;
  }
  return r;
}

// What begin_step returns and the ops that need the step take: the batch, and where the backend
// reads its per-token arrays (the CPU reads the batch's own host arrays; CUDA its device copies,
// uploaded by begin_step). Ops never receive host pointers they cannot use.
struct step_view {
  const step_batch* batch = nullptr;         // host: sequences, slots, counts
  const std::int32_t* tokens = nullptr;      // [n_tokens] in the backend's memory
  const std::int32_t* positions = nullptr;   // [n_tokens] in the backend's memory
  const std::int32_t* logit_rows = nullptr;  // [n_logits_rows] in the backend's memory
  std::int32_t n_tokens = 0;
  std::int32_t n_logits_rows = 0;
};

// The view of a batch whose arrays the backend reads where they are (host backends).
inline step_view host_step_view(const step_batch& b) {
  return step_view{&b, b.tokens, b.positions, b.logit_rows, b.n_tokens, b.n_logits_rows};
}

}  // namespace gemmaforge
