#pragma once
// Byte-size units. Binary units (KiB = 1024 B) everywhere: nvidia-smi and CUDA report MiB.
#include <cstdint>
#include <cstdio>
#include <string>

namespace gemmaforge {

inline constexpr std::uint64_t KiB = 1024ull;
inline constexpr std::uint64_t MiB = 1024ull * KiB;
inline constexpr std::uint64_t GiB = 1024ull * MiB;

constexpr std::uint64_t operator""_KiB(unsigned long long v) { return v * KiB; }
constexpr std::uint64_t operator""_MiB(unsigned long long v) { return v * MiB; }
constexpr std::uint64_t operator""_GiB(unsigned long long v) { return v * GiB; }

constexpr double to_mib(std::uint64_t bytes) { return static_cast<double>(bytes) / static_cast<double>(MiB); }
constexpr double to_gib(std::uint64_t bytes) { return static_cast<double>(bytes) / static_cast<double>(GiB); }

constexpr std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return (a + b - 1) / b; }
constexpr std::uint64_t round_up(std::uint64_t a, std::uint64_t b) { return ceil_div(a, b) * b; }

// "16284.3 MiB" / "3.5 GiB" / "512 B": human-readable, used by the plan report and load logs.
inline std::string format_bytes(std::uint64_t bytes) {
  char buf[64];
  if (bytes >= 10 * GiB)
    std::snprintf(buf, sizeof buf, "%.2f GiB", to_gib(bytes));
  else if (bytes >= MiB)
    std::snprintf(buf, sizeof buf, "%.1f MiB", to_mib(bytes));
  else if (bytes >= KiB)
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / KiB);
  else
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  return buf;
}

}  // namespace gemmaforge
