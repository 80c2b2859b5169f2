#pragma once
// chat_page: the built-in chat page that gemmaforge-serve answers GET / with (as llama.cpp's
// server ships one). The page is examples/serve/chat_page.html, embedded in the binary at
// configure time (examples/serve/CMakeLists.txt): one file, no build step, nothing from a CDN.
#include <string>
#include <string_view>

#include "http_transport.hpp"

namespace gemmaforge::serve {

// The page with its headers: text/html, a Content-Security-Policy that lets only the page's own
// inline <style> and <script> run (by their SHA-256) and lets it talk only to this server, and
// Cache-Control: no-cache (a browser revalidates, so a new binary's page is seen at once).
http_response chat_page_response();

// The embedded HTML, byte for byte what chat_page.html holds.
std::string_view chat_page_html();

// "sha256-<base64>" of `s`, the form a CSP source list takes (exposed for the test).
std::string csp_sha256(std::string_view s);

}  // namespace gemmaforge::serve
