# Warnings for project code (examples, tests, benchmarks). Consumers of the headers get none forced.
include_guard(GLOBAL)

function(gf_project_warnings target)
  # -Wmissing-field-initializers fires on C++20 designated initializers that leave fields at their
  # defaults (GCC 12), which is how configs are meant to be written.
  set(cxx_flags -Wall -Wextra -Wno-unknown-pragmas -Wno-missing-field-initializers)
  if(GEMMAFORGE_WERROR)
    list(APPEND cxx_flags -Werror)
  endif()
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${cxx_flags}>)
  # nvcc: forward the host-compiler warnings, and make device-side warnings errors in CI too.
  set(cuda_flags -Xcompiler=-Wall,-Wextra,-Wno-unknown-pragmas,-Wno-missing-field-initializers)
  if(GEMMAFORGE_WERROR)
    list(APPEND cuda_flags -Werror=all-warnings -Xcompiler=-Werror)
  endif()
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:${cuda_flags}>)
  if(GEMMAFORGE_SANITIZE)
    # GCC 12's -Wmaybe-uninitialized misfires on instrumented code (ASan's shadow checks confuse
    # its flow analysis: std::regex/std::function inside Catch2's main are flagged at -O1);
    # the sanitizer itself checks what that warning guesses at, so it is off in this build only.
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined>
                                             $<$<COMPILE_LANG_AND_ID:CXX,GNU>:-Wno-maybe-uninitialized>)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()
