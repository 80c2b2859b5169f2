// CPU vs CUDA, bit for bit, end to end (review findings C2 and C3): the same random model, prompts
// and config through basic_engine on cpu_executor and on cuda_executor with its defaults (split
// length, schedule, graphs). Logits of every prompt row of a 300-token request (two attention
// splits, five prefill chunks, beside a second request) and the greedy tokens must be identical.
// Before the fixes CUDA scaled (q.k) instead of q and split every 64 positions at this
// max_seq_len, so every row past the first split differed in the last bits.
#include <catch2/catch.hpp>

#include <gemmaforge/backend/cuda/executor.cuh>

#include "cuda/cuda_test_util.cuh"
#include "cuda/parity.hpp"
#include "support/random_model.hpp"
#include "support/requests.hpp"

namespace gf = gemmaforge;
namespace gc = gemmaforge::cuda;
using namespace gf_cuda_test;

namespace {

template <class Model, class Kv>
parity_result run_cuda(const gf::model_weights<Model>& w) {
  const gf::engine_config c = parity_config();
  gc::cuda_executor_config x;
  gf::layout_inputs in;  // the planned layout of this engine: the executor's one cudaMalloc
  in.backend = gf::backend_kind::cuda;
  in.config = c.limits;
  in.config.kv = gf::dtype_of<Kv>::value;
  in.device_weight_bytes = gc::cuda_executor::device_weight_bytes(w);
  x.arena_bytes = gf::make_arena_layout<Model>(in).arena_bytes;
  gf::basic_engine<Model, gc::cuda_executor, Kv> eng(w, c, gc::cuda_executor(x));
  parity_result out;
  std::vector<gf::request_handle> hs;
  const auto prompts = parity_prompts();
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    auto r = gf::testing::greedy(prompts[i], parity_max_tokens);
    if (i == 0)
      r.on_prompt_logits = [&](std::int32_t, const float* l) { out.prompt_logits.emplace_back(l, l + Model::vocab); };
    hs.push_back(eng.submit(std::move(r)));
  }
  eng.run_until_idle();
  for (auto& h : hs) {
    INFO(h->error_message());
    REQUIRE(h->reason() == gf::finish_reason::length);
    out.tokens.push_back(h->output_tokens());
  }
  return out;
}

template <class Model>
void check_parity(bool kv_bf16) {
  INFO(Model::name << (kv_bf16 ? ", bf16 KV" : ", f32 KV"));
  gf::testing::random_model<Model> m(parity_seed);
  const parity_result cpu = run_cpu_parity<Model>(kv_bf16);
  const parity_result gpu = kv_bf16 ? run_cuda<Model, gf::bf16>(m.w) : run_cuda<Model, float>(m.w);
  REQUIRE(gpu.prompt_logits.size() == cpu.prompt_logits.size());
  std::size_t rows_differing = 0, first_row = 0;
  for (std::size_t r = 0; r < cpu.prompt_logits.size(); ++r) {
    if (bit_mismatches(gpu.prompt_logits[r], cpu.prompt_logits[r], Model::vocab) == 0) continue;
    if (rows_differing++ == 0) first_row = r;
  }
  INFO("prompt rows with any differing bit: " << rows_differing << " (first: " << first_row << ")");
  CHECK(rows_differing == 0);
  CHECK(gpu.tokens == cpu.tokens);
}

}  // namespace

TEMPLATE_TEST_CASE("cuda engine: the CPU backend's bits, end to end (scale 1/12, two splits)", "[cuda][engine][parity]",
                   parity_gemma1, parity_gemma2, parity_gemma3) {
  check_parity<TestType>(false);
  check_parity<TestType>(true);
}
