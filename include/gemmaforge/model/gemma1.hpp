#pragma once
// Gemma 1 (Feb 2024): every layer global, no softcaps, MQA on 2B, MHA on 7B.
// Shapes from the HF configs (reference/gemma-models.md §1).
#include <gemmaforge/model/descriptor.hpp>

namespace gemmaforge::models {

template <chat_template Chat>
using gemma_1_7b_shape = model_descriptor<family::gemma1, model_dims<256000, 3072, 24576, 8192>,
                                          attention_shape<16, 16, 256>, all_global_layers<28>,
                                          rope_params<10000>, 256, softcaps<>, Chat>;

struct gemma_2b : model_descriptor<family::gemma1, model_dims<256000, 2048, 16384, 8192>, attention_shape<8, 1, 256>,
                                   all_global_layers<18>, rope_params<10000>, 256> {
  static constexpr std::string_view name = "gemma-2b";
  static constexpr double reference_params = 2.506e9;
};

struct gemma_7b : gemma_1_7b_shape<chat_template::gemma> {
  static constexpr std::string_view name = "gemma-7b";
  static constexpr double reference_params = 8.538e9;
};

// openchat-3.5-0106-gemma: a fine-tune of Gemma 1 7B (same shapes, vocab 256000, no added tokens)
// with OpenChat's prompt format. The model of the seed problem.
struct openchat_3_5_0106_gemma : gemma_1_7b_shape<chat_template::openchat> {
  static constexpr std::string_view name = "openchat-3.5-0106-gemma";
  static constexpr double reference_params = 8.538e9;
};

}  // namespace gemmaforge::models
