# Layering: the arrows between include/gemmaforge/ folders run one way. The scheduler (runtime/)
# sits on top: the step contract (step/), the backends and the tokenizer never include it.
# check_layers.cmake greps the #include lines, so a new backward include fails here, not in review.
add_test(NAME layering.nothing_below_includes_runtime
  COMMAND ${CMAKE_COMMAND} "-DINCLUDE_DIR=${PROJECT_SOURCE_DIR}/include/gemmaforge"
          -P "${CMAKE_CURRENT_LIST_DIR}/check_layers.cmake")
set_tests_properties(layering.nothing_below_includes_runtime PROPERTIES LABELS "cpu;layering" TIMEOUT 60)
