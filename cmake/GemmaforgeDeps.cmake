# Dependencies of the programs built on gemmaforge, found the normal way (Debian packages).
# Nothing is downloaded. A missing optional dependency turns off the part that needs it, loudly.
include_guard(GLOBAL)
find_package(PkgConfig QUIET)

macro(gf_report_missing what needed_for package)
  message(WARNING "gemmaforge: ${what} not found: ${needed_for} will not be built. "
                  "Install the Debian package '${package}' (./scripts/setup does).")
endmacro()

# sentencepiece (tokenizer): pkg-config only on Debian.
set(GF_HAVE_SENTENCEPIECE OFF)
if(PkgConfig_FOUND)
  pkg_check_modules(SENTENCEPIECE IMPORTED_TARGET sentencepiece)
  if(SENTENCEPIECE_FOUND)
    set(GF_HAVE_SENTENCEPIECE ON)
    add_library(gemmaforge_sentencepiece INTERFACE)  # internal alias used by tests and programs
    target_link_libraries(gemmaforge_sentencepiece INTERFACE PkgConfig::SENTENCEPIECE)
  endif()
endif()
if(NOT GF_HAVE_SENTENCEPIECE)
  gf_report_missing("sentencepiece" "the tokenizer and every program that tokenizes text" "libsentencepiece-dev")
endif()

# CLI11 (command lines of the examples).
find_package(CLI11 CONFIG QUIET)
set(GF_HAVE_CLI11 ${CLI11_FOUND})
if(NOT CLI11_FOUND)
  gf_report_missing("CLI11" "the example programs" "libcli11-dev")
endif()

# fmt (libstdc++ 12 has no <format>).
find_package(fmt CONFIG QUIET)
set(GF_HAVE_FMT ${fmt_FOUND})
if(NOT fmt_FOUND)
  gf_report_missing("fmt" "the example programs" "libfmt-dev")
endif()

# nlohmann-json (safetensors headers, config.json, the server, --json output).
find_package(nlohmann_json CONFIG QUIET)
set(GF_HAVE_JSON ${nlohmann_json_FOUND})
if(NOT nlohmann_json_FOUND)
  gf_report_missing("nlohmann-json" "the safetensors reader, --json output and the server" "nlohmann-json3-dev")
endif()

# Boost.Beast + Boost.Asio (the OpenAI-compatible server's HTTP transport): header-only, from
# Debian's libboost1.81-dev (1.74 lacks nothing the server uses, but 1.81 is what scripts/setup installs).
find_package(Boost 1.74 QUIET)
set(GF_HAVE_BEAST OFF)
if(Boost_FOUND AND EXISTS "${Boost_INCLUDE_DIRS}/boost/beast/http/parser.hpp")
  set(GF_HAVE_BEAST ON)
endif()
if(NOT GF_HAVE_BEAST)
  gf_report_missing("Boost.Beast" "gemmaforge-serve" "libboost1.81-dev")
endif()

# Catch2 v2 (tests) and Google Benchmark (bench/).
if(GEMMAFORGE_BUILD_TESTS)
  find_package(Catch2 2 CONFIG QUIET)
  if(NOT Catch2_FOUND)
    gf_report_missing("Catch2 v2" "the test suite" "catch2")
    set(GEMMAFORGE_BUILD_TESTS OFF)
  endif()
endif()
if(GEMMAFORGE_BUILD_BENCH)
  find_package(benchmark CONFIG QUIET)
  if(NOT benchmark_FOUND)
    gf_report_missing("Google Benchmark" "bench/" "libbenchmark-dev")
    set(GEMMAFORGE_BUILD_BENCH OFF)
  endif()
endif()
