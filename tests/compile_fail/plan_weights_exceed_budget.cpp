// MUST NOT COMPILE: Gemma 3 27B in bf16 weighs 51519 MiB; an RTX 4090 at 0.90 gives 21789 MiB.
#include <gemmaforge/model/registry.hpp>
#include <gemmaforge/plan/require_fit.hpp>

namespace gf = gemmaforge;

constexpr gf::serving_config cfg{.max_seq_len = 8192, .max_batch = 1, .weights = gf::weight_scheme::bf16};
using plan = gf::memory_plan<gf::models::gemma_3_27b, gf::devices::rtx4090, cfg>;
static_assert(gf::require_fit<plan>());

int main() { return 0; }
