#pragma once
// cpu_executor: the CPU backend as the engine drives it (the op interface of runtime/forward.hpp).
// It schedules the kernels of backend/cpu/ on one thread pool. Its scratch is regions of the
// planned arena (backend/cpu/scratch.hpp names them), carved once in allocate_arena, so a step
// allocates nothing and the plan counts every byte.
//
// Two things it does beyond forwarding calls:
//  * RoPE cos/sin tables are computed once per step and layer kind (the positions are the same
//    for every layer of a kind), not once per layer.
//  * quantize_input writes the int8/int16 rows of the integer matmul path into the cpu_act_quant
//    region and returns them as a value, which forward passes to each matmul of that input
//    (q/k/v, gate/up): quantized once, and no op has state to forget.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <thread>

#include <sys/mman.h>

#include <gemmaforge/backend/cpu/attention.hpp>
#include <gemmaforge/backend/cpu/cpu_features.hpp>
#include <gemmaforge/backend/cpu/host_memory.hpp>
#include <gemmaforge/backend/cpu/matmul.hpp>
#include <gemmaforge/backend/cpu/ops.hpp>
#include <gemmaforge/backend/cpu/thread_pool.hpp>
#include <gemmaforge/core/error.hpp>
#include <gemmaforge/core/units.hpp>
#include <gemmaforge/kv/kv_pool.hpp>
#include <gemmaforge/plan/arena_layout.hpp>
#include <gemmaforge/model/weights.hpp>
#include <gemmaforge/step/step.hpp>

namespace gemmaforge::cpu {

struct executor_options {
  int threads = 0;  // 0 = every core the process may use
  // 15-bit activations by default: logits within ~0.002 of the exact path at ~95% of its speed
  // advantage (backend/cpu/matmul.hpp has the measurements); exact for golden checks.
  matmul_precision precision = matmul_precision::int16_activations;
  cpu_isa isa = default_cpu_isa();
};

class cpu_executor {
 public:
  explicit cpu_executor(const executor_options& o = {}) : opt_(o) {
    opt_.isa = clamp_cpu_isa(o.isa);
    const int n = o.threads > 0 ? o.threads : std::max(1, int(std::thread::hardware_concurrency()));
    pool_ = std::make_unique<thread_pool>(n);
  }
  cpu_executor(cpu_executor&&) noexcept = default;
  cpu_executor& operator=(cpu_executor&&) noexcept = default;

  std::string description() const {
    return std::string("cpu ") + std::string(to_string(opt_.isa)) + " x" + std::to_string(pool_->size()) + " threads, " +
           std::string(to_string(opt_.precision));
  }
  thread_pool& pool() { return *pool_; }
  const executor_options& options() const { return opt_; }

  // ---- memory ------------------------------------------------------------------------------
  static constexpr backend_kind backend = backend_kind::cpu;
  // The block-sums modes' GEMM packs weights per thread: the plan gets a cpu_gemm_pack region for
  // this pool's threads (no other precision needs one, so their plans are unchanged).
  void describe_layout(layout_inputs& in) const {
    in.backend = backend;
    if (is_block_sums(opt_.precision)) in.cpu_threads = pool_->size();
  }

