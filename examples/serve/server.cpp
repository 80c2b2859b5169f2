// Routes and the request lifecycle of gemmaforge-serve.
#include "server.hpp"

#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <limits>

#include <nlohmann/json.hpp>

#include "chat_page.hpp"
#include <gemmaforge/io/utf8.hpp>
#include <gemmaforge/runtime/logprobs.hpp>
#include <gemmaforge/grammar/grammar_constraint.hpp>

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

// Built once at start-up; its size is logged, and so is what each constrained request adds.
std::shared_ptr<const grammar::token_trie> build_token_trie(const tokenizer& t) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::string> bytes(std::size_t(t.vocab_size()));
  for (int id = 0; id < t.vocab_size(); ++id) bytes[std::size_t(id)] = std::string(t.token_bytes(id));
  auto trie = std::make_shared<const grammar::token_trie>(bytes);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "info: grammar: token trie of %d tokens: %.1f MiB (%zu + %zu nodes), built in %.2f s; %.1f KiB per constrained request\n",
               trie->vocab(), double(trie->bytes()) / (1 << 20), trie->all().size(), trie->not_plain().size(), secs,
               double(grammar::grammar_constraint::request_bytes(*trie)) / 1024);
  return trie;
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
  void attach(std::vector<request_handle> hs) {
    std::lock_guard lock(s_.inflight_mutex_);
    s_.inflight_[key_] = std::move(hs);
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
    trie_ = build_token_trie(t);
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
  for (auto& [key, hs] : inflight_)
    for (auto& h : hs)
      if (h && !h->done()) {
        h->cancel();
        ++n;
      }
  return n;
}

