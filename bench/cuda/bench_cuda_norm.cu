// RMSNorm family: the separate residual add + norm the forward pass issues today, against the fused
// add + norm kernel (one read of x and y instead of two of x), on hidden sizes of Gemma 3 270M
// (640) and Gemma 1 7B (3072):
//   BM_norm/<fused>/<rows>/<cols>
// Counters: GBps of the bytes each variant must move (unfused: add 3 passes + norm 2 passes over
// [rows][cols] f32 plus gains; fused: 4 passes). Decode rows (1 and 8: up to 64 rows) run one block
// per row (the row staged in shared memory, review finding C7), prefill rows a half-warp per row;
// 2560 is Gemma 3 4B's hidden size, the case C7 estimated at 10-20 µs with a half-warp per row.
#include "bench_cuda_util.cuh"

#include <gemmaforge/backend/cuda/elementwise.cuh>
#include <gemmaforge/backend/cuda/norm.cuh>

namespace gc = gemmaforge::cuda;
using namespace gf_bench;

namespace {

void BM_norm(benchmark::State& st) {
  const bool fused = st.range(0) != 0;
  const int rows = int(st.range(1)), cols = int(st.range(2));
  const std::size_t n = std::size_t(rows) * cols;
  device_buffer x(n * 4), y(n * 4), out(n * 4), g(std::size_t(cols) * 4);
  fill_random_f32(x.as<float>(), n, 1, 1.0f);
  fill_random_f32(y.as<float>(), n, 2, 1.0f);
  fill_random_f32(g.as<float>(), std::size_t(cols), 3, 1.0f);
  timed_loop(st, nullptr, [&] {
    if (fused) {
      gc::launch_add_rms_norm(x.as<float>(), y.as<float>(), g.as<float>(), rows, cols, 1e-6f, out.as<float>(), nullptr);
    } else {
      gc::launch_add(x.as<float>(), y.as<float>(), std::int64_t(n), nullptr);
      gc::launch_rms_norm(x.as<float>(), g.as<float>(), rows, cols, 1e-6f, out.as<float>(), nullptr);
    }
  });
  report_bandwidth(st, double(n) * 4.0 * (fused ? 4.0 : 5.0));
  st.SetLabel(fused ? "fused add+norm" : "add, then norm");
}

}  // namespace

BENCHMARK(BM_norm)->ArgsProduct({{0, 1}, {1, 8, 512}, {640, 2560, 3072}})->UseManualTime();

GF_CUDA_BENCHMARK_MAIN()