  // The arena: one 2 MiB-aligned block holding every region of the layout (the CPU has no second
  // space), so the kernel can back it with huge pages; zeroed, allocated once. Checked first
  // against what the host reports available (host_memory.hpp): under overcommit the allocation
  // itself rarely fails, the memset would end in the OOM killer instead of an error naming the
  // numbers. Then the executor's own scratch regions are carved.
  template <class Model, class KvElem>
  arena_memory allocate_arena(const arena_layout& L) {
    std::byte* base = allocate_host_arena(L.arena_bytes);
    act_q_ = L.pointer("cpu_act_quant", base);
    attn_scratch_ = L.pointer("cpu_attention", base);
    gemm_pack_ = L.find("cpu_gemm_pack") ? L.pointer("cpu_gemm_pack", base) : nullptr;
    if (is_block_sums(opt_.precision) && gemm_pack_ == nullptr)
      throw error(errc::internal, "cpu_executor: the layout has no cpu_gemm_pack region (describe_layout was not asked)");
    // The RoPE caches: inverse frequencies, then cos and sin of [T][head_dim / 2], per configuration.
    const std::size_t half = std::size_t(Model::head_dim / 2), T = std::size_t(L.step_tokens);
    float* f = L.pointer<float>("cpu_rope", base);
    for (auto& t : rope_) {
      t.inv_freq = f;
      t.cos = f + half;
      t.sin = f + half + half * T;
      f += half + 2 * half * T;
      t.valid = false;
    }
    return arena_memory{base, nullptr};
  }
  // The one allocation itself: `bytes` rounded up to 2 MiB, checked against the host, zeroed.
  std::byte* allocate_host_arena(std::uint64_t bytes) {
    arena_.reset();
    arena_bytes_ = 0;
    const std::uint64_t want = round_up(std::max<std::uint64_t>(bytes, 1), 2 * MiB);
    const host_memory mem = query_host_memory();
    const std::string reported =
        mem.source.empty() ? std::string("the system does not report its available memory")
                           : "the system reports " + format_bytes(mem.available) + " available (" + mem.source + ")" +
                                 (mem.total ? " of " + format_bytes(mem.total) : std::string());
    if (!mem.source.empty() && want > mem.available)
      throw error(errc::out_of_memory, "cpu_executor: the planned arena of " + format_bytes(want) + " (" +
                                           std::to_string(want) + " bytes) does not fit: " + reported);
    void* p = std::aligned_alloc(2 * MiB, want);
    if (!p)
      throw error(errc::out_of_memory, "cpu_executor: cannot allocate the planned arena of " + format_bytes(want) + " (" +
                                           std::to_string(want) + " bytes): the allocation failed; " + reported);
    arena_bytes_ = want;
#if defined(MADV_HUGEPAGE)
    ::madvise(p, arena_bytes_, MADV_HUGEPAGE);
#endif
    std::memset(p, 0, arena_bytes_);
    arena_.reset(static_cast<std::byte*>(p));
    return arena_.get();
  }
  std::uint64_t allocated_bytes() const { return arena_bytes_; }
  copy_fn kv_copy() const { return host_copy; }

  template <class Model>
  const model_weights<Model>& prepare_weights(const model_weights<Model>& w) const { return w; }

  // The step's arrays are host memory already: the view points at the batch's own.
  template <class Model, class KvElem>
  step_view begin_step(kv_pool<Model, KvElem>&, const step_batch& batch) {
    for (auto& t : rope_) t.valid = false;
    return host_step_view(batch);
  }
  template <class Body>
  void run_step(const step_view&, Body&& body) { body(); }

  // ---- ops ---------------------------------------------------------------------------------
  void embed(const weight_view& e, const step_view& st, float scale, float* out) {
    cpu::embed(*pool_, e, st.tokens, st.n_tokens, out, scale);
  }

  void rms_norm(const float* in, const float* gain, int rows, int cols, float eps, float* out) {
    cpu::rmsnorm(*pool_, in, gain, out, rows, cols, eps, opt_.isa);
  }

  // A matmul input: the f32 rows, and their int8/int16 form in the cpu_act_quant region when a
  // consumer runs the integer path (null otherwise). The region holds one input: a value is valid
  // until the next quantize_input, which `generation` checks.
  struct quantized_input {
    const float* x = nullptr;        // [T][cols] f32
    const std::byte* q = nullptr;    // [T] quantized rows (matmul_scratch_bytes), or null
    int rows = 0;
    std::int64_t cols = 0;
    std::uint64_t generation = 0;
  };

  // `x` as the matmuls by `consumers` read it: quantized once if any of them takes the integer path.
  quantized_input quantize_input(const float* x, int T, std::initializer_list<const weight_view*> consumers) {
    quantized_input in{x, nullptr, T, 0, ++act_generation_};
    bool quantize = false;
    for (const weight_view* w : consumers) {
      if (in.cols != 0 && w->cols != in.cols)
        throw error(errc::internal, "cpu_executor: matmuls of one quantized input differ in width");
      in.cols = w->cols;
      quantize = quantize || matmul_uses_quantized_activations(w->format, opt_.precision);
    }
    if (quantize && T > 0) {
      quantize_activations(*pool_, x, T, int(in.cols), act_q_, opt_.precision, opt_.isa);
      in.q = act_q_;
    }
    return in;
  }

  void matmul(const weight_view& w, const quantized_input& in, int T, float* y) {
    matmul_options mo;
    mo.precision = opt_.precision;
    mo.isa = opt_.isa;
    if (matmul_uses_quantized_activations(w.format, opt_.precision)) {
      if (in.q == nullptr || in.generation != act_generation_ || T > in.rows || w.cols != in.cols)
        throw error(errc::internal, "cpu_executor: matmul input was not quantized for this weight (quantize_input)");
      mo.act_q = in.q;
      mo.pack_scratch = gemm_pack_;
    }
    cpu::matmul(*pool_, w, in.x, T, y, mo);
  }

