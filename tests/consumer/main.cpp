// Uses the installed headers the way a user's project would: a compile-time plan, the registry,
// a dtype round trip.
#include <gemmaforge/gemmaforge.hpp>

#include <cstdio>

namespace gf = gemmaforge;

constexpr gf::serving_config cfg{.max_seq_len = 8192, .max_batch = 1};
using plan = gf::memory_plan<gf::models::openchat_3_5_0106_gemma, gf::devices::rtx4090, cfg>;
static_assert(gf::require_fit<plan>());

int main() {
  const float x = gf::to_float(gf::to_bf16(1.5f));
  if (x != 1.5f) return 1;
  int n = 0;
  gf::for_each_type(gf::all_models{}, [&](auto) { ++n; });
  std::printf("consumer: gemmaforge %s works: %d descriptors; openchat-3.5-0106-gemma on an RTX 4090 at 0.90 holds %llu KV tokens\n",
              gf::version, n, static_cast<unsigned long long>(plan::kv_capacity_tokens));
  return n == 12 ? 0 : 1;
}
