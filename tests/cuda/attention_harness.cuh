#pragma once
// Harness of the attention tests: attention and KV append through the executor, over the
// attention shapes of the registered descriptors (<4,1,256> <8,1,256> <16,16,256> <8,4,256>
// <16,8,256> <32,16,128> <4,1,16> <4,2,16>), on a two-layer model whose layer 0 is a sliding-window layer (ring) and layer 1 a global one
// (block table). A schedule of steps mixes decode rows with prefill chunks of different lengths,
// starting mid-block and crossing split boundaries (split size 32), so the decode kernels (single
// pass and split-K) and the prefill kernel all run. Checks per step and layer:
//   * bit-identical to the canonical-order host reference (reference.hpp);
//   * within tolerance of the naive executor's plain formula (max |diff| <= 1e-5 + 2e-4 |ref|
//     for f32/bf16/f16 KV; the naive one accumulates p v with a division by the sum first);
//   * the KV pool bytes after kv_append equal the naive executor's pool, element for element.
#include <catch2/catch.hpp>

#include <gemmaforge/backend/cuda/executor.cuh>
#include <gemmaforge/model/descriptor.hpp>

#include "cuda/cuda_test_util.cuh"
#include "cuda/reference.hpp"
#include "support/naive_executor.hpp"
#include "support/random_model.hpp"

#include <cmath>
#include <random>
#include <vector>

