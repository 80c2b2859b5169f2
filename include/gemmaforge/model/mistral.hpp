#pragma once
// Mistral 7B v0.1: the base of openchat-3.5-0106, the model that *did* fit the seed's RTX 4090.
// Kept as the memory planner's baseline; the runtime does not run it (runnable == false).
#include <gemmaforge/model/descriptor.hpp>

namespace gemmaforge::models {

struct mistral_7b : model_descriptor<family::mistral, model_dims<32000, 4096, 14336, 32768>, attention_shape<32, 8, 128>,
                                     all_local_layers<32, 4096>, rope_params<10000>, 128, softcaps<>, chat_template::none> {
  static constexpr std::string_view name = "mistral-7b";
  static constexpr double reference_params = 7.242e9;
};

}  // namespace gemmaforge::models
