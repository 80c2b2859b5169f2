#pragma once
// Descriptors that exist for tests only: they are linked into test binaries, never into the
// programs. Each one of golden_test_models is checked against the HF fixture folder named after
// it (tests/golden/<name with '_' for '-'>, made by tools/make_golden.py) by
// tests/golden/golden_forward_test.cpp. Adding a model of a known generation is: a descriptor
// here, its line in golden_test_models, and its fixture (docs/architecture.md, "Adding a model").
#include <string>

#include <gemmaforge/core/type_list.hpp>
#include <gemmaforge/model/descriptor.hpp>
#include <gemmaforge/model/registry.hpp>
#include <gemmaforge/model/tiny.hpp>

namespace gemmaforge::testing {

// Gemma 3 with another layer pattern and head count than tiny_gemma3: 5 layers with a period of 3
// (layer 2 global, the others local), 8 query heads over 2 KV heads (GQA group 4, q_dim 128 twice
// the hidden size).
struct tiny_gemma3_gqa : model_descriptor<family::gemma3, model_dims<512, 64, 128, 256>, attention_shape<8, 2, 16>,
                                          interleaved_layers<5, 8, 3>, rope_params<1000000, 10000>, 16> {
  static constexpr std::string_view name = "tiny-gemma3-gqa";
  static constexpr double reference_params = double(param_count);
};

using golden_test_models = type_list<tiny_gemma3_gqa>;

// The registry's real models and the tiny ones (model/tiny.hpp): what the tests identify files
// against where a file may be either.
using registry_with_test_models = concat_t<all_models, tiny_models>;

// The fixture folder of a test model: its name with '_' for '-'.
template <class Model>
// cppcheck-suppress unusedFunction ; called with explicit template arguments, which cppcheck does not read as a call
std::string fixture_key() {
  std::string k(Model::name);
  for (char& c : k)
    if (c == '-') c = '_';
  return k;
}

}  // namespace gemmaforge::testing
