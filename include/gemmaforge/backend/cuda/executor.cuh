#pragma once
// cuda_executor: the CUDA backend of the forward pass (runtime/forward.hpp) and the engine
// (runtime/engine.hpp). It provides the executor interface op for op, each as a launch on one stream:
//
//   describe_layout(in)          what the planned layout needs from it: the device weight bytes and
//                                the options that size its scratch (plan/arena_layout.hpp)
//   allocate_arena<M, Kv>(L)     checks the arena against the layout L and carves its own scratch
//                                (step description, quantized activations, staged K/V, split-K
//                                partials, cuBLASLt, pinned staging) by region name; the
//                                engine carves its buffers and the KV pool from the same layout
//   kv_copy()                    device-to-device copy for the pool's ring snapshots
//   prepare_weights(host)        uploads every tensor once into the arena, returns device views;
//                                builds the RoPE frequency tables of the model's layer kinds
//   begin_step(pool, batch)      uploads ids, positions, row->sequence map, logits rows, sequences
//                                and their block tables/rings in one copy; returns the step_view
//                                (step/step.hpp) whose arrays are those device copies
//   run_step(view, body)         runs the step's ops (body): eagerly, or for a decode step captured
//                                once into a CUDA graph and replayed afterwards (graph.cuh). The
//                                one place that knows about graphs: no op checks a mode
//   quantize_input(x, T, ws)     the matmul input, quantized once into the act-quant region when a
//                                consumer is a block-quantized weight at a quantized precision
//   embed rms_norm matmul rope attention kv_append geglu add gather_rows softcap
//   logits_to_host(ptr, n)       copies logits to pinned host memory (waits for the step)
//
// Every pointer an op receives is device memory: the per-step arrays come in the step_view.
//
// Numerics: everything follows math/ (see the kernel headers), so for each row the executor
// computes what the CPU backend computes, and decode graphs, split-K and batching change no bit.
// The opt-in cuBLASLt prefill (prefill_gemm::cublaslt) is the one exception, and it never touches
// decode rows: a matmul whose first rows are decode rows runs those through the canonical kernels.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include <gemmaforge/backend/cuda/attention.cuh>
#include <gemmaforge/backend/cuda/common.cuh>
#include <gemmaforge/backend/cuda/device_arena.cuh>
#include <gemmaforge/backend/cuda/elementwise.cuh>
#include <gemmaforge/backend/cuda/embed.cuh>
#include <gemmaforge/backend/cuda/geglu.cuh>
#include <gemmaforge/backend/cuda/gemm.cuh>
#include <gemmaforge/backend/cuda/graph.cuh>
#include <gemmaforge/backend/cuda/kv_append.cuh>
#include <gemmaforge/backend/cuda/matvec.cuh>
#include <gemmaforge/backend/cuda/norm.cuh>
#include <gemmaforge/backend/cuda/rope.cuh>
#include <gemmaforge/backend/cuda/scratch.hpp>
#include <gemmaforge/backend/cuda/softcap.cuh>
#include <gemmaforge/backend/cuda/step_meta.cuh>
#include <gemmaforge/core/error.hpp>
#include <gemmaforge/core/units.hpp>
#include <gemmaforge/kv/kv_pool.hpp>
#include <gemmaforge/model/tensor_list.hpp>
#include <gemmaforge/model/weights.hpp>
#include <gemmaforge/plan/arena_layout.hpp>
#include <gemmaforge/plan/devices.hpp>
#include <gemmaforge/step/step.hpp>