namespace gf_cuda_test {

namespace gc = gemmaforge::cuda;

// A named namespace, not an anonymous one: nvcc warns about the unused `name` of internal-linkage types.
template <int H, int KV, int D, int W = 24>
struct attn_model
    : gf::model_descriptor<gf::family::gemma2, gf::model_dims<64, 64, 64, 512>, gf::attention_shape<H, KV, D>,
                           gf::interleaved_layers<2, W, 2>, gf::rope_params<10000>, D> {
  static constexpr std::string_view name = "attention-test";
};


// One step of the schedule: for each sequence, how many tokens (1 = decode).
using schedule = std::vector<std::vector<int>>;

template <class Model, class Kv>
inline void run_schedule(gc::attention_schedule sched, float softcap, const schedule& steps, std::uint32_t seed) {
  constexpr int H = Model::heads, KVH = Model::kv_heads, D = Model::head_dim;
  const int n_seqs = int(steps.front().size());
  gf::testing::random_model<Model> rm(seed);

  // The planned layout of this harness: steps of up to 96 rows (95-token chunks + a decode row), n_seqs
  // sequences of 160 tokens, 10 blocks each.
  gc::cuda_executor_config xc;
  xc.attention = sched;
  xc.attn_split_tokens = 32;
  xc.decode_graphs = false;  // the test calls the ops directly, not through run_step
  gf::layout_inputs in;
  in.backend = gf::backend_kind::cuda;
  in.config = gf::serving_config{.max_seq_len = 160, .max_batch = std::uint32_t(n_seqs), .kv = gf::dtype_of<Kv>::value,
                                 .prefill_chunk = std::uint32_t(96 - n_seqs), .block_tokens = 16,
                                 .kv_blocks = std::uint32_t(n_seqs * 10)};
  in.device_weight_bytes = gc::cuda_executor::device_weight_bytes(rm.w);
  in.cuda.attn_split_tokens = xc.attn_split_tokens;
  const gf::arena_layout L = gf::make_arena_layout<Model>(in);
  gf::kv_pool_config pc;
  pc.block_tokens = 16;
  pc.max_batch = n_seqs;
  pc.max_seq_len = 160;
  pc.prefix_slots = 0;
  pc.global_blocks = n_seqs * 10;
  const std::uint64_t pool_bytes = gf::kv_pool<Model, Kv>::bytes_required(pc);
  xc.arena_bytes = L.arena_bytes;
  gc::cuda_executor exec(xc);
  exec.prepare_weights(rm.w);
  const gf::arena_memory mem = exec.template allocate_arena<Model, Kv>(L);
  gf::kv_pool<Model, Kv> dpool(pc, L.pointer("kv_global", mem.arena), L.pointer("kv_local", mem.arena), exec.kv_copy());
  std::vector<double> hmem(pool_bytes / 8 + 1);
  gf::kv_pool<Model, Kv> hpool(pc, reinterpret_cast<std::byte*>(hmem.data()));
  gf::testing::naive_executor naive;

  std::vector<int> slot(static_cast<std::size_t>(n_seqs), 0), pos(static_cast<std::size_t>(n_seqs), 0);
  std::vector<std::int32_t> ids(200, 5);
  for (int s = 0; s < n_seqs; ++s) {
    const std::int32_t a = dpool.admit(ids.data(), 1, pc.max_seq_len).slot;
    const std::int32_t b = hpool.admit(ids.data(), 1, pc.max_seq_len).slot;
    REQUIRE(a >= 0);
    REQUIRE(a == b);
    slot[std::size_t(s)] = a;
  }
  // 1/12 (query_pre_attn_scalar 144, Gemma 2 27B): not a power of two, so where the scale is applied
  // shows in the bits (review finding C2).
  const float scale = 1.0f / 12.0f;
  std::mt19937 rng(seed);
  int step_no = 0;
  for (const auto& step : steps) {
    INFO("step " << step_no++);
    std::vector<gf::step_sequence> seqs;
    std::vector<std::int32_t> tokens, positions;
    int rows = 0;
    for (int s = 0; s < n_seqs; ++s) {
      const int n = step[std::size_t(s)];
      if (n == 0) continue;
      gf::step_sequence q;
      q.slot = slot[std::size_t(s)];
      q.start = pos[std::size_t(s)];
      q.n_tokens = n;
      q.first_row = rows;
      seqs.push_back(q);
      for (int i = 0; i < n; ++i) {
        tokens.push_back(7);
        positions.push_back(q.start + i);
      }
      rows += n;
      dpool.ensure_blocks(q.slot, q.start + n);
      hpool.ensure_blocks(q.slot, q.start + n);
    }
    gf::step_batch batch;
    batch.tokens = tokens.data();
    batch.positions = positions.data();
    batch.n_tokens = rows;
    batch.seqs = seqs.data();
    batch.n_seqs = int(seqs.size());
    std::vector<std::int32_t> logit_rows(static_cast<std::size_t>(rows));
    batch.logit_rows = logit_rows.data();
    batch.n_logits_rows = gf::choose_logit_rows(batch.seqs, batch.n_seqs, logit_rows.data());
    const int T = rows;
    const auto q = random_floats(std::size_t(T) * H * D, rng());
    const auto k = random_floats(std::size_t(T) * KVH * D, rng());
    const auto v = random_floats(std::size_t(T) * KVH * D, rng());
    dbuf<float> dq(q), dk(k), dv(v), dout(std::size_t(T) * H * D);
    const gf::step_view dstep = exec.begin_step(dpool, batch);
    const gf::step_view hstep = gf::host_step_view(batch);
    for (int layer = 0; layer < 2; ++layer) {
      INFO("layer " << layer);
      const int window = layer == 0 ? Model::window : 0;
      exec.template attention<Model>(dpool, layer, dstep, dq.get(), dk.get(), dv.get(), window, scale, softcap, dout.get());
      std::vector<float> ref(std::size_t(T) * H * D), plain(std::size_t(T) * H * D);
      canonical_attention<Model, Kv>(hpool, layer, batch, q.data(), k.data(), v.data(), window, scale, softcap, 32, ref.data());
      naive.attention<Model>(hpool, layer, hstep, q.data(), k.data(), v.data(), window, scale, softcap, plain.data());
      exec.template kv_append<Model>(dpool, layer, dstep, dk.get(), dv.get());
      naive.kv_append<Model>(hpool, layer, hstep, k.data(), v.data());
      const auto got = dout.download();
      CHECK(bit_mismatches(got, ref, ref.size()) == 0);
      float worst = 0;
      for (std::size_t i = 0; i < ref.size(); ++i)
        worst = std::max(worst, std::fabs(got[i] - plain[i]) / (1e-5f / 2e-4f + std::fabs(plain[i])));
      CHECK(worst <= 2e-4f);
    }
    for (int s = 0; s < n_seqs; ++s) {
      pos[std::size_t(s)] += step[std::size_t(s)];
      dpool.set_cached_tokens(slot[std::size_t(s)], pos[std::size_t(s)]);
      hpool.set_cached_tokens(slot[std::size_t(s)], pos[std::size_t(s)]);
    }
  }
  // The device pool holds what the naive executor's pool holds, for every written vector.
  std::vector<double> dmem(hmem.size());
  exec.synchronize();
  // The host pool is one contiguous block (global planes, then local): copy the two device regions so.
  const std::uint64_t global_bytes = gf::kv_pool<Model, Kv>::global_bytes(pc);
  GF_REQUIRE_CUDA(cudaMemcpy(dmem.data(), L.pointer("kv_global", mem.arena), global_bytes, cudaMemcpyDeviceToHost));
  GF_REQUIRE_CUDA(cudaMemcpy(reinterpret_cast<std::byte*>(dmem.data()) + global_bytes, L.pointer("kv_local", mem.arena),
                             pool_bytes - global_bytes, cudaMemcpyDeviceToHost));
  std::size_t bad = 0;
  for (int s = 0; s < n_seqs; ++s)
    for (int layer = 0; layer < 2; ++layer) {
      const gf::kv_cache_view hv = hpool.view(slot[std::size_t(s)], layer).as_const();
      const std::ptrdiff_t plane_shift = reinterpret_cast<const std::byte*>(hv.k) - reinterpret_cast<const std::byte*>(hmem.data());
      const std::ptrdiff_t vshift = reinterpret_cast<const std::byte*>(hv.v) - reinterpret_cast<const std::byte*>(hmem.data());
      const int lo = layer == 0 ? std::max(0, pos[std::size_t(s)] - Model::window) : 0;  // older ring slots are reused
      for (int p = lo; p < pos[std::size_t(s)]; ++p)
        for (int h = 0; h < KVH; ++h) {
          const std::size_t off = std::size_t(hv.offset(p, h)) * sizeof(Kv);
          bad += std::memcmp(reinterpret_cast<const std::byte*>(hmem.data()) + plane_shift + off,
                             reinterpret_cast<const std::byte*>(dmem.data()) + plane_shift + off, D * sizeof(Kv)) != 0;
          bad += std::memcmp(reinterpret_cast<const std::byte*>(hmem.data()) + vshift + off,
                             reinterpret_cast<const std::byte*>(dmem.data()) + vshift + off, D * sizeof(Kv)) != 0;
          if (hv.k_scale) {
            const std::size_t so = std::size_t(hv.scale_offset(p, h)) * 4;
            const auto* hk = reinterpret_cast<const std::byte*>(hv.k_scale);
            const std::ptrdiff_t ks = hk - reinterpret_cast<const std::byte*>(hmem.data());
            bad += std::memcmp(reinterpret_cast<const std::byte*>(hmem.data()) + ks + so,
                               reinterpret_cast<const std::byte*>(dmem.data()) + ks + so, 4) != 0;
          }
        }
    }
  CHECK(bad == 0);
}

// Three sequences: a long prompt in chunks then decode, a prompt in one chunk, decode-only growth;
// 1-token prefill remainders and chunks starting mid-block and mid-split.
inline const schedule mixed = {
    {13, 40, 1}, {13, 1, 1}, {11, 1, 1}, {1, 1, 1}, {1, 30, 1}, {1, 1, 1}, {1, 1, 0}, {17, 1, 1}, {1, 1, 1}, {1, 1, 1},
};

}  // namespace gf_cuda_test
