// Attention over the registered descriptors' shapes with bf16 KV (see attention_harness.cuh).
// Split from the KV-dtype tests so the two heaviest translation units build in parallel.
#include <catch2/catch.hpp>

#include "cuda/attention_harness.cuh"

namespace gf = gemmaforge;
namespace gc = gemmaforge::cuda;
using namespace gf_cuda_test;

TEMPLATE_TEST_CASE("cuda attention: descriptor shapes, bf16 KV, all kernels bit-identical to the canonical order",
                   "[cuda][attention]", (attn_model<4, 1, 256>), (attn_model<8, 1, 256>), (attn_model<16, 16, 256>),
                   (attn_model<8, 4, 256>), (attn_model<16, 8, 256>), (attn_model<32, 16, 128>), (attn_model<4, 1, 16>),
                   (attn_model<4, 2, 16>)) {
  SECTION("single pass") { run_schedule<TestType, gf::bf16>(gc::attention_schedule::single_pass, 0.0f, mixed, 11); }
  SECTION("split-K") { run_schedule<TestType, gf::bf16>(gc::attention_schedule::split_k, 0.0f, mixed, 11); }
}