namespace gemmaforge::cuda {

enum class prefill_gemm : std::uint8_t {
  canonical,  // gemm_exact_kernel: batch invariant, same bits as the CPU (default)
  cublaslt,   // tensor cores for prefill rows; decode rows stay canonical
};

struct cuda_executor_config {
  int device = 0;
  // The one cudaMalloc. 0: what the device reports free, less 512 MiB, x 0.9. The programs set the
  // planned layout's arena_bytes (make_arena_layout with this executor's describe_layout).
  std::uint64_t arena_bytes = 0;
  // Refuse an arena above this (emulate a smaller device, e.g. a plan's Plan::arena_bytes).
  std::uint64_t arena_cap_bytes = 0;
  // Numerics and schedules.
  // Quantized weights: 15-bit activations (the CPU backend's default, same bits), int8, or exact.
  matmul_precision quant_precision = matmul_precision::int16_activations;
  prefill_gemm gemm = prefill_gemm::canonical;
  std::int32_t gemm_min_tokens = 5;  // rows from which a matmul uses the GEMM instead of the matvec
  attention_schedule attention = attention_schedule::automatic;
  // 0: math::attention_split, the CPU backend's (the split length is part of the result's bits);
  // another value is for benchmarks only.
  std::int32_t attn_split_tokens = 0;
  bool decode_graphs = true;


};

namespace detail {

// The pool's ring snapshots (prefix cache) are device-to-device copies. kv_copy is a plain function
// pointer without a stream, so it synchronizes: it runs between steps (admission, registration).
// cppcheck-suppress unusedFunction ; taken as a function pointer (kv_copy), which cppcheck does not count as a use
inline void device_copy(void* dst, const void* src, std::size_t bytes) {
  decode_graphs::abandon_open_capture();  // a step that threw mid-capture (C12)
  GF_CHECK_CUDA(cudaDeviceSynchronize());  // the executor's stream is non-blocking: order explicitly
  GF_CHECK_CUDA(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
  GF_CHECK_CUDA(cudaDeviceSynchronize());
}

struct model_shape {
  int hidden = 0, q_dim = 0, kv_dim = 0, ffn = 0, vocab = 0, heads = 0, kv_heads = 0, head_dim = 0, window = 0;
  bool quantized = false;  // some weight is block-quantized
  int widest() const { return std::max({hidden, q_dim, ffn}); }
};

struct pinned_deleter {
  void operator()(void* p) const noexcept { cudaFreeHost(p); }
};
using pinned_ptr = std::unique_ptr<void, pinned_deleter>;

inline pinned_ptr pinned_alloc(std::size_t bytes) {
  void* p = nullptr;
  GF_CHECK_CUDA(cudaMallocHost(&p, std::max<std::size_t>(bytes, 64)));
  return pinned_ptr(p);
}

using meta_layout = ::gemmaforge::cuda::detail::meta_layout;  // backend/cuda/scratch.hpp
static_assert(sizeof(device_seq) == meta_layout::seq_ints * 4, "scratch.hpp: meta_layout::seq_ints is a device_seq");

}  // namespace detail

class cuda_executor {
 public:
  explicit cuda_executor(const cuda_executor_config& cfg = {}) : s_(std::make_unique<state>(checked(cfg))) {}
  cuda_executor(cuda_executor&&) noexcept = default;
  cuda_executor& operator=(cuda_executor&&) noexcept = default;
  ~cuda_executor() = default;

  // For load logs: the GPU and the numerics in use.
  std::string description() const {
    return "cuda " + s_->device_name + ", " + std::string(to_string(s_->cfg.quant_precision)) +
           (s_->cfg.decode_graphs ? ", decode graphs" : "");
  }

  // Bytes of device copies of the weights (each tensor of the model's list 256-byte aligned, as
  // prepare_weights uploads them) and the two RoPE tables.
  template <class Model>
  static std::uint64_t device_weight_bytes(const model_weights<Model>& w) {
    auto a = [](std::uint64_t n) { return round_up(n, arena_alignment); };
    std::uint64_t n = 0;
    for_each_tensor<Model>([&](const tensor_spec& t) {
      if (!is_bound(t)) return;
      n += is_norm(t.role) ? a(t.shape[0] * 4) : a(matrix_in(w, t).bytes());
    });
    return n + 2 * a(std::uint64_t(Model::head_dim / 2) * 4);
  }

  // ------------------------------------------------------------------ executor interface
  static constexpr backend_kind backend = backend_kind::cuda;
  // The layout's inputs this executor decides: its weights in the arena and its scratch options.
  void describe_layout(layout_inputs& in) const {
    const std::uint64_t blocks = in.global_blocks;
    in = layout_inputs_for(s_->cfg, in.config, s_->weight_bytes, s_->shape.quantized);
    in.global_blocks = blocks;
  }

  // The one rule for what an executor with config x needs from the layout: the programs and tests
  // size the arena (cuda_executor_config::arena_bytes) with it before the executor exists.
  static layout_inputs layout_inputs_for(const cuda_executor_config& x, const serving_config& limits,
                                         std::uint64_t weight_bytes, bool quantized_weights) {
    layout_inputs in;
    in.backend = backend;
    in.config = limits;
    in.device_weight_bytes = weight_bytes;
    in.cuda.cublaslt = x.gemm == prefill_gemm::cublaslt;
    in.cuda.attn_split_tokens = x.attn_split_tokens;
    in.cuda.act_digits = quantized_weights ? act_digits(x.quant_precision) : 0;
    return in;
  }
  template <class Model>
  static std::uint64_t planned_arena_bytes(const cuda_executor_config& x, const serving_config& limits,
                                           const model_weights<Model>& w) {
    return make_arena_layout<Model>(layout_inputs_for(x, limits, device_weight_bytes(w), shape_of(w).quantized)).arena_bytes;
  }

