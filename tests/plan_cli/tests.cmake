# Tests of the plan CLI (build/bin/gemmaforge-plan): the seed's numbers in the human and JSON
# outputs, exit statuses (0 fits, 1 does not fit, 2 bad input) and one-line errors.
if(NOT TARGET gemmaforge-plan)
  return()
endif()
set(GF_PLAN_CLI_SCRIPT "${CMAKE_CURRENT_LIST_DIR}/run_plan_cli.cmake")

# gf_plan_cli_test(<name> <expected exit> "<args separated by |>" [STDOUT regex] [STDERR regex] [JSON checks])
function(gf_plan_cli_test name rc args)
  cmake_parse_arguments(ARG "" "STDOUT;STDERR;JSON" "" ${ARGN})
  set(defs "-DEXE=$<TARGET_FILE:gemmaforge-plan>" "-DARGS=${args}" "-DEXPECT_RC=${rc}")
  if(DEFINED ARG_STDOUT)
    list(APPEND defs "-DSTDOUT_REGEX=${ARG_STDOUT}")
  endif()
  if(DEFINED ARG_STDERR)
    list(APPEND defs "-DSTDERR_REGEX=${ARG_STDERR}")
  endif()
  if(DEFINED ARG_JSON)
    list(APPEND defs "-DJSON_CHECKS=${ARG_JSON}")
  endif()
  add_test(NAME plan_cli.${name} COMMAND ${CMAKE_COMMAND} ${defs} -P "${GF_PLAN_CLI_SCRIPT}")
  set_tests_properties(plan_cli.${name} PROPERTIES LABELS "cpu;plan;cli" TIMEOUT 120)
endfunction()

set(seed "--model|openchat-3.5-0106-gemma|--device|rtx4090|--max-seq-len|8192|--memory-fraction|0.90")

# The seed's case fits under gemmaforge's plan; vLLM's formula gives its 5888 tokens.
gf_plan_cli_test(seed_fits 0 "${seed}"
  STDOUT "verdict: FITS: 11040 tokens of KV >= 8192 needed.*-> 5888 tokens: vLLM refuses max_seq_len 8192")
gf_plan_cli_test(seed_json 0 "${seed}|--json"
  JSON "model=openchat-3.5-0106-gemma|device=rtx4090|fits=ON|kv_capacity_tokens=11040|kv_bytes_per_token=458752|weights_bytes=17075712000|reserve_bytes=536870912|budget_bytes=22847422464|vllm_capacity_tokens=5888")
gf_plan_cli_test(seed_fp8_json 0 "${seed}|--kv|fp8|--json" JSON "fits=ON|kv_capacity_tokens=21744")
gf_plan_cli_test(seed_vllm_095 0 "${seed}|--memory-fraction|0.95" STDOUT "tokens: vLLM accepts max_seq_len 8192")
gf_plan_cli_test(mistral_baseline_fits 0 "--model|mistral-7b|--device|rtx4090" STDOUT "verdict: FITS")
gf_plan_cli_test(gemma_2_9b_fits 0 "--model|gemma-2-9b|--device|rtx4090|--json" JSON "fits=ON|vllm_fits=OFF")

# Does not fit: exit 1, the verdict, and ranked options.
gf_plan_cli_test(batch_2_does_not_fit 1 "${seed}|--batch|2"
  STDOUT "DOES NOT FIT: 11040 tokens of KV < 16384 needed.*options, ranked by the KV capacity they reach:.*fp8 KV cache +21744 tokens +fits")
gf_plan_cli_test(gemma_3_27b_weights 1 "--model|gemma-3-27b|--device|rtx4090"
  STDOUT "DOES NOT FIT: the weights \\(51518.2 MiB\\) exceed the budget \\(21789.0 MiB\\).*q4_k_m weights +[0-9]+ tokens +fits")
gf_plan_cli_test(gemma_3_27b_json 1 "--model|gemma-3-27b|--device|rtx4090|--json" JSON "fits=OFF|weights_fit=OFF|kv_capacity_tokens=0")

gf_plan_cli_test(list 0 "--list" STDOUT "openchat-3.5-0106-gemma.*gemma-3-270m.*mistral-7b.*rtx4090.*h100-80g.*host")
gf_plan_cli_test(host 0 "--model|gemma-3-270m|--device|host|--max-seq-len|32768|--weights|q4_k_m"
  STDOUT "reserve \\(none on the host\\).*verdict: FITS")

# Bad input: one line on stderr, exit 2.
gf_plan_cli_test(unknown_model 2 "--model|gemma-9-9000b|--device|rtx4090" STDERR "unknown model 'gemma-9-9000b'")
gf_plan_cli_test(unknown_device 2 "--model|gemma-3-270m|--device|rtx9090" STDERR "unknown device 'rtx9090'")
gf_plan_cli_test(missing_model 2 "--device|rtx4090" STDERR "--model is required")
gf_plan_cli_test(fraction_zero 2 "${seed}|--memory-fraction|0" STDERR "must be in \\(0, 1\\]")
gf_plan_cli_test(fraction_above_one 2 "${seed}|--memory-fraction|1.5" STDERR "must be in \\(0, 1\\]")
gf_plan_cli_test(fraction_not_a_number 2 "${seed}|--memory-fraction|most" STDERR "expects a number")
gf_plan_cli_test(batch_zero 2 "${seed}|--batch|0" STDERR "--batch must be at least 1")
gf_plan_cli_test(batch_negative 2 "${seed}|--batch|-3" STDERR "--batch expects a positive integer")
gf_plan_cli_test(seq_len_not_a_number 2 "${seed}|--max-seq-len|8k" STDERR "--max-seq-len expects a positive integer")
gf_plan_cli_test(seq_len_zero 2 "--model|gemma-3-270m|--device|rtx4090|--max-seq-len|0" STDERR "at least 1")
gf_plan_cli_test(seq_len_beyond_model 2 "--model|openchat-3.5-0106-gemma|--device|rtx4090|--max-seq-len|16384"
  STDERR "exceeds the model's context length")
gf_plan_cli_test(block_not_power_of_two 2 "${seed}|--block-tokens|24" STDERR "power of two")
gf_plan_cli_test(unknown_weights 2 "${seed}|--weights|q3_k" STDERR "unknown weight scheme 'q3_k'")
gf_plan_cli_test(unknown_kv 2 "${seed}|--kv|fp4" STDERR "unknown KV dtype 'fp4'")
gf_plan_cli_test(unknown_flag 2 "${seed}|--gpu-memory-utilization|0.95" STDERR "error: ")

# docs/memory-planning.md's numbers and table are generated from this CLI: fail when they are stale.
find_package(Python3 COMPONENTS Interpreter QUIET)
if(Python3_FOUND)
  add_test(NAME plan_cli.docs_up_to_date
    COMMAND ${Python3_EXECUTABLE} "${PROJECT_SOURCE_DIR}/scripts/plot_memory" --check --bin $<TARGET_FILE:gemmaforge-plan>)
  set_tests_properties(plan_cli.docs_up_to_date PROPERTIES LABELS "cpu;plan;cli;docs" TIMEOUT 300)
endif()
