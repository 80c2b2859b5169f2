#pragma once
// Shared device helpers of the CUDA backend: the canonical 16-lane reduction on a half-warp,
// exact scalar conversions with hardware instructions, read-only vector loads, launch checks.
//
// Numerics. Every kernel follows math/'s operation order (math/reduce.hpp: element i goes to lane
// i % 16, lanes summed by the tree l += l + 8, l += l + 4, l += l + 2, l += l + 1). The 16 lanes
// of a half-warp hold the 16 canonical lanes naturally, so the tree is four shuffles. The build
// compiles device code with --fmad=false (CMakeLists.txt) so that a * b + c is never fused behind
// our back; where an fma is part of the canonical order the code calls fmaf explicitly.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <type_traits>

#include <gemmaforge/core/dtype.hpp>
#include <gemmaforge/core/error.hpp>
#include <gemmaforge/core/macros.hpp>

namespace gemmaforge::cuda {

inline constexpr unsigned full_warp_mask = 0xffffffffu;
inline constexpr int warp_size = 32;

namespace detail {

constexpr int ceil_div(int a, int b) { return (a + b - 1) / b; }
constexpr std::int64_t ceil_div64(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// ------------------------------------------------------------------ canonical reductions
// tree_sum16 over the 16 lanes of each half-warp: lane l (threadIdx.x % 16) holds lane[l]; lane 0
// of each half-warp ends with math::tree_sum16 of its half, bit for bit. Every thread of the warp
// must call it (full mask).
__device__ __forceinline__ float half_warp_tree_sum16(float v) {
  v = __fadd_rn(v, __shfl_down_sync(full_warp_mask, v, 8, 16));
  v = __fadd_rn(v, __shfl_down_sync(full_warp_mask, v, 4, 16));
  v = __fadd_rn(v, __shfl_down_sync(full_warp_mask, v, 2, 16));
  v = __fadd_rn(v, __shfl_down_sync(full_warp_mask, v, 1, 16));
  return v;
}

// Max over the 16 lanes of a half-warp, result in every lane (max is exact in any order).
__device__ __forceinline__ float half_warp_max(float v) {
  for (int o = 8; o >= 1; o /= 2) v = fmaxf(v, __shfl_xor_sync(full_warp_mask, v, o, 16));
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o >= 1; o /= 2) v = fmaxf(v, __shfl_xor_sync(full_warp_mask, v, o));
  return v;
}

__device__ __forceinline__ int warp_sum_int(int v) {
  for (int o = 16; o >= 1; o /= 2) v += __shfl_xor_sync(full_warp_mask, v, o);
  return v;
}

// Local tree over N lanes held by one thread: the in-register tail of tree_sum16 once the lanes
// owned by other threads have been folded in. N = 16 is math::tree_sum16 itself.
// (Written as template recursion so that every loop has a constant trip count: the unroller then
// keeps the lanes in registers instead of demoting the array to local memory.)
template <int N>
__device__ __forceinline__ float local_tree(float* lane) {
  static_assert(N >= 1 && (N & (N - 1)) == 0, "power of two lanes");
  if constexpr (N == 1) {
    return lane[0];
  } else {
#pragma unroll
    for (int l = 0; l < N / 2; ++l) lane[l] = __fadd_rn(lane[l], lane[l + N / 2]);
    return local_tree<N / 2>(lane);
  }
}

// One cross-thread step of the tree (w >= LPT): thread t adds thread t + W / LPT's lanes.
template <int LPT, int W>
__device__ __forceinline__ void cross_tree_steps(float* lane) {
  if constexpr (W >= LPT) {
#pragma unroll
    for (int l = 0; l < LPT; ++l)
      lane[l] = __fadd_rn(lane[l], __shfl_down_sync(full_warp_mask, lane[l], W / LPT, 16 / LPT));
    cross_tree_steps<LPT, W / 2>(lane);
  }
}

// The canonical tree when each of TPO consecutive threads (TPO = 16 / LPT, a power of two) owns
// LPT contiguous canonical lanes: thread t holds lanes [t * LPT, (t + 1) * LPT). Steps w >= LPT
// cross threads (thread t adds thread t + w / LPT's values), steps w < LPT stay in registers.
// The result is valid in the first thread of each TPO group. All threads of the warp call it.
template <int LPT>
// cppcheck-suppress unusedFunction ; called with explicit template arguments, which cppcheck does not read as a call
__device__ __forceinline__ float grouped_tree_sum16(float* lane) {
  static_assert(LPT >= 1 && LPT <= 16 && (16 % LPT) == 0, "lanes per thread must divide 16");
  cross_tree_steps<LPT, 8>(lane);
  return local_tree<LPT>(lane);
}

// ------------------------------------------------------------------------ conversions
// Exact conversions through the hardware: equal to gf::to_float for every input (bf16 is the high
// half of an f32; f16 -> f32 is exact, subnormals included, in cvt.f32.f16).
__device__ __forceinline__ float bf16_bits_to_float(std::uint32_t bits16) { return __uint_as_float(bits16 << 16); }
__device__ __forceinline__ float f16_bits_to_float(std::uint16_t bits16) { return __half2float(__ushort_as_half(bits16)); }

// --------------------------------------------------------------------- read-only loads
__device__ __forceinline__ uint4 ldg16(const void* p) { return __ldg(static_cast<const uint4*>(p)); }
__device__ __forceinline__ uint2 ldg8(const void* p) { return __ldg(static_cast<const uint2*>(p)); }
__device__ __forceinline__ std::uint32_t ldg4(const void* p) { return __ldg(static_cast<const unsigned int*>(p)); }
__device__ __forceinline__ std::uint16_t ldg2(const void* p) { return __ldg(static_cast<const unsigned short*>(p)); }
__device__ __forceinline__ float4 ldg_f4(const float* p) { return __ldg(reinterpret_cast<const float4*>(p)); }

// Four bytes from a 2-byte aligned address (GGUF's q8_0/q5_0/q6_k blocks are 34/22/210 bytes long,
// so only 2-byte alignment is guaranteed inside a row).
__device__ __forceinline__ std::uint32_t ldg4_a2(const std::byte* p) {
  return std::uint32_t(ldg2(p)) | (std::uint32_t(ldg2(p + 2)) << 16);
}

// -------------------------------------------------------------------- launch checking
// Kernel launches report configuration errors through cudaGetLastError; launchers turn that into a
// gf::status (never throw: launchers are noexcept and may run inside graph capture).
// cudaGetLastError also clears the error, so the cause is kept here (per thread) for the message
// that cuda::throw_if_failed builds: a first GPU run must say "too many resources requested for
// launch", not only "CUDA error".
inline cudaError_t& last_launch_error() noexcept {
  thread_local cudaError_t e = cudaSuccess;
  return e;
}
inline status launch_status() noexcept {
  const cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) return status::ok;
  last_launch_error() = e;
  return status::cuda_error;
}

// Raise a kernel's dynamic shared-memory limit once per instantiation (sm_89 allows 99 KiB per
// block, sm_90 227 KiB). Must run outside graph capture: launchers call it on their first eager use.
template <class Kernel>
inline status allow_dynamic_smem(Kernel kernel, int bytes) noexcept {
  if (bytes <= 48 * 1024) return status::ok;
  const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  if (e == cudaSuccess) return status::ok;
  last_launch_error() = e;
  return status::cuda_error;
}

}  // namespace detail

// gf::throw_if_failed plus the CUDA cause of a cuda_error (detail::launch_status kept it). The
// launchers' callers in this namespace pass a string literal, for which this overload is the better
// match than gemmaforge::throw_if_failed(status, std::string_view) (found by ADL).
inline void throw_if_failed(status s, const char* what) {
  if (s == status::ok) return;
  if (s != status::cuda_error) gemmaforge::throw_if_failed(s, what);
  cudaError_t& e = detail::last_launch_error();
  const cudaError_t cause = e;
  e = cudaSuccess;
  throw error(errc::cuda, std::string(what) + ": " + std::string(to_string(s)) +
                              (cause != cudaSuccess ? std::string(" (") + cudaGetErrorName(cause) + ": " +
                                                          cudaGetErrorString(cause) + ")"
                                                    : std::string()));
}

}  // namespace gemmaforge::cuda
