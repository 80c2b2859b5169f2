# cmake -DINCLUDE_DIR=<repo>/include/gemmaforge -P check_layers.cmake
# Fails, naming each file, when a header below runtime/ includes a runtime/ header.
cmake_minimum_required(VERSION 3.20)
set(below core model step kv math plan io tokenizer backend)
# Known backward arrows still to remove (each is debt, not a rule): the CUDA sampling kernels read
# the request's sampling_params struct.
set(allowed "backend/cuda/sampling.cuh")

set(bad "")
set(checked 0)
foreach(dir IN LISTS below)
  file(GLOB_RECURSE headers RELATIVE "${INCLUDE_DIR}" "${INCLUDE_DIR}/${dir}/*.hpp" "${INCLUDE_DIR}/${dir}/*.cuh")
  foreach(h IN LISTS headers)
    math(EXPR checked "${checked} + 1")
    file(STRINGS "${INCLUDE_DIR}/${h}" hits REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"]gemmaforge/runtime/")
    if(hits AND NOT h IN_LIST allowed)
      list(APPEND bad "${h}: ${hits}")
    endif()
  endforeach()
endforeach()
if(checked EQUAL 0)
  message(FATAL_ERROR "check_layers: no headers found under ${INCLUDE_DIR}")
endif()
if(bad)
  list(JOIN bad "\n  " lines)
  message(FATAL_ERROR "headers below runtime/ include the scheduler's headers:\n  ${lines}")
endif()
message(STATUS "check_layers: ${checked} headers, no include of runtime/ below it")
