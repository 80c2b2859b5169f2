#pragma once
// Where tests find the real Gemma 3 270M file: $GEMMAFORGE_MODEL, else the path scripts/setup
// installs it to (~/.cache or $XDG_CACHE_HOME). Tests that need it are tagged [model].
#include <filesystem>

#include <gemmaforge/io/default_model.hpp>

namespace gemmaforge::testing {

inline std::filesystem::path real_model_path() { return default_model_location(); }

}  // namespace gemmaforge::testing
