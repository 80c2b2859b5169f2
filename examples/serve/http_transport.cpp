// The event-driven HTTP transport: Boost.Asio sockets and timers, Boost.Beast's request parser.
#include "http_transport.hpp"

#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_map>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <gemmaforge/core/error.hpp>

namespace gemmaforge::serve {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using boost::system::error_code;

namespace {

const char* reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

std::string status_line(int status) { return "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n"; }

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  out += value;
  out += "\r\n";
}

std::string serialize(const http_response& r, bool head_only) {
  std::string out = status_line(r.status);
  append_header(out, "Content-Type", r.content_type);
  for (const auto& [k, v] : r.headers) append_header(out, k, v);
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\nConnection: close\r\n\r\n";
  if (!head_only) out += r.body;
  return out;
}

std::string chunk_frame(std::string_view data) {
  char size[24];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  std::string out = size;
  out += data;
  out += "\r\n";
  return out;
}

}  // namespace

class http_transport::impl {
 public:
  class connection;

  impl(transport_options o, transport_handlers h) : opts_(std::move(o)), h_(std::move(h)), acceptor_(ioc_) {}
  ~impl() { stop(); }

  int bind() {
    // Each connection is a file descriptor: never accept more than the process may open.
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
      if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
      }
      const auto fds = rl.rlim_cur == RLIM_INFINITY ? rlim_t(1) << 20 : rl.rlim_cur;
      const auto room = fds > 128 ? fds - 128 : 16;  // model file, logs, the engine's threads
      opts_.max_connections = int(std::min<rlim_t>(rlim_t(opts_.max_connections), room));
    }
    error_code ec;
    const auto addr = net::ip::make_address(opts_.host == "localhost" ? "127.0.0.1" : opts_.host, ec);
    auto fail = [&](const std::string& why) {
      throw error(errc::io, "cannot listen on " + opts_.host + ":" + std::to_string(opts_.port) + " (" + why + ")");
    };
    if (ec) fail("not an IP address");
    const tcp::endpoint ep(addr, static_cast<unsigned short>(opts_.port));
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(1024, ec);
    if (ec) fail(ec.message());
    return acceptor_.local_endpoint().port();
  }

  void start() {
    accept();
    const int n = std::max(1, opts_.io_threads);
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }

  void stop_accepting() {
    net::post(ioc_, [this] {
      error_code ec;
      acceptor_.close(ec);
    });
  }

  void close_all();

  void stop() {
    stop_accepting();
    close_all();
    ioc_.stop();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    threads_.clear();
    // Run what the closes left (aborted reads, writes, timers) here, so every connection that
    // only the I/O loop still owned is destroyed now.
    close_all();
    ioc_.restart();
    ioc_.poll();
  }

  std::size_t open_connections() const { return std::size_t(open_.load()); }

  // ---- connection accounting
  bool admit(const std::string& addr) {
    std::lock_guard lock(count_mutex_);
    if (open_.load() >= opts_.max_connections) return false;
    int& n = per_client_[addr];
    if (n >= opts_.max_connections_per_client) {
      if (n == 0) per_client_.erase(addr);
      return false;
    }
    ++n;
    ++open_;
    return true;
  }
  void release(const std::string& addr) {
    std::lock_guard lock(count_mutex_);
    --open_;
    auto it = per_client_.find(addr);
    if (it != per_client_.end() && --it->second <= 0) per_client_.erase(it);
  }

  // ---- request-body accounting (transport_options::max_buffered_body_bytes)
  bool reserve_body(std::uint64_t n) {
    std::uint64_t held = bodies_.load();
    do {
      if (held + n > opts_.max_buffered_body_bytes) return false;  // byte counts: no overflow
    } while (!bodies_.compare_exchange_weak(held, held + n));
    return true;
  }
  void release_body(std::uint64_t n) { bodies_ -= n; }
  std::uint64_t buffered_body_bytes() const { return bodies_.load(); }

  void accept();

  transport_options opts_;
  transport_handlers h_;

  std::mutex count_mutex_;
  std::atomic<int> open_{0};
  std::unordered_map<std::string, int> per_client_;
  std::atomic<std::uint64_t> bodies_{0};  // bytes reserved by the bodies of open connections

  std::mutex live_mutex_;
  std::map<std::uint64_t, std::weak_ptr<connection>> live_;
  std::uint64_t next_id_ = 0;

  // Last: destroyed first, so that connections its pending handlers still own release their
  // counts while the maps above exist.
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
};

