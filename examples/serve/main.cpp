// gemmaforge-serve: an OpenAI-compatible HTTP server over the engine's continuous batching.
//   gemmaforge-serve -m model.gguf --port 8080 --max-batch 8
//   curl http://127.0.0.1:8080/v1/chat/completions -d '{"messages":[{"role":"user","content":"Hi"}]}'
// Endpoints, parameters and error behaviour: docs/serving.md.
//
// Startup binds the port first (a busy port fails in milliseconds, not after the model load),
// serves /health as "loading" while the model loads, then prints `listening on http://HOST:PORT`.
// SIGTERM/SIGINT drain: new requests get 503, in-flight ones finish (or are cancelled after
// --shutdown-timeout), every connection still open is closed, then the process exits 0. A second
// signal cuts the drain short: everything is cancelled and closed at once.
#include <malloc.h>
#include <pthread.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <thread>

#include "cli.hpp"
#include "http_transport.hpp"
#include "program_engine.hpp"
#include "server.hpp"

namespace gf = gemmaforge;
namespace gp = gemmaforge::programs;
namespace gs = gemmaforge::serve;

namespace {

// A signal that arrived while draining: a second Ctrl-C cancels what is left at once.
bool signal_pending(const sigset_t& set) {
  timespec zero{0, 0};
  return sigtimedwait(&set, nullptr, &zero) > 0;
}

bool is_loopback(const std::string& host) { return host == "127.0.0.1" || host == "localhost" || host == "::1"; }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gemmaforge-serve: OpenAI-compatible HTTP server for Gemma models", "gemmaforge-serve"};
  gp::engine_options eo;
  eo.limits.max_batch = 4;
  eo.threaded = true;
  std::string kv;
  gs::server_options so;
  gs::transport_options to;
  std::string host = "127.0.0.1";
  int port = 8080;
  double shutdown_timeout = 10.0;
  double header_timeout = 10.0, body_timeout = 30.0;
  gp::add_engine_flags(app, eo, kv);
  app.add_option("--host", host, "address to listen on (default 127.0.0.1: this machine only)");
  app.add_option("--port", port, "TCP port; 0 = any free port (the `listening on` line says which)")->check(CLI::Range(0, 65535));
  app.add_option("-b,--max-batch", eo.limits.max_batch, "sequences decoded together (continuous batching)")->check(CLI::PositiveNumber);
  app.add_option("--max-queue", eo.max_queue, "requests waiting for a batch slot or KV blocks; past it: HTTP 429")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--prefix-slots", eo.limits.prefix_slots, "prefix-cache entries (system prompts, chat histories)")->check(CLI::NonNegativeNumber);
  app.add_option("--api-key", so.api_key, "require 'Authorization: Bearer KEY' on /v1/ endpoints")->envname("GEMMAFORGE_API_KEY");
  app.add_option("--model-alias", so.model_alias, "model id to list and accept (default: the model's registry name)");
  app.add_option("--max-body-bytes", to.max_body_bytes, "largest request body; larger ones get HTTP 413")->check(CLI::PositiveNumber);
  app.add_option("--max-buffered-body-bytes", to.max_buffered_body_bytes,
                 "request bodies held at once, all connections together; past it: HTTP 503 before the body is read")
      ->check(CLI::PositiveNumber);
  app.add_option("--http-threads", so.http_threads, "worker threads that parse and tokenize request bodies (connections need none)")
      ->check(CLI::Range(1, 256));
  app.add_option("--max-connections", to.max_connections, "open connections, all clients together; past it: 503 and close")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--max-connections-per-client", to.max_connections_per_client, "open connections from one client address")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--header-timeout", header_timeout, "seconds a client has to send the whole request head (408 after)")
      ->check(CLI::PositiveNumber);
  app.add_option("--body-timeout", body_timeout, "seconds a client has to send the whole request body (408 after)")
      ->check(CLI::PositiveNumber);
  app.add_option("--shutdown-timeout", shutdown_timeout, "seconds SIGTERM waits for in-flight requests before cancelling them")
      ->check(CLI::NonNegativeNumber);
  if (int rc = gp::parse_cli(app, argc, argv); rc >= 0) return rc;

  // A client that vanishes mid-write must fail the write, not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  // Few malloc arenas: request threads allocate and free large, short-lived buffers (bodies,
  // JSON trees, token vectors); one arena per thread would keep each one's peak.
  mallopt(M_ARENA_MAX, 2);
  // SIGTERM/SIGINT are taken by sigwait() below; blocking them before any thread starts makes
  // every thread (engine worker, HTTP pool) inherit the mask, so no thread is interrupted.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // Declared in this order so that they are destroyed server first (it holds requests that hold
  // connections), then the transport, then the engine.
  std::unique_ptr<gp::program_engine> eng;
  std::unique_ptr<gs::http_transport> transport;
  gs::openai_server server(so);
  try {
    gp::finish_engine_flags(eo, kv);
    to.host = host;
    to.port = port;
    to.header_timeout = std::chrono::milliseconds(std::int64_t(header_timeout * 1000));
    to.body_timeout = std::chrono::milliseconds(std::int64_t(body_timeout * 1000));
    if (to.max_buffered_body_bytes < to.max_body_bytes)
      throw gf::error(gf::errc::invalid_argument, "--max-buffered-body-bytes (" + std::to_string(to.max_buffered_body_bytes) +
                                                      ") must be at least --max-body-bytes (" + std::to_string(to.max_body_bytes) +
                                                      "): a largest body could never be read");
    transport = std::make_unique<gs::http_transport>(to, server.handlers());
    const int bound = transport->bind();
    transport->start();
    try {
      eng = gp::open_engine(eo);
    } catch (...) {
      transport->stop();
      throw;
    }
    const auto& info = eng->info();
    std::fprintf(stderr, "info: model: %s (%s), %s\n", info.name.c_str(), info.path.c_str(), info.weights.c_str());
    std::fprintf(stderr, "info: engine: %s, KV %s, context %d, max batch %d, queue %d, arena %s, loaded in %.2f s\n",
                 info.isa.c_str(), info.kv.c_str(), int(eng->config().limits.max_seq_len), int(eng->config().limits.max_batch), eng->config().max_queue,
                 gf::format_bytes(info.arena_bytes).c_str(), eng->load_seconds());
    if (!is_loopback(host) && so.api_key.empty())
      std::fprintf(stderr, "warn: listening on %s without --api-key: anyone who reaches it can use it\n", host.c_str());
    server.set_engine(eng.get());
    std::fprintf(stderr, "info: serving model id '%s'\n", server.model_id().c_str());
    // The request memory the transport bounds: each head's read buffer, and every body together.
    const auto& topt = transport->options();
    const std::uint64_t heads = std::uint64_t(topt.max_connections) * topt.read_buffer_bytes();
    std::fprintf(stderr,
                 "info: HTTP: at most %d connections (%d per client), head %.0f s, body %.0f s, %d workers; request memory at most "
                 "%s of heads (%d x %s) + %s of bodies (--max-buffered-body-bytes)\n",
                 topt.max_connections, topt.max_connections_per_client, header_timeout, body_timeout, so.http_threads,
                 gf::format_bytes(heads).c_str(), topt.max_connections, gf::format_bytes(topt.read_buffer_bytes()).c_str(),
                 gf::format_bytes(topt.max_buffered_body_bytes).c_str());
    std::fprintf(stderr, "listening on http://%s:%d\n", host.c_str(), bound);
  } catch (const gf::error& e) {
    std::fprintf(stderr, "gemmaforge-serve: %s\n", e.what());
    return gp::exit_usage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gemmaforge-serve: %s\n", e.what());
    return 1;
  }

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::fprintf(stderr, "info: %s: shutting down; %zu requests in flight (waiting up to %.1f s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
               server.in_flight(), shutdown_timeout);
  server.begin_drain();
  const auto t_signal = std::chrono::steady_clock::now();
  const auto deadline = t_signal + std::chrono::duration<double>(shutdown_timeout);
  bool idle = server.wait_idle(std::chrono::milliseconds(0));
  bool second = false;
  while (!idle && std::chrono::steady_clock::now() < deadline && !(second = signal_pending(stop_signals)))
    idle = server.wait_idle(std::chrono::milliseconds(100));
  if (second) std::fprintf(stderr, "warn: second signal: cancelling and closing everything now\n");
  if (!idle) {
    const std::size_t n = server.cancel_all();
    std::fprintf(stderr, "warn: cancelled %zu requests still running at shutdown\n", n);
    // Cancelled streams end with an error event at the engine's next step; give them that long
    // (not after a second signal).
    if (!second && !server.wait_idle(std::chrono::seconds(3)))
      std::fprintf(stderr, "warn: %zu responses still open at shutdown: closing their connections\n", server.in_flight());
  }
  // Whatever clients still do (a slow request head, an unread response), every connection is
  // closed now and the process exits.
  if (const std::size_t open = transport->open_connections(); open > 0)
    std::fprintf(stderr, "info: closing %zu open connections\n", open);
  transport->stop();
  server.stop_workers();
  server.stop_sampler();
  eng->shutdown();
  std::fprintf(stderr, "info: stopped %.2f s after the signal\n",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t_signal).count());
  return 0;
}
