// The attention choices that the CPU and CUDA backends share (math/attention_order.hpp) and the
// canonical reference that the [cuda] tests check the kernels against (support/canonical_attention.hpp),
// tied to the CPU backend bit for bit. Review finding C2 (CUDA scaled q.k after the dot, the CPU
// scaled q before it) and C3 (CUDA picked its split length from max_seq_len, the CPU uses 256)
// were invisible because the tiny models' scale is a power of two and no test crossed 256 keys:
// this test uses scale 1/12 (query_pre_attn_scalar 144, Gemma 2 27B) and 300 positions.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include <gemmaforge/backend/cpu/attention.hpp>
#include <gemmaforge/math/attention_order.hpp>

#include "support/canonical_attention.hpp"
#include "unit/cpu_test_util.hpp"

namespace gf = gemmaforge;
namespace cpu = gemmaforge::cpu;
namespace m = gemmaforge::math;

static_assert(cpu::attention_split == m::attention_split, "the CPU split is the shared one");
static_assert(m::attention_split % 32 == 0, "CUDA tiles hold 32 keys");
static_assert(m::attention_split_tokens(0) == m::attention_split);
static_assert(m::attention_split_tokens(512) == 512);
static_assert(m::attention_max_splits(8192, 256) == 32 && m::attention_max_splits(8193, 256) == 33);
static_assert(m::attention_max_splits(0, 256) == 1 && m::attention_max_splits(1, 256) == 1);

TEST_CASE("attention order: the default split length does not depend on max_seq_len", "[cpu][attention][order]") {
  // cuda_executor_config::split_tokens() is math::attention_split_tokens(attn_split_tokens): the
  // default (0) must give the CPU's split for every context length (it used to be max_seq_len / 32).
  for (int max_seq_len : {1, 64, 4096, 8192, 32768, 131072}) {
    INFO("max_seq_len " << max_seq_len);
    CHECK(m::attention_split_tokens(0) == cpu::attention_split);
    CHECK(m::attention_max_splits(max_seq_len, m::attention_split_tokens(0)) ==
          (max_seq_len + cpu::attention_split - 1) / cpu::attention_split);
  }
}

TEST_CASE("attention order: the CPU backend equals the canonical reference bit for bit at scale 1/12",
          "[cpu][attention][order]") {
  using Shape = gf::attention_shape<4, 2, 16>;
  constexpr int H = Shape::heads, KVH = Shape::kv_heads, D = Shape::head_dim, G = Shape::group;
  constexpr int N = 300, bt = 16;  // two splits
  const float scale = 1.0f / std::sqrt(144.0f);
  const auto q = gf_test::random_floats(std::size_t(N) * H * D, 21u, 6.0f);
  const auto k = gf_test::random_floats(std::size_t(N) * KVH * D, 22u);
  const auto v = gf_test::random_floats(std::size_t(N) * KVH * D, 23u);

  const int nb = (N + bt - 1) / bt;
  std::vector<float> kc(std::size_t(nb) * KVH * bt * D), vc(kc.size()), ks(std::size_t(nb) * KVH * bt), vs(ks.size());
  std::vector<std::int32_t> blocks(static_cast<std::size_t>(nb));
  std::iota(blocks.begin(), blocks.end(), 0);
  const gf::kv_cache_mut_view cache{kc.data(), vc.data(), ks.data(), vs.data(), blocks.data(), nb, bt, KVH, D};

  for (float cap : {0.0f, 50.0f}) {
    INFO("softcap " << cap);
    cpu::thread_pool pool(2);
    cpu::attention_params prm;
    prm.n_tokens = N;
    prm.scale = scale;
    prm.softcap = cap;
    std::vector<std::byte> scratch(cpu::attention_scratch_bytes<Shape, float>(N, N) + 64);
    std::byte* s = scratch.data() + (64 - reinterpret_cast<std::uintptr_t>(scratch.data()) % 64) % 64;
    std::vector<float> got(std::size_t(N) * H * D);
    cpu::attention<Shape, float>(pool, prm, q.data(), k.data(), v.data(), cache.as_const(), got.data(), s);

    std::size_t diff = 0;
    std::vector<float> want(D);
    for (int p = 0; p < N; ++p)
      for (int h = 0; h < H; ++h) {
        const float* qh = q.data() + (std::size_t(p) * H + h) * D;
        auto key = [&](int pos, float* dst) {
          for (int d = 0; d < D; ++d) dst[d] = k[(std::size_t(pos) * KVH + h / G) * D + d];
        };
        auto value = [&](int pos, float* dst) {
          for (int d = 0; d < D; ++d) dst[d] = v[(std::size_t(pos) * KVH + h / G) * D + d];
        };
        gf_test::canonical_attention_row(qh, D, 0, p, scale, cap, m::attention_split, key, value, want.data());
        for (int d = 0; d < D; ++d) diff += !gf_test::same_bits(got[(std::size_t(p) * H + h) * D + d], want[std::size_t(d)]);
      }
    CHECK(diff == 0);
  }
  // The test can tell the two orders apart: with this scale (q * scale).k and (q.k) * scale differ
  // on a good share of the logits (they agree everywhere only for a power-of-two scale).
  std::size_t differ = 0;
  std::vector<float> qs(D);
  for (int p = 0; p < N; ++p) {
    const float* qh = q.data() + std::size_t(p) * H * D;
    for (int d = 0; d < D; ++d) qs[std::size_t(d)] = m::attention_scaled_query(qh[d], scale);
    const float* kp = k.data() + std::size_t(p) * KVH * D;
    differ += !gf_test::same_bits(m::dot_f32(qs.data(), kp, D), m::dot_f32(qh, kp, D) * scale);
  }
  CHECK(differ > N / 10);
}
