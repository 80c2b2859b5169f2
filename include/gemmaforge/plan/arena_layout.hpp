#pragma once
// make_arena_layout<Model>(inputs): every byte a deployment allocates, as named regions
// (plan/arena.hpp). The memory plan sums it (plan/memory_plan.hpp); basic_engine and the
// executors carve their buffers from it by name and from nothing else. Adding a buffer is one
// add() line here (or in the backend's scratch header), and the plan sees it.
//
// With T = step_tokens(cfg) rows per step (decode rows + one prefill chunk), L = logits_rows(cfg),
// B = max_batch, V = vocab, f32 activations between kernels whatever the weight format:
//   weights          CUDA only: the device copies of the weights and RoPE tables (the CPU reads
//                    the mmap'd file; the plan counts those bytes against the budget separately)
//   kv_global        global-layer KV: global_blocks x block_tokens x kv_bytes_per_token
//   kv_local         local-layer rings: ring_blocks x (B + prefix_slots) per local layer, i.e. each
//                    sequence's rings and each prefix-cache entry's snapshot of them
//   x, xn            [T, hidden]  residual stream; norm outputs (also the o-proj/down outputs)
//   q, attn          [T, q_dim]   queries after QK-norm and RoPE; attention output
//   k, v             [T, kv_dim]  the chunk's keys and values
//   gate, up         [T, ffn]     GeGLU halves
//   logits           [L, V]       f32 logits of the rows that sample (or are scored)
//   step_*           the host-side step description: tokens, positions, logit rows, sequences
//   sampler          [V] (probability, id) pairs for top-k / top-p
// then the backend's scratch (backend/cpu/scratch.hpp, backend/cuda/scratch.hpp).
#include <cstdint>

#include <gemmaforge/backend/cpu/scratch.hpp>
#include <gemmaforge/backend/cuda/scratch.hpp>
#include <gemmaforge/plan/arena.hpp>
#include <gemmaforge/plan/kv_bytes.hpp>
#include <gemmaforge/plan/serving_config.hpp>

namespace gemmaforge {

// Host-side records the engine keeps per step sequence (step/step.hpp's step_sequence and a
// request pointer); engine.hpp static_asserts that they fit.
inline constexpr std::uint64_t step_sequence_bytes = 32;
inline constexpr std::uint64_t step_request_bytes = 8;

struct layout_inputs {
  backend_kind backend = backend_kind::cpu;
  serving_config config{};
  std::uint64_t global_blocks = 0;        // 0 = needed_blocks(config) unless config.kv_blocks says
  std::uint64_t device_weight_bytes = 0;  // CUDA: bytes the weights take in the arena
  cuda::scratch_options cuda{};
  int cpu_threads = 0;  // CPU: > 0 plans cpu_gemm_pack for this many threads (int16_block_sums GEMM)
};

// The global blocks a config allocates when nobody fills the budget: kv_blocks, else max_batch
// full-length sequences.
constexpr std::uint64_t allocated_blocks(const serving_config& c) { return c.kv_blocks > 0 ? c.kv_blocks : needed_blocks(c); }

template <class Model>
constexpr arena_layout make_arena_layout(const layout_inputs& in) {
  const serving_config& c = in.config;
  arena_layout L;
  L.backend = in.backend;
  L.config = c;
  L.step_tokens = step_tokens(c);
  L.logits_rows = logits_rows(c);
  L.global_blocks = in.global_blocks > 0 ? in.global_blocks : allocated_blocks(c);
  L.ring_blocks = ring_blocks<Model>(c);
  const std::uint64_t T = L.step_tokens, R = L.logits_rows, B = c.max_batch;
  const std::uint64_t H = std::uint64_t(Model::hidden), Q = std::uint64_t(Model::q_dim), KV = std::uint64_t(Model::kv_dim);
  const std::uint64_t F = std::uint64_t(Model::ffn), V = std::uint64_t(Model::vocab);
  const bool gpu = in.backend == backend_kind::cuda;
  const memory_space host = gpu ? memory_space::host : memory_space::arena;

  if (gpu) L.add("weights", in.device_weight_bytes);
  L.add("kv_global", L.global_blocks * c.block_tokens * kv_bytes_per_token<Model>(c.kv));
  L.add("kv_local", L.ring_blocks * (B + c.prefix_slots) * c.block_tokens * local_kv_bytes_per_token<Model>(c.kv));
  L.add("x", T * H * 4);
  L.add("xn", T * H * 4);
  L.add("q", T * Q * 4);
  L.add("attn", T * Q * 4);
  L.add("k", T * KV * 4);
  L.add("v", T * KV * 4);
  L.add("gate", T * F * 4);
  L.add("up", T * F * 4);
  L.add("logits", R * V * 4);
  L.add("step_tokens", T * 4, host);
  L.add("step_positions", T * 4, host);
  L.add("step_logit_rows", (R > T ? R : T) * 4, host);
  L.add("step_seqs", (B + 1) * step_sequence_bytes, host);
  L.add("step_requests", (B + 1) * step_request_bytes, host);
  L.add("sampler", V * 8, host);

  if (!gpu) {
    const cpu::scratch_sizes s = cpu::scratch_for<Model>(c, in.cpu_threads);
    L.add("cpu_act_quant", s.act_quant);
    L.add("cpu_attention", s.attention);
    L.add("cpu_rope", s.rope);
    if (s.gemm_pack > 0) L.add("cpu_gemm_pack", s.gemm_pack);
  } else {
    const std::uint64_t seqs = B + 1;
    const std::uint64_t widest = std::uint64_t(std::max({Model::hidden, Model::q_dim, Model::ffn}));
    const auto meta = cuda::detail::meta_layout::make(int(T), int(R), int(seqs),
                                                      cuda::block_list_stride(c.max_seq_len, c.block_tokens,
                                                                              Model::layers::local_layers() > 0 ? std::uint64_t(Model::window) : 0));
    const std::uint64_t splits = std::uint64_t(cuda::attention_max_splits(c.max_seq_len, in.cuda.attn_split_tokens));
    L.add("cuda_step_meta", meta.total * 4);
    if (in.cuda.act_digits > 0) L.add("cuda_act_quant", cuda::act_quant_bytes(int(T), int(widest), in.cuda.act_digits));
    L.add("cuda_stage_k", T * KV * 4);
    L.add("cuda_stage_v", T * KV * 4);
    L.add("cuda_stage_k_scales", T * std::uint64_t(Model::kv_heads) * 4);
    L.add("cuda_stage_v_scales", T * std::uint64_t(Model::kv_heads) * 4);
    if (splits > 1) L.add("cuda_attn_partials", seqs * std::uint64_t(Model::heads) * splits * (std::uint64_t(Model::head_dim) + 2) * 4);
    if (in.cuda.cublaslt) {
      L.add("cuda_cublaslt_workspace", cuda::cublaslt_workspace_bytes);
      L.add("cuda_cublaslt_scratch", cuda::cublaslt_scratch_bytes(int(T), int(widest)));
    }
    L.add("cuda_meta_pinned", meta.total * 4, memory_space::host);
    L.add("cuda_logits_host", R * V * 4, memory_space::host);
  }
  return L;
}

}  // namespace gemmaforge
