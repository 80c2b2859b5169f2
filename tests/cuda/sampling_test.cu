// Device sampling against the CPU sampler (runtime/sampler.hpp) over a 262144-entry vocabulary:
// the same token for greedy, plain temperature, top-k, top-p, min-p and their combination, with
// penalties, for 24 draws each (counter = draw number, the counter-based RNG of math/rng.hpp).
// Penalised logits are bit-identical to the CPU's. Token equality is exact: the two sides compute
// weights with expf (CUDA's and glibc's may differ in the last bit) and sum them in a different
// order (fixed point here, double there); that can move a draw only when u lands within ~1e-7 of a
// boundary between two tokens, which these inputs do not hit. Failing here means a real difference.
#include <catch2/catch.hpp>

#include <gemmaforge/backend/cuda/sampling.cuh>
#include <gemmaforge/runtime/sampler.hpp>

#include "cuda/cuda_test_util.cuh"

#include <random>
#include <vector>

namespace gf = gemmaforge;
namespace gc = gemmaforge::cuda;
using namespace gf_cuda_test;

TEST_CASE("cuda sampling draws the CPU sampler's tokens", "[cuda][sampling]") {
  const int vocab = 262144;
  std::vector<float> logits = random_floats(std::size_t(vocab), 17, 3.0f);
  logits[1234] = logits[99] = 25.0f;  // a tie at the top: greedy must take the lower id
  std::vector<std::int32_t> history;
  std::mt19937 rng(4);
  for (int i = 0; i < 90; ++i) history.push_back(std::int32_t(rng() % 300));  // repeats
  history.push_back(99);

  struct named {
    const char* name;
    gf::sampling_params p;
  };
  std::vector<named> cases;
  gf::sampling_params p;
  cases.push_back({"greedy", p});
  p.temperature = 0.8f;
  cases.push_back({"temperature", p});
  p.top_k = 40;
  cases.push_back({"top-k 40", p});
  p.top_k = 0;
  p.top_p = 0.9f;
  cases.push_back({"top-p 0.9", p});
  p.top_p = 1.0f;
  p.min_p = 0.05f;
  cases.push_back({"min-p 0.05", p});
  p.top_k = 1000;
  p.top_p = 0.5f;
  p.min_p = 0.001f;
  p.temperature = 1.5f;
  cases.push_back({"top-k + top-p + min-p", p});
  p.repetition_penalty = 1.3f;
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 0.3f;
  p.penalty_last_n = 64;
  cases.push_back({"all filters + penalties", p});
  gf::sampling_params greedy_pen;
  greedy_pen.repetition_penalty = 2.0f;
  greedy_pen.penalty_last_n = 200;
  cases.push_back({"greedy + repetition penalty", greedy_pen});

  dbuf<float> dlogits(static_cast<std::size_t>(vocab)), dweights(static_cast<std::size_t>(vocab));
  dbuf<std::int32_t> dhist(history), dout(1);
  dbuf<gc::device_sampling_params> dparams(1);
  std::vector<float> probs(static_cast<std::size_t>(vocab));
  std::vector<std::int32_t> ids(static_cast<std::size_t>(vocab));
  for (const named& c : cases) {
    INFO(c.name);
    for (std::uint64_t draw = 0; draw < 24; ++draw) {
      INFO("draw " << draw);
      auto cpu_logits = logits;
      const std::int32_t want = gf::sample_token(cpu_logits.data(), vocab, history.data(), std::int32_t(history.size()), c.p,
                                                 draw, gf::sampler_scratch{probs.data(), ids.data()});
      dlogits.upload(logits);
      const gc::device_sampling_params dp = gc::to_device(c.p, draw, 0, std::int32_t(history.size()));
      dparams.upload({dp});
      REQUIRE(gc::launch_sample(dlogits.get(), 1, vocab, dparams.get(), dhist.get(), dweights.get(), dout.get(), nullptr) ==
              gf::status::ok);
      CHECK(dout.download()[0] == want);
      CHECK(bit_mismatches(dlogits.download(), cpu_logits, std::size_t(vocab)) == 0);  // penalties
      if (c.p.temperature == 0.0f) break;  // greedy does not depend on the draw
    }
  }
}

TEST_CASE("cuda sampling: rows are independent", "[cuda][sampling]") {
  const int vocab = 4096, rows = 3;
  std::vector<float> logits = random_floats(std::size_t(rows) * vocab, 2, 2.0f);
  std::vector<gc::device_sampling_params> params(rows);
  gf::sampling_params p;
  p.temperature = 1.0f;
  p.top_p = 0.8f;
  for (int r = 0; r < rows; ++r) params[std::size_t(r)] = gc::to_device(p, std::uint64_t(r), 0, 0);
  dbuf<float> dl(logits), dw(std::size_t(rows) * vocab);
  dbuf<gc::device_sampling_params> dp(params);
  dbuf<std::int32_t> dout(rows), dhist(1);
  REQUIRE(gc::launch_sample(dl.get(), rows, vocab, dp.get(), dhist.get(), dw.get(), dout.get(), nullptr) == gf::status::ok);
  const auto together = dout.download();
  for (int r = 0; r < rows; ++r) {
    dbuf<float> one(std::vector<float>(logits.begin() + std::ptrdiff_t(r) * vocab, logits.begin() + std::ptrdiff_t(r + 1) * vocab));
    dbuf<gc::device_sampling_params> op(std::vector<gc::device_sampling_params>{params[std::size_t(r)]});
    REQUIRE(gc::launch_sample(one.get(), 1, vocab, op.get(), dhist.get(), dw.get(), dout.get(), nullptr) == gf::status::ok);
    CHECK(dout.download()[0] == together[std::size_t(r)]);
  }
}