  void rope(float* x, const step_view& st, int heads, int head_dim, double theta, float pos_scale) {
    rope_cache& t = rope_for(theta, pos_scale);
    if (!t.valid) {
      // Linear scaling divides positions by a power of two: dividing inv_freq instead is exact.
      rope_inv_freq_table(t.inv_freq, head_dim, float(theta), 1.0f / pos_scale);
      rope_table(*pool_, t.inv_freq, head_dim, st.positions, st.n_tokens, t.cos, t.sin);
      t.valid = true;
    }
    cpu::rope(*pool_, x, st.n_tokens, heads, head_dim, t.cos, t.sin, opt_.isa);
  }

  template <class Model, class KvElem>
  void attention(kv_pool<Model, KvElem>& pool, int layer, const step_view& st, const float* q, const float* k,
                 const float* v, int window, float scale, float softcap, float* out) {
    const step_batch& batch = *st.batch;
    for (int s = 0; s < batch.n_seqs; ++s) {
      const step_sequence& sq = batch.seqs[s];
      attention_params prm;
      prm.n_tokens = sq.n_tokens;
      prm.start = sq.start;
      prm.window = window;
      prm.scale = scale;
      prm.softcap = softcap;
      const std::size_t row = std::size_t(sq.first_row);
      cpu::attention<typename Model::attention, KvElem>(
          *pool_, prm, q + row * Model::q_dim, k + row * Model::kv_dim, v + row * Model::kv_dim,
          pool.view(sq.slot, layer).as_const(), out + row * Model::q_dim, attn_scratch_, opt_.isa);
    }
  }

  template <class Model, class KvElem>
  void kv_append(kv_pool<Model, KvElem>& pool, int layer, const step_view& st, const float* k, const float* v) {
    const step_batch& batch = *st.batch;
    for (int s = 0; s < batch.n_seqs; ++s) {
      const step_sequence& sq = batch.seqs[s];
      const std::size_t row = std::size_t(sq.first_row);
      cpu::kv_append<KvElem, Model::kv_heads, Model::head_dim>(pool.view(sq.slot, layer), k + row * Model::kv_dim, v + row * Model::kv_dim, sq.start,
                             sq.n_tokens);
    }
  }

  void geglu(float* gate, const float* up, int n) { cpu::geglu(*pool_, gate, up, n, opt_.isa); }
  void add(float* x, const float* y, int n) { cpu::add(*pool_, x, y, n); }
  // dst[r] = src[st.logit_rows[r]] for the step's logits rows.
  void gather_rows(const step_view& st, const float* src, int cols, float* dst) {
    for (int r = 0; r < st.n_logits_rows; ++r)
      std::memmove(dst + std::size_t(r) * cols, src + std::size_t(st.logit_rows[r]) * cols, cols * sizeof(float));
  }
  void softcap(float* x, int n, float cap) { cpu::softcap(*pool_, x, n, cap, opt_.isa); }
  const float* logits_to_host(const float* logits, std::size_t) const { return logits; }

 private:
  struct rope_cache {
    double theta = 0;
    float pos_scale = 0;
    bool valid = false;
    float* inv_freq = nullptr;  // views into the cpu_rope region
    float* cos = nullptr;
    float* sin = nullptr;
  };
  rope_cache& rope_for(double theta, float pos_scale) {
    for (auto& t : rope_)
      if (t.valid && t.theta == theta && t.pos_scale == pos_scale) return t;
    for (auto& t : rope_)
      if (!t.valid) {
        t.theta = theta;
        t.pos_scale = pos_scale;
        return t;
      }
    throw error(errc::internal, "cpu_executor: more than two RoPE configurations in one step");
  }
  struct free_deleter {
    void operator()(std::byte* p) const { std::free(p); }
  };

  executor_options opt_;
  std::unique_ptr<thread_pool> pool_;
  std::unique_ptr<std::byte, free_deleter> arena_;
  std::uint64_t arena_bytes_ = 0;
  std::byte* act_q_ = nullptr;         // the cpu_act_quant region
  std::byte* attn_scratch_ = nullptr;  // the cpu_attention region
  std::byte* gemm_pack_ = nullptr;     // the cpu_gemm_pack region (the block-sums modes only)
  rope_cache rope_[2];
  std::uint64_t act_generation_ = 0;  // of the input now in the cpu_act_quant region
};

}  // namespace gemmaforge::cpu