  // The engine's regions and this executor's scratch, from the planned layout: the weights were
  // uploaded at the start of the arena (the layout's first region), the rest is carved by offset.
  template <class Model, class KvElem>
  arena_memory allocate_arena(const arena_layout& L) {
    state& s = *s_;
    if (s.shape.vocab == 0) throw error(errc::internal, "cuda_executor: prepare_weights must run before allocate_arena");
    const arena_region& w = L.at("weights");
    if (w.offset != 0 || s.arena.used() > w.bytes)
      throw error(errc::internal, "cuda_executor: the uploaded weights (" + format_bytes(s.arena.used()) +
                                      ") exceed the layout's weights region (" + format_bytes(w.bytes) + ")");
    // Take the rest of the planned arena in one piece, so nothing else can be bump-allocated into it.
    const std::uint64_t rest_at = round_up(w.bytes, arena_alignment);
    if (s.arena.used() < rest_at) s.arena.allocate(rest_at - round_up(s.arena.used(), arena_alignment), "weights region");
    if (L.arena_bytes > rest_at) s.arena.allocate(L.arena_bytes - rest_at, "planned regions (KV pool, activations, scratch)");
    s.host_block = detail::pinned_alloc(std::size_t(std::max<std::uint64_t>(L.host_bytes, 1)));
    std::memset(s.host_block.get(), 0, std::size_t(L.host_bytes));
    const arena_memory mem{s.arena.base(), static_cast<std::byte*>(s.host_block.get())};
    s.carve(L, mem, Model::layers::local_layers() > 0 ? Model::window : 0);
    return mem;
  }

  copy_fn kv_copy() const { return &detail::device_copy; }

  template <class Model>
  const model_weights<Model>& prepare_weights(const model_weights<Model>& host) {
    state& s = *s_;
    s.shape = shape_of(host);
    auto dev = std::make_shared<model_weights<Model>>();
    for_each_tensor<Model>([&](const tensor_spec& t) {
      if (!is_bound(t)) return;
      if (is_norm(t.role)) gain_in(*dev, t) = s.upload_floats(gain_in(host, t), int(t.shape[0]), to_string(t.role).data());
      else matrix_in(*dev, t) = s.upload(matrix_in(host, t), to_string(t.role).data());
    });
    for (layer_kind k : {layer_kind::global, layer_kind::local})
      if (Model::layers::count(k) > 0)
        s.rope_table(Model::head_dim, Model::rope::theta(k), Model::rope::position_scale(k));
    GF_CHECK_CUDA(cudaDeviceSynchronize());
    s.weights = dev;
    return *dev;
  }

  // Weights that are already in device memory (filled in place in this executor's arena, e.g. by a
  // loader streaming a file to the device, or a benchmark's random weights): no copy, only the
  // shape and the RoPE tables are recorded. The views must outlive the executor.
  template <class Model>
  const model_weights<Model>& adopt_device_weights(const model_weights<Model>& dev) {
    state& s = *s_;
    s.shape = shape_of(dev);
    for (layer_kind k : {layer_kind::global, layer_kind::local})
      if (Model::layers::count(k) > 0)
        s.rope_table(Model::head_dim, Model::rope::theta(k), Model::rope::position_scale(k));
    GF_CHECK_CUDA(cudaDeviceSynchronize());
    auto keep = std::make_shared<model_weights<Model>>(dev);
    s.weights = keep;
    s.weight_bytes = s.arena.used();  // the caller allocated them at the start of the arena
    return *keep;
  }

