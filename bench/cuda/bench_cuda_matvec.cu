// Decode matvec bandwidth per weight format and policy, on Gemma shapes, next to a streaming-read
// baseline measured in the same process:
//   BM_stream/<MiB>                               read-only kernel: what the card streams
//   BM_matvec_exact/<policy>/<fmt>/<rows>/<cols>/<T>   f32-activation path
//   BM_matvec_int8/<policy>/<fmt>/<rows>/<cols>/<T>    quantized weights x int8 activations
//   BM_matvec_int16/<policy>/<fmt>/<rows>/<cols>/<T>   x 15-bit activations (the default; two dp4a per group)
// policy 0 = pair (8 lanes per thread, two threads per row), 1 = single (16 lanes, one thread).
// Counters: GBps (weight bytes read per second), peak_frac (of the device descriptor's peak).
// Every matrix is larger than the L2 (72 MiB on a 4090, 50 MiB on an H100) so each call streams
// from DRAM. Target once measured: >= 0.85 peak_frac for bf16 and q8_0 at T = 1.
#include "bench_cuda_util.cuh"

#include <algorithm>

#include <gemmaforge/backend/cuda/matvec.cuh>

namespace gf = gemmaforge;
namespace gc = gemmaforge::cuda;
using namespace gf_bench;

namespace {

constexpr gf::tensor_format formats[] = {gf::tensor_format::bf16, gf::tensor_format::f16, gf::tensor_format::f32,
                                         gf::tensor_format::q8_0, gf::tensor_format::q5_0, gf::tensor_format::q4_k,
                                         gf::tensor_format::q6_k};

void BM_stream(benchmark::State& st) {
  const std::size_t bytes = std::size_t(st.range(0)) << 20;
  device_buffer buf(bytes), out(4096 * 4);
  fill_random_bytes(buf.p, bytes, 1);
  timed_loop(st, nullptr, [&] { stream_read_kernel<><<<1024, 256>>>(buf.as<uint4>(), bytes / 16, out.as<unsigned>()); });
  report_bandwidth(st, double(bytes));
}
BENCHMARK(BM_stream)->Arg(256)->Arg(1024)->UseManualTime();

template <class Policy>
gf::status run_exact(const gf::weight_view& w, const float* x, int T, float* y) {
  return gc::launch_matvec_exact<Policy>(w, x, T, y, nullptr);
}
template <class Policy>
gf::status run_qact(const gf::weight_view& w, const gc::act_quant_view& a, int T, float* y) {
  return gc::launch_matvec_qact<Policy>(w, a, T, y, nullptr);
}

// digits: 0 exact (f32 activations), 1 int8 activations, 2 int16 (15-bit, two int8 digits).
void matvec_bench(benchmark::State& st, int digits) {
  const bool int8 = digits > 0;
  const int policy = int(st.range(0));
  const gf::tensor_format f = formats[st.range(1)];
  const std::int64_t rows = st.range(2), cols = st.range(3);
  const int T = int(st.range(4));
  if (int8 && !gf::is_block_quantized(f)) {
    st.SkipWithError("the int8/int16 paths are for quantized formats");
    return;
  }
  st.SetLabel(std::string(gf::to_string(f)) + (policy == 0 ? " pair" : " single"));
  const std::size_t wbytes = gf::row_bytes(f, std::uint64_t(cols)) * std::size_t(rows);
  device_buffer w(wbytes), x(std::size_t(T) * cols * 4), y(std::size_t(T) * rows * 4), act(gc::act_quant_bytes(T, int(cols), std::max(digits, 1)));
  fill_random_bytes(w.p, wbytes, 3);  // random bits: timing does not depend on the values
  fill_random_f32(x.as<float>(), std::size_t(T) * cols, 4, 1.0f);
  const gf::weight_view view{f, w.as<std::byte>(), rows, cols};
  const gc::act_quant_view a = gc::carve_act_quant(act.as<std::byte>(), T, int(cols), std::max(digits, 1));
  if (int8) gc::launch_quantize_activations(x.as<float>(), T, int(cols), a, nullptr);
  timed_loop(st, nullptr, [&] {
    if (int8) policy == 0 ? run_qact<gc::matvec_policy_pair>(view, a, T, y.as<float>())
                          : run_qact<gc::matvec_policy_single>(view, a, T, y.as<float>());
    else policy == 0 ? run_exact<gc::matvec_policy_pair>(view, x.as<float>(), T, y.as<float>())
                     : run_exact<gc::matvec_policy_single>(view, x.as<float>(), T, y.as<float>());
  });
  report_bandwidth(st, double(wbytes));
}

void BM_matvec_exact(benchmark::State& st) { matvec_bench(st, 0); }
void BM_matvec_int8(benchmark::State& st) { matvec_bench(st, 1); }
void BM_matvec_int16(benchmark::State& st) { matvec_bench(st, 2); }

// Shapes: Gemma 1 7B gate/up (24576 x 3072) and down (3072 x 24576); Gemma 3 270M's LM head
// (262144 x 640); and the small decode projections that review finding C4 expects to under-fill
// an H100 (rows / 32 blocks): Gemma 1 7B q/k/v (4096 x 3072) and o (3072 x 4096), Gemma 3 270M
// k/v (256 x 640).
void shapes(benchmark::internal::Benchmark* b, std::initializer_list<int> fmts) {
  for (int policy : {0, 1})
    for (int f : fmts)
      for (auto [rows, cols] : {std::pair{24576, 3072}, std::pair{3072, 24576}, std::pair{262144, 640},
                                std::pair{4096, 3072}, std::pair{3072, 4096}, std::pair{256, 640}})
        for (int T : {1, 4}) b->Args({policy, f, rows, cols, T});
  b->UseManualTime();
}

BENCHMARK(BM_matvec_exact)->Apply([](benchmark::internal::Benchmark* b) { shapes(b, {0, 1, 2, 3, 5}); });
BENCHMARK(BM_matvec_int8)->Apply([](benchmark::internal::Benchmark* b) { shapes(b, {3, 4, 5, 6}); });
BENCHMARK(BM_matvec_int16)->Apply([](benchmark::internal::Benchmark* b) { shapes(b, {3, 4, 5, 6}); });

}  // namespace

GF_CUDA_BENCHMARK_MAIN()
