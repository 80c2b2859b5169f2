#pragma once
// A small persistent thread pool for the CPU kernels.
//   thread_pool pool(n);                  n threads in all: the caller plus n - 1 workers
//   pool.parallel_for(n, f);              f(begin, end) over [0, n) cut into size() contiguous parts
//   pool.parallel_for(n, grain, f);       the same with parts of `grain` items (load balancing)
//   pool.run(f);                          f(part, size()) for part = 0 .. size() - 1
// The partition of the work is deterministic (it depends on n, grain and size() only); which
// thread executes a part is not: the caller and the workers claim parts from an atomic counter.
// That keeps a call fast when a worker is descheduled on a busy machine (the caller just takes
// the remaining parts) and costs nothing in reproducibility: every kernel computes an output
// element the same way whichever thread runs it.
// A call allocates nothing: the task is a (function pointer, context pointer) pair pointing at
// the caller's stack. Idle workers spin for spin_us after the last task (decode issues a few
// hundred tasks per token, microseconds apart), then sleep on a futex. A job wakes sleepers only
// when some are asleep, so a busy decode loop makes no system calls. A parallel_for of 16 parts
// costs ~1.6 us on the 2-core EPYC (measured with empty tasks).
// Tasks must not throw and must not call back into the same pool; one caller at a time.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#include <gemmaforge/backend/cpu/x86_intrin.hpp>
#include <gemmaforge/core/error.hpp>
#include <gemmaforge/core/macros.hpp>

#if defined(__linux__)
#include <climits>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#include <condition_variable>
#include <mutex>
#endif

namespace gemmaforge::cpu {

namespace detail {
inline void cpu_relax() {
#if GF_X86
  _mm_pause();
#endif
}

// Sleep while *word == expected / wake all sleepers of word.
class futex_word {
 public:
  std::atomic<std::uint32_t> value{0};
#if defined(__linux__)
  void wait(std::uint32_t expected) {
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&value), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
  }
  void wake_all() {
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&value), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
  }
#else
  void wait(std::uint32_t expected) {
    std::unique_lock<std::mutex> lock(m_);
    cv_.wait(lock, [&] { return value.load() != expected; });
  }
  void wake_all() {
    { std::lock_guard<std::mutex> lock(m_); }
    cv_.notify_all();
  }
 private:
  std::mutex m_;
  std::condition_variable cv_;
#endif
};
}  // namespace detail

