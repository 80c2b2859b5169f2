// Routes and the request lifecycle of gemmaforge-serve.
#include "server.hpp"

#include <httplib.h>

#include <cstdio>

#include <nlohmann/json.hpp>

#include "openai_response.hpp"
#include "sse_stream.hpp"

namespace gemmaforge::serve {

namespace {

// What the access-log line says about the request being answered on this thread. cpp-httplib runs
// routing, the handler, the body writer (the SSE pump included) and the logger for one request on
// one worker thread, so a thread-local record needs no locking.
struct access_record {
  std::chrono::steady_clock::time_point start{};
  bool generation = false, stream = false, server_fault = false, incomplete = false;
  usage_counts usage;
  std::string finish;  // stop / length / client_gone / cancelled / error
  std::string note;    // "type: message" of an error
};
thread_local access_record t_access;

// Log lines carry request paths and messages that quote client input: no control characters.
std::string printable(std::string_view s, std::size_t max = 200) {
  std::string out;
  for (char c : s.substr(0, max)) out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c;
  if (s.size() > max) out += "...";
  return out;
}

void send_error(httplib::Response& res, const api_error& e) {
  res.status = e.status;
  res.set_content(error_body(e), "application/json");
  if (e.status == 429) res.set_header("Retry-After", "1");
  if (e.status == 401) res.set_header("WWW-Authenticate", "Bearer");
  t_access.note = e.type + ": " + e.what();
  if (e.status >= 500 && e.status != 503) t_access.server_fault = true;
}

const char* status_text(int status) {
  switch (status) {
    case 400: return "malformed HTTP request";
    case 404: return "not found";
    case 405: return "method not allowed";
    case 413: return "request body too large";
    case 414: return "request URI too long";
    case 416: return "range not satisfiable";
    case 500: return "internal server error";
    default: return "HTTP error";
  }
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % std::max<std::size_t>(b.size(), 1)]);
  return diff == 0;
}

}  // namespace

// Keeps a request in the in-flight registry while its HTTP response is being produced; graceful
// shutdown waits for the registry to empty.
class openai_server::inflight_guard {
 public:
  inflight_guard(openai_server& s, std::uint64_t key) : s_(s), key_(key) {}
  ~inflight_guard() {
    std::lock_guard lock(s_.inflight_mutex_);
    s_.inflight_.erase(key_);
    s_.inflight_cv_.notify_all();
  }
  void attach(request_handle h) {
    std::lock_guard lock(s_.inflight_mutex_);
    s_.inflight_[key_] = std::move(h);
  }

 private:
  openai_server& s_;
  std::uint64_t key_;
};

openai_server::openai_server(server_options o) : opts_(std::move(o)) {
  started_unix_ = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

openai_server::~openai_server() { stop_sampler(); }

void openai_server::set_engine(programs::program_engine* engine) {
  if (model_id_.empty()) model_id_ = opts_.model_alias.empty() ? engine->info().name : opts_.model_alias;
  engine_.store(engine, std::memory_order_release);
  sampler_ = std::thread([this, engine] {
    std::unique_lock lock(sampler_mutex_);
    do {
      metrics_.sample(engine->stats().generated_tokens);
    } while (!sampler_cv_.wait_for(lock, std::chrono::seconds(1), [&] { return sampler_stop_; }));
  });
}

void openai_server::stop_sampler() {
  {
    std::lock_guard lock(sampler_mutex_);
    sampler_stop_ = true;
  }
  sampler_cv_.notify_all();
  if (sampler_.joinable()) sampler_.join();
}

programs::program_engine& openai_server::engine_or_503() const {
  auto* e = engine_.load(std::memory_order_acquire);
  if (!e) throw api_error(503, "server_error", "the model is still loading: retry shortly", {}, "model_loading");
  return *e;
}

void openai_server::check_auth(const httplib::Request& req) const {
  if (opts_.api_key.empty()) return;
  const std::string h = req.get_header_value("Authorization");
  constexpr std::string_view bearer = "Bearer ";
  if (h.size() < bearer.size() || h.compare(0, bearer.size(), bearer) != 0)
    throw api_error(401, "invalid_request_error", "missing API key: send 'Authorization: Bearer <key>'", {}, "invalid_api_key");
  if (!constant_time_equal(std::string_view(h).substr(bearer.size()), opts_.api_key))
    throw api_error(401, "invalid_request_error", "incorrect API key provided", {}, "invalid_api_key");
}

void openai_server::check_model(const std::string& requested) const {
  if (requested.empty() || requested == model_id_) return;
  if (const auto* e = engine_.load(std::memory_order_acquire); e && requested == e->info().name) return;
  throw api_error(404, "invalid_request_error",
                  "the model " + quote_for_message(requested) + " does not exist: this server serves '" + model_id_ + "'", "model",
                  "model_not_found");
}

void openai_server::begin_drain() {
  std::lock_guard lock(inflight_mutex_);
  draining_ = true;
}

bool openai_server::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(inflight_mutex_);
  return inflight_cv_.wait_for(lock, timeout, [&] { return inflight_.empty(); });
}