  template <class Model, class KvElem>
  step_view begin_step(kv_pool<Model, KvElem>& pool, const step_batch& batch) {
    state& s = *s_;
    if (s.meta_host == nullptr) throw error(errc::internal, "cuda_executor: allocate_arena has not run");
    decode_graphs::abandon_capture(s.stream);  // a previous step that failed mid-capture
    s.mode = decode_graphs::mode::eager;
    const kv_pool_config& pc = pool.config();
    const int T = batch.n_tokens, n = batch.n_seqs;
    const std::int32_t stride = pool.max_blocks_per_seq() + pool.ring_blocks();
    if (T > s.max_step_tokens || n > s.max_batch + 1 || stride > s.meta.list_stride || pc.max_seq_len > s.max_seq_len ||
        std::size_t(batch.n_logits_rows) > s.logits_cap_rows)
      throw error(errc::invalid_argument,
                  "cuda_executor: step of " + std::to_string(T) + " tokens / " + std::to_string(n) +
                      " sequences exceeds the planned layout's limits");
    if (kv_has_scale<KvElem> && (pc.block_tokens * 4) % 16 != 0)
      throw error(errc::invalid_argument, "cuda_executor: fp8/int8 KV needs block_tokens >= 4 (16-byte aligned planes)");

    GF_CHECK_CUDA(cudaEventSynchronize(s.meta_copied));  // the staging buffer is free again
    std::int32_t* h = s.meta_host;
    std::memcpy(h + s.meta.tokens, batch.tokens, std::size_t(T) * 4);
    std::memcpy(h + s.meta.positions, batch.positions, std::size_t(T) * 4);
    auto* seqs = reinterpret_cast<device_seq*>(h + s.meta.seqs);
    int decode_seqs = 0;
    bool decode_only = n > 0;
    s.prefill.clear();
    for (int i = 0; i < n; ++i) {
      const step_sequence& q = batch.seqs[i];
      device_seq d;
      d.start = q.start;
      d.n_tokens = q.n_tokens;
      d.first_row = q.first_row;
      d.table = i * s.meta.list_stride;
      d.ring = d.table + pool.max_blocks_per_seq();
      seqs[i] = d;
      for (int r = 0; r < q.n_tokens; ++r) h[s.meta.row_seq + std::size_t(q.first_row + r)] = i;
      std::memcpy(h + s.meta.lists + std::size_t(d.table), pool.block_table(q.slot), std::size_t(pool.max_blocks_per_seq()) * 4);
      if (pool.ring_blocks() > 0)
        std::memcpy(h + s.meta.lists + std::size_t(d.ring), pool.ring_ids() + std::size_t(q.slot) * std::size_t(pool.ring_blocks()),
                    std::size_t(pool.ring_blocks()) * 4);
      if (q.n_tokens == 1) ++decode_seqs;
      else s.prefill.push_back({i, q.n_tokens});
      decode_only = decode_only && q.n_tokens == 1 && q.want == step_sequence::logits::last;
    }
    // The logits rows as the scheduler chose them (step_batch::logit_rows).
    if (batch.n_logits_rows > 0) {
      if (batch.logit_rows == nullptr) throw error(errc::invalid_argument, "cuda_executor: step without its logits rows");
      std::memcpy(h + s.meta.logit_rows, batch.logit_rows, std::size_t(batch.n_logits_rows) * 4);
    }
    GF_CHECK_CUDA(cudaMemcpyAsync(s.meta_dev, h, s.meta.total * 4, cudaMemcpyHostToDevice, s.stream));
    GF_CHECK_CUDA(cudaEventRecord(s.meta_copied, s.stream));

    s.T = T;
    s.n_seqs = n;
    s.decode_seqs = decode_seqs;
    s.decode_only = decode_only;
    // Decode rows lead the batch (the engine schedules them first): count the leading 1-token rows.
    s.decode_rows = 0;
    for (int i = 0; i < n && batch.seqs[i].n_tokens == 1; ++i) ++s.decode_rows;
    return step_view{&batch, s.d_tokens(), s.d_positions(), s.d_logit_rows(), T, batch.n_logits_rows};
  }

  // The step's ops, body(), on the stream. A decode-only step of B sequences is the same launches
  // with the same arguments every time (the kernels read the per-step values from the uploaded
  // description), so per batch size the first such step runs eagerly, the second is captured and
  // replayed, every later one only replays (decode_graphs::plan).
  template <class Body>
  void run_step(const step_view&, Body&& body) {
    state& s = *s_;
    const int batch = s.n_seqs;
    const decode_graphs::mode m = s.cfg.decode_graphs && s.decode_only ? s.graphs.plan(batch) : decode_graphs::mode::eager;
    if (m == decode_graphs::mode::replay) {
      s.graphs.launch(batch, s.stream);
      return;
    }
    if (m == decode_graphs::mode::eager) {
      body();
      return;
    }
    s.mode = decode_graphs::mode::capture;
    s.graphs.begin_capture(s.stream);
    try {
      body();
    } catch (...) {
      s.mode = decode_graphs::mode::eager;
      decode_graphs::abandon_capture(s.stream);
      throw;
    }
    s.mode = decode_graphs::mode::eager;
    s.graphs.end_capture(batch, s.stream);
    s.graphs.launch(batch, s.stream);
  }

