// The forward pass against the reference implementation (HF transformers):
//  * the three tiny models (f32 and bf16 weights) through the CPU backend and the naive executor:
//    every position's logits within the fixture's tolerance, identical greedy continuations;
//  * the real Gemma 3 270M Q4_K_M file: HF loaded the same GGUF dequantized to f32. With exact
//    (f32-activation) matmuls every position's top-1 equals HF's wherever HF's own top-2 gap is
//    larger than our error bound, the stored top-16 logits agree within the tolerance, and greedy
//    continuations are identical; the default int8-activation path is held to a looser bound.
#include <catch2/catch.hpp>

#include "support/golden.hpp"
#include "support/model_path.hpp"
#include "support/naive_executor.hpp"
#include "support/test_models.hpp"

#if GF_GOLDEN_AVAILABLE

#include <gemmaforge/model/tiny.hpp>
#include <gemmaforge/backend/cpu/executor.hpp>
#include <gemmaforge/io/weight_binding.hpp>
#include <gemmaforge/model/registry.hpp>
#include <gemmaforge/runtime/engine.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

namespace gf = gemmaforge;
namespace golden = gemmaforge::golden;

namespace {

// Logits of every position of `ids` ([n][vocab]) and the greedy continuation of `greedy_prompt`.
template <class Model, class Executor>
struct run_result {
  std::vector<float> logits;
  std::vector<std::int32_t> greedy;
};

template <class Model, class Executor>
run_result<Model, Executor> run(const gf::model_weights<Model>& w, Executor exec, const std::vector<std::int32_t>& ids,
                                const std::vector<std::int32_t>& greedy_prompt, int n_greedy, int chunk = 64) {
  gf::engine_config c;
  c.limits.max_seq_len = std::max<int>(int(ids.size()), int(greedy_prompt.size()) + n_greedy) + 1;
  c.limits.max_batch = 1;
  c.limits.prefill_chunk = chunk;
  c.limits.logits_rows = chunk;
  c.limits.prefix_slots = 0;
  gf::basic_engine<Model, Executor, float> eng(w, c, std::move(exec));
  run_result<Model, Executor> out;
  out.logits.resize(ids.size() * std::size_t(Model::vocab));
  gf::generation_request r;
  r.prompt = ids;
  r.stop.max_tokens = 0;
  r.decode_text = false;
  r.on_prompt_logits = [&](std::int32_t pos, const float* l) {
    std::copy(l, l + Model::vocab, out.logits.begin() + std::ptrdiff_t(pos) * Model::vocab);
  };
  eng.generate(r);
  if (n_greedy > 0) {
    gf::generation_request g;
    g.prompt = greedy_prompt;
    g.stop.max_tokens = n_greedy;
    g.stop.ignore_eos = true;
    g.decode_text = false;
    out.greedy = eng.generate(g)->output_tokens();
  }
  return out;
}

template <class Model>
void check_tiny(const golden::tiny_fixture& fx) {
  auto bound = gf::load_model<Model>(fx.dir);
  const int V = Model::vocab;
  REQUIRE(fx.vocab == V);
  const int n_greedy = int(fx.greedy_continuation.size());
  SECTION("CPU backend") {
    gf::cpu::executor_options o;
    o.threads = 2;
    o.precision = gf::cpu::matmul_precision::exact;
    const auto r = run<Model>(bound.weights(), gf::cpu::cpu_executor(o), fx.ids, fx.greedy_prompt, n_greedy, 7);
    float max_err = 0;
    for (int p = 0; p < fx.positions; ++p) {
      const auto ref = fx.logits_row(p);
      for (int v = 0; v < V; ++v) max_err = std::max(max_err, std::fabs(r.logits[std::size_t(p) * V + v] - ref[std::size_t(v)]));
    }
    INFO(fx.key << ": max |ours - HF| = " << max_err << ", tolerance " << fx.logits_tolerance << " (1e-4 x logit range "
                << fx.logit_range() << ")");
    CHECK(max_err <= fx.logits_tolerance);
    CHECK(r.greedy == fx.greedy_continuation);
  }
  SECTION("naive executor") {
    const auto r = run<Model>(bound.weights(), gf::testing::naive_executor{}, fx.ids, fx.greedy_prompt, n_greedy, 5);
    float max_err = 0;
    for (int p = 0; p < fx.positions; ++p) {
      const auto ref = fx.logits_row(p);
      for (int v = 0; v < V; ++v) max_err = std::max(max_err, std::fabs(r.logits[std::size_t(p) * V + v] - ref[std::size_t(v)]));
    }
    INFO(fx.key << ": max |naive - HF| = " << max_err << ", tolerance " << fx.logits_tolerance);
    CHECK(max_err <= fx.logits_tolerance);
    CHECK(r.greedy == fx.greedy_continuation);
  }
}

}  // namespace

TEST_CASE("golden: tiny Gemma 1 matches HF transformers", "[cpu][golden]") {
  const auto key = GENERATE(as<std::string>{}, "tiny_gemma1", "tiny_gemma1_bf16");
  check_tiny<gf::models::tiny_gemma1>(golden::load_tiny(key));
}

TEST_CASE("golden: tiny Gemma 2 matches HF transformers", "[cpu][golden]") {
  const auto key = GENERATE(as<std::string>{}, "tiny_gemma2", "tiny_gemma2_bf16");
  check_tiny<gf::models::tiny_gemma2>(golden::load_tiny(key));
}

