#pragma once
// scheduler: runs requests with continuous batching over a model_runner (runtime/model_runner.hpp).
// One non-template class, compiled once whatever the model: the model, the backend and the KV type
// are the runner's (runtime/runner.hpp), reached through a few virtual calls per step.
//
// Each step runs one decode row for every running sequence plus at most one prefill chunk
// (chunked prefill), all in one forward pass. Admission is FIFO and happens only when the pool can
// reserve every block a request may need, so running requests never run out of KV and nothing is
// preempted or dropped; a request that does not fit waits. The step path allocates nothing:
// buffers are views into the arena the runner allocated at start-up, per-request arrays are
// reserved at submission.
//
// Threading: submit()/cancel() are thread-safe. With `threaded = true` a worker thread runs
// steps while there is work; otherwise the owner calls step() / run_until_idle() (tests, CLIs).
// Callbacks run on the thread that runs steps.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <new>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gemmaforge/core/error.hpp>
#include <gemmaforge/plan/arena_layout.hpp>
#include <gemmaforge/plan/serving_config.hpp>
#include <gemmaforge/runtime/forward.hpp>
#include <gemmaforge/runtime/logprobs.hpp>
#include <gemmaforge/runtime/model_runner.hpp>
#include <gemmaforge/runtime/request.hpp>
#include <gemmaforge/runtime/sampler.hpp>
#include <gemmaforge/step/step.hpp>
#include <gemmaforge/runtime/stop_matcher.hpp>
#include <gemmaforge/runtime/text_stream.hpp>

namespace gemmaforge {

// What the engine needs beyond the limits. Every size is in `limits`, the plan's vocabulary
// (plan/serving_config.hpp): the engine carves exactly the arena layout the planner sums for it.
struct engine_config {
  serving_config limits{};            // max_seq_len, max_batch, prefill_chunk, block_tokens, KV pool, prefix slots, logits rows
  std::int32_t max_queue = 1024;      // waiting requests beyond this are refused (errc::queue_full)
  bool threaded = false;              // run steps on a worker thread
  forward_options forward;
  std::vector<std::int32_t> stop_ids; // always-stop ids (eos, <end_of_turn>)

  // The limits' own check (the planner's messages), and the queue bound.
  void validate() const {
    if (const config_error e = check(limits); e != config_error::none)
      throw error(errc::invalid_argument, std::string(to_string(e)));
    if (max_queue < 0) throw error(errc::invalid_argument, "max_queue must be >= 0");
    if (max_queue > max_supported_queue)
      throw error(errc::invalid_argument, "max_queue must be at most " + std::to_string(max_supported_queue));
  }

  static constexpr std::int32_t max_supported_queue = 1 << 20;
};

struct engine_stats {
  std::uint64_t requests_submitted = 0, requests_finished = 0, requests_failed = 0, requests_rejected = 0;
  std::uint64_t prompt_tokens = 0, generated_tokens = 0, reused_prompt_tokens = 0, steps = 0;
  std::int32_t running = 0, waiting = 0;
  std::int32_t kv_blocks_total = 0, kv_blocks_used = 0, kv_blocks_reserved = 0;
  std::int32_t kv_blocks_cached = 0;  // of kv_blocks_used, held only by the prefix cache (evictable)
};

class scheduler {
 public:
  // `runner` carries the model, its KV pool and its arena (its limits, with the KV type, replace
  // cfg.limits); `text` may be null (then requests must use decode_text = false).
  scheduler(std::unique_ptr<model_runner> runner, engine_config cfg, std::shared_ptr<const token_text> text = nullptr)
      : cfg_(std::move(cfg)), runner_(std::move(runner)), text_(std::move(text)) {
    if (!runner_) throw error(errc::invalid_argument, "scheduler: no model runner");
    cfg_.limits = runner_->limits();
    cfg_.validate();
    const serving_config& c = cfg_.limits;
    vocab_ = runner_->vocab();
    max_seq_len_ = std::int32_t(c.max_seq_len);
    max_batch_ = std::int32_t(c.max_batch);
    prefill_chunk_ = std::int32_t(std::min(c.prefill_chunk, c.max_seq_len));
    block_tokens_ = std::int32_t(c.block_tokens);
    max_step_tokens_ = std::int32_t(runner_->layout().step_tokens);
    logits_rows_ = std::int32_t(runner_->layout().logits_rows);
    carve_step_records();
    snapshot_pool();
    if (cfg_.threaded) worker_ = std::thread([this] { worker_loop(); });
  }