  void embed(const weight_view& e, const step_view& st, float scale, float* out) {
    state& s = *s_;
    throw_if_failed(launch_embed(e, st.tokens, st.n_tokens, scale, out, s.stream), "cuda embed");
  }

  void rms_norm(const float* in, const float* gain, int rows, int cols, float eps, float* out) {
    throw_if_failed(launch_rms_norm(in, gain, rows, cols, eps, out, s_->stream), "cuda rms_norm");
  }

  // A matmul input: the f32 rows, and the act-quant view holding their quantized form when a
  // consumer reads it (null otherwise). The region holds one input: a value is valid until the
  // next quantize_input, which `generation` checks.
  struct quantized_input {
    const float* x = nullptr;           // [T][cols] f32, device
    const act_quant_view* act = nullptr;
    int rows = 0;                       // rows quantized (the canonical ones: see canonical_rows)
    std::int64_t cols = 0;
    std::uint64_t generation = 0;
  };

  // `x` as the matmuls by `consumers` read it: quantized once if any of them is block-quantized at
  // a quantized precision. Only the rows the canonical kernels take are quantized (cuBLASLt reads
  // the f32 prefill rows).
  quantized_input quantize_input(const float* x, int T, std::initializer_list<const weight_view*> consumers) {
    state& s = *s_;
    quantized_input in{x, nullptr, 0, 0, ++s.act_generation};
    bool quantize = false;
    for (const weight_view* w : consumers) {
      if (in.cols != 0 && w->cols != in.cols)
        throw error(errc::internal, "cuda_executor: matmuls of one quantized input differ in width");
      in.cols = w->cols;
      quantize = quantize || s.uses_quantized_activations(*w);
    }
    const int rows = s.canonical_rows(T);
    if (quantize && rows > 0) {
      if (s.act.q == nullptr) throw error(errc::internal, "cuda_executor: quantized-activation scratch missing");
      throw_if_failed(launch_quantize_activations(x, rows, int(in.cols), s.act, s.stream), "cuda quantize activations");
      in.act = &s.act;
      in.rows = rows;
    }
    return in;
  }

  void matmul(const weight_view& w, const quantized_input& in, int T, float* y) {
    state& s = *s_;
    if (T <= 0) return;
    const float* x = in.x;
    if (x == y) throw error(errc::invalid_argument, "cuda matmul: output aliases input");
    // cuBLASLt (opt-in) takes the prefill rows only; decode rows keep the canonical kernels.
    const int canonical_rows = s.canonical_rows(T);
    if (canonical_rows > 0) {
      if (s.uses_quantized_activations(w)) {
        if (in.act == nullptr || in.generation != s.act_generation || canonical_rows > in.rows || w.cols != in.cols)
          throw error(errc::internal, "cuda_executor: matmul input was not quantized for this weight (quantize_input)");
        throw_if_failed(launch_matvec_qact(w, *in.act, canonical_rows, y, s.stream), "cuda matvec (quantized activations)");
      } else {
        s.matmul_f32(w, x, canonical_rows, y);
      }
    }
    if (canonical_rows < T) {
      const int rest = T - canonical_rows;
      throw_if_failed(s.blas.run(w, x + std::int64_t(canonical_rows) * w.cols, rest, y + std::int64_t(canonical_rows) * w.rows,
                                 s.blas_scratch, s.stream),
                      "cuBLASLt matmul");
    }
  }

  void rope(float* x, const step_view& st, int heads, int d, double theta, float pos_scale) {
    state& s = *s_;
    const float* table = s.rope_table(d, theta, pos_scale);
    throw_if_failed(launch_rope(x, st.positions, st.n_tokens, heads, d, table, s.stream), "cuda rope");
  }

  template <class Model, class KvElem>
  void attention(kv_pool<Model, KvElem>& pool, int layer, const step_view& st, const float* q, const float* k,
                 const float* v, int window, float scale, float softcap, float* out) {
    state& s = *s_;
    constexpr int D = Model::head_dim, G = Model::attention::group, KVH = Model::kv_heads;
    const int T = st.n_tokens;
    auto* sk = reinterpret_cast<KvElem*>(s.stage_k);
    auto* sv = reinterpret_cast<KvElem*>(s.stage_v);
    throw_if_failed(launch_kv_stage<KvElem>(k, v, T, KVH, D, sk, sv, s.stage_ks, s.stage_vs, s.stream), "cuda kv stage");
    attention_args<KvElem> a;
    a.seqs = s.d_seqs();
    a.n_seqs = s.n_seqs;
    a.q = q;
    a.out = out;
    a.cache = planes<Model>(pool, layer);
    a.fresh = kv_fresh_rows<KvElem>{sk, sv, s.stage_ks, s.stage_vs};
    a.window = window;
    a.scale = scale;
    a.softcap = softcap;
    a.split_tokens = s.split_tokens;
    a.max_splits = s.max_splits;
    a.partials = s.partials;
    if (s.decode_seqs > 0) {
      attention_schedule sched = s.cfg.attention;
      if (sched == attention_schedule::automatic)
        sched = s.max_splits > 1 && s.decode_seqs * KVH < s.sm_count ? attention_schedule::split_k : attention_schedule::single_pass;
      throw_if_failed(launch_attention_decode<D, G, KvElem>(a, sched, s.stream), "cuda attention (decode)");
    }
    for (const auto& pf : s.prefill)
      throw_if_failed(launch_attention_prefill<D, G, KvElem>(a, pf.seq, pf.n_tokens, s.stream), "cuda attention (prefill)");
  }

