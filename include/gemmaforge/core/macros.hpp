#pragma once
// The one portability header: every macro of gemmaforge lives here.
// Without nvcc, GF_HOST_DEVICE falls back to plain `inline`, so every math header compiles with a
// host compiler and the CPU tests cover the math the GPU kernels run.

#if defined(__CUDACC__) || defined(__HIPCC__)
#define GF_HOST_DEVICE __host__ __device__ inline
#define GF_DEVICE __device__ inline
#define GF_HOST __host__ inline
#define GF_FORCEINLINE __forceinline__
#else
#define GF_HOST_DEVICE inline
#define GF_DEVICE inline
#define GF_HOST inline
#if defined(__GNUC__) || defined(__clang__)
#define GF_FORCEINLINE inline __attribute__((always_inline))
#else
#define GF_FORCEINLINE inline
#endif
#endif

// True inside device code compilation passes only.
#if defined(__CUDA_ARCH__)
#define GF_DEVICE_CODE 1
#else
#define GF_DEVICE_CODE 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define GF_RESTRICT __restrict__
#define GF_LIKELY(x) __builtin_expect(!!(x), 1)
#define GF_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define GF_RESTRICT
#define GF_LIKELY(x) (x)
#define GF_UNLIKELY(x) (x)
#endif

// x86 SIMD: CPU kernels carry their ISA in a target attribute and are chosen at run time, so the
// baseline binary runs on any x86-64 and still uses AVX-512 where the machine has it.
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__)) && !GF_DEVICE_CODE
#define GF_X86 1
#define GF_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define GF_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512bf16,fma,f16c,avx2")))
#else
#define GF_X86 0
#define GF_TARGET_AVX2
#define GF_TARGET_AVX512
#endif

#define GF_STRINGIFY_IMPL(x) #x
#define GF_STRINGIFY(x) GF_STRINGIFY_IMPL(x)

// Host-side CUDA error check that turns an error into a gf::error with file and line.
// (Defined here so every macro lives in one header; usable only where cuda_runtime.h is included.)
#define GF_CHECK_CUDA(expr)                                                                          \
  do {                                                                                               \
    const auto gf_check_cuda_status_ = (expr);                                                       \
    if (gf_check_cuda_status_ != cudaSuccess)                                                        \
      throw ::gemmaforge::error(::gemmaforge::errc::cuda,                                            \
                                std::string(#expr " failed: ") +                                     \
                                    cudaGetErrorString(gf_check_cuda_status_) +                      \
                                    " at " __FILE__ ":" GF_STRINGIFY(__LINE__));                      \
  } while (0)

// Launcher-side check: returns a gf::status instead of throwing (kernels' host launchers are
// noexcept and report through their return value).
#define GF_RETURN_IF_CUDA_ERROR(expr)                                                                \
  do {                                                                                               \
    const auto gf_ret_cuda_status_ = (expr);                                                         \
    if (gf_ret_cuda_status_ != cudaSuccess) return ::gemmaforge::status::cuda_error;                 \
  } while (0)
