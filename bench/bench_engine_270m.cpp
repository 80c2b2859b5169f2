// End-to-end speed of the engine on the real Gemma 3 270M Q4_K_M file (CPU backend):
//   BM_stream/<threads>               baseline: a streaming read over the model's own weight bytes
//   BM_decode/<threads>/<precision>   decode tokens/s at batch 1 (after a short prompt)
//   BM_prefill/<threads>/<precision>  prompt tokens/s for a 256-token prompt
// Counters: tok_s; stream_GBps (the read baseline measured in this process just before);
// roofline_tok_s = stream_GBps / weight bytes per token (every matrix is read once per decoded
// token: the 262144-row tied LM head included); frac_roofline = tok_s / roofline_tok_s, the number
// docs/benchmarks.md reports. precision 0 = int16 activations (the default), 1 = int8, 2 = exact f32.
#include <benchmark/benchmark.h>

#include <gemmaforge/backend/cpu/executor.hpp>
#include <gemmaforge/io/default_model.hpp>
#include <gemmaforge/io/weight_binding.hpp>
#include <gemmaforge/model/gemma3.hpp>
#include <gemmaforge/runtime/engine.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <numeric>

namespace gf = gemmaforge;
using M = gf::models::gemma_3_270m;

namespace {

const gf::bound_model<M>& model() {
  static auto m = gf::load_model<M>(gf::default_model_path(), {.prefault = true, .progress = false});
  return m;
}

// Sum of every 64-bit word of the mapped weight tensors, split over the pool's threads.
double stream_gbps(gf::cpu::thread_pool& pool) {
  const auto& w = model().weights();
  std::vector<std::pair<const std::byte*, std::uint64_t>> spans{{w.embedding.data, w.embedding.bytes()}};
  for (const auto& l : w.layers)
    for (const gf::weight_view* v : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) spans.emplace_back(v->data, v->bytes());
  std::uint64_t total = 0;
  for (const auto& s : spans) total += s.second;
  std::uint64_t sink = 0;
  auto pass = [&] {
    for (auto& [p, n] : spans) {
      const auto* words = reinterpret_cast<const std::uint64_t*>(p);
      const std::int64_t count = std::int64_t(n / 8);
      std::uint64_t sums[64] = {};
      pool.run([&](int i, int n) {
        std::uint64_t acc = 0;
        for (std::int64_t k = count * i / n, e = count * (i + 1) / n; k < e; ++k) acc += words[k];
        sums[i % 64] += acc;
      });
      for (auto v : sums) sink += v;
    }
  };
  pass();
  const auto t0 = std::chrono::steady_clock::now();
  int reps = 0;
  do {
    pass();
    ++reps;
  } while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(500));
  benchmark::DoNotOptimize(sink);
  return double(total) * reps / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 1e9;
}

std::uint64_t bytes_per_token() { return model().summary().matrix_bytes; }

gf::cpu::matmul_precision precision_arg(std::int64_t a) {
  return a == 0 ? gf::cpu::matmul_precision::int16_activations
         : a == 1 ? gf::cpu::matmul_precision::int8_activations
                  : gf::cpu::matmul_precision::exact;
}

gf::basic_engine<M, gf::cpu::cpu_executor, gf::bf16> make_engine(int threads, gf::cpu::matmul_precision precision, int chunk) {
  gf::engine_config c;
  c.limits.max_seq_len = 1024;
  c.limits.max_batch = 1;
  c.limits.prefill_chunk = chunk;
  c.limits.prefix_slots = 0;
  gf::cpu::executor_options o;
  o.threads = threads;
  o.precision = precision;
  return gf::basic_engine<M, gf::cpu::cpu_executor, gf::bf16>(model().weights(), c, gf::cpu::cpu_executor(o));
}

gf::generation_request request(int prompt_len, int max_tokens) {
  gf::generation_request r;
  r.prompt.resize(std::size_t(prompt_len));
  for (int i = 0; i < prompt_len; ++i) r.prompt[std::size_t(i)] = i == 0 ? 2 : 1000 + (i * 7919) % 50000;
  r.stop.max_tokens = max_tokens;
  r.stop.ignore_eos = true;
  r.decode_text = false;
  return r;
}

void BM_stream(benchmark::State& st) {
  gf::cpu::thread_pool pool(int(st.range(0)));
  double gbps = 0;
  for (auto _ : st) gbps = stream_gbps(pool);
  st.counters["stream_GBps"] = gbps;
}

void BM_decode(benchmark::State& st) {
  const int threads = int(st.range(0));
  const auto precision = precision_arg(st.range(1));
  double stream = 0;
  {
    gf::cpu::thread_pool pool(threads);
    stream = stream_gbps(pool);
  }
  auto eng = make_engine(threads, precision, 64);
  constexpr int n_tokens = 64;
  double decode_s = 0;
  std::int64_t tokens = 0;
  for (auto _ : st) {
    auto h = eng.generate(request(8, n_tokens + 1));
    decode_s += h->timings().decode_seconds();
    tokens += n_tokens;
  }
  const double tok_s = double(tokens) / decode_s;
  const double roofline = stream * 1e9 / double(bytes_per_token());
  st.counters["tok_s"] = tok_s;
  st.counters["stream_GBps"] = stream;
  st.counters["roofline_tok_s"] = roofline;
  st.counters["frac_roofline"] = tok_s / roofline;
  st.counters["MiB_per_token"] = double(bytes_per_token()) / double(gf::MiB);
}

void BM_prefill(benchmark::State& st) {
  const int threads = int(st.range(0));
  auto eng = make_engine(threads, precision_arg(st.range(1)), 256);
  double prefill_s = 0;
  std::int64_t tokens = 0;
  for (auto _ : st) {
    auto h = eng.generate(request(256, 1));
    prefill_s += h->timings().prefill_seconds();
    tokens += 256;
  }
  st.counters["tok_s"] = double(tokens) / prefill_s;
}

}  // namespace

BENCHMARK(BM_stream)->Arg(1)->Arg(2)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_decode)->Args({1, 0})->Args({2, 0})->Args({2, 1})->Args({2, 2})->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_prefill)->Args({1, 0})->Args({2, 0})->Args({2, 1})->Args({2, 2})->Iterations(2)->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
