// MUST NOT COMPILE: openchat-3.5-0106-gemma at max_seq_len 8192 x batch 2 on an RTX 4090 at 0.90
// needs 16384 tokens of KV; the pool holds 11040. The error must name both numbers.
#include <gemmaforge/model/registry.hpp>
#include <gemmaforge/plan/require_fit.hpp>

namespace gf = gemmaforge;

constexpr gf::serving_config cfg{.max_seq_len = 8192, .max_batch = 2, .memory_permille = 900};
using plan = gf::memory_plan<gf::models::openchat_3_5_0106_gemma, gf::devices::rtx4090, cfg>;
static_assert(gf::require_fit<plan>());

int main() { return 0; }
