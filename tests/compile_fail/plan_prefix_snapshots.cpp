// MUST NOT COMPILE: Gemma 2 9B at 8192 tokens fits an RTX 4090 at 0.90 with a prefix cache of 2
// entries (9264 tokens of KV), but each entry snapshots the sequence's sliding-window rings
// (21 local layers x 257 blocks, 675 MiB): with 3 entries the pool holds 5152 tokens. The
// snapshots are a planned region, so the plan refuses; the error names both numbers.
#include <gemmaforge/model/registry.hpp>
#include <gemmaforge/plan/require_fit.hpp>

namespace gf = gemmaforge;

constexpr gf::serving_config two{.max_seq_len = 8192, .max_batch = 1, .prefix_slots = 2};
static_assert(gf::require_fit<gf::memory_plan<gf::models::gemma_2_9b, gf::devices::rtx4090, two>>());

constexpr gf::serving_config three{.max_seq_len = 8192, .max_batch = 1, .prefix_slots = 3};
static_assert(gf::require_fit<gf::memory_plan<gf::models::gemma_2_9b, gf::devices::rtx4090, three>>());

int main() { return 0; }
