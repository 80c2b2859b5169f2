# Consumer test: install this build into a scratch prefix, configure and build tests/consumer
# against it with find_package(gemmaforge), and run the result.
if(GEMMAFORGE_SANITIZE)
  return()  # nothing to instrument: see GF_SANITIZE_TEST_SPEC in tests/CMakeLists.txt
endif()
add_test(NAME consumer_find_package
  COMMAND ${CMAKE_COMMAND}
    -DGF_BUILD_DIR=${PROJECT_BINARY_DIR}
    -DGF_SOURCE_DIR=${CMAKE_CURRENT_LIST_DIR}
    -DGF_WORK_DIR=${PROJECT_BINARY_DIR}/consumer_test
    -DGF_GENERATOR=${CMAKE_GENERATOR}
    -DGF_CXX_COMPILER=${CMAKE_CXX_COMPILER}
    -DGF_MINIMAL_DIR=$<$<BOOL:${GF_HAVE_SENTENCEPIECE}>:${PROJECT_SOURCE_DIR}/examples/minimal>
    -P ${CMAKE_CURRENT_LIST_DIR}/run_consumer.cmake)
set_tests_properties(consumer_find_package PROPERTIES LABELS "cpu;consumer;model" TIMEOUT 900)

# A CPU-only configure of this tree (as on a machine without nvcc) must work too: configure with
# GEMMAFORGE_CUDA=OFF, install, and build the consumer against that.
add_test(NAME cpu_only_configure
  COMMAND ${CMAKE_COMMAND}
    -DGF_SOURCE_ROOT=${PROJECT_SOURCE_DIR}
    -DGF_SOURCE_DIR=${CMAKE_CURRENT_LIST_DIR}
    -DGF_WORK_DIR=${PROJECT_BINARY_DIR}/cpu_only_test
    -DGF_GENERATOR=${CMAKE_GENERATOR}
    -DGF_CXX_COMPILER=${CMAKE_CXX_COMPILER}
    -P ${CMAKE_CURRENT_LIST_DIR}/run_cpu_only.cmake)
set_tests_properties(cpu_only_configure PROPERTIES LABELS "cpu;consumer" TIMEOUT 600)
