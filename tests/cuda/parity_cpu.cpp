// The CPU half of the CPU vs CUDA parity test (parity.hpp), compiled by the host compiler.
#include "cuda/parity.hpp"

#include <random>

#include <gemmaforge/backend/cpu/executor.hpp>

#include "support/random_model.hpp"
#include "support/requests.hpp"

namespace gf_cuda_test {

std::vector<std::vector<std::int32_t>> parity_prompts() {
  std::mt19937 rng(parity_seed);
  return {gf::testing::random_prompt(rng, 300), gf::testing::random_prompt(rng, 37)};
}

template <class Model, class Kv>
static parity_result run(const gf::model_weights<Model>& w) {
  gf::basic_engine<Model, gf::cpu::cpu_executor, Kv> eng(w, parity_config(), gf::cpu::cpu_executor({.threads = 2}));
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
  for (auto& h : hs) out.tokens.push_back(h->output_tokens());
  return out;
}

template <class Model>
parity_result run_cpu_parity(bool kv_bf16, bool q8) {
  gf::testing::random_model<Model> m(parity_seed);
  if (!q8) return kv_bf16 ? run<Model, gf::bf16>(m.w) : run<Model, float>(m.w);
  std::vector<std::vector<std::byte>> store;  // the q8_0 bytes the views point into
  gf::testing::requantize_layers_q8_0(m.w, store);
  return kv_bf16 ? run<Model, gf::bf16>(m.w) : run<Model, float>(m.w);
}

template parity_result run_cpu_parity<parity_gemma1>(bool, bool);
template parity_result run_cpu_parity<parity_gemma2>(bool, bool);
template parity_result run_cpu_parity<parity_gemma3>(bool, bool);

}  // namespace gf_cuda_test
