#pragma once
// Errors and status codes.
// Host code throws gf::error (a category + a readable message that names the file/tensor/number at
// fault). Kernel launchers are noexcept and return gf::status, which CUDA graphs and streams need.
#include <stdexcept>
#include <string>
#include <string_view>

namespace gemmaforge {

// Categories callers can branch on; the message carries the detail.
enum class errc {
  invalid_argument,  // bad user input: flags, sampling parameters, config values
  io,                // file missing, unreadable, mmap failed
  format,            // corrupt/truncated/unsupported model or tokenizer file
  model_mismatch,    // a checkpoint that does not match its descriptor
  capacity,          // prompt longer than the context, KV pool cannot hold a request
  queue_full,        // the engine's bounded waiting queue is full: retry later
  out_of_memory,     // the planned arena cannot be allocated
  cuda,              // CUDA runtime / driver error
  shutdown,          // request after the engine stopped
  internal,          // a broken invariant: a bug
};

constexpr std::string_view to_string(errc e) noexcept {
  switch (e) {
    case errc::invalid_argument: return "invalid argument";
    case errc::io: return "I/O error";
    case errc::format: return "bad file format";
    case errc::model_mismatch: return "model mismatch";
    case errc::capacity: return "capacity exceeded";
    case errc::queue_full: return "queue full";
    case errc::out_of_memory: return "out of memory";
    case errc::cuda: return "CUDA error";
    case errc::shutdown: return "engine shut down";
    case errc::internal: return "internal error";
  }
  return "unknown error";
}

class error : public std::runtime_error {
 public:
  error(errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
  errc code() const noexcept { return code_; }

 private:
  errc code_;
};

// Status of a kernel launch or other noexcept operation.
enum class status {
  ok = 0,
  invalid_argument,  // a launcher got shapes/pointers it cannot handle
  unsupported,       // a format or shape this kernel family was not built for
  cuda_error,        // the CUDA runtime reported an error (query cudaGetLastError for detail)
  out_of_memory,
};

constexpr std::string_view to_string(status s) noexcept {
  switch (s) {
    case status::ok: return "ok";
    case status::invalid_argument: return "invalid argument";
    case status::unsupported: return "unsupported";
    case status::cuda_error: return "CUDA error";
    case status::out_of_memory: return "out of memory";
  }
  return "unknown status";
}

// Turn a failed status into an exception at the host boundary.
inline void throw_if_failed(status s, std::string_view what) {
  if (s == status::ok) return;
  throw error(s == status::out_of_memory ? errc::out_of_memory
              : s == status::cuda_error  ? errc::cuda
                                         : errc::internal,
              std::string(what) + ": " + std::string(to_string(s)));
}

}  // namespace gemmaforge