class http_transport::impl::connection final : public exchange, public std::enable_shared_from_this<connection> {
 public:
  connection(impl& t, tcp::socket s, std::string addr, std::uint64_t id)
      : t_(t), sock_(std::move(s)), timer_(sock_.get_executor()), buf_(t.opts_.read_buffer_bytes()), id_(id) {
    req_.remote_addr = std::move(addr);
    access_.start = std::chrono::steady_clock::now();
  }
  ~connection() override { release(); }

  void start() {
    parser_.emplace();
    parser_->header_limit(std::uint32_t(t_.opts_.max_header_bytes));
    parser_->body_limit(std::uint64_t(t_.opts_.max_body_bytes));
    set_deadline(t_.opts_.header_timeout, 408);
    http::async_read_header(sock_, buf_, *parser_, [self = shared_from_this()](error_code ec, std::size_t) { self->on_header(ec); });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    const stage was = stage_;
    stage_ = stage::done;
    ++deadline_gen_;
    timer_.cancel();
    error_code ec;
    sock_.shutdown(tcp::socket::shutdown_both, ec);
    sock_.close(ec);
    if (was == stage::waiting || was == stage::streaming) gone();
    // A stream cut short is logged here; a request still with the application is logged when the
    // application answers it (respond / start_stream on a closed exchange).
    if (was == stage::streaming || (was == stage::done && status_ != 0)) {
      // done: the last write may still be completing (the client read it and left first).
      if (was == stage::streaming) access_.incomplete = true;
      log(status_);
    }
    release();
  }

  auto sock_executor() { return sock_.get_executor(); }

  // ---- exchange
  const http_request& request() const override { return req_; }
  access_record& access() override { return access_; }

  void respond(http_response r) override {
    net::post(sock_.get_executor(), [self = shared_from_this(), r = std::move(r)]() mutable {
      if (self->stage_ != stage::waiting) return self->log_unsent(r.status);
      self->write_whole(r);
    });
  }

  void start_stream(http_response head, std::function<chunk()> pull) override {
    net::post(sock_.get_executor(), [self = shared_from_this(), head = std::move(head), pull = std::move(pull)]() mutable {
      if (self->stage_ != stage::waiting) return self->log_unsent(head.status);
      self->stage_ = stage::streaming;
      self->status_ = head.status;
      self->pull_ = std::move(pull);
      self->http10_ = self->version_ < 11;
      std::string out = status_line(head.status);
      append_header(out, "Content-Type", head.content_type);
      for (const auto& [k, v] : head.headers) append_header(out, k, v);
      // HTTP/1.0 has no chunked encoding: the end of the body is the end of the connection.
      out += self->http10_ ? "Connection: close\r\n\r\n" : "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
      self->out_ = std::move(out);
      self->write_out(false);
    });
  }

  void notify() override {
    if (notify_pending_.exchange(true)) return;
    net::post(sock_.get_executor(), [self = shared_from_this()] {
      self->notify_pending_ = false;
      self->pump();
    });
  }

  void on_client_gone(std::function<void()> f) override {
    std::unique_lock lock(gone_mutex_);
    if (gone_) {
      lock.unlock();
      f();
      return;
    }
    on_gone_ = std::move(f);
  }

 private:
  enum class stage { head, body, waiting, streaming, done };

  void release() {
    if (released_) return;
    released_ = true;
    t_.release_body(body_reserved_);
    body_reserved_ = 0;
    t_.release(req_.remote_addr);
    std::lock_guard lock(t_.live_mutex_);
    t_.live_.erase(id_);
  }

  void gone() {
    std::function<void()> f;
    {
      std::lock_guard lock(gone_mutex_);
      if (gone_) return;
      gone_ = true;
      f = std::move(on_gone_);
    }
    if (f) f();
  }

