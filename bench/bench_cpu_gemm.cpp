// Prompt-processing (T > 1) matmul: the GEMM walk order against the decode walk order it replaced,
// in the same process, and the machine's peak measured by tight kernel loops in the same run:
//   BM_peak_vnni/<threads>   vpdpbusd zmm on 12 independent accumulators: int8 MAC/s (items)
//   BM_peak_fma/<threads>    vfmadd231ps zmm on 12 independent accumulators: f32 FLOP/s (items)
//   BM_gemm/<fmt>/<rows>/<cols>/<T>/<threads>/<precision 0 exact 1 int8 2 int16>
//       items/s = 2*rows*cols*T FLOP/s of the new schedule. Counters from `rounds` alternating
//       runs (old, new, old, new, ...: a busy shared machine slows both alike):
//       speedup    = median over rounds of t_old / t_new (the number to report)
//       new_GFLOPs = 2*rows*cols*T / median t_new
//       frac_peak  = useful multiply-adds per second / the peak of the unit that runs them:
//                    int8: rows*cols*T / vnni peak; int16: 2*rows*cols*T / vnni peak (two digit
//                    passes); exact: rows*cols*T FMAs / (fma peak / 2)
// The old schedule is the same kernels with matmul_options::gemm_min_rows above T.
//   BM_block_sums/<fmt>/<rows>/<cols>/<T>/<threads>/<bits 16 or 8>
//       bits 16: int16_block_sums' packed GEMM against int16_activations' GEMM; bits 8:
//       int8_block_sums' against int8_activations'; alternating in rounds:
//       speedup = median t_old / t_block_sums; frac_peak = int8 MACs issued per second (two digit
//       passes for 16 bits: 2*rows*cols*T, one for 8: rows*cols*T) / the vnni peak.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <string>
#include <vector>

#include <gemmaforge/backend/cpu/matmul.hpp>
#include <gemmaforge/backend/cpu/thread_pool.hpp>

#include "unit/cpu_test_util.hpp"

namespace gf = gemmaforge;
namespace cpu = gemmaforge::cpu;
using tf = gf::tensor_format;

