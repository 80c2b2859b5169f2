#pragma once
// Which x86 vector ISA the CPU kernels use, decided once per process.
//   scalar : portable C++, the reference schedule (any CPU, also non-x86).
//   avx2   : x86-64-v3: AVX2 + FMA + F16C (Haswell, Zen 1 and later).
//   avx512 : AVX-512 F/BW/VL/DQ + VNNI + BF16 (Zen 4, Sapphire Rapids, Cooper Lake) — the set the
//            GF_TARGET_AVX512 attribute compiles for, so a CPU with only part of it gets avx2.
// GEMMAFORGE_CPU_ISA=scalar|avx2|avx512 lowers the choice (for tests and comparisons); asking for
// more than the CPU has is clamped to what it has. Kernels also take an explicit cpu_isa so a test
// can run every available variant in one process.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <gemmaforge/core/macros.hpp>

#if GF_X86
#include <cpuid.h>
#endif

namespace gemmaforge::cpu {

enum class cpu_isa : std::uint8_t { scalar = 0, avx2 = 1, avx512 = 2 };

constexpr std::string_view to_string(cpu_isa isa) {
  switch (isa) {
    case cpu_isa::scalar: return "scalar";
    case cpu_isa::avx2: return "avx2";
    case cpu_isa::avx512: return "avx512";
  }
  return "?";
}

constexpr bool parse_cpu_isa(std::string_view s, cpu_isa& out) {
  for (cpu_isa i : {cpu_isa::scalar, cpu_isa::avx2, cpu_isa::avx512})
    if (s == to_string(i)) { out = i; return true; }
  return false;
}

struct cpu_features {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512_vnni = false, avx512_bf16 = false;
  bool os_ymm = false, os_zmm = false;  // the OS saves the AVX / AVX-512 register state

  constexpr bool has_avx2_tier() const { return os_ymm && avx2 && fma && f16c; }
  constexpr bool has_avx512_tier() const {
    return has_avx2_tier() && os_zmm && avx512f && avx512bw && avx512vl && avx512dq && avx512_vnni && avx512_bf16;
  }
  constexpr cpu_isa best() const {
    return has_avx512_tier() ? cpu_isa::avx512 : has_avx2_tier() ? cpu_isa::avx2 : cpu_isa::scalar;
  }
};

namespace detail {
inline cpu_features detect_cpu_features() {
  cpu_features f;
#if GF_X86
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
  f.fma = (c >> 12) & 1;
  f.f16c = (c >> 29) & 1;
  if (osxsave && avx) {
    unsigned xcr0_lo = 0, xcr0_hi = 0;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    f.os_ymm = (xcr0_lo & 0x6u) == 0x6u;     // SSE + AVX state
    f.os_zmm = (xcr0_lo & 0xe6u) == 0xe6u;   // + opmask, ZMM_Hi256, Hi16_ZMM
  }
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = (b >> 5) & 1;
    f.avx512f = (b >> 16) & 1;
    f.avx512dq = (b >> 17) & 1;
    f.avx512bw = (b >> 30) & 1;
    f.avx512vl = (b >> 31) & 1;
    f.avx512_vnni = (c >> 11) & 1;
  }
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx512_bf16 = (a >> 5) & 1;
#endif
  return f;
}
}  // namespace detail

// The CPU's features, detected once.
inline const cpu_features& host_cpu_features() {
  static const cpu_features f = detail::detect_cpu_features();
  return f;
}

inline bool cpu_isa_supported(cpu_isa isa) { return static_cast<int>(isa) <= static_cast<int>(host_cpu_features().best()); }

// The ISA kernels use by default: the best supported, lowered by GEMMAFORGE_CPU_ISA. Read once.
inline cpu_isa default_cpu_isa() {
  static const cpu_isa isa = [] {
    cpu_isa best = host_cpu_features().best();
    if (const char* env = std::getenv("GEMMAFORGE_CPU_ISA")) {
      cpu_isa want;
      if (parse_cpu_isa(env, want) && static_cast<int>(want) < static_cast<int>(best)) best = want;
    }
    return best;
  }();
  return isa;
}

// A requested ISA clamped to what this CPU supports.
inline cpu_isa clamp_cpu_isa(cpu_isa want) { return cpu_isa_supported(want) ? want : host_cpu_features().best(); }

}  // namespace gemmaforge::cpu