  template <class Model, class KvElem>
  void kv_append(kv_pool<Model, KvElem>& pool, int layer, const step_view& st, const float* k, const float* v) {
    state& s = *s_;
    throw_if_failed(launch_kv_append<KvElem>(k, v, st.n_tokens, s.d_seqs(), s.d_row_seq(), planes<Model>(pool, layer), s.stream),
                    "cuda kv_append");
  }

  void geglu(float* gate, const float* up, int n) {
    throw_if_failed(launch_geglu(gate, up, n, s_->stream), "cuda geglu");
  }

  void add(float* x, const float* y, int n) { throw_if_failed(launch_add(x, y, n, s_->stream), "cuda add"); }

  // dst[r] = src[st.logit_rows[r]] for the step's logits rows (device copy from begin_step).
  void gather_rows(const step_view& st, const float* src, int cols, float* dst) {
    throw_if_failed(launch_gather_rows(src, st.logit_rows, st.n_logits_rows, cols, dst, s_->stream), "cuda gather_rows");
  }

  void softcap(float* x, int n, float cap) { throw_if_failed(launch_softcap(x, n, cap, s_->stream), "cuda softcap"); }

  const float* logits_to_host(const float* logits, std::size_t n) {
    state& s = *s_;
    if (n > s.logits_cap_rows * std::size_t(s.shape.vocab))
      throw error(errc::invalid_argument, "cuda_executor: more logits than the configured rows");
    if (n > 0) GF_CHECK_CUDA(cudaMemcpyAsync(s.logits_host, logits, n * 4, cudaMemcpyDeviceToHost, s.stream));
    GF_CHECK_CUDA(cudaStreamSynchronize(s.stream));
    return s.logits_host;
  }

  device_arena& arena() { return s_->arena; }
  cudaStream_t stream() const { return s_->stream; }
  const cuda_executor_config& config() const { return s_->cfg; }
  std::uint64_t graph_captures() const { return s_->graphs.captures(); }
  std::uint64_t graph_replays() const { return s_->graphs.replays(); }
  void synchronize() { GF_CHECK_CUDA(cudaStreamSynchronize(s_->stream)); }

  template <class Model>
  static detail::model_shape shape_of(const model_weights<Model>& w) {
    detail::model_shape m{Model::hidden, Model::q_dim,   Model::kv_dim,   Model::ffn,   Model::vocab,
                          Model::heads,  Model::kv_heads, Model::head_dim, Model::window, false};
    for_each_tensor<Model>([&](const tensor_spec& t) {
      if (is_bound(t) && !is_norm(t.role)) m.quantized = m.quantized || is_block_quantized(matrix_in(w, t).format);
    });
    return m;
  }

 private:
  static const cuda_executor_config& checked(const cuda_executor_config& cfg) {
    // The block-sum order (math/quant.hpp dot_block_sums) has no CUDA matvec yet: refuse it rather
    // than run another rounding under its name.
    if (is_block_sums(cfg.quant_precision))
      throw error(errc::invalid_argument, std::string("cuda_executor: matmul precision '") +
                                              std::string(to_string(cfg.quant_precision)) +
                                              "' is CPU-only (use int16, int8 or exact on CUDA)");
    return cfg;
  }

  template <class Model, class KvElem>
  kv_layer_planes<KvElem> planes(kv_pool<Model, KvElem>& pool, int layer) const {
    const kv_cache_mut_view mv = pool.view(0, layer);  // plane pointers; block lists come from the step
    kv_layer_planes<KvElem> p;
    p.k = static_cast<KvElem*>(mv.k);
    p.v = static_cast<KvElem*>(mv.v);
    p.k_scale = mv.k_scale;
    p.v_scale = mv.v_scale;
    p.lists = s_->d_lists();
    p.local = Model::layers::kind(layer) == layer_kind::local;
    p.n_blocks = p.local ? pool.ring_blocks() : pool.max_blocks_per_seq();
    p.block_tokens = pool.block_tokens();
    p.kv_heads = Model::kv_heads;
    p.head_dim = Model::head_dim;
    return p;
  }

