// MUST NOT COMPILE: KV blocks of 24 tokens (block sizes must be powers of two).
#include <gemmaforge/model/registry.hpp>
#include <gemmaforge/plan/require_fit.hpp>

namespace gf = gemmaforge;

constexpr gf::serving_config cfg{.max_seq_len = 8192, .block_tokens = 24};
using plan = gf::memory_plan<gf::models::gemma_3_270m, gf::devices::rtx4090, cfg>;
static_assert(gf::require_fit<plan>());

int main() { return 0; }
