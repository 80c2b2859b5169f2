#pragma once
// http_transport: the HTTP/1.1 front of gemmaforge-serve, event-driven on Boost.Asio with
// Boost.Beast's request parser (docs/serving.md says why this library).
//
// A connection costs a socket and a few KiB, never a thread: a few I/O threads run every
// connection's reads, writes and timers, and the application's slow work (JSON parsing,
// tokenizing) runs on a separate worker pool. A request waiting in the engine's queue holds
// nothing but its socket. The limits the transport enforces, before any application code runs:
//   - a total deadline for the request head and another for the body (not per recv: a client
//     trickling a byte a second is cut off when the deadline passes);
//   - a cap on open connections, global and per client address;
//   - the header block <= max_header_bytes (431), the body <= max_body_bytes (413, whether it is
//     sized by Content-Length or chunked; refused before it is buffered);
//   - all bodies held at once <= max_buffered_body_bytes (503 server_busy before the body is read):
//     a request reserves its Content-Length (a chunked one max_body_bytes, cut to its size once
//     read) until its connection ends, so the server's request memory has a bound that does not
//     grow with the connection cap (4096 x 4 MiB would be 16 GiB);
//   - RFC 9112 framing: two Content-Lengths, a non-decimal one, Content-Length with chunked, an
//     HTTP/1.1 request without Host: 400.
// One request per connection (Connection: close): keep-alive would buy a TCP handshake per request,
// nothing next to a generation, and every connection ends with its response.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace gemmaforge::serve {

// What the access-log line says about one request; filled by whichever thread owns the exchange
// at the time (the transport hands it over with the request and reads it once the exchange ends).
struct access_record {
  std::chrono::steady_clock::time_point start{};
  bool generation = false, stream = false, server_fault = false, incomplete = false;
  std::int32_t prompt = 0, cached = 0, completion = 0;
  std::string finish;  // stop / length / client_gone / cancelled / error
  std::string note;    // "type: message" of an error
};

struct http_request {
  std::string method, path;   // path without the query string
  std::string remote_addr;
  std::string authorization;  // the Authorization header ("" when absent)
  std::string body;
  bool head_only = false;     // HEAD: answer without a body
};

struct http_response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// One request being answered. The transport creates it once the request is read and hands it to
// the application, which answers it from any thread, now or later.
class exchange {
 public:
  struct chunk {
    std::string data;
    bool last = false;
  };
  virtual ~exchange() = default;
  virtual const http_request& request() const = 0;
  virtual access_record& access() = 0;
  // A whole response. Once per exchange, from any thread.
  virtual void respond(http_response r) = 0;
  // A streamed response (chunked): the transport writes `head`'s status and headers, then calls
  // `pull` on its I/O thread each time notify() was called and the previous write is done; pull
  // returns what to send now (maybe nothing) and whether it is the end. `pull` must not block.
  virtual void start_stream(http_response head, std::function<chunk()> pull) = 0;
  virtual void notify() = 0;  // any thread: pull has something new
  // `f` runs once, on an I/O thread (or at once if that already happened), when the client closes
  // its connection or stops reading before the exchange ended.
  virtual void on_client_gone(std::function<void()> f) = 0;
};

struct transport_options {
  std::string host = "127.0.0.1";
  int port = 8080;                                  // 0 = any free port
  std::size_t max_body_bytes = 4u << 20;
  std::size_t max_header_bytes = 64u << 10;         // request line + headers
  std::size_t max_buffered_body_bytes = 256u << 20; // every connection's body together
  std::chrono::milliseconds header_timeout{10000};  // whole request head
  std::chrono::milliseconds body_timeout{30000};    // whole body
  std::chrono::milliseconds write_timeout{10000};   // one write (a client that stops reading)
  int max_connections = 4096;                       // lowered to what RLIMIT_NOFILE allows
  int max_connections_per_client = 1024;
  int io_threads = 2;
  // A connection's read buffer: the largest head plus room for the body bytes read with it.
  std::size_t read_buffer_bytes() const { return max_header_bytes + 8192; }
};

struct transport_handlers {
  // Called with the request head (body empty) on an I/O thread; must not block. An answer ends
  // the exchange there (routes, authentication, GET endpoints); nullopt = read the body and
  // pass the request to `handle`.
  std::function<std::optional<http_response>(const http_request&, access_record&)> route;
  // The whole request, on an I/O thread: post slow work elsewhere and answer through the exchange.
  std::function<void(std::shared_ptr<exchange>)> handle;
  // Once per request that got a status line (the access log and the metrics), on an I/O thread.
  std::function<void(const http_request&, int status, access_record&)> finished;
  // The OpenAI error body for a transport-level refusal (status, message, code).
  std::function<std::string(int, const std::string&, const std::string&)> error_body;
};

class http_transport {
 public:
  http_transport(transport_options o, transport_handlers h);
  ~http_transport();
  http_transport(const http_transport&) = delete;
  http_transport& operator=(const http_transport&) = delete;

  // Bind and listen; returns the port (throws gf::error when the address cannot be used).
  int bind();
  void start();           // the I/O threads
  void stop_accepting();  // new connections are refused by the kernel from now on
  void close_all();       // every open connection closed now, whatever it is doing
  void stop();            // close_all, stop the I/O threads and join them
  std::size_t open_connections() const;
  const transport_options& options() const;

  class impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace gemmaforge::serve