std::size_t openai_server::in_flight() const {
  std::lock_guard lock(inflight_mutex_);
  return inflight_.size();
}

std::size_t openai_server::cancel_all() {
  std::lock_guard lock(inflight_mutex_);
  std::size_t n = 0;
  for (auto& [key, h] : inflight_)
    if (h && !h->done()) {
      h->cancel();
      ++n;
    }
  return n;
}

std::shared_ptr<openai_server::inflight_guard> openai_server::track(const request_handle& h) {
  std::lock_guard lock(inflight_mutex_);
  // Checked under the registry's lock so that no request slips in after the drain saw it empty.
  if (draining_) throw api_error(503, "server_error", "the server is shutting down: request refused", {}, "shutting_down");
  const std::uint64_t key = ++next_inflight_;
  inflight_[key] = h;
  return std::make_shared<inflight_guard>(*this, key);
}

generation_request openai_server::build_request(const openai_request& r, programs::program_engine& eng) const {
  const bool chat = r.kind == api_kind::chat;
  const char* what = chat ? "messages" : "prompt";
  generation_request g;
  if (!chat) {
    if (r.prompt_is_ids) {
      for (auto id : r.prompt_ids)
        if (id >= eng.info().vocab)
          throw invalid_request("prompt token id " + std::to_string(id) + " is outside the vocabulary (" +
                                    std::to_string(eng.info().vocab) + " tokens)",
                                "prompt");
      g.prompt = r.prompt_ids;
    } else {
      g.prompt = eng.encode(r.prompt_text, true);
    }
  } else {
    try {
      g.prompt = eng.chat_prompt(r.messages);
      // Cache the system prompt: it is the prefix that requests share. Its length in tokens is
      // where the rendering of the system part alone stops agreeing with the full prompt (the
      // tokenizer may merge across the boundary, so the common prefix is what can be reused).
      if (r.messages.size() > 1 && r.messages[0].role == "system") {
        const chat_message sys[2] = {r.messages[0], {"user", ""}};
        const auto s = eng.chat_prompt(sys);
        std::size_t n = 0;
        while (n < s.size() && n < g.prompt.size() && s[n] == g.prompt[n]) ++n;
        g.shared_prefix = std::int32_t(n);
      }
    } catch (const error& e) {
      if (e.code() != errc::invalid_argument) throw;
      throw invalid_request(e.what(), "messages", "invalid_messages");
    }
  }
  const std::int64_t ctx = std::int64_t(eng.config().limits.max_seq_len), p = std::int64_t(g.prompt.size());
  // The context checks, with vLLM's wording and numbers.
  if (p >= ctx)
    throw invalid_request("This model's maximum context length is " + std::to_string(ctx) + " tokens. However, your " + what +
                              " resulted in " + std::to_string(p) + " tokens (at least one token must be left to generate). " +
                              "Please reduce the length of the " + what + ".",
                          what, "context_length_exceeded");
  std::int64_t m = 0;
  if (r.max_tokens) {
    m = *r.max_tokens;
    if (p + m > ctx)
      throw invalid_request("This model's maximum context length is " + std::to_string(ctx) + " tokens. However, you requested " +
                                std::to_string(p + m) + " tokens (" + std::to_string(p) + " in the " + what + ", " +
                                std::to_string(m) + " in the completion). Please reduce the length of the " + what +
                                " or completion.",
                            "max_tokens", "context_length_exceeded");
  } else {
    // OpenAI's defaults: 16 tokens for legacy completions, the rest of the context for chat.
    m = chat ? ctx - p : std::min<std::int64_t>(16, ctx - p);
  }
  g.stop.max_tokens = std::int32_t(m);
  g.stop.stop_strings = r.stop;
  g.stop.ignore_eos = r.ignore_eos;
  g.sampling = r.sampling;
  return g;
}

