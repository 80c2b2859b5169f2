// Decode attention over a paged bf16 KV cache: single pass (one block per sequence and KV head)
// against split-K flash-decoding (one block per split of 256 positions, then a merge), for
// Gemma 1 7B's shape <16 heads, 16 KV heads, 256> and Gemma 3 270M's <4, 1, 256>:
//   BM_decode_attention/<shape>/<split_k>/<batch>/<context>
// Counters: GBps of K+V read, peak_frac of the device descriptor's peak. The K/V planes rotate
// over copies totalling >= 512 MiB so the reads come from DRAM, not L2.
// Target once measured: split-K >= 0.85 peak_frac at long contexts; single pass wins at large batch.
#include "bench_cuda_util.cuh"

#include <memory>
#include <vector>

#include <gemmaforge/backend/cuda/attention.cuh>

namespace gf = gemmaforge;
namespace gc = gemmaforge::cuda;
using namespace gf_bench;

namespace {

template <int H, int KVH, int D>
// cppcheck-suppress unusedFunction ; registered through BENCHMARK(decode_attention<...>)
void decode_attention(benchmark::State& st) {
  constexpr int G = H / KVH;
  const bool split = st.range(0) != 0;
  const int B = int(st.range(1)), ctx = int(st.range(2));
  constexpr int bt = 16, split_tokens = 256;
  const int blocks_per_seq = ctx / bt + 1;
  const std::size_t plane = std::size_t(B) * blocks_per_seq * KVH * bt * D * 2;  // bytes of K (or V)
  const int copies = int(std::max<std::size_t>(1, (512u << 20) / (2 * plane)));
  std::vector<std::unique_ptr<device_buffer>> kv;
  for (int c = 0; c < copies; ++c) {
    kv.push_back(std::make_unique<device_buffer>(2 * plane));
    fill_random_bf16(kv.back()->p, plane, 7 + unsigned(c), 1.0f);
  }
  std::vector<std::int32_t> lists(std::size_t(B) * blocks_per_seq);
  for (std::size_t i = 0; i < lists.size(); ++i) lists[i] = std::int32_t(i);
  std::vector<gc::device_seq> seqs(static_cast<std::size_t>(B));
  for (int b = 0; b < B; ++b) seqs[std::size_t(b)] = gc::device_seq{ctx, 1, b, b * blocks_per_seq, 0, 0};
  const int max_splits = (ctx + split_tokens) / split_tokens;
  device_buffer dl(lists.size() * 4), ds(seqs.size() * sizeof(gc::device_seq)), q(std::size_t(B) * H * D * 4),
      out(std::size_t(B) * H * D * 4), fresh(std::size_t(B) * KVH * D * 2 * 2),
      partials(std::size_t(B) * H * max_splits * (D + 2) * 4);
  cudaMemcpy(dl.p, lists.data(), lists.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(ds.p, seqs.data(), seqs.size() * sizeof(gc::device_seq), cudaMemcpyHostToDevice);
  fill_random_f32(q.as<float>(), std::size_t(B) * H * D, 3, 1.0f);
  fill_random_bf16(fresh.p, std::size_t(B) * KVH * D * 2, 4, 1.0f);

  gc::attention_args<gf::bf16> a;
  a.seqs = ds.as<gc::device_seq>();
  a.n_seqs = B;
  a.q = q.as<float>();
  a.out = out.as<float>();
  a.cache.lists = dl.as<std::int32_t>();
  a.cache.n_blocks = blocks_per_seq;
  a.cache.block_tokens = bt;
  a.cache.kv_heads = KVH;
  a.cache.head_dim = D;
  a.fresh.k = fresh.as<gf::bf16>();
  a.fresh.v = fresh.as<gf::bf16>() + std::size_t(B) * KVH * D;
  a.scale = 1.0f / 16.0f;
  a.split_tokens = split_tokens;
  a.max_splits = max_splits;
  a.partials = partials.as<float>();
  int it = 0;
  timed_loop(st, nullptr, [&] {
    device_buffer& c = *kv[std::size_t(it++ % copies)];
    a.cache.k = c.as<gf::bf16>();
    a.cache.v = c.as<gf::bf16>() + plane / 2;
    gc::launch_attention_decode<D, G, gf::bf16>(a, split ? gc::attention_schedule::split_k : gc::attention_schedule::single_pass,
                                                nullptr);
  });
  report_bandwidth(st, double(B) * ctx * KVH * D * 2.0 * 2.0);
  st.SetLabel(std::string(split ? "split-K" : "single pass"));
}

void args(benchmark::internal::Benchmark* b) {
  for (int split : {0, 1})
    for (int batch : {1, 8})
      for (int ctx : {512, 2048, 8192}) b->Args({split, batch, ctx});
  b->UseManualTime();
}

}  // namespace

BENCHMARK(decode_attention<16, 16, 256>)->Name("BM_decode_attention/gemma7b")->Apply(args);
BENCHMARK(decode_attention<4, 1, 256>)->Name("BM_decode_attention/gemma3_270m")->Apply(args);

GF_CUDA_BENCHMARK_MAIN()