  // A deadline for what the connection does now; when it passes the connection is closed (after
  // a best-effort status line, when `status` is set and nothing was sent yet).
  void set_deadline(std::chrono::milliseconds d, int status) {
    const std::uint64_t gen = ++deadline_gen_;
    timer_.expires_after(d);
    timer_.async_wait([self = shared_from_this(), gen, status](error_code ec) {
      if (ec || gen != self->deadline_gen_ || self->closed_) return;
      if (status && self->stage_ <= stage::body) {
        // Non-blocking: a client too slow to send its request may be too slow to read this.
        const std::string msg = self->error_text(status, status == 408 ? "the request was not received in time" : "timeout",
                                                 status == 408 ? "request_timeout" : "");
        ::send(self->sock_.native_handle(), msg.data(), msg.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        self->log(status);
      }
      self->close();
    });
  }
  void clear_deadline() {
    ++deadline_gen_;
    timer_.cancel();
  }

  std::string error_text(int status, const std::string& message, const std::string& code) const {
    http_response r;
    r.status = status;
    r.body = t_.h_.error_body(status, message, code);
    return serialize(r, req_.head_only);
  }

  // The application answered a client that had already gone.
  void log_unsent(int status) {
    access_.incomplete = true;
    if (access_.finish.empty() || access_.finish == "cancelled") access_.finish = "client_gone";
    log(status);
  }

  void log(int status) {
    if (logged_) return;
    logged_ = true;
    if (t_.h_.finished) t_.h_.finished(req_, status, access_);
  }

  // A refusal by the transport itself: the error, then the connection is closed.
  void refuse(int status, const std::string& message, const std::string& code = {}) {
    access_.note = (status >= 500 ? "server_error: " : "invalid_request_error: ") + message;
    stage_ = stage::waiting;  // so write_whole accepts it
    http_response r;
    r.status = status;
    r.body = t_.h_.error_body(status, message, code);
    if (status == 503) r.headers.emplace_back("Retry-After", "1");
    write_whole(r);
  }

  void on_header(error_code ec) {
    if (closed_) return;
    if (ec) return read_failed(ec, true);
    auto& h = parser_->get();
    version_ = int(h.version());
    req_.method = std::string(h.method_string());
    const std::string_view target = h.target();
    req_.path = std::string(target.substr(0, target.find('?')));
    req_.head_only = h.method() == http::verb::head;
    if (const auto it = h.find(http::field::authorization); it != h.end()) req_.authorization = std::string(it->value());
    if (version_ >= 11 && h.find(http::field::host) == h.end())
      return refuse(400, "malformed HTTP request: HTTP/1.1 requires a Host header (RFC 9112, section 3.2)", "bad_request");
    if (h.count(http::field::content_length) > 1)
      return refuse(400, "malformed HTTP request: more than one Content-Length header", "bad_request");
    if (t_.h_.route) {
      if (auto answer = t_.h_.route(req_, access_)) {
        stage_ = stage::waiting;
        return write_whole(*answer);
      }
    }
    if (parser_->is_done()) return on_body({});
    // Reserve the body's bytes before reading them: its Content-Length, or for a chunked body the
    // most it may grow to (413 past that); an over-long Content-Length is refused by the parser.
    const std::uint64_t want = std::min<std::uint64_t>(parser_->content_length().value_or(t_.opts_.max_body_bytes),
                                                       t_.opts_.max_body_bytes);
    if (!t_.reserve_body(want))
      return refuse(503,
                    "server busy: the request bodies being received hold " + std::to_string(t_.buffered_body_bytes()) +
                        " bytes and this one needs " + std::to_string(want) + " more; the limit is " +
                        std::to_string(t_.opts_.max_buffered_body_bytes) + " bytes (--max-buffered-body-bytes); retry later",
                    "server_busy");
    body_reserved_ = want;
    if (const auto it = h.find(http::field::expect); it != h.end() && boost::beast::iequals(it->value(), "100-continue")) {
      out_ = "HTTP/1.1 100 Continue\r\n\r\n";
      set_deadline(t_.opts_.write_timeout, 0);
      net::async_write(sock_, net::buffer(out_), [self = shared_from_this()](error_code e, std::size_t) {
        if (e || self->closed_) return self->close();
        self->read_body();
      });
      return;
    }
    read_body();
  }

  void read_body() {
    stage_ = stage::body;
    set_deadline(t_.opts_.body_timeout, 408);
    http::async_read(sock_, buf_, *parser_, [self = shared_from_this()](error_code ec, std::size_t) { self->on_body(ec); });
  }

  void read_failed(error_code ec, bool in_head) {
    if (req_.method.empty() && parser_) {
      // Refused while reading the head: the request line, when it was parsed, is for the log.
      const auto& h = parser_->get();
      req_.method = std::string(h.method_string());
      const std::string_view target = h.target();
      req_.path = std::string(target.substr(0, target.find('?')));
    }
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::operation_aborted ||
        ec == net::error::connection_reset) {
      // The client left (or a deadline closed the socket: that one logged itself).
      if (!in_head || parser_->got_some()) log(499);
      return close();
    }
    if (ec == http::error::header_limit)
      return refuse(431, "request header fields too large: the request head exceeds " + std::to_string(t_.opts_.max_header_bytes) +
                             " bytes",
                    "request_header_fields_too_large");
    if (ec == http::error::body_limit) {
      std::string what = "request body";
      if (const auto cl = parser_->content_length()) what += " of " + std::to_string(*cl) + " bytes";
      return refuse(413, what + " exceeds the limit of " + std::to_string(t_.opts_.max_body_bytes) + " bytes (--max-body-bytes)",
                    "request_too_large");
    }
    if (ec == http::error::buffer_overflow)
      return refuse(431, "request header fields too large", "request_header_fields_too_large");
    return refuse(400, "malformed HTTP request: " + ec.message(), "bad_request");
  }

