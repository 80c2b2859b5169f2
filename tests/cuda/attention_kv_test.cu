// Attention with f32/f16/fp8/int8 KV and Gemma 2's softcap (see attention_harness.cuh).
#include <catch2/catch.hpp>

#include "cuda/attention_harness.cuh"

namespace gf = gemmaforge;
namespace gc = gemmaforge::cuda;
using namespace gf_cuda_test;

TEMPLATE_TEST_CASE("cuda attention: KV dtypes and softcap", "[cuda][attention][kv]", float, gf::f16, gf::fp8_e4m3,
                   std::int8_t) {
  using M = attn_model<4, 2, 16>;
  SECTION("no cap, split-K") { run_schedule<M, TestType>(gc::attention_schedule::split_k, 0.0f, mixed, 5); }
  SECTION("cap 50, single pass") { run_schedule<M, TestType>(gc::attention_schedule::single_pass, 50.0f, mixed, 6); }
}

TEST_CASE("cuda attention: Gemma 2 softcap on a 256-wide head", "[cuda][attention]") {
  run_schedule<attn_model<8, 4, 256>, gf::bf16>(gc::attention_schedule::split_k, 50.0f, mixed, 3);
}

TEST_CASE("cuda attention: a prefill chunk longer than a ring, later positions keep the slots", "[cuda][attention][kv]") {
  // Window 24, blocks of 16: a ring holds 48 positions, so chunks of 60 and 70 tokens wrap it.
  const schedule long_chunks = {{60, 1}, {1, 70}, {1, 1}, {1, 1}};
  run_schedule<attn_model<4, 2, 16>, gf::bf16>(gc::attention_schedule::single_pass, 0.0f, long_chunks, 9);
}