  ~scheduler() { shutdown(); }
  scheduler(const scheduler&) = delete;
  scheduler& operator=(const scheduler&) = delete;

  // ---- submission ----------------------------------------------------------------------------
  request_handle submit(generation_request r) {
    auto st = prepare(std::move(r));
    enqueue({&st, 1});
    return st;
  }

  // n sequences over one prompt (OpenAI's n and best_of): the same prompt, each with its own
  // sampling (seed) and stops. The prompt is prefilled once: the first request leads, its prompt's
  // full KV blocks go to the prefix cache as soon as they are computed, and the others attach them
  // (reference counted, no copy) and prefill only the last partial block. Admission reserves the
  // whole group: the leader waits until the pool could hold all n sequences, and no request behind
  // the group is admitted before all n are running. A group that could never fit is refused now.
  std::vector<request_handle> submit_group(std::vector<generation_request> rs) {
    const auto g = std::int32_t(rs.size());
    if (g == 0) throw error(errc::invalid_argument, "submit_group: no requests");
    for (const auto& r : rs)
      if (r.prompt != rs.front().prompt) throw error(errc::invalid_argument, "submit_group: the requests must share one prompt");
    if (g > max_batch_)
      throw error(errc::capacity, "n = " + std::to_string(g) + " sequences must run together, but the engine runs at most " +
                                      std::to_string(max_batch_) + " sequences (max_batch)");
    // The leader caches its whole prompt (up to its last full block) for the others.
    if (g > 1) rs.front().shared_prefix = std::int32_t(rs.front().prompt.size());
    std::vector<request_handle> sts;
    sts.reserve(rs.size());
    for (auto& r : rs) sts.push_back(prepare(std::move(r)));
    std::int64_t blocks = 0;
    for (const auto& st : sts) blocks += runner_->blocks_for(st->max_total_);
    if (blocks > runner_->total_blocks())
      throw error(errc::capacity, "n = " + std::to_string(g) + " sequences of up to " + std::to_string(sts.front()->max_total_) +
                                      " tokens need " + std::to_string(blocks) + " KV blocks (" + std::to_string(g) + " x " +
                                      std::to_string(runner_->blocks_for(sts.front()->max_total_)) + " of " +
                                      std::to_string(block_tokens_) + " tokens); the pool has " +
                                      std::to_string(runner_->total_blocks()));
    for (std::size_t i = 1; i < sts.size(); ++i) sts[i]->leader_ = sts.front();
    sts.front()->group_size_ = g;
    enqueue(sts);
    return sts;
  }

  // Blocking convenience: submit, run (or wait for the worker), return the finished request.
  request_handle generate(generation_request r) {
    auto h = submit(std::move(r));
    if (cfg_.threaded) {
      h->wait();
    } else {
      while (!h->done()) step();
    }
    return h;
  }

  void cancel(const request_handle& h) { if (h) h->cancel(); }

  // Stop accepting requests, cancel everything waiting or running, join the worker.
  void shutdown() {
    {
      std::lock_guard lock(queue_mutex_);
      if (stopping_ && !worker_.joinable()) return;
      stopping_ = true;
    }
    queue_cv_.notify_all();
    if (worker_.joinable()) worker_.join();
    std::deque<request_handle> rest;
    {
      std::lock_guard lock(queue_mutex_);
      rest.swap(waiting_);
    }
    for (const auto& r : rest) finish(*r, finish_reason::cancelled);
    for (const auto& r : running_) release_and_finish(*r, finish_reason::cancelled);
    running_.clear();
    std::lock_guard lock(queue_mutex_);
    snapshot_pool();
  }

