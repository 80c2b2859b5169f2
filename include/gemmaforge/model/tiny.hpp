#pragma once
// Tiny random models of each generation, used by the golden tests (tools/make_golden.py builds
// the same shapes as HF models and records their logits). vocab 512, hidden 64, ffn 128,
// 4 heads of 16: small enough to run every position in milliseconds, with windows of 8 so that
// a 24+ token sequence exercises the sliding-window masks. Test binaries only: the registry
// (model/registry.hpp) and the programs leave them out.
#include <gemmaforge/core/type_list.hpp>
#include <gemmaforge/model/descriptor.hpp>

namespace gemmaforge::models {

struct tiny_gemma1 : model_descriptor<family::gemma1, model_dims<512, 64, 128, 256>, attention_shape<4, 1, 16>,
                                      all_global_layers<2>, rope_params<10000>, 16> {
  static constexpr std::string_view name = "tiny-gemma1";
  static constexpr double reference_params = double(param_count);
};

struct tiny_gemma2 : model_descriptor<family::gemma2, model_dims<512, 64, 128, 256>, attention_shape<4, 2, 16>,
                                      interleaved_layers<4, 8, 2>, rope_params<10000>, 16, softcaps<50, 30>> {
  static constexpr std::string_view name = "tiny-gemma2";
  static constexpr double reference_params = double(param_count);
};

struct tiny_gemma3 : model_descriptor<family::gemma3, model_dims<512, 64, 128, 256>, attention_shape<4, 1, 16>,
                                      interleaved_layers<6, 8, 6>, rope_params<1000000, 10000>, 16> {
  static constexpr std::string_view name = "tiny-gemma3";
  static constexpr double reference_params = double(param_count);
};

}  // namespace gemmaforge::models

namespace gemmaforge {
using tiny_models = type_list<models::tiny_gemma1, models::tiny_gemma2, models::tiny_gemma3>;
}  // namespace gemmaforge
