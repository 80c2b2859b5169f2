#pragma once
// What this process holds, read from /proc/self (Linux): the fault and program tests check that
// failures and shutdowns leave no thread and no file mapping behind.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace gemmaforge::testing {

// Threads of this process (/proc/self/task).
inline int thread_count() {
  int n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

// thread_count() once it has dropped to `expected` (or after ~1 s): a joined thread can linger in
// /proc/self/task for a moment after join() returns (the kernel reaps it just after clearing its tid).
inline int settled_thread_count(int expected) {
  int n = thread_count();
  for (int i = 0; i < 200 && n > expected; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    n = thread_count();
  }
  return n;
}

// Lines of /proc/self/maps that map `path`.
inline int mappings_of(const std::filesystem::path& path) {
  std::ifstream maps("/proc/self/maps");
  const std::string needle = std::filesystem::weakly_canonical(path).string();
  int n = 0;
  for (std::string line; std::getline(maps, line);)
    if (line.find(needle) != std::string::npos) ++n;
  return n;
}

}  // namespace gemmaforge::testing
