#pragma once
// cpu_executor: the CPU backend as the engine drives it (the op interface of runtime/forward.hpp).
// It schedules the kernels of backend/cpu/ on one thread pool. Its scratch is regions of the
// planned arena (backend/cpu/scratch.hpp names them), carved once in allocate_arena, so a step
// allocates nothing and the plan counts every byte.
//
// Two things it does beyond forwarding calls:
//  * RoPE cos/sin tables are computed once per step and layer kind (the positions are the same
//    for every layer of a kind), not once per layer.
//  * For the int8-activation matmul path, consecutive matmuls of the same input (q/k/v, gate/up)
//    quantize the activations once: every other op forgets the memo, because it may have
//    rewritten the buffer.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
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
#include <gemmaforge/runtime/step.hpp>

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
  void describe_layout(layout_inputs& in) const { in.backend = backend; }

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

  template <class Model, class KvElem>
  void begin_step(kv_pool<Model, KvElem>&, const step_batch&) {
    for (auto& t : rope_) t.valid = false;
    memo_ = nullptr;
  }

  // ---- ops ---------------------------------------------------------------------------------
  void embed(const weight_view& e, const std::int32_t* tokens, int T, float scale, float* out) {
    memo_ = nullptr;
    cpu::embed(*pool_, e, tokens, T, out, scale);
  }

  void rms_norm(const float* in, const float* gain, int rows, int cols, float eps, float* out) {
    memo_ = nullptr;
    cpu::rmsnorm(*pool_, in, gain, out, rows, cols, eps, opt_.isa);
  }

  void matmul(const weight_view& w, const float* x, int T, float* y) {
    matmul_options mo;
    mo.precision = opt_.precision;
    mo.isa = opt_.isa;
    if (matmul_uses_quantized_activations(w.format, opt_.precision)) {
      std::byte* q = act_q_;
      if (memo_ != x || memo_rows_ != T || memo_cols_ != w.cols) {
        quantize_activations(*pool_, x, T, int(w.cols), q, opt_.precision, opt_.isa);
        memo_ = x;
        memo_rows_ = T;
        memo_cols_ = w.cols;
      }
      mo.act_q = q;
    }
    cpu::matmul(*pool_, w, x, T, y, mo);
    if (y == memo_) memo_ = nullptr;
  }

  void rope(float* x, const std::int32_t* positions, int T, int heads, int head_dim, double theta, float pos_scale) {
    memo_ = nullptr;
    rope_cache& t = rope_for(theta, pos_scale);
    if (!t.valid) {
      // Linear scaling divides positions by a power of two: dividing inv_freq instead is exact.
      rope_inv_freq_table(t.inv_freq, head_dim, float(theta), 1.0f / pos_scale);
      rope_table(*pool_, t.inv_freq, head_dim, positions, T, t.cos, t.sin);
      t.valid = true;
    }
    cpu::rope(*pool_, x, T, heads, head_dim, t.cos, t.sin, opt_.isa);
  }

  template <class Model, class KvElem>
  void attention(kv_pool<Model, KvElem>& pool, int layer, const step_batch& batch, const float* q, const float* k,
                 const float* v, int window, float scale, float softcap, float* out) {
    memo_ = nullptr;
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
  void kv_append(kv_pool<Model, KvElem>& pool, int layer, const step_batch& batch, const float* k, const float* v) {
    for (int s = 0; s < batch.n_seqs; ++s) {
      const step_sequence& sq = batch.seqs[s];
      const std::size_t row = std::size_t(sq.first_row);
      cpu::kv_append<KvElem>(pool.view(sq.slot, layer), k + row * Model::kv_dim, v + row * Model::kv_dim, sq.start,
                             sq.n_tokens);
    }
  }

  void geglu(float* gate, const float* up, int n) {
    memo_ = nullptr;
    cpu::geglu(*pool_, gate, up, n, opt_.isa);
  }
  void add(float* x, const float* y, int n) {
    memo_ = nullptr;
    cpu::add(*pool_, x, y, n);
  }
  void gather_rows(const float* src, const std::int32_t* rows, int n, int cols, float* dst) {
    memo_ = nullptr;
    for (int r = 0; r < n; ++r) std::memmove(dst + std::size_t(r) * cols, src + std::size_t(rows[r]) * cols, cols * sizeof(float));
  }
  void softcap(float* x, int n, float cap) {
    memo_ = nullptr;
    cpu::softcap(*pool_, x, n, cap, opt_.isa);
  }
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
  rope_cache rope_[2];
  const float* memo_ = nullptr;
  int memo_rows_ = 0;
  std::int64_t memo_cols_ = 0;
};

}  // namespace gemmaforge::cpu
