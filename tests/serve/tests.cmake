# gemmaforge-serve tests: the real server with the real model (Gemma 3 270M, installed by
# scripts/setup) on a loopback port, driven by Python client scripts (the official openai client,
# and raw HTTP for what that client hides). Each test starts its own server (--port 0, flags of its
# own), runs one script, stops the server with SIGTERM and checks that it exits 0 with no error
# line in its log. They skip (77) only when the Python package openai is missing.
# The request parser alone (no HTTP server, no model): replays the fuzz corpus and past crashes.
if(GF_HAVE_JSON)
  add_executable(gemmaforge_serve_request_tests "${CMAKE_CURRENT_LIST_DIR}/openai_request_test.cpp" "${CMAKE_CURRENT_LIST_DIR}/tool_calls_test.cpp"
                 "${PROJECT_SOURCE_DIR}/examples/serve/openai_request.cpp" "${PROJECT_SOURCE_DIR}/examples/serve/structured_output.cpp"
                 "${PROJECT_SOURCE_DIR}/examples/serve/tool_calls.cpp" "${PROJECT_SOURCE_DIR}/examples/serve/openai_response.cpp"
                 "${CMAKE_CURRENT_LIST_DIR}/../support/catch_main.cpp")
  target_link_libraries(gemmaforge_serve_request_tests PRIVATE gemmaforge Catch2::Catch2 nlohmann_json::nlohmann_json)
  target_include_directories(gemmaforge_serve_request_tests PRIVATE "${PROJECT_SOURCE_DIR}/tests" "${PROJECT_SOURCE_DIR}/examples/serve")
  target_compile_definitions(gemmaforge_serve_request_tests PRIVATE GF_TEST_DATA_DIR="${GF_TEST_DATA_DIR}")
  gf_project_warnings(gemmaforge_serve_request_tests)
  catch_discover_tests(gemmaforge_serve_request_tests TEST_SPEC ${GF_CATCH_TEST_SPEC} EXTRA_ARGS ${GF_CATCH_EXTRA_ARGS} PROPERTIES TIMEOUT 120)
endif()

if(NOT TARGET gemmaforge-serve)
  return()
endif()
find_package(Python3 COMPONENTS Interpreter QUIET)
if(NOT Python3_FOUND)
  message(WARNING "gemmaforge: no Python 3 interpreter: the serve tests are not registered")
  return()
endif()
set(GF_SERVE_TEST_DIR "${CMAKE_CURRENT_LIST_DIR}")

# gf_serve_test(<name> <client script> [server flags...])
function(gf_serve_test name script)
  add_test(NAME serve.${name}
    COMMAND ${Python3_EXECUTABLE} "${GF_SERVE_TEST_DIR}/serve_driver.py" --server $<TARGET_FILE:gemmaforge-serve>
            --script "${GF_SERVE_TEST_DIR}/${script}" --name ${name} -- ${ARGN})
  # One server at a time: they share 2 cores in CI, and the timing-sensitive ones (slow client,
  # shutdown timeout) should not compete with each other.
  set_tests_properties(serve.${name} PROPERTIES LABELS "cpu;serve;model" TIMEOUT 300 SKIP_RETURN_CODE 77
                       RESOURCE_LOCK gemmaforge_serve)
endfunction()

gf_serve_test(openai_client client_openai.py --api-key test-key-123 --max-batch 4)
# Issue 17: response_format (json_schema, json_object) and tools, validated with jsonschema.
gf_serve_test(structured client_structured.py --max-batch 2)
gf_serve_test(bad_input client_bad_input.py --ctx-size 256 --max-body-bytes 65536)
gf_serve_test(disconnect client_disconnect.py --max-batch 2)
gf_serve_test(queue_full client_queue_full.py --max-batch 1 --max-queue 1)
gf_serve_test(shutdown client_shutdown.py)
gf_serve_test(shutdown_timeout client_shutdown_timeout.py --shutdown-timeout 1)
gf_serve_test(load client_load.py --max-batch 8)
# Issue 20: the red-team battery (D1-D5, D7-D12, RSS back to idle) in one bounded run, and the
# shutdown cases (D6: a slow client and a request past the timeout; a second signal).
gf_serve_test(attacks client_attacks.py --ctx-size 512 --max-batch 2 --header-timeout 3 --body-timeout 3
              --max-body-bytes 1048576)
gf_serve_test(conn_cap client_conn_cap.py --max-connections-per-client 20)
# The body budget: every connection's body together, 503 server_busy past it (before reading the body).
gf_serve_test(body_budget client_body_budget.py --max-body-bytes 1048576 --max-buffered-body-bytes 2097152 --body-timeout 60)
gf_serve_test(shutdown_slow client_shutdown_slow.py --shutdown-timeout 2 --header-timeout 60)
gf_serve_test(shutdown_twice client_shutdown_twice.py --shutdown-timeout 60)
# Fair admission: a short request 1 s behind a 1200-token prompt gets its first token early.
gf_serve_test(ttft_behind_long client_ttft_behind_long.py --max-batch 4)
# Scale-out: nginx in front of two replicas, one killed under load (the other is the driver's).
gf_serve_test(nginx_failover client_nginx_failover.py --max-batch 4)
# The Kubernetes example (docs/deploy/): valid YAML whose ports, probes and labels agree.
add_test(NAME serve.deploy_yaml
  COMMAND ${Python3_EXECUTABLE} "${GF_SERVE_TEST_DIR}/check_deploy_yaml.py" "${PROJECT_SOURCE_DIR}/docs/deploy/gemmaforge.yaml")
set_tests_properties(serve.deploy_yaml PROPERTIES LABELS "cpu;serve" TIMEOUT 60 SKIP_RETURN_CODE 77)
# Issue 17: the built-in chat page (GET /) in headless Chromium (skips only where no Chromium is
# installed: ./scripts/setup --browser, which scripts/test runs, installs Debian's chromium).
gf_serve_test(chat_page client_chat_page.py --api-key chat-page-key --max-batch 2)
# Issue 17: n / best_of, logprobs (both endpoints, streamed), echo, logit_bias, /tokenize and
# /detokenize, the n x prompt > pool refusal, seeded choices alone and beside 8 streams.
gf_serve_test(api_params client_api_params.py --ctx-size 512 --max-batch 8 --kv-blocks 96)