request_handle openai_server::submit(programs::program_engine& eng, generation_request g) {
  try {
    return eng.submit(std::move(g));
  } catch (const error& e) {
    const std::string msg = e.what();
    switch (e.code()) {
      case errc::invalid_argument: throw invalid_request(msg);
      case errc::capacity:
        // The context checks above leave one capacity error: the bounded waiting queue is full.
        if (msg.find("queue") != std::string::npos)
          throw api_error(429, "rate_limit_error", msg + ": the server is at capacity, retry later", {}, "queue_full");
        throw invalid_request(msg, {}, "context_length_exceeded");
      case errc::shutdown: throw api_error(503, "server_error", "the server is shutting down: request refused", {}, "shutting_down");
      default: throw;
    }
  }
}

void openai_server::handle_generate(api_kind kind, const httplib::Request& req, httplib::Response& res) {
  programs::program_engine& eng = engine_or_503();
  const openai_request r = parse_openai_request(kind, req.body);
  check_model(r.model);
  generation_request g = build_request(r, eng);
  auto guard = track(nullptr);
  const response_meta meta = make_meta(kind, model_id_);
  std::shared_ptr<token_channel> channel;
  if (r.stream) {
    channel = std::make_shared<token_channel>();
    g.on_token = [channel](const token_event& e) { channel->push(e); };
  }
  request_handle h = submit(eng, std::move(g));
  guard->attach(h);
  t_access.generation = true;
  t_access.stream = r.stream;

  if (r.stream) {
    auto on_end = [this](const stream_outcome& o) {
      t_access.usage = o.usage;
      switch (o.how) {
        case stream_outcome::kind::completed: t_access.finish = std::string(to_string(o.reason)); break;
        case stream_outcome::kind::client_gone:
          t_access.finish = "client_gone";
          t_access.incomplete = true;
          break;
        case stream_outcome::kind::cancelled:
          t_access.finish = "cancelled";
          t_access.incomplete = true;
          break;
        case stream_outcome::kind::failed:
          t_access.finish = "error";
          t_access.server_fault = true;
          break;
      }
      if (!o.detail.empty()) t_access.note = o.detail;
      metrics_.count_stream_end(o.how == stream_outcome::kind::client_gone);
    };
    auto stream = std::make_shared<sse_stream>(meta, h, channel, r.include_usage, std::move(on_end));
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider("text/event-stream",
                                     [stream, guard](std::size_t, httplib::DataSink& sink) { return stream->pump(sink); });
    return;
  }

  h->wait();
  const usage_counts u{h->prompt_tokens(), h->completion_tokens(), h->reused_tokens()};
  t_access.usage = u;
  t_access.finish = std::string(to_string(h->reason()));
  if (h->reason() == finish_reason::error) throw api_error(500, "server_error", "generation failed: " + h->error_message());
  if (h->reason() == finish_reason::cancelled)
    throw api_error(503, "server_error", "request cancelled: the server is shutting down", {}, "shutting_down");
  res.set_content(completion_body(meta, h->text(), to_string(h->reason()), u), "application/json");
}

void openai_server::handle_models(httplib::Response& res) const {
  const auto& eng = engine_or_503();
  res.set_content(models_body(model_id_, started_unix_, std::int64_t(eng.config().limits.max_seq_len)), "application/json");
}

void openai_server::handle_health(httplib::Response& res) const {
  nlohmann::ordered_json j;
  const auto* eng = engine_.load(std::memory_order_acquire);
  bool draining = false;
  {
    std::lock_guard lock(inflight_mutex_);
    draining = draining_;
  }
  j["status"] = !eng ? "loading" : draining ? "shutting_down" : "ok";
  if (eng) {
    const engine_stats s = eng->stats();
    j["model"] = model_id_;
    j["requests_running"] = s.running;
    j["requests_waiting"] = s.waiting;
    // used: held by requests; cached: held only by the prefix cache, handed out again on demand.
    j["kv_blocks"] = {{"total", s.kv_blocks_total},
                      {"used", s.kv_blocks_used - s.kv_blocks_cached},
                      {"cached", s.kv_blocks_cached},
                      {"free", s.kv_blocks_total - s.kv_blocks_used},
                      {"reserved", s.kv_blocks_reserved}};
  }
  res.status = j["status"] == "ok" ? 200 : 503;
  res.set_content(j.dump(), "application/json");
}

void openai_server::handle_metrics(httplib::Response& res) const {
  const auto* eng = engine_.load(std::memory_order_acquire);
  engine_stats s;
  if (eng) s = eng->stats();
  res.set_content(metrics_.render(eng ? &s : nullptr), "text/plain; version=0.0.4");
}

