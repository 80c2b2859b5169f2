// MUST COMPILE: the seed's case (openchat-3.5-0106-gemma, bf16 weights and KV, 8192 tokens,
// batch 1, RTX 4090 at 0.90) fits under gemmaforge's plan. Proves the compile-fail harness is not
// vacuous: the same includes and the same require_fit pass when the plan fits.
#include <gemmaforge/model/registry.hpp>
#include <gemmaforge/plan/require_fit.hpp>

namespace gf = gemmaforge;

constexpr gf::serving_config cfg{.max_seq_len = 8192, .max_batch = 1, .weights = gf::weight_scheme::bf16,
                                 .kv = gf::dtype::bf16, .memory_permille = 900};
using plan = gf::memory_plan<gf::models::openchat_3_5_0106_gemma, gf::devices::rtx4090, cfg>;
static_assert(gf::require_fit<plan>());
static_assert(plan::kv_capacity_tokens >= 10'500);

int main() { return 0; }
