// End-to-end decode: the forward pass (runtime/forward.hpp) on the CUDA executor with random bf16
// weights generated on the device, for Gemma 1 7B (the seed's model, 17.1 GB of bf16 weights; fits
// a 24 GB RTX 4090) and Gemma 3 270M, at a fixed context, with and without decode graphs:
//   BM_decode/<model>/<batch>/<context>/<graphs>
// One iteration is one decode step: forward + logits to pinned host memory (what the engine does
// before sampling on the host). Counters:
//   tok_per_s        batch / step time
//   roofline_frac    (weight bytes + KV bytes read) / peak bandwidth / step time
//   weights_roofline_tok_per_s   peak bandwidth / weight bytes (batch 1's upper bound)
// Targets once measured: Gemma 1 7B bf16 at batch 1 >= 0.85 roofline_frac (about 50 tok/s on a
// 4090, 165 on an H100 SXM); graphs >= 1.0x of eager.
#include "bench_cuda_util.cuh"

#include <memory>
#include <vector>

#include <gemmaforge/backend/cuda/executor.cuh>
#include <gemmaforge/model/gemma1.hpp>
#include <gemmaforge/model/gemma3.hpp>
#include <gemmaforge/runtime/forward.hpp>

namespace gf = gemmaforge;
namespace gc = gemmaforge::cuda;
using namespace gf_bench;

namespace {

template <class Model>
struct decode_rig {
  using pool_t = gf::kv_pool<Model, gf::bf16>;
  std::unique_ptr<gc::cuda_executor> exec;
  gf::model_weights<Model> host_view;  // device pointers, filled in place
  const gf::model_weights<Model>* w = nullptr;
  std::unique_ptr<pool_t> pool;
  gf::forward_buffers buf;
  std::vector<std::int32_t> tokens, positions, logit_rows;
  std::vector<gf::step_sequence> seqs;
  gf::step_batch batch;
  std::uint64_t weight_bytes = 0, kv_bytes_per_step = 0;

  decode_rig(int B, int ctx, bool graphs) {
    gc::cuda_executor_config xc;
    xc.decode_graphs = graphs;
    // Weights bf16, norms f32: the bytes the rig allocates below, each 256-byte aligned.
    auto a = [](std::uint64_t n) { return gf::round_up(n, gc::arena_alignment); };
    const std::uint64_t H = Model::hidden;
    std::uint64_t wb = a(std::uint64_t(Model::vocab) * H * 2) + a(H * 4);
    const std::uint64_t per_layer = a(std::uint64_t(Model::q_dim) * H * 2) + 2 * a(std::uint64_t(Model::kv_dim) * H * 2) +
                                    a(H * Model::q_dim * 2) + 3 * a(std::uint64_t(Model::ffn) * H * 2) + 6 * a(H * 4) +
                                    2 * a(std::uint64_t(Model::head_dim) * 4);
    wb += per_layer * Model::n_layers + 2 * a(std::uint64_t(Model::head_dim / 2) * 4);
    // The planned layout of a decode-only deployment of B sequences of ctx + 16 tokens.
    gf::layout_inputs in;
    in.backend = gf::backend_kind::cuda;
    in.config = gf::serving_config{.max_seq_len = std::uint32_t(ctx + 16), .max_batch = std::uint32_t(B), .prefill_chunk = 1,
                                   .block_tokens = 16};
    in.device_weight_bytes = wb;
    const gf::arena_layout L = gf::make_arena_layout<Model>(in);
    gf::kv_pool_config pc;
    pc.block_tokens = 16;
    pc.max_batch = B;
    pc.max_seq_len = ctx + 16;
    pc.global_blocks = std::int32_t(L.global_blocks);
    xc.arena_bytes = L.arena_bytes;
    exec = std::make_unique<gc::cuda_executor>(xc);

    gc::device_arena& ar = exec->arena();
    auto matrix = [&](int rows, int cols, std::uint32_t seed) {
      std::byte* p = ar.allocate(std::uint64_t(rows) * cols * 2, "weights");
      fill_random_bf16(p, std::size_t(rows) * cols, seed, 0.02f);
      weight_bytes += std::uint64_t(rows) * cols * 2;
      return gf::weight_view{gf::tensor_format::bf16, p, rows, cols};
    };
    auto gains = [&](int n, std::uint32_t seed) {
      float* p = reinterpret_cast<float*>(ar.allocate(std::uint64_t(n) * 4, "norm"));
      fill_random_f32(p, std::size_t(n), seed, 0.1f);
      return static_cast<const float*>(p);
    };
    std::uint32_t seed = 1;
    gf::for_each_tensor<Model>([&](const gf::tensor_spec& t) {
      if (!gf::is_bound(t)) return;
      if (gf::is_norm(t.role)) gf::gain_in(host_view, t) = gains(int(t.shape[0]), seed++);
      else gf::matrix_in(host_view, t) = matrix(int(t.shape[0]), int(t.shape[1]), seed++);
    });
    w = &exec->adopt_device_weights(host_view);

    const gf::arena_memory mem = exec->template allocate_arena<Model, gf::bf16>(L);
    auto at = [&](std::string_view name) { return L.pointer<float>(name, mem.arena, mem.host); };
    cudaMemset(L.pointer("kv_global", mem.arena), 0, L.bytes("kv_global"));  // a cache of zeros: finite attention inputs
    cudaMemset(L.pointer("kv_local", mem.arena), 0, L.bytes("kv_local"));
    pool = std::make_unique<pool_t>(pc, L.pointer("kv_global", mem.arena), L.pointer("kv_local", mem.arena), exec->kv_copy());
    buf.x = at("x");
    buf.xn = at("xn");
    buf.q = at("q");
    buf.attn = at("attn");
    buf.k = at("k");
    buf.v = at("v");
    buf.gate = at("gate");
    buf.up = at("up");
    buf.logits = at("logits");

    std::vector<std::int32_t> ids(std::size_t(ctx) + 1, 2);
    for (int b = 0; b < B; ++b) {
      const auto adm = pool->admit(ids.data(), ctx + 1, ctx + 1);
      pool->ensure_blocks(adm.slot, ctx + 1);
      pool->set_cached_tokens(adm.slot, ctx);
      gf::step_sequence s;
      s.slot = adm.slot;
      s.start = ctx;  // every step decodes position ctx again: a steady state at this context
      s.n_tokens = 1;
      s.first_row = b;
      seqs.push_back(s);
      tokens.push_back(100 + b);
      positions.push_back(ctx);
    }
    batch.tokens = tokens.data();
    batch.positions = positions.data();
    batch.n_tokens = B;
    batch.seqs = seqs.data();
    batch.n_seqs = B;
    logit_rows.resize(std::size_t(B));
    batch.logit_rows = logit_rows.data();
    batch.n_logits_rows = gf::choose_logit_rows(batch.seqs, batch.n_seqs, logit_rows.data());
    kv_bytes_per_step = std::uint64_t(B) * std::uint64_t(ctx) * 2 * Model::kv_dim * 2 *
                        std::uint64_t(Model::layers::global_layers()) +
                        std::uint64_t(B) * std::uint64_t(std::min(ctx, Model::window > 0 ? Model::window : ctx)) * 2 *
                            Model::kv_dim * 2 * std::uint64_t(Model::layers::local_layers());
    cudaDeviceSynchronize();
  }

