// CPU matmul throughput per weight format, precision, ISA and thread count, on Gemma 3 270M's
// shapes, next to a streaming-read baseline measured in the same process:
//   BM_stream/<MiB>/<threads>           read-only pass over a buffer (the bandwidth roofline)
//   BM_matvec/<fmt>/<rows>/<cols>/<threads>/<precision 0 exact 1 int8 2 int16>   decode (1
//       activation row), bytes/s of weights; counters: stream_GBps = a streaming read of the same
//       buffers timed just before, frac_stream = achieved / stream_GBps, best_frac = the same
//       ratio from interleaved best-of-12 runs (robust on a shared machine: the number to report)
//   BM_prefill/<fmt>/<rows>/<cols>/<threads>/<int8>  64 activation rows, items/s = FLOP/s
// Small matrices are replicated into >= 96 MiB and visited round robin, so every call streams its
// weights from DRAM as it does in a real decode step (the model is 250 MB; L3 is 32 MiB).
// ISA: the default (best available, GEMMAFORGE_CPU_ISA lowers it); printed in the context.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include <gemmaforge/backend/cpu/matmul.hpp>
#include <gemmaforge/backend/cpu/thread_pool.hpp>

#include "unit/cpu_test_util.hpp"

namespace gf = gemmaforge;
namespace cpu = gemmaforge::cpu;