  struct prefill_seq {
    int seq = 0;
    int n_tokens = 0;
  };

  struct rope_entry {
    int head_dim = 0;
    double theta = 0;
    float pos_scale = 1;
    const float* table = nullptr;
  };

  struct state {
    explicit state(const cuda_executor_config& c) : cfg(c), arena(c.arena_bytes, c.arena_cap_bytes, c.device) {
      GF_CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
      GF_CHECK_CUDA(cudaEventCreateWithFlags(&meta_copied, cudaEventDisableTiming));
      GF_CHECK_CUDA(cudaEventRecord(meta_copied, stream));
      GF_CHECK_CUDA(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, c.device));
      cudaDeviceProp prop{};
      GF_CHECK_CUDA(cudaGetDeviceProperties(&prop, c.device));
      device_name = std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ")";
    }
    state(const state&) = delete;
    state& operator=(const state&) = delete;
    ~state() {
      graphs.clear();
      if (meta_copied) cudaEventDestroy(meta_copied);
      if (stream) cudaStreamDestroy(stream);
    }

    // Rows of a T-row matmul the canonical kernels take: all, except the prefill rows of a step
    // that runs them through cuBLASLt (opt-in).
    int canonical_rows(int rows) const {
      if (cfg.gemm == prefill_gemm::cublaslt && rows == T && rows - decode_rows >= cfg.gemm_min_tokens) return decode_rows;
      return rows;
    }
    bool uses_quantized_activations(const weight_view& w) const {
      return is_block_quantized(w.format) && cfg.quant_precision != matmul_precision::exact;
    }

    std::int32_t* meta_ptr(std::size_t off) const { return meta_dev + off; }
    const std::int32_t* d_tokens() const { return meta_ptr(meta.tokens); }
    const std::int32_t* d_positions() const { return meta_ptr(meta.positions); }
    const std::int32_t* d_row_seq() const { return meta_ptr(meta.row_seq); }
    const std::int32_t* d_logit_rows() const { return meta_ptr(meta.logit_rows); }
    const device_seq* d_seqs() const { return reinterpret_cast<const device_seq*>(meta_ptr(meta.seqs)); }
    const std::int32_t* d_lists() const { return meta_ptr(meta.lists); }

    weight_view upload(const weight_view& h, const char* what) {
      weight_view d = h;
      if (h.data == nullptr) return d;
      std::byte* p = arena.allocate(h.bytes(), what);
      GF_CHECK_CUDA(cudaMemcpy(p, h.data, h.bytes(), cudaMemcpyHostToDevice));
      d.data = p;
      return d;
    }
    const float* upload_floats(const float* h, int n, const char* what) {
      if (h == nullptr) return nullptr;
      std::byte* p = arena.allocate(std::uint64_t(n) * 4, what);
      GF_CHECK_CUDA(cudaMemcpy(p, h, std::size_t(n) * 4, cudaMemcpyHostToDevice));
      return reinterpret_cast<const float*>(p);
    }

    // The frequency table of (head_dim, theta, pos_scale), built on first use (prepare_weights
    // builds the model's, so the step path only looks up).
    const float* rope_table(int head_dim, double theta, float pos_scale) {
      for (const rope_entry& e : ropes)
        if (e.head_dim == head_dim && e.theta == theta && e.pos_scale == pos_scale) return e.table;
      if (mode == decode_graphs::mode::capture)
        throw error(errc::internal, "cuda_executor: RoPE table missing during graph capture");
      const std::vector<float> t = rope_inv_freq_table(head_dim, theta, pos_scale);
      const float* d = upload_floats(t.data(), int(t.size()), "rope table");
      ropes.push_back(rope_entry{head_dim, theta, pos_scale, d});
      return d;
    }

