#pragma once
// How much memory the host can give a new allocation now: what the CPU arena is checked against
// before it is allocated, the CPU twin of device_arena's cudaMemGetInfo check.
//
// Why check at all: under Linux's default overcommit, aligned_alloc of more than the machine has
// usually succeeds (pages are only reserved), and the arena's memset then faults them in until the
// OOM killer ends the process, with no message. Comparing the plan with what the kernel reports
// first turns that into an error that names both numbers.
//
// Sources, smallest wins:
//  * /proc/meminfo MemAvailable: the kernel's estimate of memory new allocations can take without
//    swapping (free memory + reclaimable page cache and slab; since Linux 3.14);
//    sysinfo() free + buffer RAM where /proc is not mounted;
//  * the cgroup's limit less its usage (v2 memory.max, v1 memory.limit_in_bytes): in a container
//    the limit is often far below the host's MemAvailable, and exceeding it is an OOM kill too;
//  * the process's address-space limit (RLIMIT_AS, `ulimit -v`) less its current size (VmSize):
//    past it every allocation fails. Mapped files count there (the model's weights already do),
//    so this source is conservative by their size.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#if defined(__linux__)
#include <sys/resource.h>
#include <sys/sysinfo.h>
#endif

namespace gemmaforge::cpu {

struct host_memory {
  std::uint64_t available = 0;  // bytes a new allocation can take (meaningful when source is set)
  std::uint64_t total = 0;      // physical memory (MemTotal); 0 = unknown
  std::string source;           // where `available` came from, for messages; empty = unknown
};

namespace detail {

// First unsigned integer on the line of `path` that starts with `key` (e.g. "MemAvailable:"),
// times `scale`; or the whole file's first number when key is empty. false when absent.
inline bool read_number(const char* path, const char* key, std::uint64_t scale, std::uint64_t& out) {
  std::FILE* f = std::fopen(path, "r");
  if (!f) return false;
  char line[256];
  bool found = false;
  const std::size_t klen = std::strlen(key);
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, key, klen) != 0) continue;
    unsigned long long v = 0;
    if (std::sscanf(line + klen, " %llu", &v) == 1) {
      out = std::uint64_t(v) * scale;
      found = true;
    }
    break;
  }
  std::fclose(f);
  return found;
}

}  // namespace detail

inline host_memory query_host_memory() {
  host_memory m;
#if defined(__linux__)
  std::uint64_t v = 0;
  if (detail::read_number("/proc/meminfo", "MemAvailable:", 1024, v)) {
    m.available = v;
    m.source = "MemAvailable in /proc/meminfo";
  } else if (struct sysinfo si{}; ::sysinfo(&si) == 0) {
    m.available = (std::uint64_t(si.freeram) + std::uint64_t(si.bufferram)) * si.mem_unit;
    m.source = "sysinfo free + buffer RAM";
  }
  if (detail::read_number("/proc/meminfo", "MemTotal:", 1024, v)) m.total = v;
  // The container's cgroup as mounted in its namespace: v2 memory.max ("max" reads as no number)
  // or v1 memory.limit_in_bytes (a huge number when unlimited, which the min() ignores).
  // Usage counts page cache; its inactive part is reclaimed before the limit bites, so it is not
  // subtracted (what `docker stats` does too).
  auto cgroup = [&m](const char* limit_path, const char* used_path, const char* stat_path, const char* inactive_key,
                     const char* what) {
    std::uint64_t limit = 0, used = 0, inactive = 0;
    if (!detail::read_number(limit_path, "", 1, limit) || !detail::read_number(used_path, "", 1, used)) return;
    if (detail::read_number(stat_path, inactive_key, 1, inactive)) used = used > inactive ? used - inactive : 0;
    const std::uint64_t left = limit > used ? limit - used : 0;
    if (m.source.empty() || left < m.available) {
      m.available = left;
      m.source = what;
    }
  };
  cgroup("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current", "/sys/fs/cgroup/memory.stat", "inactive_file ",
         "the cgroup's memory.max less its usage");
  cgroup("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes",
         "/sys/fs/cgroup/memory/memory.stat", "total_inactive_file ", "the cgroup's memory.limit_in_bytes less its usage");
  if (struct rlimit rl{}; ::getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    std::uint64_t vm = 0;
    detail::read_number("/proc/self/status", "VmSize:", 1024, vm);
    const std::uint64_t limit = std::uint64_t(rl.rlim_cur);
    const std::uint64_t left = limit > vm ? limit - vm : 0;
    if (m.source.empty() || left < m.available) {
      m.available = left;
      m.source = "the address-space limit (RLIMIT_AS) less the process's size";
    }
  }
#endif
  return m;
}

}  // namespace gemmaforge::cpu