namespace {

struct aligned_buffer {
  std::byte* p = nullptr;
  std::size_t n = 0;
  explicit aligned_buffer(std::size_t bytes) : p(static_cast<std::byte*>(::operator new(bytes, std::align_val_t(64)))), n(bytes) {}
  ~aligned_buffer() { ::operator delete(p, std::align_val_t(64)); }
  aligned_buffer(const aligned_buffer&) = delete;
  aligned_buffer& operator=(const aligned_buffer&) = delete;
};

// Sum of 64-bit words over [p, p + n): a pure streaming read (n multiple of 256).
GF_TARGET_AVX2 std::uint64_t read_sum(const std::byte* p, std::size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (std::size_t i = 0; i + 128 <= n; i += 128) {
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  const __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  return std::uint64_t(_mm256_extract_epi64(s, 0) + _mm256_extract_epi64(s, 1) + _mm256_extract_epi64(s, 2) +
                       _mm256_extract_epi64(s, 3));
}

// Read `bytes` of buf starting at `off` with the pool's threads (contiguous slices, like matmul).
std::uint64_t pool_read(cpu::thread_pool& pool, const std::byte* base, std::size_t bytes) {
  std::uint64_t sums[8] = {};
  const std::int64_t chunks = std::int64_t(bytes / 256);
  pool.run([&](int i, int n) {
    const std::int64_t b = chunks * i / n, e = chunks * (i + 1) / n;
    sums[i] = read_sum(base + b * 256, std::size_t(e - b) * 256);
  });
  std::uint64_t s = 0;
  for (auto v : sums) s += v;
  return s;
}

cpu::thread_pool& pool_of(int n) {
  static cpu::thread_pool p1(1), p2(2);
  return n == 1 ? p1 : p2;
}

constexpr std::size_t min_footprint = 96u << 20;

// Benchmark argument -> precision: 0 exact, 1 int8 activations, 2 int16 (15-bit) activations.
cpu::matmul_precision prec_of(std::int64_t a) {
  return a == 1 ? cpu::matmul_precision::int8_activations : a == 2 ? cpu::matmul_precision::int16_activations : cpu::matmul_precision::exact;
}
const char* prec_name(std::int64_t a) { return a == 1 ? "int8" : a == 2 ? "int16" : "exact"; }

// Replicated weights of one shape.
struct weight_set {
  std::unique_ptr<aligned_buffer> buf;
  std::size_t stride = 0;  // bytes per copy, 256-aligned
  int copies = 0;
  gf::weight_view view(int i) const { return gf::weight_view{v0.format, buf->p + std::size_t(i) * stride, v0.rows, v0.cols}; }
  gf::weight_view v0;
};

weight_set make_weights(gf::tensor_format f, std::int64_t rows, std::int64_t cols) {
  const auto w = gf_test::random_weight(f, rows, cols, 7u);
  weight_set s;
  s.v0 = w.view;
  s.stride = (w.bytes.size() + 255) & ~std::size_t(255);
  s.copies = int(std::max<std::size_t>(1, (min_footprint + s.stride - 1) / s.stride));
  s.buf = std::make_unique<aligned_buffer>(s.stride * std::size_t(s.copies));
  for (int i = 0; i < s.copies; ++i) std::memcpy(s.buf->p + std::size_t(i) * s.stride, w.bytes.data(), w.bytes.size());
  return s;
}

double measure_stream_gbps(cpu::thread_pool& pool, const weight_set& ws) {
  const std::size_t bytes = ws.stride * std::size_t(ws.copies);
  std::uint64_t sink = 0;
  pool_read(pool, ws.buf->p, bytes);  // warm the TLB / page tables
  const auto t0 = std::chrono::steady_clock::now();
  int reps = 0;
  do {
    sink += pool_read(pool, ws.buf->p, bytes);
    ++reps;
  } while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(300));
  benchmark::DoNotOptimize(sink);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return double(bytes) * reps / s / 1e9;
}

// Fraction of the streaming bandwidth, robust to a busy machine: `rounds` alternations of one
// streaming pass and one kernel pass over the same bytes; the ratio of the fastest of each.
// (Other processes steal cores and bandwidth in bursts; minima of interleaved runs compare the
// two under the same conditions.)
template <class Kernel>
double best_fraction(cpu::thread_pool& pool, const std::byte* base, std::size_t bytes, Kernel&& kernel, int rounds = 12) {
  double best_stream = 1e30, best_kernel = 1e30;
  std::uint64_t sink = 0;
  for (int i = 0; i < rounds; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    sink += pool_read(pool, base, bytes & ~std::size_t(255));
    auto t1 = std::chrono::steady_clock::now();
    kernel();
    auto t2 = std::chrono::steady_clock::now();
    best_stream = std::min(best_stream, std::chrono::duration<double>(t1 - t0).count());
    best_kernel = std::min(best_kernel, std::chrono::duration<double>(t2 - t1).count());
  }
  benchmark::DoNotOptimize(sink);
  return best_stream / best_kernel;
}

void BM_stream(benchmark::State& st) {
  const std::size_t bytes = std::size_t(st.range(0)) << 20;
  auto& pool = pool_of(int(st.range(1)));
  aligned_buffer buf(bytes);
  std::memset(buf.p, 1, bytes);
  for (auto _ : st) benchmark::DoNotOptimize(pool_read(pool, buf.p, bytes));
  st.SetBytesProcessed(std::int64_t(st.iterations()) * std::int64_t(bytes));
}

void BM_matvec(benchmark::State& st) {
  const auto f = gf::tensor_format(st.range(0));
  const std::int64_t rows = st.range(1), cols = st.range(2);
  auto& pool = pool_of(int(st.range(3)));
  cpu::matmul_options o;
  o.precision = prec_of(st.range(4));
  const weight_set ws = make_weights(f, rows, cols);
  const auto x = gf_test::random_floats(std::size_t(cols), 3u);
  std::vector<float> y(static_cast<std::size_t>(rows));
  const double stream = measure_stream_gbps(pool, ws);
  const double best = best_fraction(pool, ws.buf->p, ws.stride * std::size_t(ws.copies), [&] {
    for (int c = 0; c < ws.copies; ++c) cpu::matmul(pool, ws.view(c), x.data(), 1, y.data(), o);
  });
  int i = 0;
  for (auto _ : st) {
    cpu::matmul(pool, ws.view(i), x.data(), 1, y.data(), o);
    benchmark::ClobberMemory();
    i = (i + 1) % ws.copies;
  }
  st.counters["best_frac"] = best;
  const double bytes = double(ws.v0.bytes());
  st.SetBytesProcessed(std::int64_t(double(st.iterations()) * bytes));
  st.counters["stream_GBps"] = stream;
  st.counters["frac_stream"] = benchmark::Counter(bytes / stream / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  st.SetLabel(std::string(gf::to_string(f)) + " " + prec_name(st.range(4)) + " " + std::string(cpu::to_string(cpu::default_cpu_isa())));
}

void BM_prefill(benchmark::State& st) {
  const auto f = gf::tensor_format(st.range(0));
  const std::int64_t rows = st.range(1), cols = st.range(2);
  const int T = 64;
  auto& pool = pool_of(int(st.range(3)));
  cpu::matmul_options o;
  o.precision = prec_of(st.range(4));
  const auto w = gf_test::random_weight(f, rows, cols, 7u);
  const auto x = gf_test::random_floats(std::size_t(cols) * T, 3u);
  std::vector<float> y(std::size_t(rows) * T);
  for (auto _ : st) {
    cpu::matmul(pool, w.view, x.data(), T, y.data(), o);
    benchmark::ClobberMemory();
  }
  st.SetItemsProcessed(std::int64_t(st.iterations()) * 2 * rows * cols * T);  // FLOP
  st.SetLabel(std::string(gf::to_string(f)) + " " + prec_name(st.range(4)) + " " + std::string(cpu::to_string(cpu::default_cpu_isa())) + " items=FLOP");
}

using tf = gf::tensor_format;

// All matmuls of one Gemma 3 270M Q4_K_M decode step with the file's formats per layer (18 x
// q/k/v/o/gate/up/down + the Q8_0 tied LM head; 250 MB, random contents), run back to back as the
// forward pass will: activations quantized once per distinct input. bytes/s = weight bytes per
// step; frac_stream against a streaming read of the same weights timed just before. Args:
// threads, layer precision, LM head precision (0 exact, 1 int8, 2 int16 activations).
struct model_weights_270m {
  struct mat { tf f; std::int64_t rows, cols; std::size_t off; };
  std::vector<mat> mats;  // per layer 7, then the LM head
  std::unique_ptr<aligned_buffer> buf;
  std::size_t bytes = 0;
  model_weights_270m() {
    for (int l = 0; l < 18; ++l) {
      const bool odd = l % 2;  // the file alternates Q8_0/Q5_0 for v and Q6_K/Q4_K for down
      for (mat m : {mat{tf::q5_0, 1024, 640, 0}, mat{tf::q5_0, 256, 640, 0}, mat{odd ? tf::q5_0 : tf::q8_0, 256, 640, 0},
                    mat{tf::q4_k, 640, 1024, 0}, mat{tf::q5_0, 2048, 640, 0}, mat{tf::q5_0, 2048, 640, 0},
                    mat{odd ? tf::q4_k : tf::q6_k, 640, 2048, 0}}) {
        m.off = bytes;
        bytes += (gf::row_bytes(m.f, std::uint64_t(m.cols)) * std::uint64_t(m.rows) + 255) & ~std::size_t(255);
        mats.push_back(m);
      }
    }
    mats.push_back({tf::q8_0, 262144, 640, bytes});
    bytes += gf::row_bytes(tf::q8_0, 640) * 262144;
    buf = std::make_unique<aligned_buffer>(bytes);
    for (const mat& m : mats) {
      const auto w = gf_test::random_weight(m.f, std::min<std::int64_t>(m.rows, 4096), m.cols, 11u);
      const std::size_t rb = gf::row_bytes(m.f, std::uint64_t(m.cols));
      for (std::int64_t r = 0; r < m.rows; r += 4096)
        std::memcpy(buf->p + m.off + rb * std::size_t(r), w.bytes.data(), rb * std::size_t(std::min<std::int64_t>(4096, m.rows - r)));
    }
  }
  gf::weight_view view(const mat& m) const { return {m.f, buf->p + m.off, m.rows, m.cols}; }
};

void BM_decode_step(benchmark::State& st) {
  static const model_weights_270m model;
  auto& pool = pool_of(int(st.range(0)));
  const cpu::matmul_precision layer_p = prec_of(st.range(1)), head_p = prec_of(st.range(2));
  const auto x = gf_test::random_floats(2048, 5u);
  std::vector<float> y(262144);
  const auto qp = layer_p == cpu::matmul_precision::exact ? cpu::matmul_precision::int8_activations : layer_p;
  aligned_buffer q640(cpu::matmul_scratch_bytes(640, 1, qp)), q1024(cpu::matmul_scratch_bytes(1024, 1, qp)),
      q2048(cpu::matmul_scratch_bytes(2048, 1, qp));
  const double stream = [&] {
    std::uint64_t sink = pool_read(pool, model.buf->p, model.bytes & ~std::size_t(255));
    const auto t0 = std::chrono::steady_clock::now();
    int reps = 0;
    do { sink += pool_read(pool, model.buf->p, model.bytes & ~std::size_t(255)); ++reps; }
    while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(300));
    benchmark::DoNotOptimize(sink);
    return double(model.bytes) * reps / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 1e9;
  }();
  auto step = [&] {
    const bool shared = layer_p != cpu::matmul_precision::exact;
    if (shared) {
      cpu::quantize_activations(pool, x.data(), 1, 640, q640.p, layer_p);
      cpu::quantize_activations(pool, x.data(), 1, 1024, q1024.p, layer_p);
      cpu::quantize_activations(pool, x.data(), 1, 2048, q2048.p, layer_p);
    }
    for (std::size_t i = 0; i + 1 < model.mats.size(); ++i) {
      const auto& m = model.mats[i];
      cpu::matmul_options o;
      o.precision = layer_p;
      if (shared) o.act_q = m.cols == 640 ? q640.p : m.cols == 1024 ? q1024.p : q2048.p;
      cpu::matmul(pool, model.view(m), x.data(), 1, y.data(), o);
    }
    cpu::matmul_options o;
    o.precision = head_p;
    if (head_p == layer_p && shared) o.act_q = q640.p;
    cpu::matmul(pool, model.view(model.mats.back()), x.data(), 1, y.data(), o);
    benchmark::ClobberMemory();
  };
  st.counters["best_frac"] = best_fraction(pool, model.buf->p, model.bytes, step);
  for (auto _ : st) step();
  st.SetBytesProcessed(std::int64_t(double(st.iterations()) * double(model.bytes)));
  st.counters["stream_GBps"] = stream;
  st.counters["frac_stream"] = benchmark::Counter(double(model.bytes) / stream / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["tok_per_s"] = benchmark::Counter(1.0, benchmark::Counter::kIsIterationInvariantRate);
  st.SetLabel(std::string("270M Q4_K_M layers ") + prec_name(st.range(1)) + ", LM head " + prec_name(st.range(2)) + " " +
              std::string(cpu::to_string(cpu::default_cpu_isa())));
}

void matvec_args(benchmark::internal::Benchmark* b) {
  for (int threads : {1, 2}) {
    for (tf f : gf::all_tensor_formats) {
      const bool k = f == tf::q4_k || f == tf::q6_k;
      const bool q = gf::is_block_quantized(f);
      for (int int8 : {1, 2, 0}) {
        if (!q && int8) continue;
        b->Args({int(f), 640, 2048, threads, int8});       // ffn_down
        if (!k) b->Args({int(f), 2048, 640, threads, int8});  // ffn_gate / ffn_up
        if (f == tf::q8_0 || f == tf::bf16) b->Args({int(f), 262144, 640, threads, int8});  // LM head
      }
    }
  }
}

void prefill_args(benchmark::internal::Benchmark* b) {
  for (int threads : {1, 2})
    for (tf f : {tf::q8_0, tf::q5_0, tf::q4_k, tf::q6_k, tf::bf16, tf::f32})
      for (int int8 : {1, 2, 0}) {
        if (!gf::is_block_quantized(f) && int8) continue;
        b->Args({int(f), 640, 2048, threads, int8});
      }
}

}  // namespace

BENCHMARK(BM_stream)->Args({96, 1})->Args({96, 2})->Args({178, 1})->Args({178, 2})->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_matvec)->Apply(matvec_args)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_prefill)->Apply(prefill_args)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_decode_step)
    ->Args({1, 1, 1})->Args({2, 1, 1})->Args({2, 2, 2})->Args({2, 1, 2})->Args({2, 0, 0})->Args({2, 1, 0})
    ->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