  // ---- stepping ------------------------------------------------------------------------------
  bool idle() const {
    std::lock_guard lock(queue_mutex_);
    return waiting_.empty() && running_count_ == 0;
  }

  void run_until_idle() {
    while (!idle()) step();
  }

  // One scheduler step: admit, cancel, build the batch, forward, sample, stream, finish.
  void step() {
    admit_waiting();
    reap_cancelled();
    if (running_.empty()) {
      std::lock_guard lock(queue_mutex_);
      running_count_ = 0;
      snapshot_pool();
      return;
    }
    build_batch();
    try {
      consume_logits(runner_->step(batch_));
    } catch (const std::exception& e) {
      // A failed step fails the requests in it; the engine and the pool stay consistent.
      for (std::int32_t s = 0; s < batch_.n_seqs; ++s) fail(*step_requests_[std::size_t(s)], e.what());
    }
    std::erase_if(running_, [](const request_handle& r) { return r->slot_ < 0; });
    std::lock_guard lock(queue_mutex_);
    running_count_ = std::int32_t(running_.size());
    ++stats_.steps;
    snapshot_pool();
  }

  // ---- introspection -------------------------------------------------------------------------
  engine_stats stats() const {
    std::lock_guard lock(queue_mutex_);
    engine_stats s = stats_;
    s.waiting = std::int32_t(waiting_.size());
    s.running = running_count_;
    return s;
  }
  const engine_config& config() const { return cfg_; }
  // What the runner allocated: the arena (and the host staging of a GPU backend), region by region.
  const arena_layout& layout() const { return runner_->layout(); }
  std::uint64_t arena_bytes() const { return runner_->layout().total(); }
  model_runner& runner() { return *runner_; }
  const token_text* text() const { return text_.get(); }

 private:
  // Validate a request and build its state (on the caller's thread: steps then allocate nothing).
  request_handle prepare(generation_request r) {
    validate(r.sampling);
    validate(r.stop);
    if (r.decode_text && !text_) throw error(errc::invalid_argument, "this engine has no tokenizer: set decode_text = false");
    if (r.logprobs > max_top_logprobs)
      throw error(errc::invalid_argument, "logprobs: at most " + std::to_string(max_top_logprobs) + " alternatives per token");
    const auto n = std::int32_t(r.prompt.size());
    if (n == 0) throw error(errc::invalid_argument, "empty prompt: at least one token (BOS) is needed");
    for (auto id : r.prompt)
      if (id < 0 || id >= vocab_)
        throw error(errc::invalid_argument, "token id " + std::to_string(id) + " outside the vocabulary of " +
                                                std::to_string(vocab_));
    for (const auto& b : r.sampling.logit_bias)
      if (b.token >= vocab_)
        throw error(errc::invalid_argument, "logit_bias token id " + std::to_string(b.token) + " is outside the vocabulary of " +
                                                std::to_string(vocab_));
    const bool generates = r.stop.max_tokens > 0;
    if (n > max_seq_len_ || (generates && n == max_seq_len_))
      throw error(errc::capacity, "prompt of " + std::to_string(n) + " tokens does not fit the context of " +
                                      std::to_string(max_seq_len_) + " tokens" +
                                      (generates ? " (at least one must be left to generate)" : ""));
    auto st = std::make_shared<request_state>();
    st->prompt_tokens_ = n;
    st->max_total_ = std::int32_t(std::min<std::int64_t>(std::int64_t(n) + std::max(r.stop.max_tokens, 0), max_seq_len_));
    if (!runner_->could_ever_fit(st->max_total_))
      throw error(errc::capacity, "request needs " + std::to_string(runner_->blocks_for(st->max_total_)) +
                                      " KV blocks; the pool has " + std::to_string(runner_->total_blocks()));
    st->tokens_.reserve(std::size_t(st->max_total_) + 1);
    st->tokens_.assign(r.prompt.begin(), r.prompt.end());
    st->output_.reserve(std::size_t(std::max(r.stop.max_tokens, 0)) + 1);
    if (r.decode_text) st->text_.reserve(std::size_t(std::max(r.stop.max_tokens, 0)) * 8 + 64);
    st->req = std::move(r);
    st->detok_ = text_ ? text_stream(text_.get()) : text_stream();
    st->stops_ = stop_matcher(&st->req.stop.stop_strings);
    st->timings_.submitted = std::chrono::steady_clock::now();
    return st;
  }