TEST_CASE("golden: tiny Gemma 3 matches HF transformers", "[cpu][golden]") {
  const auto key = GENERATE(as<std::string>{}, "tiny_gemma3", "tiny_gemma3_bf16");
  check_tiny<gf::models::tiny_gemma3>(golden::load_tiny(key));
}

// Test-only descriptors (tests/support/test_models.hpp), each against the fixture named after it.
TEST_CASE("golden: test-only descriptors match HF transformers", "[cpu][golden]") {
  gf::for_each_type(gf::testing::golden_test_models{}, [](auto tag) {
    using M = typename decltype(tag)::type;
    DYNAMIC_SECTION(M::name) { check_tiny<M>(golden::load_tiny(gf::testing::fixture_key<M>())); }
  });
}

TEST_CASE("golden: real Gemma 3 270M Q4_K_M matches HF transformers on the same GGUF", "[cpu][golden][model][slow]") {
  using M = gf::models::gemma_3_270m;
  const auto ref = golden::load_reference_270m();
  const auto path = gf::testing::real_model_path();
  INFO("model file " << path << " (installed by scripts/setup)");
  REQUIRE(std::filesystem::exists(path));
  auto bound = gf::load_model<M>(path);
  using prec = gf::cpu::matmul_precision;
  const auto precision = GENERATE(prec::exact, prec::int16_activations, prec::int8_activations, prec::int16_block_sums,
                                  prec::int8_block_sums);
  const bool exact = precision == prec::exact;
  // int16 activations (the default) are held to the exact path's standard, with their own bound;
  // so is int16_block_sums (the same 15-bit activations, another float order).
  const bool strict = precision != prec::int8_activations && precision != prec::int8_block_sums;
  // Tolerances, relative to each row's logit range (max - min, ~30 here):
  //  exact: 1e-4, HF's own f32-vs-f64 spread on this model is 1.8e-4 absolute (tests/golden/README.md);
  //         our sums run in another order, so a few 1e-5 of the range is the expected distance.
  //  int8 activations: the activations are rounded to 8 bits per 32 values before each matmul
  //         (as llama.cpp does), which moves logits by up to ~1% of the range; top-1 must still
  //         agree wherever HF's top-2 gap exceeds that bound.
  //  int16 block sums: the same 15-bit activations in another float order; measured 6.5e-4 of the
  //         range (int16 activations 3.9e-4: each order meets its own activation roundings after
  //         the first layer), so its bound is 1e-3; top-1 and greedy are held as strictly.
  //  int8 block sums: int8's 8-bit activations in the block order, held to int8's bounds.
  const double rel_tol = exact ? 1e-4 : precision == prec::int16_block_sums ? 1e-3 : strict ? 5e-4 : 8e-2;
  double worst_rel = 0, worst_abs = 0;
  int top1_checked = 0, top1_skipped = 0, top1_agree = 0, positions = 0;
  for (const auto& p : ref.prompts) {
    gf::cpu::executor_options o;
    o.threads = 2;
    o.precision = precision;
    const auto r = run<M>(bound.weights(), gf::cpu::cpu_executor(o), p.ids, p.ids, p.greedy.empty() ? 0 : int(p.greedy.size()), 128);
    for (int pos = 0; pos < p.n(); ++pos) {
      const float* row = r.logits.data() + std::size_t(pos) * M::vocab;
      const auto ids = p.topk_ids_at(pos);
      const auto vals = p.topk_logits_at(pos);
      const double range = double(p.max[std::size_t(pos)]) - double(p.min[std::size_t(pos)]);
      for (std::size_t i = 0; i < ids.size(); ++i) {
        const double d = std::fabs(double(row[ids[i]]) - double(vals[i]));
        worst_abs = std::max(worst_abs, d);
        worst_rel = std::max(worst_rel, d / range);
      }
      const auto ours = std::max_element(row, row + M::vocab) - row;
      ++positions;
      top1_agree += ours == ids[0];
      // Exact path: where HF's own top-2 gap is larger than twice our error bound, argmax must agree.
      const double gap = double(vals[0]) - double(vals[1]);
      if (strict && gap > 2 * rel_tol * range) {
        ++top1_checked;
        INFO(p.name << " position " << pos << ": HF top-1 " << ids[0] << " (gap " << gap << "), ours " << ours);
        CHECK(ours == ids[0]);
      } else if (strict) {
        ++top1_skipped;
      }
    }
    if (strict && !p.greedy.empty()) {
      INFO(p.name << ": greedy continuation");
      CHECK(r.greedy == p.greedy);
    }
  }
  WARN("precision '" << gf::to_string(precision) << "': max |ours - HF| over the stored top-16 logits = " << worst_abs
                                             << " (" << worst_rel << " of the row's range); top-1 agrees at " << top1_agree
                                             << " of " << positions << " positions");
  CHECK(worst_rel <= rel_tol);
  if (strict) {
    CHECK(top1_checked > 650);  // of 707: only HF's own near-ties are skipped
  } else {
    // 8-bit activations (per 32 values, as llama.cpp) flip near-ties: measured 683 of 707 agree (96.6%).
    CHECK(top1_agree >= positions * 95 / 100);
  }
}

#endif  // GF_GOLDEN_AVAILABLE
