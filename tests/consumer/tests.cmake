# Consumer test: install this build into a scratch prefix, configure and build tests/consumer
# against it with find_package(gemmaforge), and run the result.
add_test(NAME consumer_find_package
  COMMAND ${CMAKE_COMMAND}
    -DGF_BUILD_DIR=${PROJECT_BINARY_DIR}
    -DGF_SOURCE_DIR=${CMAKE_CURRENT_LIST_DIR}
    -DGF_WORK_DIR=${PROJECT_BINARY_DIR}/consumer_test
    -DGF_GENERATOR=${CMAKE_GENERATOR}
    -DGF_CXX_COMPILER=${CMAKE_CXX_COMPILER}
    -P ${CMAKE_CURRENT_LIST_DIR}/run_consumer.cmake)
set_tests_properties(consumer_find_package PROPERTIES LABELS "cpu;consumer" TIMEOUT 600)