void openai_server::install(httplib::Server& svr) {
  svr.new_task_queue = [n = opts_.http_threads] { return new httplib::ThreadPool(std::size_t(n)); };
  svr.set_payload_max_length(opts_.max_body_bytes);
  // A client that stops reading for this long loses its stream (the request is cancelled); its
  // HTTP thread is the only one that waits.
  svr.set_write_timeout(10, 0);
  svr.set_read_timeout(10, 0);
  svr.set_tcp_nodelay(true);  // SSE chunks are small: send each at once
  // One request per connection (Connection: close). cpp-httplib parks a pool thread on every idle
  // keep-alive connection for its whole timeout, so a client's connection pool would pin threads
  // that streams need, and SIGTERM would wait for idle connections. A TCP handshake per request
  // is nothing next to a generation.
  svr.set_keep_alive_max_count(1);

  svr.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
    t_access = {};
    t_access.start = std::chrono::steady_clock::now();
    return httplib::Server::HandlerResponse::Unhandled;
  });

  auto api = [this](auto fn) {
    return [this, fn](const httplib::Request& req, httplib::Response& res) {
      try {
        check_auth(req);
        fn(req, res);
      } catch (const api_error& e) {
        send_error(res, e);
      }
    };
  };
  auto open = [](auto fn) {
    return [fn](const httplib::Request&, httplib::Response& res) {
      try {
        fn(res);
      } catch (const api_error& e) {
        send_error(res, e);
      }
    };
  };
  svr.Post("/v1/completions", api([this](const httplib::Request& q, httplib::Response& s) { handle_generate(api_kind::completion, q, s); }));
  svr.Post("/v1/chat/completions", api([this](const httplib::Request& q, httplib::Response& s) { handle_generate(api_kind::chat, q, s); }));
  svr.Get("/v1/models", api([this](const httplib::Request&, httplib::Response& s) { handle_models(s); }));
  svr.Get("/health", open([this](httplib::Response& s) { handle_health(s); }));
  svr.Get("/metrics", open([this](httplib::Response& s) { handle_metrics(s); }));
  for (const char* path : {"/v1/completions", "/v1/chat/completions"})
    svr.Get(path, [](const httplib::Request&, httplib::Response& res) {
      res.set_header("Allow", "POST");
      send_error(res, api_error(405, "invalid_request_error", "use POST for this endpoint", {}, "method_not_allowed"));
    });

  // Errors cpp-httplib answers itself (no route, body over the limit, unparsable request) get the
  // same OpenAI error object as the handlers' own.
  svr.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string msg = status_text(res.status);
    std::string code;
    if (res.status == 404) {
      msg = "no route for " + req.method + " " + printable(req.path);
      code = "not_found";
    } else if (res.status == 413) {
      msg = "request body of " + req.get_header_value("Content-Length") + " bytes exceeds the limit of " +
            std::to_string(opts_.max_body_bytes) + " bytes (--max-body-bytes)";
      code = "request_too_large";
    }
    send_error(res, api_error(res.status, res.status >= 500 ? "server_error" : "invalid_request_error", msg, {}, code));
    return httplib::Server::HandlerResponse::Handled;
  }));
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, const std::exception_ptr& ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res, api_error(500, "server_error", "internal error: " + what));
  });

  // One line per request on stderr. Client mistakes are warnings; "error:" is kept for faults of
  // the server itself, so a clean log has none.
  svr.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    access_record& a = t_access;
    const int st = res.status;
    // A stream cut short (client gone, cancelled at shutdown) is a 200 that did not complete: warn.
    const char* level = a.server_fault ? "error" : st >= 400 || a.incomplete ? "warn" : "info";
    const double secs =
        a.start == std::chrono::steady_clock::time_point{} ? 0.0 : std::chrono::duration<double>(std::chrono::steady_clock::now() - a.start).count();
    std::string line = std::string(level) + ": " + req.remote_addr + " " + printable(req.method, 16) + " " + printable(req.path) + " " +
                       std::to_string(st);
    char buf[160];
    std::snprintf(buf, sizeof buf, " %.3fs", secs);
    line += buf;
    if (a.generation) {
      std::snprintf(buf, sizeof buf, " prompt=%d cached=%d completion=%d", a.usage.prompt, a.usage.cached, a.usage.completion);
      line += buf;
      line += " finish=" + (a.finish.empty() ? std::string("-") : a.finish);
      if (a.stream) line += " stream";
    }
    if (!a.note.empty()) line += " " + printable(a.note, 300);
    line += '\n';
    std::fputs(line.c_str(), stderr);
    metrics_.count_request(endpoint_label(req.path), st);
    a = {};
  });
}

}  // namespace gemmaforge::serve
