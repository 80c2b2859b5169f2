# End-to-end tests of the example programs (tests/programs/check_programs.py, one case per test).
find_package(Python3 COMPONENTS Interpreter QUIET)
# They run the programs' twins with the test models (bin/test-models/, examples/CMakeLists.txt):
# the cases use the tiny golden checkpoints as well as the real model.
if(Python3_FOUND AND TARGET gemmaforge-generate-test-models)
  foreach(case generate_tiny generate_real_ids generate_real_text generate_errors engine_errors chat perplexity plan_startup)
    add_test(NAME programs.${case}
      COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/check_programs.py
              ${CMAKE_RUNTIME_OUTPUT_DIRECTORY}/test-models ${CMAKE_CURRENT_LIST_DIR}/.. ${case})
    set_tests_properties(programs.${case} PROPERTIES LABELS "cpu;programs;model" TIMEOUT 900)
  endforeach()
endif()

# open_engine() itself (the library every program links): failed loads leave no thread, mapping or
# leak behind (tests/programs/open_engine_test.cpp).
if(TARGET gemmaforge_programs)
  add_executable(gemmaforge_program_tests "${CMAKE_CURRENT_LIST_DIR}/open_engine_test.cpp"
                 "${CMAKE_CURRENT_LIST_DIR}/../support/catch_main.cpp")
  target_link_libraries(gemmaforge_program_tests PRIVATE gemmaforge_programs gemmaforge_programs_test_models Catch2::Catch2)
  target_compile_definitions(gemmaforge_program_tests PRIVATE GF_TEST_DATA_DIR="${GF_TEST_DATA_DIR}")
  gf_project_warnings(gemmaforge_program_tests)
  catch_discover_tests(gemmaforge_program_tests TEST_SPEC ${GF_CATCH_TEST_SPEC} EXTRA_ARGS ${GF_CATCH_EXTRA_ARGS} PROPERTIES TIMEOUT 300)
endif()
