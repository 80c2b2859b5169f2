# Fuzz smoke tests (libFuzzer). Included by tests/CMakeLists.txt.
# The main build uses GCC; libFuzzer needs clang, so each target is built by a separate clang
# invocation inside its test (run_fuzz.cmake: compile when a source or header changed, then
# fuzz for GF_FUZZ_SECONDS from the seed corpus in tests/fuzz/corpus/<target>; any crash,
# sanitizer report, timeout or OOM fails the test). Registered only when clang++ can build a
# -fsanitize=fuzzer binary here; GEMMAFORGE_FUZZ=ON makes a missing toolchain an error.
if(GEMMAFORGE_SANITIZE)
  return()  # nothing to instrument: see GF_SANITIZE_TEST_SPEC in tests/CMakeLists.txt
endif()
set(GF_FUZZ_SECONDS 20 CACHE STRING "Seconds each fuzz smoke test runs")
find_program(GF_FUZZ_CXX NAMES clang++-14 clang++ DOC "clang++ with libFuzzer (libclang-rt-14-dev)")

if(NOT DEFINED CACHE{GF_FUZZ_WORKS})
  set(works OFF)
  if(GF_FUZZ_CXX)
    set(probe_dir "${CMAKE_CURRENT_BINARY_DIR}/fuzz_probe")
    file(MAKE_DIRECTORY "${probe_dir}")
    file(WRITE "${probe_dir}/probe.cpp"
      "#include <cstddef>\n#include <cstdint>\nextern \"C\" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return 0; }\n")
    execute_process(
      COMMAND "${GF_FUZZ_CXX}" -std=c++20 -fsanitize=fuzzer,address,undefined probe.cpp -o probe
      WORKING_DIRECTORY "${probe_dir}" RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
    if(rc EQUAL 0)
      set(works ON)
    endif()
  endif()
  set(GF_FUZZ_WORKS ${works} CACHE INTERNAL "clang++ can build libFuzzer targets")
endif()

if(NOT GF_FUZZ_WORKS)
  if(GEMMAFORGE_FUZZ)
    message(FATAL_ERROR "GEMMAFORGE_FUZZ=ON but '${GF_FUZZ_CXX}' cannot build -fsanitize=fuzzer binaries "
                        "(install clang and libclang-rt-14-dev)")
  endif()
  message(STATUS "gemmaforge: fuzz smoke tests off (no clang++ with -fsanitize=fuzzer)")
  return()
endif()

set(gf_fuzz_targets gguf safetensors chat)
if(GF_HAVE_SENTENCEPIECE)
  list(APPEND gf_fuzz_targets tokenizer)
endif()
if(GF_HAVE_JSON)
  list(APPEND gf_fuzz_targets openai_request)  # the server's request parser (nlohmann-json only)
endif()
foreach(t IN LISTS gf_fuzz_targets)
  set(libs "")
  set(extra_sources "")
  set(extra_includes "")
  if(t STREQUAL "tokenizer")
    set(libs "-lsentencepiece")
  elseif(t STREQUAL "openai_request")
    set(extra_sources "${PROJECT_SOURCE_DIR}/examples/serve/openai_request.cpp|${PROJECT_SOURCE_DIR}/examples/serve/structured_output.cpp|${PROJECT_SOURCE_DIR}/examples/serve/tool_calls.cpp|${PROJECT_SOURCE_DIR}/examples/serve/openai_response.cpp")
    set(extra_includes "${PROJECT_SOURCE_DIR}/examples/serve")
  endif()
  set(dict "")
  if(EXISTS "${CMAKE_CURRENT_LIST_DIR}/${t}.dict")
    set(dict "${CMAKE_CURRENT_LIST_DIR}/${t}.dict")
  endif()
  add_test(NAME fuzz_${t}
    COMMAND ${CMAKE_COMMAND}
      -DCXX=${GF_FUZZ_CXX}
      -DSOURCE=${CMAKE_CURRENT_LIST_DIR}/${t}_fuzz.cpp
      -DINCLUDE_DIR=${PROJECT_SOURCE_DIR}/include
      -DSEEDS=${CMAKE_CURRENT_LIST_DIR}/corpus/${t}
      -DREGRESSIONS=${CMAKE_CURRENT_LIST_DIR}/regressions/${t}
      -DWORK_DIR=${PROJECT_BINARY_DIR}/fuzz/${t}
      -DLIBS=${libs}
      -DEXTRA_SOURCES=${extra_sources}
      -DEXTRA_INCLUDES=${extra_includes}
      -DDICT=${dict}
      -DSECONDS=${GF_FUZZ_SECONDS}
      -P ${CMAKE_CURRENT_LIST_DIR}/run_fuzz.cmake)
  # Compiling with ASan/UBSan takes up to a minute on two cores, then the fuzzing itself.
  # A longer campaign: configure a build dir with -DGF_FUZZ_SECONDS=600, ctest -L fuzz there.
  math(EXPR timeout "${GF_FUZZ_SECONDS} + 900")
  set_tests_properties(fuzz_${t} PROPERTIES LABELS "cpu;fuzz" TIMEOUT ${timeout})
endforeach()
message(STATUS "gemmaforge: fuzz smoke tests: ${gf_fuzz_targets} (${GF_FUZZ_SECONDS} s each, ${GF_FUZZ_CXX})")
