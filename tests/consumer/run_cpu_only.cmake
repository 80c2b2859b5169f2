# cmake -P script behind cpu_only_configure: configure gemmaforge with CUDA off (and the heavy
# parts off), install it, and build + run the consumer against that installation.
file(REMOVE_RECURSE "${GF_WORK_DIR}")
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${out}${err}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "cpu-only test step failed (${rc}): ${ARGN}")
  endif()
endfunction()
run(${CMAKE_COMMAND} -S "${GF_SOURCE_ROOT}" -B "${GF_WORK_DIR}/gf" -G "${GF_GENERATOR}" -DGEMMAFORGE_CUDA=OFF
    -DGEMMAFORGE_BUILD_TESTS=OFF -DGEMMAFORGE_BUILD_BENCH=OFF -DGEMMAFORGE_BUILD_EXAMPLES=OFF
    -DCMAKE_CXX_COMPILER=${GF_CXX_COMPILER})
file(READ "${GF_WORK_DIR}/gf/CMakeCache.txt" cache)
if(cache MATCHES "CMAKE_CUDA_COMPILER:[A-Z]*=[^\n]*nvcc")
  message(FATAL_ERROR "GEMMAFORGE_CUDA=OFF still enabled CUDA")
endif()
run(${CMAKE_COMMAND} --install "${GF_WORK_DIR}/gf" --prefix "${GF_WORK_DIR}/prefix")
if(EXISTS "${GF_WORK_DIR}/prefix/lib/cmake/gemmaforge/gemmaforgeTargets.cmake")
  file(READ "${GF_WORK_DIR}/prefix/lib/cmake/gemmaforge/gemmaforgeTargets.cmake" targets)
  if(targets MATCHES "gemmaforge::cuda")
    message(FATAL_ERROR "a CPU-only install exported gemmaforge::cuda")
  endif()
endif()
run(${CMAKE_COMMAND} -S "${GF_SOURCE_DIR}" -B "${GF_WORK_DIR}/consumer" -G "${GF_GENERATOR}"
    -DCMAKE_PREFIX_PATH=${GF_WORK_DIR}/prefix -DCMAKE_CXX_COMPILER=${GF_CXX_COMPILER})
run(${CMAKE_COMMAND} --build "${GF_WORK_DIR}/consumer")
run("${GF_WORK_DIR}/consumer/consumer")
