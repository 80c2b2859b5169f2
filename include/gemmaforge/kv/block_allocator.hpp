#pragma once
// Fixed-capacity block allocator: a free-list stack and reference counts over block ids
// [0, n_blocks). O(1) allocate / retain / release, no allocation after construction (the two
// arrays are sized once from the plan), and an accounting that tests can check returns to full.
#include <cstdint>
#include <memory>
#include <string>

#include <gemmaforge/core/error.hpp>

namespace gemmaforge {

class block_allocator {
 public:
  block_allocator() = default;
  explicit block_allocator(std::int32_t n_blocks)
      : n_blocks_(n_blocks),
        free_(std::make_unique<std::int32_t[]>(std::size_t(n_blocks))),
        refs_(std::make_unique<std::uint16_t[]>(std::size_t(n_blocks))) {
    if (n_blocks < 0) throw error(errc::invalid_argument, "block_allocator: negative block count");
    // Hand out low ids first (pop from the back): keeps early requests' blocks together.
    for (std::int32_t i = 0; i < n_blocks; ++i) free_[std::size_t(i)] = n_blocks - 1 - i;
    n_free_ = n_blocks;
  }

  std::int32_t total() const { return n_blocks_; }
  std::int32_t free_count() const { return n_free_; }
  std::int32_t used_count() const { return n_blocks_ - n_free_; }

  // Returns -1 when the pool is exhausted (callers reserve before they allocate, so a -1 here is a
  // scheduler bug, which they turn into errc::internal).
  std::int32_t allocate() {
    if (n_free_ == 0) return -1;
    const std::int32_t b = free_[std::size_t(--n_free_)];
    refs_[std::size_t(b)] = 1;
    return b;
  }

  // Another owner of an allocated block (prefix sharing).
  void retain(std::int32_t b) {
    check(b);
    if (refs_[std::size_t(b)] == 0xffff) throw error(errc::capacity, "block_allocator: reference count overflow");
    ++refs_[std::size_t(b)];
  }

  // Drop one reference; the block returns to the free list with its last owner.
  void release(std::int32_t b) {
    check(b);
    if (--refs_[std::size_t(b)] == 0) free_[std::size_t(n_free_++)] = b;
  }

  std::uint16_t ref_count(std::int32_t b) const { return refs_[std::size_t(b)]; }

 private:
  void check(std::int32_t b) const {
    if (b < 0 || b >= n_blocks_ || refs_[std::size_t(b)] == 0)
      throw error(errc::internal, "block_allocator: block " + std::to_string(b) + " is not allocated");
  }

  std::int32_t n_blocks_ = 0;
  std::int32_t n_free_ = 0;
  std::unique_ptr<std::int32_t[]> free_;
  std::unique_ptr<std::uint16_t[]> refs_;
};

}  // namespace gemmaforge
