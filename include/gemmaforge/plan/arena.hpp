#pragma once
// arena_layout: the named regions of a deployment's memory, with their exact sizes and offsets.
// plan/arena_layout.hpp fills one for (Model, backend, serving_config); the planner sums it and
// the engine and executors carve their buffers from it and from nothing else (CUB's rule: the
// code that sizes scratch is the code that uses it, here by name).
//
// Two memory spaces:
//   arena  the backend's one allocation: host memory on the CPU, device memory on CUDA (where it
//          also holds the weights)
//   host   host staging a GPU backend needs beside its device arena (pinned logits, the step
//          description, the sampler's scratch); the CPU backend has none: everything is in the arena
// Each region starts on a 256-byte boundary (cudaMalloc's alignment, a multiple of every vector
// width the kernels use).
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <gemmaforge/core/error.hpp>
#include <gemmaforge/core/units.hpp>
#include <gemmaforge/plan/serving_config.hpp>

namespace gemmaforge {

enum class backend_kind : std::uint8_t { cpu, cuda };
constexpr std::string_view to_string(backend_kind b) { return b == backend_kind::cpu ? "cpu" : "cuda"; }

enum class memory_space : std::uint8_t { arena, host };

inline constexpr std::uint64_t arena_alignment = 256;

struct arena_region {
  std::string_view name;
  memory_space space = memory_space::arena;
  std::uint64_t bytes = 0;   // exact size
  std::uint64_t offset = 0;  // from the start of its space, arena_alignment aligned
};

// The bases of the two spaces once a backend has allocated them (host is null on the CPU).
struct arena_memory {
  std::byte* arena = nullptr;
  std::byte* host = nullptr;
};

struct arena_layout {
  static constexpr std::size_t max_regions = 40;

  backend_kind backend = backend_kind::cpu;
  serving_config config{};  // the limits it was made for
  std::array<arena_region, max_regions> regions{};
  std::size_t count = 0;
  std::uint64_t arena_bytes = 0;  // the arena space: the one allocation
  std::uint64_t host_bytes = 0;   // the host staging space (0 on the CPU)

  // Limits derived once from the config, read by everyone who carves.
  std::uint64_t step_tokens = 0;    // T: rows of one step
  std::uint64_t logits_rows = 0;    // L: logits rows of one step
  std::uint64_t global_blocks = 0;  // KV blocks of the global-layer pool
  std::uint64_t ring_blocks = 0;    // per local layer and sequence (or prefix snapshot)

  constexpr void add(std::string_view name, std::uint64_t bytes, memory_space space = memory_space::arena) {
    if (count == max_regions) throw error(errc::internal, "arena_layout: more regions than max_regions");
    std::uint64_t& end = space == memory_space::arena ? arena_bytes : host_bytes;
    regions[count++] = arena_region{name, space, bytes, end};
    end += round_up(bytes, arena_alignment);
  }

  constexpr const arena_region* find(std::string_view name) const {
    for (std::size_t i = 0; i < count; ++i)
      if (regions[i].name == name) return &regions[i];
    return nullptr;
  }
  // The region called `name`; a name the layout does not have is a bug in the carving code.
  constexpr const arena_region& at(std::string_view name) const {
    const arena_region* r = find(name);
    if (r == nullptr) throw error(errc::internal, "arena_layout: no region named " + std::string(name));
    return *r;
  }
  // By index, not through find(): comparing a pointer into a static constexpr layout with null is
  // not a constant expression under GCC's sanitizers (the ASan pass's static_asserts use this).
  constexpr std::uint64_t bytes(std::string_view name) const {
    for (std::size_t i = 0; i < count; ++i)
      if (regions[i].name == name) return regions[i].bytes;
    return 0;
  }
  constexpr std::uint64_t total() const { return arena_bytes + host_bytes; }

  // Where a region lives, given the bases of the two spaces.
  template <class T = std::byte>
  T* pointer(std::string_view name, std::byte* arena_base, std::byte* host_base = nullptr) const {
    const arena_region& r = at(name);
    std::byte* base = r.space == memory_space::arena ? arena_base : host_base;
    if (base == nullptr) throw error(errc::internal, "arena_layout: region " + std::string(name) + " has no memory");
    return reinterpret_cast<T*>(base + r.offset);
  }
};

}  // namespace gemmaforge
