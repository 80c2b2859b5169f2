# cmake -P script run by the fuzz_<target> tests (see tests.cmake): build the target with clang
# when needed, then fuzz it for SECONDS from the seed corpus. Fails on any finding.
foreach(v CXX SOURCE INCLUDE_DIR SEEDS WORK_DIR SECONDS)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run_fuzz.cmake: -D${v}= is required")
  endif()
endforeach()
get_filename_component(name "${SOURCE}" NAME_WE)
set(bin "${WORK_DIR}/${name}")
file(MAKE_DIRECTORY "${WORK_DIR}")

# EXTRA_SOURCES / EXTRA_INCLUDES ('|'-separated, optional): code outside include/ the target
# links (the server's request parser). DICT (optional): a libFuzzer dictionary of the format's tokens.
string(REPLACE "|" ";" extra_sources "${EXTRA_SOURCES}")
set(extra_include_args "")
string(REPLACE "|" ";" extra_includes "${EXTRA_INCLUDES}")
foreach(d IN LISTS extra_includes)
  list(APPEND extra_include_args -I "${d}")
endforeach()

# Rebuild when the binary is missing or older than the target, its extra sources or any header.
set(rebuild OFF)
if(NOT EXISTS "${bin}")
  set(rebuild ON)
else()
  file(GLOB_RECURSE deps "${INCLUDE_DIR}/gemmaforge/*.hpp")
  set(extra_deps "")
  foreach(d IN LISTS extra_includes)
    file(GLOB_RECURSE more "${d}/*.hpp")
    list(APPEND extra_deps ${more})
  endforeach()
  foreach(d IN LISTS deps extra_deps extra_sources SOURCE)
    if("${d}" IS_NEWER_THAN "${bin}")
      set(rebuild ON)
      break()
    endif()
  endforeach()
endif()
if(rebuild)
  message(STATUS "building ${name} with ${CXX}")
  separate_arguments(lib_args UNIX_COMMAND "${LIBS}")
  execute_process(
    COMMAND "${CXX}" -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
            -I "${INCLUDE_DIR}" ${extra_include_args} "${SOURCE}" ${extra_sources} -o "${bin}" ${lib_args}
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "building ${name} failed (${rc})")
  endif()
endif()

# libFuzzer adds what it finds to the first corpus directory: a scratch copy, never the seeds.
# Past crashes (REGRESSIONS, tests/fuzz/regressions/<target>/) are read like seeds, so each is
# replayed before any mutation: one that crashes again fails the test at once.
set(corpus "${WORK_DIR}/corpus")
file(MAKE_DIRECTORY "${corpus}")
set(extra_corpora "")
if(DEFINED REGRESSIONS AND IS_DIRECTORY "${REGRESSIONS}")
  file(GLOB regression_files "${REGRESSIONS}/*")
  if(regression_files)
    set(extra_corpora "${REGRESSIONS}")
  endif()
endif()
set(dict_args "")
if(DEFINED DICT AND NOT DICT STREQUAL "")
  set(dict_args "-dict=${DICT}")
endif()
execute_process(
  COMMAND "${bin}" "${corpus}" "${SEEDS}" ${extra_corpora} ${dict_args} -max_total_time=${SECONDS} -timeout=20 -rss_limit_mb=2560
          -max_len=65536 -print_final_stats=1 -artifact_prefix=${WORK_DIR}/
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
string(REGEX MATCH "stat::number_of_executed_units: *[0-9]+" runs "${out}")
string(REGEX MATCH "cov: [0-9]+" cov "${out}")
# libFuzzer's last status line: "#N DONE cov: E ft: F corp: U/SIZE ...": edges, features, corpus.
string(REGEX MATCH "DONE +cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*" done "${out}")
if(done)
  string(REGEX REPLACE "DONE +" "" cov "${done}")
endif()
file(GLOB corpus_files "${corpus}/*")
list(LENGTH corpus_files corpus_count)
if(NOT rc EQUAL 0)
  message("${out}")
  message(FATAL_ERROR "${name}: libFuzzer reported a failure (exit ${rc}); the input is saved under ${WORK_DIR}/")
endif()
message(STATUS "${name}: ${runs}, ${cov}, ${corpus_count} files in ${corpus}, no crashes in ${SECONDS} s")
