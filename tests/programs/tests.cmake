# End-to-end tests of the example programs (tests/programs/check_programs.py, one case per test).
find_package(Python3 COMPONENTS Interpreter QUIET)
if(Python3_FOUND AND TARGET gemmaforge-generate)
  foreach(case generate_tiny generate_real_ids generate_real_text generate_errors chat perplexity)
    add_test(NAME programs.${case}
      COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/check_programs.py
              ${CMAKE_RUNTIME_OUTPUT_DIRECTORY} ${CMAKE_CURRENT_LIST_DIR}/.. ${case})
    set_tests_properties(programs.${case} PROPERTIES LABELS "cpu;programs;model" TIMEOUT 900)
  endforeach()
endif()
