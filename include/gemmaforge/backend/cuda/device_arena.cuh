#pragma once
// device_arena: the one cudaMalloc of a deployment, sized by the memory plan (weights + KV pool +
// workspace), carved by a bump allocator. Nothing is freed until the arena dies, and nothing on the
// request path allocates.
//
// Before allocating it compares the request with cudaMemGetInfo, so a plan that does not fit the
// card fails with the numbers ("device arena of 23.61 GiB requested; the device reports 22.87 GiB free
// of 23.64 GiB") instead of a bare cudaErrorMemoryAllocation. A cap can shrink the usable size below
// what the card has: cap = memory_plan<Model, devices::rtx4090, cfg>::arena_bytes emulates a 24 GB
// RTX 4090 deployment on an 80 GB H100 (the arena refuses to grow past what the 4090 would hold).
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include <gemmaforge/core/error.hpp>
#include <gemmaforge/core/macros.hpp>
#include <gemmaforge/core/units.hpp>

namespace gemmaforge::cuda {

inline constexpr std::uint64_t arena_alignment = 256;  // cudaMalloc's alignment; a multiple of every vector width

class device_arena {
 public:
  device_arena() = default;

  // bytes = 0: everything the device reports free, less `default_headroom`, times 9/10.
  // cap_bytes > 0: refuse (errc::out_of_memory) an arena larger than the cap.
  explicit device_arena(std::uint64_t bytes, std::uint64_t cap_bytes = 0, int device = 0) {
    GF_CHECK_CUDA(cudaSetDevice(device));
    std::size_t free_b = 0, total_b = 0;
    GF_CHECK_CUDA(cudaMemGetInfo(&free_b, &total_b));
    if (bytes == 0) {
      bytes = free_b > default_headroom ? (free_b - default_headroom) / 10 * 9 : 0;
      if (cap_bytes > 0 && bytes > cap_bytes) bytes = cap_bytes;
      bytes = bytes / arena_alignment * arena_alignment;
    }
    if (cap_bytes > 0 && bytes > cap_bytes)
      throw error(errc::out_of_memory, "device arena of " + format_bytes(bytes) + " requested, above the cap of " +
                                           format_bytes(cap_bytes) + " (the emulated device's plan)");
    if (bytes == 0 || bytes > free_b)
      throw error(errc::out_of_memory, "device arena of " + format_bytes(bytes) + " requested; the device reports " +
                                           format_bytes(free_b) + " free of " + format_bytes(total_b));
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
      cudaGetLastError();  // clear the sticky-free error state of a failed allocation
      throw error(errc::out_of_memory, "cudaMalloc of the device arena (" + format_bytes(bytes) + ") failed: " +
                                           cudaGetErrorString(e) + "; the device reported " + format_bytes(free_b) +
                                           " free of " + format_bytes(total_b));
    }
    base_ = static_cast<std::byte*>(p);
    capacity_ = bytes;
    device_ = device;
  }

  device_arena(const device_arena&) = delete;
  device_arena& operator=(const device_arena&) = delete;
  device_arena(device_arena&& o) noexcept { swap(o); }
  device_arena& operator=(device_arena&& o) noexcept {
    if (this != &o) {
      release();
      swap(o);
    }
    return *this;
  }
  ~device_arena() { release(); }

  // Bump allocation, 256-byte aligned. `what` names the buffer in the error message.
  std::byte* allocate(std::uint64_t bytes, std::string_view what) {
    const std::uint64_t at = round_up(used_, arena_alignment);
    if (base_ == nullptr || at + bytes > capacity_)
      throw error(errc::out_of_memory, "device arena: " + std::string(what) + " needs " + format_bytes(bytes) + ", " +
                                           format_bytes(capacity_ > at ? capacity_ - at : 0) + " of " +
                                           format_bytes(capacity_) + " left");
    used_ = at + bytes;
    return base_ + at;
  }

  std::byte* base() const { return base_; }
  std::uint64_t capacity() const { return capacity_; }
  std::uint64_t used() const { return used_; }
  std::uint64_t remaining() const {
    const std::uint64_t at = round_up(used_, arena_alignment);
    return at >= capacity_ ? 0 : capacity_ - at;
  }
  int device() const { return device_; }
  bool empty() const { return base_ == nullptr; }

  // Left to the CUDA context, cuBLASLt and graph bookkeeping when the size is automatic
  // (plan/devices.hpp reserves 512 MiB for the same things).
  static constexpr std::uint64_t default_headroom = 512 * MiB;

 private:
  void release() noexcept {
    if (base_) cudaFree(base_);
    base_ = nullptr;
    capacity_ = used_ = 0;
  }
  void swap(device_arena& o) noexcept {
    std::swap(base_, o.base_);
    std::swap(capacity_, o.capacity_);
    std::swap(used_, o.used_);
    std::swap(device_, o.device_);
  }

  std::byte* base_ = nullptr;
  std::uint64_t capacity_ = 0;
  std::uint64_t used_ = 0;
  int device_ = 0;
};

}  // namespace gemmaforge::cuda