  // Queue prepared requests together (a group is never split by the queue bound).
  void enqueue(std::span<const request_handle> sts) {
    {
      std::lock_guard lock(queue_mutex_);
      if (stopping_) throw error(errc::shutdown, "engine is shut down: request refused");
      if (std::int64_t(waiting_.size()) + std::int64_t(sts.size()) > cfg_.max_queue) {
        ++stats_.requests_rejected;
        throw error(errc::queue_full, "request queue is full (" + std::to_string(cfg_.max_queue) + " waiting)");
      }
      for (const auto& st : sts) {
        st->id_ = ++next_id_;
        waiting_.push_back(st);
        ++stats_.requests_submitted;
      }
    }
    queue_cv_.notify_one();
  }

  // A group member waits until its leader's prompt blocks are cached (or the leader is gone).
  bool leader_ready(const request_state& leader) const {
    return leader.slot_ < 0 || leader.prefilled_ >= shared_boundary(leader);
  }

  // The step records and the sampler's workspace are regions of the runner's arena (the plan
  // counts them), carved by name.
  void carve_step_records() {
    static_assert(sizeof(step_sequence) <= step_sequence_bytes && sizeof(void*) <= step_request_bytes,
                  "plan/arena_layout.hpp: step records outgrew their planned size");
    auto ints = [&](std::string_view name) { return reinterpret_cast<std::int32_t*>(runner_->region(name)); };
    step_tokens_ = ints("step_tokens");
    step_positions_ = ints("step_positions");
    step_logit_rows_ = ints("step_logit_rows");
    step_seqs_ = new (runner_->region("step_seqs")) step_sequence[std::size_t(max_batch_) + 1]{};
    step_requests_ = new (runner_->region("step_requests")) request_state*[std::size_t(max_batch_) + 1]{};
    std::byte* sampler = runner_->region("sampler");  // [vocab] floats, then [vocab] ids
    sample_probs_ = reinterpret_cast<float*>(sampler);
    sample_ids_ = reinterpret_cast<std::int32_t*>(sampler + std::size_t(vocab_) * sizeof(float));
    running_.reserve(std::size_t(max_batch_));
    cancelled_scratch_.reserve(std::size_t(cfg_.max_queue) + 1);
  }

  // The pool is mutated by the stepping thread outside the queue lock; stats() reads this copy,
  // taken under the lock at the end of each step, so other threads (a server's /metrics) never
  // read the pool while it changes.
  void snapshot_pool() {
    stats_.kv_blocks_total = runner_->total_blocks();
    stats_.kv_blocks_used = runner_->used_blocks();
    stats_.kv_blocks_reserved = runner_->reserved_blocks();
    stats_.kv_blocks_cached = runner_->cached_only_blocks();
  }

  void worker_loop() {
    for (;;) {
      {
        std::unique_lock lock(queue_mutex_);
        queue_cv_.wait(lock, [&] { return stopping_ || !waiting_.empty() || running_count_ > 0; });
        if (stopping_) return;
      }
      step();
    }
  }

