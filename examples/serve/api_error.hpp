#pragma once
// OpenAI-style errors. Every 4xx/5xx the server sends has the body
//   {"error": {"message": "...", "type": "...", "param": "..." | null, "code": "..." | null}}
// which is what the official clients parse into BadRequestError, AuthenticationError,
// NotFoundError, RateLimitError, ... A handler throws api_error; the server turns it into the
// response and a `warn:` log line (5xx: `error:`), and keeps serving.
#include <stdexcept>
#include <string>
#include <utility>

namespace gemmaforge::serve {

struct api_error : std::runtime_error {
  api_error(int status_, std::string type_, const std::string& message, std::string param_ = {}, std::string code_ = {})
      : std::runtime_error(message), status(status_), type(std::move(type_)), param(std::move(param_)), code(std::move(code_)) {}
  int status;
  std::string type;   // invalid_request_error, rate_limit_error, server_error
  std::string param;  // the request field at fault; empty = null
  std::string code;   // machine-readable reason; empty = null
};

inline api_error invalid_request(const std::string& message, std::string param = {}, std::string code = {}) {
  return api_error(400, "invalid_request_error", message, std::move(param), std::move(code));
}

// The JSON body of an error response.
std::string error_body(const api_error& e);

}  // namespace gemmaforge::serve