  void step() {
    gf::forward<Model>(*exec, *w, *pool, batch, buf);
    exec->logits_to_host(buf.logits, std::size_t(batch.n_logits_rows) * Model::vocab);
  }
};

template <class Model>
// cppcheck-suppress unusedFunction ; registered through BENCHMARK(BM_decode<...>)
void BM_decode(benchmark::State& st) {
  const int B = int(st.range(0)), ctx = int(st.range(1));
  const bool graphs = st.range(2) != 0;
  std::unique_ptr<decode_rig<Model>> rig;
  try {
    rig = std::make_unique<decode_rig<Model>>(B, ctx, graphs);
  } catch (const std::exception& e) {
    st.SkipWithError(e.what());
    return;
  }
  rig->step();  // eager run
  rig->step();  // captured (graphs on)
  event_timer t;
  const cudaStream_t s = rig->exec->stream();
  for (auto _ : st) {
    t.start(s);
    rig->step();
    st.SetIterationTime(t.stop(s));
  }
  const double bytes = double(rig->weight_bytes + rig->kv_bytes_per_step);
  const double peak = current_device().bandwidth_gbps * 1e9;
  st.counters["tok_per_s"] = benchmark::Counter(double(B), benchmark::Counter::kIsIterationInvariantRate);
  st.counters["roofline_frac"] = benchmark::Counter(bytes / peak, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["weights_roofline_tok_per_s"] = peak / double(rig->weight_bytes);
  st.SetLabel(std::string(Model::name) + (graphs ? " graphs" : " eager"));
}

}  // namespace

BENCHMARK(BM_decode<gf::models::gemma_7b>)
    ->Name("BM_decode/gemma_7b_bf16")
    ->ArgsProduct({{1}, {512}, {0, 1}})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_decode<gf::models::gemma_3_270m>)
    ->Name("BM_decode/gemma_3_270m_bf16")
    ->ArgsProduct({{1, 8}, {512, 4096}, {0, 1}})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

GF_CUDA_BENCHMARK_MAIN()