  void admit_waiting() {
    std::vector<request_handle>& cancelled = cancelled_scratch_;
    {
      std::lock_guard lock(queue_mutex_);
      // Cancelled while waiting: finish without ever taking blocks (outside the lock, below).
      for (auto it = waiting_.begin(); it != waiting_.end();) {
        if ((*it)->cancel_requested()) {
          cancelled.push_back(std::move(*it));
          it = waiting_.erase(it);
        } else {
          ++it;
        }
      }
      while (!waiting_.empty() && std::int32_t(running_.size()) < max_batch_) {
        request_state& r = *waiting_.front();
        // Groups: the leader waits for room for all, the others for the leader's cached prompt.
        if (r.group_size_ > 1 && !runner_->could_admit_together(r.group_size_, r.max_total_)) break;
        if (r.leader_ && !leader_ready(*r.leader_)) break;
        // A scored prompt (prompt logits wanted) computes every position: no cached prefix.
        const auto a = runner_->admit(r.tokens_.data(), r.prompt_tokens_, r.max_total_, !r.req.on_prompt_logits);
        if (a.slot < 0) break;  // FIFO: later requests wait behind the first one that does not fit
        r.slot_ = a.slot;
        r.prefilled_ = a.reused_tokens;
        r.reused_tokens_ = a.reused_tokens;
        r.timings_.admitted = std::chrono::steady_clock::now();
        stats_.reused_prompt_tokens += std::uint64_t(a.reused_tokens);
        stats_.prompt_tokens += std::uint64_t(r.prompt_tokens_);
        r.leader_.reset();  // admitted: the group's bond is no longer needed
        running_.push_back(std::move(waiting_.front()));
        waiting_.pop_front();
      }
      running_count_ = std::int32_t(running_.size());
    }
    for (const auto& r : cancelled) finish(*r, finish_reason::cancelled);
    cancelled.clear();
  }

  void reap_cancelled() {
    for (const auto& r : running_)
      if (r->cancel_requested()) release_and_finish(*r, finish_reason::cancelled);
    std::erase_if(running_, [](const request_handle& r) { return r->slot_ < 0; });
  }

  void build_batch() {
    std::int32_t rows = 0, n = 0, logit_rows = 0;
    auto add = [&](request_state& r, std::int32_t start, std::int32_t count, step_sequence::logits want, std::int32_t skip = 0) {
      runner_->ensure_blocks(r.slot_, start + count);
      step_sequence& s = step_seqs_[std::size_t(n)];
      s.slot = r.slot_;
      s.start = start;
      s.n_tokens = count;
      s.first_row = rows;
      s.want = want;
      s.logits_skip = skip;
      for (std::int32_t i = 0; i < count; ++i) {
        const std::size_t row = std::size_t(rows) + std::size_t(i);
        step_tokens_[row] = r.tokens_[std::size_t(start) + std::size_t(i)];
        step_positions_[row] = start + i;
      }
      step_requests_[std::size_t(n)] = &r;
      rows += count;
      logit_rows += want == step_sequence::logits::all ? count - skip : want == step_sequence::logits::last ? 1 : 0;
      ++n;
    };
    // Decode rows first: every sequence whose prompt is cached advances by one token.
    for (const auto& r : running_)
      if (r->prefilled_ == r->prompt_tokens_) add(*r, std::int32_t(r->tokens_.size()) - 1, 1, step_sequence::logits::last);
    // Then one prefill chunk. Sequences still reading their prompts take turns, a chunk each in
    // request order (round robin on the id), so a short prompt admitted behind a long one gets its
    // first token after about one chunk of the long one, not after all of it. A chunk ends at the
    // shared-prefix boundary so that position can be cached (see generation_request), and a
    // scored prompt (perplexity) is cut to the logits rows left.
    request_state* turn = nullptr;
    request_state* oldest = nullptr;
    for (const auto& r : running_) {
      if (r->prefilled_ == r->prompt_tokens_) continue;
      if (!oldest || r->id_ < oldest->id_) oldest = r.get();
      if (r->id_ > last_prefill_id_ && (!turn || r->id_ < turn->id_)) turn = r.get();
    }
    if (!turn) turn = oldest;
    if (request_state* r = turn) {
      std::int32_t count = std::min({r->prompt_tokens_ - r->prefilled_, prefill_chunk_, max_step_tokens_ - rows});
      const std::int32_t boundary = shared_boundary(*r);
      if (r->prefilled_ < boundary && r->prefilled_ + count > boundary) count = boundary - r->prefilled_;
      const bool scored = bool(r->req.on_prompt_logits);
      if (scored) count = std::min(count, logits_rows_ - logit_rows);
      if (count > 0) {
        last_prefill_id_ = r->id_;
        const bool last_chunk = r->prefilled_ + count == r->prompt_tokens_;
        // A scored chunk skips the positions before prompt_logits_from; one wholly before it is
        // an ordinary chunk.
        const std::int32_t skip = scored ? std::clamp(r->req.prompt_logits_from - r->prefilled_, 0, count) : 0;
        const bool rows_wanted = scored && skip < count;
        add(*r, r->prefilled_, count,
            rows_wanted ? step_sequence::logits::all : last_chunk ? step_sequence::logits::last : step_sequence::logits::none,
            rows_wanted ? skip : 0);
      }
    }
    batch_.tokens = step_tokens_;
    batch_.positions = step_positions_;
    batch_.n_tokens = rows;
    batch_.seqs = step_seqs_;
    batch_.n_seqs = n;
    batch_.n_logits_rows = choose_logit_rows(step_seqs_, n, step_logit_rows_);  // the one choice of rows
    batch_.logit_rows = step_logit_rows_;
  }