namespace {

cpu::thread_pool& pool_of(int n) {
  static cpu::thread_pool p1(1), p2(2);
  return n == 1 ? p1 : p2;
}

cpu::matmul_precision prec_of(std::int64_t a) {
  return a == 1 ? cpu::matmul_precision::int8_activations : a == 2 ? cpu::matmul_precision::int16_activations : cpu::matmul_precision::exact;
}
const char* prec_name(std::int64_t a) { return a == 1 ? "int8" : a == 2 ? "int16" : "exact"; }

#if GF_X86
// 12 independent chains (latency 4-5 cycles x 2 ports; 12 hides it). Returns ops per call: n * 12.
GF_TARGET_AVX512 int vnni_loop(std::int64_t n, char ca, char cb) {
  const __m512i a = _mm512_set1_epi8(ca), b = _mm512_set1_epi8(cb);
  __m512i c[12];
  for (int i = 0; i < 12; ++i) c[i] = _mm512_set1_epi32(i);
  for (std::int64_t k = 0; k < n; ++k)
    for (auto& v : c) v = _mm512_dpbusd_epi32(v, a, b);  // 64 int8 MACs each
  __m512i s = c[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_epi32(s, c[i]);
  return _mm512_reduce_add_epi32(s);
}

GF_TARGET_AVX512 float fma_loop(std::int64_t n, float fa, float fb) {
  const __m512 a = _mm512_set1_ps(fa), b = _mm512_set1_ps(fb);
  __m512 c[12];
  for (int i = 0; i < 12; ++i) c[i] = _mm512_set1_ps(float(i));
  for (std::int64_t k = 0; k < n; ++k)
    for (auto& v : c) v = _mm512_fmadd_ps(v, a, b);  // 16 FMAs = 32 FLOP each
  __m512 s = c[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, c[i]);
  return _mm512_reduce_add_ps(s);
}
#endif

constexpr std::int64_t peak_iters = 1 << 20;

// Peak rate of the pool's threads running `loop` (ops/s, ops = units per instruction x instructions),
// best of 5 passes.
template <class Loop>
double measure_peak(cpu::thread_pool& pool, double units_per_instr, Loop&& loop) {
  double best = 1e30;
  for (int pass = 0; pass < 5; ++pass) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.run([&](int, int) { loop(); });
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return double(peak_iters) * 12 * units_per_instr * pool.size() / best;
}

bool have_avx512() { return cpu::default_cpu_isa() == cpu::cpu_isa::avx512; }

double vnni_peak(int threads) {  // int8 MACs per second
#if GF_X86
  if (!have_avx512()) return 0;
  return measure_peak(pool_of(threads), 64, [] {
    benchmark::DoNotOptimize(vnni_loop(peak_iters, 3, 5));
  });
#else
  (void)threads;
  return 0;
#endif
}

double fma_peak(int threads) {  // f32 FLOP per second
#if GF_X86
  if (!have_avx512()) return 0;
  return measure_peak(pool_of(threads), 32, [] {
    benchmark::DoNotOptimize(fma_loop(peak_iters, 0.999f, 1e-3f));
  });
#else
  (void)threads;
  return 0;
#endif
}

double cached_peak(bool vnni, int threads) {
  static double p[2][3] = {};
  double& v = p[vnni][threads];
  if (v == 0) v = vnni ? vnni_peak(threads) : fma_peak(threads);
  return v;
}

void BM_peak_vnni(benchmark::State& st) {
  const int threads = int(st.range(0));
  for (auto _ : st) benchmark::DoNotOptimize(cached_peak(true, threads));
  st.counters["GMACs"] = vnni_peak(threads) / 1e9;
}

void BM_peak_fma(benchmark::State& st) {
  const int threads = int(st.range(0));
  for (auto _ : st) benchmark::DoNotOptimize(cached_peak(false, threads));
  st.counters["GFLOPs"] = fma_peak(threads) / 1e9;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// Wall seconds of one matmul (the alternating A/B loops of BM_gemm and BM_block_sums).
double seconds_of_matmul(cpu::thread_pool& pool, const gf::weight_view& w, const float* x, int T, float* y,
                         const cpu::matmul_options& o) {
  const auto t0 = std::chrono::steady_clock::now();
  cpu::matmul(pool, w, x, T, y, o);
  benchmark::ClobberMemory();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void BM_gemm(benchmark::State& st) {
  const auto f = tf(st.range(0));
  const std::int64_t rows = st.range(1), cols = st.range(2);
  const int T = int(st.range(3)), threads = int(st.range(4));
  const auto prec = prec_of(st.range(5));
  auto& pool = pool_of(threads);
  const auto w = gf_test::random_weight(f, rows, cols, 7u);
  const auto x = gf_test::random_floats(std::size_t(cols) * std::size_t(T), 3u);
  std::vector<float> y(std::size_t(rows) * std::size_t(T));
  cpu::matmul_options o_new, o_old;
  o_new.precision = o_old.precision = prec;
  o_old.gemm_min_rows = INT_MAX;
  auto timed = [&](const cpu::matmul_options& o) { return seconds_of_matmul(pool, w.view, x.data(), T, y.data(), o); };
  timed(o_new);
  timed(o_old);
  std::vector<double> ratio, t_new;
  const double flop = 2.0 * double(rows) * double(cols) * T;
  for (auto _ : st) {
    const double a = timed(o_old), b = timed(o_new);
    ratio.push_back(a / b);
    t_new.push_back(b);
    st.SetIterationTime(b);
  }
  const double tn = median(t_new);
  st.counters["speedup"] = median(ratio);
  st.counters["new_GFLOPs"] = flop / tn / 1e9;
  const bool integer = cpu::matmul_uses_quantized_activations(f, prec);
  const double peak = cached_peak(integer, threads);
  if (peak > 0) {
    const double macs = flop / 2 * (prec == cpu::matmul_precision::int16_activations && integer ? 2 : 1);
    st.counters["frac_peak"] = integer ? macs / tn / peak : macs / tn / (peak / 2);
  }
  st.SetItemsProcessed(std::int64_t(double(st.iterations()) * flop));
  st.SetLabel(std::string(gf::to_string(f)) + " " + prec_name(st.range(5)) + " " + std::string(cpu::to_string(cpu::default_cpu_isa())));
}

// Gemma 3 270M Q4_K_M shapes at T = 512 (pp512): q (q5_0 1024x640), v (q8_0 256x640), o (q4_k
// 640x1024), gate/up (q5_0 2048x640), down (q4_k / q6_k 640x2048), and a 16384-row slice of the
// Q8_0 tied LM head (262144 x 640: same per-row work, 1/16 of the time).
void gemm_args(benchmark::internal::Benchmark* b) {
  for (int prec : {2, 1}) {
    b->Args({int(tf::q5_0), 1024, 640, 512, 2, prec});
    b->Args({int(tf::q8_0), 256, 640, 512, 2, prec});
    b->Args({int(tf::q4_k), 640, 1024, 512, 2, prec});
    b->Args({int(tf::q5_0), 2048, 640, 512, 2, prec});
    b->Args({int(tf::q4_k), 640, 2048, 512, 2, prec});
    b->Args({int(tf::q6_k), 640, 2048, 512, 2, prec});
    b->Args({int(tf::q8_0), 16384, 640, 512, 2, prec});
  }
  b->Args({int(tf::q5_0), 2048, 640, 512, 1, 2});
  b->Args({int(tf::q8_0), 16384, 640, 512, 1, 2});
  b->Args({int(tf::q5_0), 2048, 640, 64, 2, 2});   // a short prompt
  b->Args({int(tf::q5_0), 2048, 640, 512, 2, 0});  // exact path
  b->Args({int(tf::bf16), 2048, 640, 512, 2, 0});
}

void BM_block_sums(benchmark::State& st) {
  const auto f = tf(st.range(0));
  const std::int64_t rows = st.range(1), cols = st.range(2);
  const int T = int(st.range(3)), threads = int(st.range(4));
  const bool wide = st.range(5) == 16;
  auto& pool = pool_of(threads);
  const auto w = gf_test::random_weight(f, rows, cols, 7u);
  const auto x = gf_test::random_floats(std::size_t(cols) * std::size_t(T), 3u);
  std::vector<float> y(std::size_t(rows) * std::size_t(T));
  cpu::matmul_options o_new, o_old;
  o_old.precision = wide ? cpu::matmul_precision::int16_activations : cpu::matmul_precision::int8_activations;
  o_new.precision = wide ? cpu::matmul_precision::int16_block_sums : cpu::matmul_precision::int8_block_sums;
  auto timed = [&](const cpu::matmul_options& o) { return seconds_of_matmul(pool, w.view, x.data(), T, y.data(), o); };
  timed(o_new);
  timed(o_old);
  std::vector<double> ratio, t_new, t_old;
  const double flop = 2.0 * double(rows) * double(cols) * T;
  for (auto _ : st) {
    const double a = timed(o_old), b = timed(o_new);
    ratio.push_back(a / b);
    t_new.push_back(b);
    t_old.push_back(a);
    st.SetIterationTime(b);
  }
  const double tn = median(t_new);
  st.counters["speedup"] = median(ratio);
  st.counters["new_GFLOPs"] = flop / tn / 1e9;
  st.counters["old_GFLOPs"] = flop / median(t_old) / 1e9;
  const double peak = cached_peak(true, threads);
  const double issued = wide ? flop : flop / 2;  // int8 MACs: two digit passes, or one
  if (peak > 0) st.counters["frac_peak"] = issued / tn / peak;
  st.SetItemsProcessed(std::int64_t(double(st.iterations()) * flop));
  st.SetLabel(std::string(gf::to_string(f)) + (wide ? " int16 block sums vs int16 " : " int8 block sums vs int8 ") +
              std::string(cpu::to_string(cpu::default_cpu_isa())));
}

void block_sums_args(benchmark::internal::Benchmark* b) {
  for (int bits : {16, 8}) {
    b->Args({int(tf::q5_0), 1024, 640, 512, 2, bits});
    b->Args({int(tf::q8_0), 256, 640, 512, 2, bits});
    b->Args({int(tf::q4_k), 640, 1024, 512, 2, bits});
    b->Args({int(tf::q5_0), 2048, 640, 512, 2, bits});
    b->Args({int(tf::q4_k), 640, 2048, 512, 2, bits});
    b->Args({int(tf::q6_k), 640, 2048, 512, 2, bits});
    b->Args({int(tf::q8_0), 16384, 640, 512, 2, bits});
  }
}

}  // namespace

BENCHMARK(BM_block_sums)->Apply(block_sums_args)->UseManualTime()->Iterations(7)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_peak_vnni)->Arg(1)->Arg(2)->Iterations(1);
BENCHMARK(BM_peak_fma)->Arg(1)->Arg(2)->Iterations(1);
BENCHMARK(BM_gemm)->Apply(gemm_args)->UseManualTime()->Iterations(7)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