  void on_body(error_code ec) {
    if (closed_) return;
    if (ec) return read_failed(ec, false);
    clear_deadline();
    req_.body = std::move(parser_->get().body());
    parser_.reset();
    // A chunked body reserved the maximum: keep only what it holds (the string lives as long as
    // the connection, so the reservation does too).
    if (body_reserved_ > req_.body.capacity()) {
      t_.release_body(body_reserved_ - req_.body.capacity());
      body_reserved_ = req_.body.capacity();
    }
    stage_ = stage::waiting;
    watch();
    t_.h_.handle(shared_from_this());
  }

  // While the request is answered, a read on the socket notices a client that goes away (EOF or a
  // reset). It stays armed through the response, and drains what a client sends after it.
  void watch() {
    sock_.async_read_some(net::buffer(watch_buf_), [self = shared_from_this()](error_code ec, std::size_t n) {
      if (self->closed_) return;
      if (ec) return self->close();  // close() calls gone() while the exchange is open
      // Bytes after the request: drained, 1 MiB and 2 s at most once answered (the rest of a
      // refused body); more than 64 KiB while the answer is pending is not a client of this protocol.
      self->extra_bytes_ += n;
      if (self->extra_bytes_ > (self->stage_ == stage::done ? (1u << 20) : (64u << 10))) return self->close();
      self->watch();
    });
  }

  void write_whole(const http_response& r) {
    status_ = r.status;
    stage_ = stage::done;
    out_ = serialize(r, req_.head_only);
    write_out(true);
  }

  // Writes out_; `last` = the exchange ends with it.
  void write_out(bool last) {
    writing_ = true;
    set_deadline(t_.opts_.write_timeout, 0);
    net::async_write(sock_, net::buffer(out_), [self = shared_from_this(), last](error_code ec, std::size_t) {
      self->writing_ = false;
      if (self->closed_) return;
      if (ec) {
        self->access_.incomplete = true;
        self->log(self->status_);
        return self->close();
      }
      if (last) return self->finish();
      self->clear_deadline();
      self->pump();
    });
  }