  void consume_logits(const float* logits) {
    std::int32_t row = 0;
    const auto now = std::chrono::steady_clock::now();
    for (std::int32_t s = 0; s < batch_.n_seqs; ++s) {
      const step_sequence& sq = step_seqs_[std::size_t(s)];
      request_state& r = *step_requests_[std::size_t(s)];
      runner_->set_cached_tokens(r.slot_, sq.start + sq.n_tokens);
      const bool prefilling = r.prefilled_ < r.prompt_tokens_;
      if (prefilling) {
        r.prefilled_ = sq.start + sq.n_tokens;
        // Cache the shared prefix and the whole prompt as soon as their K/V exist.
        if (r.prefilled_ == shared_boundary(r) || r.prefilled_ == r.prompt_tokens_)
          runner_->register_prefix(r.slot_, r.tokens_.data(), r.prefilled_);
      }
      if (sq.want == step_sequence::logits::none) continue;
      if (sq.want == step_sequence::logits::all) {
        const std::int32_t skip = sq.logits_skip;
        for (std::int32_t i = skip; i < sq.n_tokens; ++i)
          r.req.on_prompt_logits(sq.start + i, logits + std::size_t(row + i - skip) * vocab_);
        row += sq.n_tokens - skip - 1;  // the last row doubles as the sampling row
        if (r.prefilled_ < r.prompt_tokens_) { ++row; continue; }
      }
      // The logits buffer row is consumed (penalties modify it in place).
      float* lr = const_cast<float*>(logits) + std::size_t(row++) * vocab_;
      if (prefilling && r.req.stop.max_tokens == 0) {  // scoring only: nothing to generate
        r.timings_.first_token = now;
        release_and_finish(r, finish_reason::length);
        continue;
      }
      if (r.req.constraint) r.req.constraint->mask(lr, vocab_, cfg_.stop_ids);
      const auto token = sample_token(lr, vocab_, r.tokens_.data(), std::int32_t(r.tokens_.size()), r.req.sampling,
                                      r.output_.size(), sampler_scratch{sample_probs_, sample_ids_});
      if (r.req.constraint) r.req.constraint->accept(token);
      if (r.output_.empty()) r.timings_.first_token = now;
      r.output_.push_back(token);
      r.tokens_.push_back(token);
      // Log-probabilities from the row the draw used; the sampler's workspace is free again.
      token_logprobs lp;
      if (r.req.logprobs >= 0) lp = compute_logprobs(lr, vocab_, token, r.req.logprobs, sample_ids_, sample_probs_);
      emit(r, token, r.req.logprobs >= 0 ? &lp : nullptr);
    }
  }

  std::int32_t shared_boundary(const request_state& r) const {
    const std::int32_t b = std::min(r.req.shared_prefix, r.prompt_tokens_ - 1);
    return b > 0 ? b / block_tokens_ * block_tokens_ : 0;
  }

  bool is_stop_id(const request_state& r, std::int32_t token) const {
    if (!r.req.stop.ignore_eos)
      for (auto id : cfg_.stop_ids)
        if (id == token) return true;
    for (auto id : r.req.stop.stop_ids)
      if (id == token) return true;
    return false;
  }