std::shared_ptr<openai_server::inflight_guard> openai_server::track(const request_handle& h) {
  std::vector<request_handle> hs;
  if (h) hs.push_back(h);
  std::lock_guard lock(inflight_mutex_);
  // Checked under the registry's lock so that no request slips in after the drain saw it empty.
  if (draining_) throw api_error(503, "server_error", "the server is shutting down: request refused", {}, "shutting_down");
  const std::uint64_t key = ++next_inflight_;
  inflight_[key] = std::move(hs);
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
      // Bounded (issue 20): tokenizing stops past ctx tokens; the check below refuses it.
      g.prompt = eng.encode(r.prompt_text, true, std::size_t(ctx));
    }
  } else {
    try {
      chat_options co;
      co.max_tokens = std::size_t(ctx);  // bounded, as the completion prompt above
      g.prompt = eng.chat_prompt(r.messages, co);
      // Cache the system prompt: it is the prefix that requests share. Its length in tokens is
      // where the rendering of the system part alone stops agreeing with the full prompt (the
      // tokenizer may merge across the boundary, so the common prefix is what can be reused).
      if (r.messages.size() > 1 && r.messages[0].role == "system") {
        const chat_message sys[2] = {r.messages[0], {"user", ""}};
        const auto s = eng.chat_prompt(sys, co);
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
  const bool cut = !r.prompt_is_ids && p > ctx;  // the bounded encoding stopped at ctx + 1 tokens
  if (p >= ctx)
    throw invalid_request("This model's maximum context length is " + std::to_string(ctx) + " tokens. However, your " + what +
                              " resulted in " + (cut ? "more than " + std::to_string(ctx) : std::to_string(p)) +
                              " tokens (at least one token must be left to generate). " +
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
  g.constraint = make_constraint(r, trie_);
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

namespace {

// Choice i's seed: the request's seed for choice 0 (so n = 1 is unchanged), a splitmix64 mix of
// (seed, i) for the others. A seeded request therefore repeats choice by choice.
std::uint64_t choice_seed(std::uint64_t seed, std::int32_t i) {
  if (i == 0) return seed;
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ull * std::uint64_t(i);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Echo + logprobs: the prompt's own log-probabilities, from the prompt logits the engine computes
// for the first choice (row p predicts token p + 1). A prompt without BOS has nothing predicting
// its first token: null, as OpenAI's.
std::function<void(std::int32_t, const float*)> prompt_scorer(std::shared_ptr<logprob_log> log, std::vector<std::int32_t> prompt,
                                                              std::int32_t vocab) {
  return [log = std::move(log), prompt = std::move(prompt), vocab](std::int32_t position, const float* logits) {
    const auto next = std::size_t(position) + 1;
    if (next >= prompt.size()) return;
    std::int32_t ids[max_top_logprobs];
    float lps[max_top_logprobs];
    log->append(prompt[next], compute_logprobs(logits, vocab, prompt[next], log->k(), ids, lps));
  };
}

}  // namespace

std::vector<request_handle> openai_server::submit_choices(programs::program_engine& eng, const openai_request& r,
                                                          const generation_request& g,
                                                          const std::function<token_callback(std::int32_t)>& callback_for) {
  const std::int32_t total = r.best_of;
  // best_of > n ranks choices by their cumulative logprob: the engine reports it even when the
  // response shows none.
  const std::int32_t lp = r.logprobs >= 0 ? r.logprobs : total > r.n ? 0 : -1;
  std::vector<generation_request> rs;
  rs.reserve(std::size_t(total));
  for (std::int32_t i = 0; i < total; ++i) {
    generation_request gi = g;
    gi.sampling.seed = choice_seed(g.sampling.seed, i);
    gi.logprobs = lp;
    if (i > 0) gi.on_prompt_logits = nullptr;
    if (i > 0 && g.constraint) gi.constraint = make_constraint(r, trie_);  // each choice its own matcher state
    gi.on_token = callback_for(i);
    rs.push_back(std::move(gi));
  }
  if (total == 1) return {submit(eng, std::move(rs.front()))};
  try {
    return eng.submit_group(std::move(rs));
  } catch (const error& e) {
    if (e.code() == errc::capacity) throw invalid_request(e.what(), r.best_of > r.n ? "best_of" : "n", "context_length_exceeded");
    if (e.code() == errc::queue_full)
      throw api_error(429, "rate_limit_error", std::string(e.what()) + ": the server is at capacity, retry later", {}, "queue_full");
    if (e.code() == errc::invalid_argument) throw invalid_request(e.what());
    if (e.code() == errc::shutdown) throw api_error(503, "server_error", "the server is shutting down: request refused", {}, "shutting_down");
    throw;
  }
}

void openai_server::handle_generate(api_kind kind, const std::shared_ptr<exchange>& x) {
  access_record& acc = x->access();
  try {
    programs::program_engine& eng = engine_or_503();
    const openai_request r = parse_openai_request(kind, x->request().body);
    check_model(r.model);
    generation_request g = build_request(r, eng);
    for (const auto& b : r.sampling.logit_bias)
      if (b.token >= eng.info().vocab)
        throw invalid_request("logit_bias token id " + std::to_string(b.token) + " is outside the vocabulary (" +
                                  std::to_string(eng.info().vocab) + " tokens)",
                              "logit_bias");
    // Completions' echo: the prompt as sent (text) or as its ids decode.
    std::string echo;
    std::shared_ptr<logprob_log> prompt_log;
    if (r.echo) {
      echo = r.prompt_is_ids ? eng.decode(r.prompt_ids) : r.prompt_text;
      if (r.logprobs >= 0) {
        prompt_log = std::make_shared<logprob_log>(r.logprobs);
        prompt_log->reserve(g.prompt.size());
        if (r.prompt_is_ids) prompt_log->append_unscored(g.prompt.front());
        g.on_prompt_logits = prompt_scorer(prompt_log, g.prompt, eng.info().vocab);
      }
    }
    auto guard = track(nullptr);
    const response_meta meta = make_meta(kind, model_id_);
    acc.generation = true;
    acc.stream = r.stream;
    const std::weak_ptr<exchange> wx = x;

    if (r.stream) {
      std::vector<stream_choice> choices(std::size_t(r.n));
      for (auto& c : choices) c.channel = std::make_shared<token_channel>(r.logprobs);
      const auto hs = submit_choices(eng, r, g, [&](std::int32_t i) -> token_callback {
        return [channel = choices[std::size_t(i)].channel, wx](const token_event& e) {
          channel->push(e);
          if (auto p = wx.lock()) p->notify();
        };
      });
      for (std::size_t i = 0; i < hs.size(); ++i) choices[i].handle = hs[i];
      guard->attach(hs);
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
      stream_options so;
      so.include_usage = r.include_usage;
      so.logprobs = r.logprobs >= 0;
      so.tok = eng.has_tokenizer() ? &eng.tok() : nullptr;
      so.echo = echo;
      so.echo_logprobs = prompt_log.get();
      // The stream sends echo's prompt (and its logprobs, complete once the first token exists)
      // with each choice's first tokens; the pull function below keeps prompt_log alive.
      auto stream = std::make_shared<sse_stream>(meta, std::move(choices), std::move(so), std::move(on_end));
      if (r.tools.active()) stream->set_tools(std::make_shared<tool_stream>(meta, r.tools.mode == tool_request::choice::automatic));
      x->on_client_gone([stream] { stream->client_gone(); });
      http_response head;
      head.content_type = "text/event-stream";
      head.headers = {{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}};
      x->start_stream(std::move(head), [stream, guard, prompt_log]() {
        exchange::chunk c;
        c.data = stream->pull(c.last);
        return c;
      });
      return;
    }

    // Not streamed: no thread waits. The engine's final events post the answer to a worker; a
    // client that goes away meanwhile cancels the request (its socket is watched, as a stream's).
    // `st` holds the exchange until the answer is given; nothing else the engine keeps does.
    auto st = std::make_shared<pending_answer>();
    st->x = x;
    st->guard = guard;
    st->meta = meta;
    st->tools = r.tools.active();
    st->n = r.n;
    st->logprobs = r.logprobs >= 0;
    st->echo = echo;
    st->prompt_log = prompt_log;
    const std::int32_t lp_k = std::max(r.logprobs, 0);
    for (std::int32_t i = 0; i < r.best_of; ++i) {
      st->logs.emplace_back(lp_k);
      if (r.logprobs >= 0 || r.best_of > r.n) st->logs.back().reserve(std::size_t(g.stop.max_tokens) + 1);
    }
    const auto total = r.best_of;
    auto hs = submit_choices(eng, r, g, [this, st, total](std::int32_t i) -> token_callback {
      return [this, st, total, i](const token_event& e) {
        if (!e.finished) {
          if (e.logprobs) st->logs[std::size_t(i)].append(e.token, *e.logprobs);
          return;
        }
        std::unique_lock lock(st->mutex);
        if (++st->finished == total && st->submitted) {
          lock.unlock();
          post_work([this, st] { answer(*st); });
        }
      };
    });
    guard->attach(hs);
    bool finished_already = false;
    {
      std::lock_guard lock(st->mutex);
      st->hs = hs;
      st->submitted = true;
      finished_already = st->finished == total;
    }
    // Every final event and submit() returning are needed; whichever comes last posts.
    if (finished_already) post_work([this, st] { answer(*st); });
    x->on_client_gone([w = std::weak_ptr<pending_answer>(st), hs] {
      if (auto p = w.lock()) p->client_left = true;
      for (const auto& h : hs) h->cancel();
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
  std::vector<request_handle> hs;
  {
    std::lock_guard lock(st.mutex);
    x = std::move(st.x);
    hs = std::move(st.hs);
  }
  if (!x || hs.empty()) return;
  for (const auto& h : hs) h->wait();
  access_record& a = x->access();
  // The prompt once; every generated token counts (best_of's discarded choices too, as OpenAI).
  usage_counts u{hs.front()->prompt_tokens(), 0, hs.front()->reused_tokens()};
  for (const auto& h : hs) u.completion += h->completion_tokens();
  a.prompt = u.prompt;
  a.completion = u.completion;
  a.cached = u.cached;
  // The worst outcome decides: an error, else a cancellation, else the first choice's reason.
  const request_handle* bad = nullptr;
  for (const auto& h : hs)
    if (h->reason() == finish_reason::error || (h->reason() == finish_reason::cancelled && !bad)) bad = &h;
  const finish_reason reason = bad ? (*bad)->reason() : hs.front()->reason();
  a.finish = std::string(to_string(reason));
  trim_pending_ = true;
  if (reason == finish_reason::cancelled && st.client_left) {
    a.finish = "client_gone";
    a.incomplete = true;
    http_response res;
    res.status = 499;  // nginx's "client closed request": never sent, for the log
    x->respond(std::move(res));
  } else if (reason == finish_reason::error) {
    x->respond(error_response(a, api_error(500, "server_error", "generation failed: " + (*bad)->error_message())));
  } else if (reason == finish_reason::cancelled) {
    x->respond(error_response(a, api_error(503, "server_error", "request cancelled: the server is shutting down", {}, "shutting_down")));
  } else {
    // best_of: the n choices with the highest cumulative logprob, best first (ties: lower index).
    std::vector<std::size_t> order(hs.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    if (std::int32_t(hs.size()) > st.n)
      std::stable_sort(order.begin(), order.end(),
                       [&](std::size_t i, std::size_t j) { return st.logs[i].cumulative() > st.logs[j].cumulative(); });
    const auto* eng = engine_.load(std::memory_order_acquire);
    const tokenizer* tok = eng && eng->has_tokenizer() ? &eng->tok() : nullptr;
    std::vector<choice_out> choices;
    for (std::int32_t c = 0; c < st.n; ++c) {
      const std::size_t i = order[std::size_t(c)];
      choice_out o;
      o.index = c;
      o.text = st.echo + hs[i]->text();
      o.finish_reason = std::string(to_string(hs[i]->reason()));
      if (st.logprobs && tok)
        o.logprobs = st.meta.kind == api_kind::chat
                         ? chat_logprobs_json(st.logs[i], 0, st.logs[i].size(), *tok)
                         : completion_logprobs_json(st.prompt_log.get(), st.logs[i], 0, st.logs[i].size(), *tok);
      choices.push_back(std::move(o));
    }
    http_response res;
    // tools: one choice (openai_request.cpp refuses n > 1 with tools), answered as a call when the
    // model wrote one.
    const tool_call_result call = st.tools ? extract_tool_call(hs.front()->text()) : tool_call_result{};
    res.body = call.found ? tool_call_body(st.meta, call, u) : completion_body(st.meta, choices, u);
    x->respond(std::move(res));
  }
  st.guard.reset();
}

// llama.cpp server's shapes:
//   POST /tokenize   {"content": "...", "add_special": false, "with_pieces": false} -> {"tokens": [ids]}
//                    (with_pieces: [{"id": 123, "piece": "text"}], the piece as a byte array when it
//                    is not valid UTF-8 on its own)
//   POST /detokenize {"tokens": [ids]} -> {"content": "..."}
// Bounded as generation requests are: the body by --max-body-bytes and the JSON depth limit, the
// tokens by the context (the encoding stops past it: 400 with the numbers).
void openai_server::handle_tokenize(bool detokenize, const std::shared_ptr<exchange>& x) {
  access_record& acc = x->access();
  try {
    programs::program_engine& eng = engine_or_503();
    const std::string& body = x->request().body;
    if (const std::size_t bad = utf8_first_invalid(body); bad != std::string::npos)
      throw invalid_request("request body is not valid UTF-8 (invalid byte at offset " + std::to_string(bad) + ")", {}, "invalid_utf8");
    if (body.find('\0') != std::string::npos) throw invalid_request("request body is not valid JSON: a raw NUL byte", {}, "invalid_json");
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(body, [](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
        if ((event == nlohmann::json::parse_event_t::object_start || event == nlohmann::json::parse_event_t::array_start) &&
            depth >= int(max_json_depth))
          throw invalid_request("request body is nested deeper than " + std::to_string(max_json_depth) + " levels", {}, "invalid_json");
        return true;
      });
    } catch (const nlohmann::json::exception& e) {
      throw invalid_request(std::string("request body is not valid JSON: ") + e.what(), {}, "invalid_json");
    }
    if (!doc.is_object()) throw invalid_request("request body must be a JSON object", {}, "invalid_json");
    const tokenizer& tok = eng.tok();
    const std::int32_t vocab = eng.info().vocab;
    nlohmann::ordered_json out;
    if (detokenize) {
      const auto t = doc.find("tokens");
      if (t == doc.end() || !t->is_array()) throw invalid_request("'tokens' must be an array of token ids", "tokens");
      std::vector<std::int32_t> ids;
      ids.reserve(t->size());
      for (std::size_t i = 0; i < t->size(); ++i) {
        const auto& v = (*t)[i];
        if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() >= vocab)
          throw invalid_request("'tokens[" + std::to_string(i) + "]' is " + v.dump() + ": not a token id of this model (0 to " +
                                    std::to_string(vocab - 1) + ")",
                                "tokens");
        ids.push_back(std::int32_t(v.get<std::int64_t>()));
      }
      out["content"] = eng.decode(ids);
    } else {
      const auto c = doc.find("content");
      if (c == doc.end() || !c->is_string()) throw invalid_request("'content' must be a string", "content");
      auto flag = [&](const char* name) {
        const auto f = doc.find(name);
        if (f == doc.end() || f->is_null()) return false;
        if (!f->is_boolean()) throw invalid_request(std::string("'") + name + "' must be a boolean", name);
        return f->get<bool>();
      };
      const bool add_special = flag("add_special"), with_pieces = flag("with_pieces");
      const std::string& text = c->get_ref<const std::string&>();
      const std::int64_t ctx = std::int64_t(eng.config().limits.max_seq_len);
      const auto ids = eng.encode(text, add_special, std::size_t(ctx));
      if (std::int64_t(ids.size()) > ctx)
        throw invalid_request("'content' resulted in more than " + std::to_string(ctx) + " tokens, the context of this server",
                              "content", "context_length_exceeded");
      nlohmann::ordered_json list = nlohmann::ordered_json::array();
      for (const auto id : ids) {
        if (!with_pieces) {
          list.push_back(id);
          continue;
        }
        const std::string_view piece = tok.token_bytes(id, false);
        nlohmann::ordered_json e;
        e["id"] = id;
        if (is_valid_utf8(piece)) {
          e["piece"] = std::string(piece);
        } else {
          nlohmann::ordered_json bytes = nlohmann::ordered_json::array();
          for (char ch : piece) bytes.push_back(int(static_cast<unsigned char>(ch)));
          e["piece"] = std::move(bytes);
        }
        list.push_back(std::move(e));
      }
      out["tokens"] = std::move(list);
    }
    http_response res;
    res.body = out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    x->respond(std::move(res));
  } catch (const api_error& e) {
    x->respond(error_response(acc, e));
  } catch (const std::exception& e) {
    x->respond(error_response(acc, api_error(500, "server_error", std::string("internal error: ") + e.what())));
  }
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
    if (get && p == "/") return chat_page_response();  // open like /health: the page asks for the key
    if (p == "/tokenize" || p == "/detokenize") {
      if (req.method != "POST") throw api_error(405, "invalid_request_error", "use POST for this endpoint", {}, "method_not_allowed");
      check_auth(req);
      engine_or_503();
      return std::nullopt;  // read the body (bounded by --max-body-bytes, as every body)
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
    const std::string& path = x->request().path;
    if (path == "/tokenize" || path == "/detokenize") {
      const bool de = path == "/detokenize";
      post_work([this, de, x = std::move(x)] { handle_tokenize(de, x); });
      return;
    }
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
