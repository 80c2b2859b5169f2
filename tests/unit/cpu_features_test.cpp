// ISA detection and the GEMMAFORGE_CPU_ISA override (read once per process, so it is checked by
// running this test binary again with the variable set).
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <gemmaforge/backend/cpu/cpu_features.hpp>

namespace cpu = gemmaforge::cpu;

TEST_CASE("cpu_isa names, tiers and clamping", "[cpu][isa]") {
  for (auto i : {cpu::cpu_isa::scalar, cpu::cpu_isa::avx2, cpu::cpu_isa::avx512}) {
    cpu::cpu_isa back;
    REQUIRE(cpu::parse_cpu_isa(cpu::to_string(i), back));
    REQUIRE(back == i);
  }
  cpu::cpu_isa dummy;
  REQUIRE_FALSE(cpu::parse_cpu_isa("avx1024", dummy));
  const auto& f = cpu::host_cpu_features();
  REQUIRE(cpu::cpu_isa_supported(cpu::cpu_isa::scalar));
  REQUIRE(cpu::cpu_isa_supported(cpu::cpu_isa::avx2) == f.has_avx2_tier());
  REQUIRE(cpu::cpu_isa_supported(cpu::cpu_isa::avx512) == f.has_avx512_tier());
  REQUIRE(cpu::clamp_cpu_isa(cpu::cpu_isa::avx512) == f.best());
  REQUIRE(cpu::clamp_cpu_isa(cpu::cpu_isa::scalar) == cpu::cpu_isa::scalar);
  if (!f.has_avx2_tier()) WARN("this CPU has no AVX2 tier: only the scalar kernels are tested");
}

// Prints the default ISA; run by the test below in a child process.
TEST_CASE("isa probe", "[.isa_probe]") { std::printf("default_isa=%s\n", std::string(cpu::to_string(cpu::default_cpu_isa())).c_str()); }

TEST_CASE("GEMMAFORGE_CPU_ISA lowers the default ISA and cannot raise it", "[cpu][isa]") {
#if defined(__linux__)
  const std::string self = std::string(GF_BIN_DIR) + "/gemmaforge_tests";
  auto probe = [&](const char* value) {
    const std::string cmd = std::string("GEMMAFORGE_CPU_ISA=") + value + " " + self + " '[.isa_probe]' 2>/dev/null";
    std::string out;
    if (FILE* p = popen(cmd.c_str(), "r")) {
      char buf[256];
      while (std::fgets(buf, sizeof buf, p)) out += buf;
      pclose(p);
    }
    const auto at = out.find("default_isa=");
    return at == std::string::npos ? std::string("?") : out.substr(at + 12, out.find('\n', at) - at - 12);
  };
  const std::string best(cpu::to_string(cpu::host_cpu_features().best()));
  REQUIRE(probe("scalar") == "scalar");
  REQUIRE(probe("avx512") == best);  // asking for more than the CPU has gives what it has
  REQUIRE(probe("nonsense") == best);
  if (cpu::cpu_isa_supported(cpu::cpu_isa::avx2)) REQUIRE(probe("avx2") == "avx2");
#else
  WARN("SKIPPED: needs popen");
#endif
}
