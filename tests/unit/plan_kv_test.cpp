// KV bytes per token of every model against the reference table (reference/gemma-models.md §3),
// window-bounded totals at 8k and 32k, fp8/int8 scales, and the local-layer rings.
#include <catch2/catch.hpp>

#include <gemmaforge/model/registry.hpp>
#include <gemmaforge/plan/kv_bytes.hpp>

#include <string_view>

namespace gf = gemmaforge;
using namespace gf::models;

namespace {

// One row of §3: KiB per token (all layers, bf16), MiB for 8k naive / window-bounded, 32k the same
// (0 where the table has no 32k figure). MiB values are x2 so 31.5 and 103.5 stay integers.
struct kv_row {
  std::string_view model;
  std::uint64_t kib_per_token;
  std::uint64_t naive_8k_mib, bounded_8k_half_mib;
  std::uint64_t naive_32k_mib, bounded_32k_half_mib;
};

constexpr kv_row reference_table[] = {
    {"gemma-2b", 18, 144, 288, 0, 0},
    {"gemma-7b", 448, 3584, 7168, 0, 0},
    {"openchat-3.5-0106-gemma", 448, 3584, 7168, 0, 0},
    {"gemma-2-2b", 104, 832, 1248, 0, 0},
    {"gemma-2-9b", 336, 2688, 4032, 0, 0},
    {"gemma-2-27b", 368, 2944, 4416, 0, 0},
    {"gemma-3-270m", 18, 144, 63, 576, 207},
    {"gemma-3-1b", 26, 208, 86, 832, 278},
    {"gemma-3-4b", 136, 1088, 552, 4352, 1512},
    {"gemma-3-12b", 384, 3072, 1664, 12288, 4736},
    {"gemma-3-27b", 496, 3968, 2112, 15872, 5952},
    {"mistral-7b", 128, 1024, 1024, 4096, 1024},
};

}  // namespace

// The seed's model, pinned at compile time: 28 layers x K+V x 16 heads x 256 x 2 B.
static_assert(gf::kv_bytes_per_token<openchat_3_5_0106_gemma>(gf::dtype::bf16) == 458'752);
static_assert(gf::kv_bytes_per_token<openchat_3_5_0106_gemma>(gf::dtype::fp8_e4m3) == 229'376 + 28 * 2 * 16 * 4);
static_assert(gf::kv_bytes_per_token<gemma_3_270m>(gf::dtype::bf16) == 3 * 1024);  // 3 global layers of 1 KiB
static_assert(gf::local_kv_bytes_per_token<gemma_3_270m>(gf::dtype::bf16) == 15 * 1024);
static_assert(gf::kv_bytes_per_token<mistral_7b>(gf::dtype::bf16) == 0);  // every layer windowed

TEST_CASE("KV bytes per token match the reference table (bf16, all layers)", "[cpu][plan]") {
  int checked = 0;
  gf::for_each_type(gf::production_models{}, [&](auto tag) {
    using M = typename decltype(tag)::type;
    for (const kv_row& row : reference_table) {
      if (row.model != M::name) continue;
      INFO(M::name);
      ++checked;
      CHECK(gf::kv_bytes_per_token_all_layers<M>(gf::dtype::bf16) == row.kib_per_token * gf::KiB);
      CHECK(gf::kv_bytes_per_token<M>(gf::dtype::bf16) + gf::local_kv_bytes_per_token<M>(gf::dtype::bf16) ==
            row.kib_per_token * gf::KiB);
      CHECK(gf::kv_bytes_per_token_all_layers<M>(gf::dtype::bf16) * 8192 == row.naive_8k_mib * gf::MiB);
      CHECK(2 * gf::kv_bytes_window_bounded<M>(gf::dtype::bf16, 8192) == row.bounded_8k_half_mib * gf::MiB);
      if (row.naive_32k_mib != 0) {
        CHECK(gf::kv_bytes_per_token_all_layers<M>(gf::dtype::bf16) * 32768 == row.naive_32k_mib * gf::MiB);
        CHECK(2 * gf::kv_bytes_window_bounded<M>(gf::dtype::bf16, 32768) == row.bounded_32k_half_mib * gf::MiB);
      }
    }
  });
  CHECK(checked == 12);
}

TEST_CASE("fp8 and int8 KV halve the elements and add one f32 scale per token and head", "[cpu][plan]") {
  using M = gemma_2_9b;  // 8 KV heads, head_dim 256, 21 global layers
  const std::uint64_t bf16 = gf::kv_bytes_per_token<M>(gf::dtype::bf16);
  CHECK(bf16 == 21ull * 2 * 8 * 256 * 2);
  CHECK(gf::kv_bytes_per_token<M>(gf::dtype::fp8_e4m3) == bf16 / 2 + 21ull * 2 * 8 * 4);
  CHECK(gf::kv_bytes_per_token<M>(gf::dtype::int8) == gf::kv_bytes_per_token<M>(gf::dtype::fp8_e4m3));
  CHECK(gf::kv_bytes_per_token<M>(gf::dtype::f16) == bf16);
  CHECK(gf::kv_bytes_per_token<M>(gf::dtype::f32) == 2 * bf16);
}

TEST_CASE("local-layer rings hold ceil(window / block) + 1 blocks, capped by max_seq_len", "[cpu][plan]") {
  gf::serving_config c{};  // 8192 tokens, blocks of 16
  CHECK(gf::ring_blocks<gemma_2_9b>(c) == 4096 / 16 + 1);
  CHECK(gf::ring_blocks<gemma_3_270m>(c) == 512 / 16 + 1);
  CHECK(gf::ring_blocks<gemma_3_4b>(c) == 1024 / 16 + 1);
  CHECK(gf::ring_blocks<gemma_7b>(c) == 0);  // no local layers
  // The ring is at least as large as the reference's exact window, by at most one block + rounding.
  const std::uint64_t ring = gf::ring_bytes_per_sequence<gemma_2_9b>(c);
  const std::uint64_t exact = gf::local_kv_bytes_per_token<gemma_2_9b>(gf::dtype::bf16) * 4096;
  CHECK(ring == exact * 257 / 256);
  c.block_tokens = 64;
  CHECK(gf::ring_blocks<gemma_3_270m>(c) == 512 / 64 + 1);
  c.max_seq_len = 100;  // shorter than the window: ceil(100 / 64) = 2 blocks are all a sequence has
  CHECK(gf::ring_blocks<gemma_3_270m>(c) == 2);
  c.max_seq_len = 1;
  CHECK(gf::ring_blocks<gemma_3_270m>(c) == 1);
}
