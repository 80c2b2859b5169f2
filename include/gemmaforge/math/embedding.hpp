#pragma once
// Gemma scales the embedding by sqrt(hidden), and the reference computes that factor in the
// activation dtype: `torch.tensor(hidden**0.5, dtype=x.dtype)` (bf16: 640 -> 25.25, 2048 -> 45.25),
// not the exact root (llama.cpp uses the float value; that is a real difference).
#include <cmath>

#include <gemmaforge/core/dtype.hpp>
#include <gemmaforge/core/macros.hpp>

namespace gemmaforge::math {

// sqrt(hidden) computed in double (Python's hidden**0.5), rounded once to f32, then to `act`.
GF_HOST_DEVICE float embedding_scale(int hidden, dtype act) {
  return round_to(act, float(sqrt(double(hidden))));
}

}  // namespace gemmaforge::math