  void pump() {
    if (closed_ || stage_ != stage::streaming || writing_ || !pull_) return;
    chunk c = pull_();
    if (c.data.empty() && !c.last) return;
    out_.clear();
    if (http10_) {
      out_ = std::move(c.data);
    } else {
      if (!c.data.empty()) out_ = chunk_frame(c.data);
      if (c.last) out_ += "0\r\n\r\n";
    }
    if (c.last) {
      stage_ = stage::done;
      pull_ = nullptr;
    }
    write_out(c.last);
  }

  // The response is sent: log it, then close gracefully. Shutting down only our side and letting
  // the watcher drain what the client still sends (for 2 s at most) keeps a reset from destroying
  // the response in the client's receive buffer (a 413 sent while the body still arrives).
  void finish() {
    stage_ = stage::done;
    log(status_);
    error_code ec;
    sock_.shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return close();
    set_deadline(std::chrono::milliseconds(2000), 0);
    if (!watching_started()) watch();
  }
  bool watching_started() const { return parser_ == std::nullopt; }

  impl& t_;
  tcp::socket sock_;
  net::steady_timer timer_;
  boost::beast::flat_buffer buf_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::uint64_t id_;
  std::uint64_t body_reserved_ = 0;  // bytes of the transport's body budget this connection holds
  http_request req_;
  access_record access_;
  int version_ = 11;
  bool http10_ = false;
  stage stage_ = stage::head;
  int status_ = 0;
  std::string out_;
  std::array<char, 4096> watch_buf_{};
  std::size_t extra_bytes_ = 0;
  std::uint64_t deadline_gen_ = 0;
  bool closed_ = false, released_ = false, logged_ = false, writing_ = false;
  std::function<chunk()> pull_;
  std::atomic<bool> notify_pending_{false};
  std::mutex gone_mutex_;
  bool gone_ = false;
  std::function<void()> on_gone_;
};

void http_transport::impl::accept() {
  acceptor_.async_accept(net::make_strand(ioc_), [this](error_code ec, tcp::socket s) {
    if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      error_code e2;
      const auto ep = s.remote_endpoint(e2);
      std::string addr = e2 ? std::string("?") : ep.address().to_string();
      s.set_option(tcp::no_delay(true), e2);  // SSE chunks are small: send each at once
      if (!admit(addr)) {
        // Over the cap: a short answer without waiting for the request, then the socket is gone.
        static const std::string msg =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\n"
            "Content-Length: 115\r\n\r\n"
            "{\"error\":{\"message\":\"too many open connections\",\"type\":\"server_error\",\"param\":null,\"code\":\"too_many_connections\"}}\n";
        ::send(s.native_handle(), msg.data(), msg.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        s.close(e2);
      } else {
        std::shared_ptr<connection> c;
        {
          std::lock_guard lock(live_mutex_);
          const std::uint64_t id = ++next_id_;
          c = std::make_shared<connection>(*this, std::move(s), std::move(addr), id);
          live_[id] = c;
        }
        net::post(c->sock_executor(), [c] { c->start(); });
      }
    }
    // EMFILE and friends: keep accepting; the failing connection is lost, the listener is not.
    accept();
  });
}

void http_transport::impl::close_all() {
  std::vector<std::shared_ptr<connection>> all;
  {
    std::lock_guard lock(live_mutex_);
    for (auto& [id, w] : live_)
      if (auto c = w.lock()) all.push_back(std::move(c));
  }
  for (auto& c : all) net::post(c->sock_executor(), [c] { c->close(); });
}

http_transport::http_transport(transport_options o, transport_handlers h) : impl_(std::make_unique<impl>(std::move(o), std::move(h))) {}
http_transport::~http_transport() { impl_->stop(); }
int http_transport::bind() { return impl_->bind(); }
void http_transport::start() { impl_->start(); }
void http_transport::stop_accepting() { impl_->stop_accepting(); }
void http_transport::close_all() { impl_->close_all(); }
void http_transport::stop() { impl_->stop(); }
std::size_t http_transport::open_connections() const { return impl_->open_connections(); }
const transport_options& http_transport::options() const { return impl_->opts_; }

}  // namespace gemmaforge::serve
