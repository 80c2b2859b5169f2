// Thread pool: every part runs exactly once, partitions are the documented ones, pools can be
// created and destroyed at once (a worker scheduled after the destructor started must still exit),
// and calls after idle periods (workers asleep on the futex) complete.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <gemmaforge/backend/cpu/thread_pool.hpp>

namespace cpu = gemmaforge::cpu;

TEST_CASE("thread_pool runs every part exactly once with the documented partition", "[cpu][thread_pool]") {
  for (int threads : {1, 2, 3, 5}) {
    cpu::thread_pool pool(threads);
    REQUIRE(pool.size() == threads);
    for (std::int64_t n : {1, 2, 3, 7, 100, 1001}) {
      std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
      std::atomic<int> calls{0}, bad{0};
      pool.parallel_for(n, [&](std::int64_t b, std::int64_t e) {
        // part i of T is [n*i/T, n*(i+1)/T): b must be such a boundary
        bool ok = false;
        const std::int64_t T = std::min<std::int64_t>(n, threads);
        for (std::int64_t i = 0; i < T; ++i) ok |= (b == n * i / T && e == n * (i + 1) / T);
        if (!ok) bad++;
        calls++;
        for (std::int64_t k = b; k < e; ++k) hits[std::size_t(k)]++;
      });
      for (auto& h : hits) REQUIRE(h.load() == 1);
      REQUIRE(bad.load() == 0);
      REQUIRE(calls.load() == int(std::min<std::int64_t>(n, threads)));
      for (std::int64_t grain : {1, 3, 64}) {
        for (auto& h : hits) h = 0;
        std::atomic<int> parts{0}, misplaced{0};  // (Catch2 assertions are not thread-safe: count instead)
        pool.parallel_for(n, grain, [&](std::int64_t b, std::int64_t e) {
          if (b % grain != 0 || e != std::min(n, b + grain)) misplaced++;
          parts++;
          for (std::int64_t k = b; k < e; ++k) hits[std::size_t(k)]++;
        });
        for (auto& h : hits) REQUIRE(h.load() == 1);
        REQUIRE(misplaced.load() == 0);
        REQUIRE(parts.load() == int((n + grain - 1) / grain));
      }
    }
  }
}

TEST_CASE("thread_pool survives immediate destruction and wakes sleeping workers", "[cpu][thread_pool]") {
  for (int i = 0; i < 200; ++i) {
    cpu::thread_pool a(2), b(3);  // destroyed before the workers may even have started
  }
  cpu::thread_pool pool(3, /*spin_us=*/10);
  std::atomic<long> sum{0};
  for (int round = 0; round < 5; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // workers go to sleep
    pool.parallel_for(1000, 10, [&](std::int64_t b, std::int64_t e) { sum += e - b; });
  }
  REQUIRE(sum.load() == 5000);
}