    // This executor's regions of the planned layout (backend/cuda/scratch.hpp names them).
    void carve(const arena_layout& L, const arena_memory& mem, int window) {
      auto at = [&](std::string_view name) { return L.pointer(name, mem.arena, mem.host); };
      max_step_tokens = int(L.step_tokens);
      max_batch = int(L.config.max_batch);
      max_seq_len = int(L.config.max_seq_len);
      const int T = max_step_tokens, seqs = max_batch + 1, R = int(L.logits_rows);
      meta = detail::meta_layout::make(T, R, seqs, block_list_stride(L.config.max_seq_len, L.config.block_tokens, std::uint64_t(window)));
      if (meta.total * 4 != L.bytes("cuda_step_meta")) throw error(errc::internal, "cuda_executor: step description differs from the layout");
      meta_dev = reinterpret_cast<std::int32_t*>(at("cuda_step_meta"));
      meta_host = reinterpret_cast<std::int32_t*>(at("cuda_meta_pinned"));
      const int digits = shape.quantized ? act_digits(cfg.quant_precision) : 0;
      if (digits > 0) {
        if (L.find("cuda_act_quant") == nullptr || L.bytes("cuda_act_quant") != act_quant_bytes(T, shape.widest(), digits))
          throw error(errc::internal, "cuda_executor: the layout's quantized-activation region does not fit this precision");
        act = carve_act_quant(at("cuda_act_quant"), T, shape.widest(), digits);
      }
      stage_k = at("cuda_stage_k");
      stage_v = at("cuda_stage_v");
      stage_ks = reinterpret_cast<float*>(at("cuda_stage_k_scales"));
      stage_vs = reinterpret_cast<float*>(at("cuda_stage_v_scales"));
      split_tokens = attention_split_tokens(std::uint64_t(max_seq_len), cfg.attn_split_tokens);
      max_splits = attention_max_splits(std::uint64_t(max_seq_len), cfg.attn_split_tokens);
      if (max_splits > 1) partials = reinterpret_cast<float*>(at("cuda_attn_partials"));
      if (cfg.gemm == prefill_gemm::cublaslt) {
        std::byte* ws = at("cuda_cublaslt_workspace");
        blas_scratch = at("cuda_cublaslt_scratch");
        throw_if_failed(blas.init(ws, cublaslt_workspace_bytes), "cuBLASLt init");
      }
      logits_cap_rows = std::size_t(R);
      logits_host = reinterpret_cast<float*>(at("cuda_logits_host"));
      graphs.resize(max_batch);
      prefill.reserve(std::size_t(seqs));
    }

    // The canonical kernels for f32 activations (weights not quantized, or exact precision).
    void matmul_f32(const weight_view& w, const float* x, int T, float* y) {
      if (T < cfg.gemm_min_tokens) {
        throw_if_failed(launch_matvec_exact(w, x, T, y, stream), "cuda matvec");
      } else {
        throw_if_failed(launch_gemm_exact(w, x, T, y, stream), "cuda gemm");
      }
    }

    cuda_executor_config cfg;
    device_arena arena;
    cudaStream_t stream = nullptr;
    cudaEvent_t meta_copied = nullptr;
    int sm_count = 0;
    std::string device_name;
    detail::model_shape shape;
    std::shared_ptr<void> weights;
    std::vector<rope_entry> ropes;

    std::uint64_t weight_bytes = 0;  // device_weight_bytes of the uploaded model
    int max_step_tokens = 0, max_batch = 0, max_seq_len = 0;  // from the layout
    detail::pinned_ptr host_block;   // the layout's host space (pinned)
    detail::meta_layout meta;
    std::int32_t* meta_dev = nullptr;
    std::int32_t* meta_host = nullptr;
    act_quant_view act;
    std::byte* stage_k = nullptr;
    std::byte* stage_v = nullptr;
    float* stage_ks = nullptr;
    float* stage_vs = nullptr;
    int split_tokens = math::attention_split, max_splits = 1;
    float* partials = nullptr;
    cublaslt_gemm blas;
    std::byte* blas_scratch = nullptr;
    std::size_t logits_cap_rows = 0;
    float* logits_host = nullptr;

    // The current step.
    int T = 0, n_seqs = 0, decode_seqs = 0, decode_rows = 0;
    bool decode_only = false;  // every sequence decodes one token and wants its logits: a graph candidate
    std::vector<prefill_seq> prefill;
    std::uint64_t act_generation = 0;  // of the input now in the act-quant region (quantize_input)
    decode_graphs graphs;
    decode_graphs::mode mode = decode_graphs::mode::eager;  // capture while run_step records a graph
  };

  std::unique_ptr<state> s_;
};

}  // namespace gemmaforge::cuda

namespace gemmaforge::backend {

// The CUDA backend tag: the executor the engine runs and the device the deployment is planned for.
template <class Device = devices::rtx4090>
struct cuda {
  using executor = ::gemmaforge::cuda::cuda_executor;
  using device = Device;
};

}  // namespace gemmaforge::backend
