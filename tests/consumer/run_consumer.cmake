# cmake -P script behind the consumer test (see tests.cmake).
set(prefix "${GF_WORK_DIR}/prefix")
set(build "${GF_WORK_DIR}/build")
file(REMOVE_RECURSE "${GF_WORK_DIR}")
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${out}${err}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer test step failed (${rc}): ${ARGN}")
  endif()
endfunction()
run(${CMAKE_COMMAND} --install "${GF_BUILD_DIR}" --prefix "${prefix}")
run(${CMAKE_COMMAND} -S "${GF_SOURCE_DIR}" -B "${build}" -G "${GF_GENERATOR}"
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${GF_CXX_COMPILER} -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build "${build}")
run("${build}/consumer")

# The README's minimal example, built against the same installed package and run (it needs the
# default model, which scripts/setup installs).
if(GF_MINIMAL_DIR)
  run(${CMAKE_COMMAND} -S "${GF_MINIMAL_DIR}" -B "${GF_WORK_DIR}/minimal" -G "${GF_GENERATOR}"
      -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${GF_CXX_COMPILER} -DCMAKE_BUILD_TYPE=Release)
  run(${CMAKE_COMMAND} --build "${GF_WORK_DIR}/minimal")
  run("${GF_WORK_DIR}/minimal/gemmaforge-minimal")
endif()
