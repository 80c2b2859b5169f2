# cmake -P script behind the compile-fail tests (see tests.cmake).
#   -DCXX=<compiler> -DINCLUDE_DIR=<include> -DSOURCE=<file.cpp> -DEXPECT=fail|pass [-DREGEX=<regex>]
# Compiles SOURCE with -fsyntax-only. EXPECT=fail: the compiler must fail AND its output must
# match REGEX (the numbers the diagnostic promises), so an unrelated error (a typo, a missing
# header) cannot pass as the refusal we test for. EXPECT=pass: it must compile.
execute_process(
  COMMAND "${CXX}" -std=c++20 -fsyntax-only "-I${INCLUDE_DIR}" "${SOURCE}"
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err)
set(log "${out}${err}")
if(EXPECT STREQUAL "pass")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "expected ${SOURCE} to compile, it failed (${rc}):\n${log}")
  endif()
  message(STATUS "compiled, as expected: ${SOURCE}")
elseif(EXPECT STREQUAL "fail")
  if(rc EQUAL 0)
    message(FATAL_ERROR "expected ${SOURCE} NOT to compile, but it compiled")
  endif()
  if(NOT log MATCHES "${REGEX}")
    message(FATAL_ERROR "${SOURCE} failed to compile, but its diagnostic does not match '${REGEX}':\n${log}")
  endif()
  message(STATUS "refused, as expected, with a diagnostic matching '${REGEX}': ${SOURCE}")
else()
  message(FATAL_ERROR "EXPECT must be fail or pass, got '${EXPECT}'")
endif()
