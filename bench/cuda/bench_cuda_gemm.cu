// Prefill matmul: the canonical-order SIMT GEMM (batch invariant, the executor's default) against
// cuBLASLt (tensor cores), on Gemma 1 7B's MLP shapes:
//   BM_gemm/<impl>/<fmt>/<rows>/<cols>/<T>      impl 0 = canonical, 1 = cuBLASLt
// Counters: TFLOPS (2 T rows cols per call) and frac_bf16_peak (of the descriptor's dense bf16
// tensor peak, the ceiling cuBLASLt can approach; the canonical kernel runs on the f32 FMA units,
// so its ceiling is lower by design: 82.6 TFLOPS f32 on a 4090).
#include "bench_cuda_util.cuh"

#include <gemmaforge/backend/cuda/gemm.cuh>

namespace gf = gemmaforge;
namespace gc = gemmaforge::cuda;
using namespace gf_bench;

namespace {

void BM_gemm(benchmark::State& st) {
  const bool blas = st.range(0) != 0;
  const gf::tensor_format f = st.range(1) == 0 ? gf::tensor_format::bf16 : gf::tensor_format::q4_k;
  const std::int64_t rows = st.range(2), cols = st.range(3);
  const int T = int(st.range(4));
  const std::size_t wbytes = gf::row_bytes(f, std::uint64_t(cols)) * std::size_t(rows);
  device_buffer w(wbytes), x(std::size_t(T) * cols * 4), y(std::size_t(T) * rows * 4);
  if (f == gf::tensor_format::bf16) fill_random_bf16(w.p, std::size_t(rows) * cols, 3, 0.05f);
  else fill_random_bytes(w.p, wbytes, 3);
  fill_random_f32(x.as<float>(), std::size_t(T) * cols, 4, 1.0f);
  const gf::weight_view view{f, w.as<std::byte>(), rows, cols};
  gc::cublaslt_gemm g;
  device_buffer ws(gc::cublaslt_gemm::default_workspace_bytes), scratch(gc::cublaslt_gemm::scratch_bytes(T, int(cols)));
  if (blas && g.init(ws.p, ws.bytes) != gf::status::ok) {
    st.SkipWithError("cuBLASLt init failed");
    return;
  }
  timed_loop(st, nullptr, [&] {
    if (blas) g.run(view, x.as<float>(), T, y.as<float>(), scratch.as<std::byte>(), nullptr);
    else gc::launch_gemm_exact(view, x.as<float>(), T, y.as<float>(), nullptr);
  });
  const double flop = 2.0 * T * double(rows) * double(cols);
  st.counters["TFLOPS"] = benchmark::Counter(flop * 1e-12, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["frac_bf16_peak"] =
      benchmark::Counter(flop * 1e-12 / current_device().bf16_tflops, benchmark::Counter::kIsIterationInvariantRate);
  st.SetLabel(std::string(blas ? "cuBLASLt " : "canonical ") + std::string(gf::to_string(f)));
}

void args(benchmark::internal::Benchmark* b) {
  for (int impl : {0, 1})
    for (int f : {0, 1})
      for (auto [rows, cols] : {std::pair{24576, 3072}, std::pair{3072, 24576}})
        for (int T : {8, 16, 64, 512}) b->Args({impl, f, rows, cols, T});  // 8, 16: batched decode (C5)
  b->UseManualTime();
}

}  // namespace

BENCHMARK(BM_gemm)->Apply(args);

GF_CUDA_BENCHMARK_MAIN()