class thread_pool {
 public:
  explicit thread_pool(int n_threads = 1, int spin_us = 100)
      : n_threads_(std::max(1, n_threads)), spin_us_(spin_us) {
    workers_.reserve(std::size_t(n_threads_ - 1));
    // Workers start from generation 0 as constructed, not from what they read once running: a
    // pool destroyed before a worker got scheduled must still be seen as a change.
    try {
      for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this] { worker_loop(0); });
    } catch (...) {
      // A thread that cannot start (EAGAIN: thread count or memory limits) must not leave the
      // ones that did running: the destructor does not run for a half-built pool, and destroying
      // a joinable std::thread calls std::terminate.
      stop_and_join();
      try {
        throw;
      } catch (const std::system_error& e) {
        throw error(errc::out_of_memory, "thread_pool: cannot start thread " + std::to_string(workers_.size() + 2) + " of " +
                                             std::to_string(n_threads_) + ": " + e.what() + " (use fewer threads)");
      }
    }
  }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;
  ~thread_pool() { stop_and_join(); }

  int size() const { return n_threads_; }

  static constexpr int max_parts = (1 << 20) - 1;

  // f(part, n_parts) for every part in [0, n_parts), n_parts <= max_parts; returns when all are done.
  template <class F>
  void run_parts(int n_parts, F&& f) {
    if (n_parts <= 0) return;
    if (n_threads_ == 1 || n_parts == 1) {
      for (int i = 0; i < n_parts; ++i) f(i, n_parts);
      return;
    }
    using Fn = std::remove_reference_t<F>;
    fn_ = [](void* ctx, int i, int n) { (*static_cast<Fn*>(ctx))(i, n); };
    ctx_ = const_cast<void*>(static_cast<const void*>(&f));
    done_.store(0, std::memory_order_relaxed);
    const std::uint32_t g = (generation_.value.load(std::memory_order_relaxed) + 1) & gen_mask;
    work_.store(pack(g, std::uint32_t(n_parts), 0), std::memory_order_release);
    // seq_cst store then load pairs with the sleeper's increment then futex check: either we see
    // the sleeper and wake it, or its FUTEX_WAIT sees the new generation and returns at once.
    generation_.value.store(g, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) generation_.wake_all();
    work_on(g);
    // Wait for parts other threads claimed: spin briefly, then yield the core (on an
    // oversubscribed machine the worker may need this very core to finish).
    for (int k = 0; done_.load(std::memory_order_acquire) != n_parts; ++k) {
      if (k < 4096) detail::cpu_relax();
      else std::this_thread::yield();
    }
  }

  template <class F>
  void run(F&& f) { run_parts(n_threads_, f); }

  // f(begin, end) over [0, n) cut into size() contiguous parts (empty parts skipped).
  template <class F>
  void parallel_for(std::int64_t n, F&& f) {
    if (n <= 0) return;
    const int parts = int(std::min<std::int64_t>(n, n_threads_));
    run_parts(parts, [&](int i, int np) { f(n * i / np, n * (i + 1) / np); });
  }

  // f(begin, end) over [0, n) in parts of `grain` items (the last may be shorter).
  template <class F>
  void parallel_for(std::int64_t n, std::int64_t grain, F&& f) {
    if (n <= 0) return;
    grain = std::max<std::int64_t>({1, grain, (n + max_parts - 1) / max_parts});
    const int parts = int((n + grain - 1) / grain);
    run_parts(parts, [&](int i, int) { f(i * grain, std::min(n, (i + 1) * grain)); });
  }

 private:
  // The claim word: generation (24 bits) | number of parts (20) | next part (20). Keeping the
  // part count in the same atomic word lets a thread arriving after the job is over fail the
  // claim without reading any other field the caller may already be rewriting.
  static constexpr std::uint32_t gen_mask = (1u << 24) - 1;
  static constexpr std::uint64_t pack(std::uint32_t g, std::uint32_t n, std::uint32_t i) {
    return (std::uint64_t(g) << 40) | (std::uint64_t(n) << 20) | i;
  }

  // Claim and run parts of job g until none are left. fn_/ctx_ are read only after a successful
  // claim: job g cannot finish (and the caller cannot post the next job) before that part is done.
  void work_on(std::uint32_t g) {
    for (;;) {
      std::uint64_t w = work_.load(std::memory_order_acquire);
      std::uint32_t idx, n;
      for (;;) {
        if (std::uint32_t(w >> 40) != g) return;
        n = std::uint32_t(w >> 20) & 0xFFFFFu;
        idx = std::uint32_t(w) & 0xFFFFFu;
        if (idx >= n) return;
        if (work_.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel, std::memory_order_acquire)) break;
      }
      fn_(ctx_, int(idx), int(n));
      done_.fetch_add(1, std::memory_order_release);
    }
  }

  void stop_and_join() {
    stop_.store(true, std::memory_order_relaxed);
    generation_.value.fetch_add(1, std::memory_order_seq_cst);
    generation_.wake_all();
    for (auto& t : workers_) t.join();
  }

  void worker_loop(std::uint32_t seen) {
    for (;;) {
      const auto t0 = std::chrono::steady_clock::now();
      std::uint32_t g = generation_.value.load(std::memory_order_acquire);
      for (int k = 0; g == seen; ++k) {
        detail::cpu_relax();
        if ((k & 63) == 63 && std::chrono::steady_clock::now() - t0 > std::chrono::microseconds(spin_us_)) {
          sleepers_.fetch_add(1, std::memory_order_seq_cst);
          generation_.wait(seen);
          sleepers_.fetch_sub(1, std::memory_order_relaxed);
        }
        g = generation_.value.load(std::memory_order_acquire);
      }
      seen = g;
      if (stop_.load(std::memory_order_relaxed)) return;
      work_on(g & gen_mask);
    }
  }

  const int n_threads_;
  const int spin_us_;
  std::vector<std::thread> workers_;
  void (*fn_)(void*, int, int) = nullptr;
  void* ctx_ = nullptr;
  alignas(64) detail::futex_word generation_;
  alignas(64) std::atomic<int> sleepers_{0};
  alignas(64) std::atomic<std::uint64_t> work_{0};  // pack(generation, parts, next part)
  alignas(64) std::atomic<int> done_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace gemmaforge::cpu
