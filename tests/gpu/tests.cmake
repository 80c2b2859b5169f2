# The GPU bundle and gpu-check's first step (label gpu_bundle; a few seconds, no GPU needed).
#   gpu.bundle       scripts/gpu-bundle --no-build packs this build's CUDA binaries into
#                    <build>/gpu-bundle-ctest and checks it: <= 48 MiB, and every shared library
#                    each binary loads resolves in the bundle, a CUDA library folder or glibc.
#                    Skipped (77) when the CUDA binaries are not built.
#   gpu.check_step1  scripts/gpu-check, step 1 only: without a GPU it must report "no usable GPU"
#                    in summary.md and exit 77 (counted as a pass here: that is the behaviour under
#                    test); with a GPU, step 1 must pass.
if(GEMMAFORGE_SANITIZE)
  return()  # nothing to instrument: see GF_SANITIZE_TEST_SPEC in tests/CMakeLists.txt
endif()
set(GF_CTEST_BUNDLE "${PROJECT_BINARY_DIR}/gpu-bundle-ctest")
if(GF_HAVE_CUDA)
  add_test(NAME gpu.bundle COMMAND "${PROJECT_SOURCE_DIR}/scripts/gpu-bundle" --no-build)
  set_tests_properties(gpu.bundle PROPERTIES LABELS "gpu_bundle" SKIP_RETURN_CODE 77 TIMEOUT 300
    ENVIRONMENT "GF_BUILD_DIR=${PROJECT_BINARY_DIR};GF_BUNDLE_DIR=${GF_CTEST_BUNDLE}")
endif()
add_test(NAME gpu.check_step1
  COMMAND bash "${CMAKE_CURRENT_LIST_DIR}/check_step1.sh" "${PROJECT_SOURCE_DIR}" "${GF_CTEST_BUNDLE}"
          "${PROJECT_BINARY_DIR}/gpu-check-ctest")
set_tests_properties(gpu.check_step1 PROPERTIES LABELS "gpu_bundle" TIMEOUT 120)
if(GF_HAVE_CUDA)
  set_tests_properties(gpu.check_step1 PROPERTIES DEPENDS gpu.bundle)
endif()
