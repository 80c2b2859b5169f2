#pragma once
// chat_page: the built-in chat page that gemmaforge-serve answers GET / with (as llama.cpp's
// server ships one). The page is examples/serve/chat_page.html, embedded in the binary at
// configure time (examples/serve/CMakeLists.txt): one file, no build step, nothing from a CDN.
#include "http_transport.hpp"

namespace gemmaforge::serve {

// The page with its headers: text/html, a Content-Security-Policy that lets only the page's own
// inline <style> and <script> run (by their SHA-256) and lets it talk only to this server, and
// Cache-Control: no-cache (a browser revalidates, so a new binary's page is seen at once).
// The body is chat_page.html byte for byte (serve.chat_page checks that, and the policy's hashes
// against its own SHA-256 of the page's elements).
http_response chat_page_response();

}  // namespace gemmaforge::serve
