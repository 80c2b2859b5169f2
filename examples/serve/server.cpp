// Routes and the request lifecycle of gemmaforge-serve.
#include "server.hpp"

#include <malloc.h>

#include <cstdio>
#include <limits>

#include <nlohmann/json.hpp>

#include "openai_response.hpp"
#include "sse_stream.hpp"

namespace gemmaforge::serve {

namespace {

// Log lines carry request paths and messages that quote client input: no control characters.
std::string printable(std::string_view s, std::size_t max = 200) {
  std::string out;
  for (char c : s.substr(0, max)) out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c;
  if (s.size() > max) out += "...";
  return out;
}

http_response error_response(access_record& a, const api_error& e) {
  http_response res;
  res.status = e.status;
  res.body = error_body(e);
  if (e.status == 429) res.headers.emplace_back("Retry-After", "1");
  if (e.status == 401) res.headers.emplace_back("WWW-Authenticate", "Bearer");
  if (e.status == 405) res.headers.emplace_back("Allow", "POST");
  a.note = e.type + ": " + e.what();
  if (e.status >= 500 && e.status != 503) a.server_fault = true;
  return res;
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
  for (int i = 0; i < std::max(1, opts_.http_threads); ++i)
    workers_.emplace_back([this] {
      for (;;) {
        std::function<void()> f;
        {
          std::unique_lock lock(work_mutex_);
          work_cv_.wait(lock, [&] { return work_stop_ || !work_.empty(); });
          if (work_stop_) return;
          f = std::move(work_.front());
          work_.pop_front();
        }
        f();
      }
    });
}

openai_server::~openai_server() {
  stop_workers();
  stop_sampler();
}

void openai_server::post_work(std::function<void()> f) {
  {
    std::lock_guard lock(work_mutex_);
    if (work_stop_) return;
    work_.push_back(std::move(f));
  }
  work_cv_.notify_one();
}

void openai_server::stop_workers() {
  {
    std::lock_guard lock(work_mutex_);
    work_stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_)
    if (t.joinable()) t.join();
  workers_.clear();
  // Work never started (the transport is stopped: nobody is waiting for it). post_work() adds
  // nothing once work_stop_ is set.
  std::lock_guard lock(work_mutex_);
  work_.clear();
}

void openai_server::set_engine(programs::program_engine* engine) {
  if (model_id_.empty()) model_id_ = opts_.model_alias.empty() ? engine->info().name : opts_.model_alias;
  if (engine->has_tokenizer()) {
    const tokenizer& t = engine->tok();
    std::size_t m = 1;
    // A piece's own bytes bound the input it covers: "▁" (3 bytes) stands for one space, a byte
    // piece for one byte, a special token for its text.
    for (int id = 0; id < t.vocab_size(); ++id) m = std::max(m, t.piece(id).size());
    max_token_bytes_ = m;
  }
  engine_.store(engine, std::memory_order_release);
  sampler_ = std::thread([this, engine] {
    std::unique_lock lock(sampler_mutex_);
    do {
      metrics_.sample(engine->stats().generated_tokens);
      // Memory that requests freed (bodies, JSON trees, token vectors) goes back to the system,
      // at most once a second: glibc keeps freed heap otherwise, and an attack's peak would stay
      // resident.
      if (trim_pending_.exchange(false)) malloc_trim(0);
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

void openai_server::check_auth(const http_request& req) const {
  if (opts_.api_key.empty()) return;
  const std::string& h = req.authorization;
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

bool openai_server::draining() const {
  std::lock_guard lock(inflight_mutex_);
  return draining_;
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
  const std::int64_t ctx = std::int64_t(eng.config().limits.max_seq_len);
  // Bounded work before the engine: text that cannot fit the context whatever its tokens is
  // refused before it is tokenized (tokenizing costs ~180 bytes of memory per byte of text).
  if (max_token_bytes_ > 0 && !r.prompt_is_ids) {
    std::size_t bytes = r.prompt_text.size();
    for (const auto& m : r.messages) bytes += m.content.size();
    if (bytes / max_token_bytes_ >= std::size_t(ctx))
      throw invalid_request("This model's maximum context length is " + std::to_string(ctx) + " tokens. However, your " + what + " of " +
                                std::to_string(bytes) + " bytes cannot fit in it (one token covers at most " +
                                std::to_string(max_token_bytes_) + " bytes). Please reduce the length of the " + what + ".",
                            what, "context_length_exceeded");
  }
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
  const std::int64_t p = std::int64_t(g.prompt.size());
  // The context checks, with vLLM's wording and numbers.
  if (p >= ctx)
    throw invalid_request("This model's maximum context length is " + std::to_string(ctx) + " tokens. However, your " + what +
                              " resulted in " + std::to_string(p) + " tokens (at least one token must be left to generate). " +
                              "Please reduce the length of the " + what + ".",
                          what, "context_length_exceeded");
  std::int64_t m = 0;
  if (r.max_tokens) {
    m = *r.max_tokens;
    // m > ctx - p, not p + m > ctx: max_tokens may be near INT64_MAX (p < ctx here, so no overflow).
    if (m > ctx - p)
      throw invalid_request("This model's maximum context length is " + std::to_string(ctx) + " tokens. However, you requested " +
                                (m > std::numeric_limits<std::int64_t>::max() - p ? std::string("more than ") + std::to_string(std::numeric_limits<std::int64_t>::max())
                                                                                   : std::to_string(p + m)) +
                                " tokens (" + std::to_string(p) + " in the " + what + ", " +
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
      case errc::queue_full:
        throw api_error(429, "rate_limit_error", msg + ": the server is at capacity, retry later", {}, "queue_full");
      case errc::capacity: throw invalid_request(msg, {}, "context_length_exceeded");
      case errc::shutdown: throw api_error(503, "server_error", "the server is shutting down: request refused", {}, "shutting_down");
      default: throw;
    }
  }
}

void openai_server::handle_generate(api_kind kind, const std::shared_ptr<exchange>& x) {
  access_record& acc = x->access();
  try {
    programs::program_engine& eng = engine_or_503();
    const openai_request r = parse_openai_request(kind, x->request().body);
    check_model(r.model);
    generation_request g = build_request(r, eng);
    auto guard = track(nullptr);
    const response_meta meta = make_meta(kind, model_id_);
    acc.generation = true;
    acc.stream = r.stream;
    const std::weak_ptr<exchange> wx = x;

    if (r.stream) {
      auto channel = std::make_shared<token_channel>();
      g.on_token = [channel, wx](const token_event& e) {
        channel->push(e);
        if (auto p = wx.lock()) p->notify();
      };
      request_handle h = submit(eng, std::move(g));
      guard->attach(h);
      // The stream's end is seen on the transport's I/O thread (pull or client_gone), the one
      // that owns the access record from start_stream on.
      auto on_end = [this, wx](const stream_outcome& o) {
        auto p = wx.lock();
        if (!p) return;
        access_record& a = p->access();
        a.prompt = o.usage.prompt;
        a.completion = o.usage.completion;
        a.cached = o.usage.cached;
        switch (o.how) {
          case stream_outcome::kind::completed: a.finish = std::string(to_string(o.reason)); break;
          case stream_outcome::kind::client_gone:
            a.finish = "client_gone";
            a.incomplete = true;
            break;
          case stream_outcome::kind::cancelled:
            a.finish = "cancelled";
            a.incomplete = true;
            break;
          case stream_outcome::kind::failed:
            a.finish = "error";
            a.server_fault = true;
            break;
        }
        if (!o.detail.empty()) a.note = o.detail;
        metrics_.count_stream_end(o.how == stream_outcome::kind::client_gone);
        trim_pending_ = true;
      };
      auto stream = std::make_shared<sse_stream>(meta, h, channel, r.include_usage, std::move(on_end));
      x->on_client_gone([stream] { stream->client_gone(); });
      http_response head;
      head.content_type = "text/event-stream";
      head.headers = {{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}};
      x->start_stream(std::move(head), [stream, guard]() {
        exchange::chunk c;
        c.data = stream->pull(c.last);
        return c;
      });
      return;
    }

    // Not streamed: no thread waits. The engine's final event posts the answer to a worker; a
    // client that goes away meanwhile cancels the request (its socket is watched, as a stream's).
    // `st` holds the exchange until the answer is given; nothing else the engine keeps does.
    auto st = std::make_shared<pending_answer>();
    st->x = x;
    st->guard = guard;
    st->meta = meta;
    g.on_token = [this, st](const token_event& e) {
      if (!e.finished) return;
      std::unique_lock lock(st->mutex);
      st->finished = true;
      if (st->h) {
        lock.unlock();
        post_work([this, st] { answer(*st); });
      }
    };
    request_handle h = submit(eng, std::move(g));
    guard->attach(h);
    bool finished_already = false;
    {
      std::lock_guard lock(st->mutex);
      st->h = h;
      finished_already = st->finished;
    }
    // Both the final event and submit() returning are needed; whichever comes second posts.
    if (finished_already) post_work([this, st] { answer(*st); });
    x->on_client_gone([w = std::weak_ptr<pending_answer>(st), h] {
      if (auto p = w.lock()) p->client_left = true;
      h->cancel();
    });
  } catch (const api_error& e) {
    trim_pending_ = true;
    x->respond(error_response(acc, e));
  } catch (const std::exception& e) {
    trim_pending_ = true;
    x->respond(error_response(acc, api_error(500, "server_error", std::string("internal error: ") + e.what())));
  }
}

void openai_server::answer(pending_answer& st) {
  std::shared_ptr<exchange> x;
  request_handle h;
  {
    std::lock_guard lock(st.mutex);
    x = std::move(st.x);
    h = std::move(st.h);
  }
  if (!x || !h) return;
  h->wait();
  access_record& a = x->access();
  const usage_counts u{h->prompt_tokens(), h->completion_tokens(), h->reused_tokens()};
  a.prompt = u.prompt;
  a.completion = u.completion;
  a.cached = u.cached;
  a.finish = std::string(to_string(h->reason()));
  trim_pending_ = true;
  if (h->reason() == finish_reason::cancelled && st.client_left) {
    a.finish = "client_gone";
    a.incomplete = true;
    http_response res;
    res.status = 499;  // nginx's "client closed request": never sent, for the log
    x->respond(std::move(res));
  } else if (h->reason() == finish_reason::error) {
    x->respond(error_response(a, api_error(500, "server_error", "generation failed: " + h->error_message())));
  } else if (h->reason() == finish_reason::cancelled) {
    x->respond(error_response(a, api_error(503, "server_error", "request cancelled: the server is shutting down", {}, "shutting_down")));
  } else {
    http_response res;
    res.body = completion_body(st.meta, h->text(), to_string(h->reason()), u);
    x->respond(std::move(res));
  }
  st.guard.reset();
}

http_response openai_server::handle_models() const {
  const auto& eng = engine_or_503();
  http_response res;
  res.body = models_body(model_id_, started_unix_, std::int32_t(eng.config().limits.max_seq_len));
  return res;
}

// Readiness: 200 only while requests are served (503 while the model loads and while draining),
// so a load balancer or Kubernetes takes the replica out of rotation in both cases. Liveness is
// GET /livez: 200 as long as the process answers.
http_response openai_server::handle_health() const {
  nlohmann::ordered_json j;
  const auto* eng = engine_.load(std::memory_order_acquire);
  const bool drain = draining();
  j["status"] = !eng ? "loading" : drain ? "shutting_down" : "ok";
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
  http_response res;
  res.status = j["status"] == "ok" ? 200 : 503;
  res.body = j.dump();
  return res;
}

http_response openai_server::handle_metrics() const {
  const auto* eng = engine_.load(std::memory_order_acquire);
  engine_stats s;
  if (eng) s = eng->stats();
  http_response res;
  res.content_type = "text/plain; version=0.0.4";
  res.body = metrics_.render(eng ? &s : nullptr, draining());
  return res;
}

std::optional<http_response> openai_server::route(const http_request& req, access_record& a) {
  const std::string& p = req.path;
  const bool get = req.method == "GET" || req.method == "HEAD";
  try {
    if (p == "/v1/completions" || p == "/v1/chat/completions") {
      if (req.method != "POST") throw api_error(405, "invalid_request_error", "use POST for this endpoint", {}, "method_not_allowed");
      check_auth(req);
      engine_or_503();
      if (draining()) throw api_error(503, "server_error", "the server is shutting down: request refused", {}, "shutting_down");
      return std::nullopt;  // read the body
    }
    if (get && p == "/health") return handle_health();
    if (get && p == "/livez") {
      http_response res;
      res.body = R"({"status":"alive"})";
      return res;
    }
    if (get && p == "/metrics") return handle_metrics();
    if (get && p == "/v1/models") {
      check_auth(req);
      return handle_models();
    }
    throw api_error(404, "invalid_request_error", "no route for " + printable(req.method, 16) + " " + printable(req.path), {}, "not_found");
  } catch (const api_error& e) {
    return error_response(a, e);
  }
}

// One line per request on stderr. Client mistakes are warnings; "error:" is kept for faults of
// the server itself, so a clean log has none.
void openai_server::log_request(const http_request& req, int st, access_record& a) {
  // A stream cut short (client gone, cancelled at shutdown) is a 200 that did not complete: warn.
  const char* level = a.server_fault ? "error" : st >= 400 || a.incomplete ? "warn" : "info";
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - a.start).count();
  std::string line = std::string(level) + ": " + req.remote_addr + " " + printable(req.method, 16) + " " + printable(req.path) + " " +
                     std::to_string(st);
  char buf[160];
  std::snprintf(buf, sizeof buf, " %.3fs", secs);
  line += buf;
  if (a.generation) {
    std::snprintf(buf, sizeof buf, " prompt=%d cached=%d completion=%d", a.prompt, a.cached, a.completion);
    line += buf;
    line += " finish=" + (a.finish.empty() ? std::string("-") : a.finish);
    if (a.stream) line += " stream";
  }
  if (!a.note.empty()) line += " " + printable(a.note, 300);
  line += '\n';
  std::fputs(line.c_str(), stderr);
  metrics_.count_request(endpoint_label(req.path), st);
}

transport_handlers openai_server::handlers() {
  transport_handlers h;
  h.route = [this](const http_request& req, access_record& a) { return route(req, a); };
  h.handle = [this](std::shared_ptr<exchange> x) {
    const api_kind kind = x->request().path == "/v1/chat/completions" ? api_kind::chat : api_kind::completion;
    post_work([this, kind, x = std::move(x)] { handle_generate(kind, x); });
  };
  h.finished = [this](const http_request& req, int status, access_record& a) { log_request(req, status, a); };
  h.error_body = [](int status, const std::string& message, const std::string& code) {
    return error_body(api_error(status, status >= 500 ? "server_error" : "invalid_request_error", message, {}, code));
  };
  return h;
}

}  // namespace gemmaforge::serve
