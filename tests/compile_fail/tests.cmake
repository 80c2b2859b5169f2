# Compile-fail tests: translation units that must NOT compile, and the diagnostic each must give.
# Each runs the project's C++ compiler with -fsyntax-only through check_compile.cmake, which
# also checks the error text against a regex holding the numbers at fault (GCC and clang print
# the template arguments as 16384 or 16384UL, hence the [UL]*). plan_seed_fits.cpp must compile:
# the same headers and the same require_fit accept a plan that fits, so the harness is not vacuous.
if(GEMMAFORGE_SANITIZE)
  return()  # nothing to instrument: see GF_SANITIZE_TEST_SPEC in tests/CMakeLists.txt
endif()
set(GF_COMPILE_FAIL_DIR "${CMAKE_CURRENT_LIST_DIR}")

function(gf_compile_test name source expect regex)
  add_test(NAME ${name}
    COMMAND ${CMAKE_COMMAND}
      "-DCXX=${CMAKE_CXX_COMPILER}"
      "-DINCLUDE_DIR=${PROJECT_SOURCE_DIR}/include"
      "-DSOURCE=${GF_COMPILE_FAIL_DIR}/${source}"
      "-DEXPECT=${expect}"
      "-DREGEX=${regex}"
      -P "${GF_COMPILE_FAIL_DIR}/check_compile.cmake")
  set_tests_properties(${name} PROPERTIES LABELS "cpu;compile_fail;plan" TIMEOUT 300)
endfunction()

# openchat-3.5-0106-gemma, 8192 x batch 2, RTX 4090 at 0.90: 16384 tokens needed, 11040 held.
gf_compile_test(compile_fail.plan_kv_pool_too_small plan_kv_pool_too_small.cpp fail
  "kv_pool_too_small<16384[UL]*, 11040[UL]*>")
# Gemma 2 9B at 8192: 2 prefix-cache entries fit, the ring snapshots of a third push it over.
gf_compile_test(compile_fail.plan_prefix_snapshots plan_prefix_snapshots.cpp fail
  "kv_pool_too_small<8192[UL]*, 5152[UL]*>")
# Gemma 3 27B bf16: 51519 MiB of weights against a 21789 MiB budget.
gf_compile_test(compile_fail.plan_weights_exceed_budget plan_weights_exceed_budget.cpp fail
  "weights_exceed_budget<51519[UL]*, 21789[UL]*>")
# block_tokens 24: the config error is named in the instantiated type.
gf_compile_test(compile_fail.plan_invalid_config plan_invalid_config.cpp fail
  "invalid_serving_config<(gemmaforge::)?config_error::block_tokens_not_power_of_two>")
# The seed's case fits: must compile.
gf_compile_test(compile_pass.plan_seed_fits plan_seed_fits.cpp pass "")