  void emit(request_state& r, std::int32_t token, const token_logprobs* lp) {
    finish_reason reason = finish_reason::none;
    std::string_view piece;
    if (is_stop_id(r, token)) {
      reason = finish_reason::stop;
    } else if (r.req.decode_text) {
      const std::string_view bytes = r.detok_.push(token);
      const std::size_t before = r.text_.size();
      r.stops_.feed(bytes, r.text_);
      piece = std::string_view(r.text_).substr(before);
      if (r.stops_.stopped()) reason = finish_reason::stop;
    }
    if (reason == finish_reason::none &&
        (std::int32_t(r.output_.size()) >= r.req.stop.max_tokens || std::int32_t(r.tokens_.size()) >= r.max_total_))
      reason = finish_reason::length;
    if (reason != finish_reason::none && reason != finish_reason::stop && r.req.decode_text) {
      // End of output: release text held back for a possible stop string or an incomplete char.
      const std::size_t before = piece.data() ? std::size_t(piece.data() - r.text_.data()) : r.text_.size();
      r.stops_.feed(r.detok_.flush(), r.text_);
      r.stops_.flush(r.text_);
      piece = std::string_view(r.text_).substr(before);
    }
    if (r.req.on_token) r.req.on_token(token_event{token, piece, false, finish_reason::none, lp});
    if (reason != finish_reason::none) release_and_finish(r, reason);
  }

  void release_and_finish(request_state& r, finish_reason reason) {
    if (r.slot_ >= 0) {
      // Remember what this sequence computed: a prompt shared by later requests (system prompt)
      // or a chat history continued next turn is then not recomputed. The last token has no K/V yet.
      const std::int32_t cached = runner_->cached_tokens(r.slot_);
      if (reason != finish_reason::error) runner_->register_prefix(r.slot_, r.tokens_.data(), cached);
      runner_->release(r.slot_);
      r.slot_ = -1;
    }
    finish(r, reason);
  }

  void fail(request_state& r, const std::string& what) {
    r.error_ = what;
    {
      std::lock_guard lock(queue_mutex_);
      ++stats_.requests_failed;
    }
    release_and_finish(r, finish_reason::error);
  }

  void finish(request_state& r, finish_reason reason) {
    r.reason_ = reason;
    r.timings_.finished = std::chrono::steady_clock::now();
    if (r.timings_.first_token == std::chrono::steady_clock::time_point{}) r.timings_.first_token = r.timings_.finished;
    {
      std::lock_guard lock(queue_mutex_);
      ++stats_.requests_finished;
      stats_.generated_tokens += r.output_.size();
    }
    if (r.req.on_token) r.req.on_token(token_event{-1, {}, true, reason});
    r.mark_done();
  }

  engine_config cfg_;
  std::unique_ptr<model_runner> runner_;
  std::shared_ptr<const token_text> text_;
  std::int32_t vocab_ = 0;
  std::int32_t max_seq_len_ = 0, max_batch_ = 0, prefill_chunk_ = 0, block_tokens_ = 0;
  std::int32_t max_step_tokens_ = 0, logits_rows_ = 0;
  step_batch batch_;
  // Views into the layout's step_* and sampler regions.
  std::int32_t* step_tokens_ = nullptr;
  std::int32_t* step_positions_ = nullptr;
  std::int32_t* step_logit_rows_ = nullptr;  // [logits rows] step_batch::logit_rows, chosen once here
  step_sequence* step_seqs_ = nullptr;
  request_state** step_requests_ = nullptr;
  float* sample_probs_ = nullptr;
  std::int32_t* sample_ids_ = nullptr;

  mutable std::mutex queue_mutex_;
  std::condition_variable queue_cv_;
  std::deque<request_handle> waiting_;
  std::vector<request_handle> running_;  // touched by the stepping thread only
  std::vector<request_handle> cancelled_scratch_;
  std::int32_t running_count_ = 0;        // mirror of running_.size() for other threads
  bool stopping_ = false;
  std::uint64_t next_id_ = 0;
  std::uint64_t last_prefill_id_ = 0;      // whose prompt the last prefill chunk read (build_batch)
  engine_stats stats_;
  std::thread worker_;
};

}  // namespace gemmaforge
