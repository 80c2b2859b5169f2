#pragma once
// A small persistent thread pool for the CPU kernels.
//   thread_pool pool(n);            n threads in all: the caller plus n - 1 workers
//   pool.parallel_for(n, f);        f(begin, end) on n_threads contiguous ranges, blocks until done
//   pool.run(f);                    f(thread_index, n_threads) once on every thread
// Partitioning is static and deterministic (range i = [n*i/T, n*(i+1)/T)), so which thread
// computes what depends only on n and T; kernels make results independent of even that.
// A call allocates nothing: the task is a (function pointer, context pointer) pair pointing at
// the caller's stack. Workers spin for a short while after a task (decode issues a few hundred
// tasks per token, microseconds apart), then sleep on a futex (std::atomic::wait).
// Tasks must not throw and must not call back into the same pool.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include <gemmaforge/core/macros.hpp>

#include <gemmaforge/backend/cpu/x86_intrin.hpp>

namespace gemmaforge::cpu {

namespace detail {
inline void cpu_relax() {
#if GF_X86
  _mm_pause();
#endif
}
}  // namespace detail

class thread_pool {
 public:
  // spin_us: how long an idle worker polls for the next task before sleeping. 100 us covers the
  // gaps between the kernels of one decode step (measured ~5-30 us on the 2-core EPYC) without
  // burning a core between steps.
  explicit thread_pool(int n_threads = 1, int spin_us = 100)
      : n_threads_(std::max(1, n_threads)), spin_us_(spin_us) {
    workers_.reserve(std::size_t(n_threads_ - 1));
    for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
  }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;
  ~thread_pool() {
    stop_.store(true, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    for (auto& t : workers_) t.join();
  }

  int size() const { return n_threads_; }

  // f(thread_index, n_threads) on every thread; returns when all are done.
  template <class F>
  void run(F&& f) {
    using Fn = std::remove_reference_t<F>;
    if (n_threads_ == 1) { f(0, 1); return; }
    fn_ = [](void* ctx, int i, int n) { (*static_cast<Fn*>(ctx))(i, n); };
    ctx_ = const_cast<void*>(static_cast<const void*>(&f));
    pending_.store(n_threads_ - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    f(0, n_threads_);
    while (pending_.load(std::memory_order_acquire) != 0) detail::cpu_relax();
  }

  // f(begin, end) over [0, n) split into size() contiguous ranges (empty ranges are skipped).
  template <class F>
  void parallel_for(std::int64_t n, F&& f) {
    if (n <= 0) return;
    const int used = int(std::min<std::int64_t>(n, n_threads_));
    if (used == 1) { f(std::int64_t(0), n); return; }
    run([&](int i, int) {
      if (i >= used) return;
      const std::int64_t b = n * i / used, e = n * (i + 1) / used;
      f(b, e);
    });
  }

 private:
  void worker_loop(int index) {
    std::uint32_t seen = generation_.load(std::memory_order_acquire);
    for (;;) {
      // Spin, then sleep until the generation moves.
      const auto t0 = std::chrono::steady_clock::now();
      std::uint32_t g = generation_.load(std::memory_order_acquire);
      for (int k = 0; g == seen; ++k) {
        detail::cpu_relax();
        if ((k & 63) == 63 && std::chrono::steady_clock::now() - t0 > std::chrono::microseconds(spin_us_)) {
          generation_.wait(seen, std::memory_order_acquire);
        }
        g = generation_.load(std::memory_order_acquire);
      }
      seen = g;
      if (stop_.load(std::memory_order_relaxed)) return;
      fn_(ctx_, index, n_threads_);
      pending_.fetch_sub(1, std::memory_order_release);
    }
  }

  const int n_threads_;
  const int spin_us_;
  std::vector<std::thread> workers_;
  void (*fn_)(void*, int, int) = nullptr;
  void* ctx_ = nullptr;
  alignas(64) std::atomic<std::uint32_t> generation_{0};
  alignas(64) std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace gemmaforge::cpu
