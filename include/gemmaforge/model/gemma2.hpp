#pragma once
// Gemma 2 (Jun 2024): even layers see a 4096 window, odd layers global; attention logits capped at
// 50 and final logits at 30; post-attention and post-FFW norms.
#include <gemmaforge/model/descriptor.hpp>

namespace gemmaforge::models {

struct gemma_2_2b : model_descriptor<family::gemma2, model_dims<256000, 2304, 9216, 8192>, attention_shape<8, 4, 256>,
                                     interleaved_layers<26, 4096, 2>, rope_params<10000>, 256, softcaps<50, 30>> {
  static constexpr std::string_view name = "gemma-2-2b";
  static constexpr double reference_params = 2.614e9;
};

// query_pre_attn_scalar 256 as in the checkpoint's config.json (HF's converter mentions 224).
struct gemma_2_9b : model_descriptor<family::gemma2, model_dims<256000, 3584, 14336, 8192>, attention_shape<16, 8, 256>,
                                     interleaved_layers<42, 4096, 2>, rope_params<10000>, 256, softcaps<50, 30>> {
  static constexpr std::string_view name = "gemma-2-9b";
  static constexpr double reference_params = 9.242e9;
};

// 27B scales attention by (hidden / heads)^-1/2 = 144^-1/2, not head_dim^-1/2.
struct gemma_2_27b : model_descriptor<family::gemma2, model_dims<256000, 4608, 36864, 8192>, attention_shape<32, 16, 128>,
                                      interleaved_layers<46, 4096, 2>, rope_params<10000>, 144, softcaps<50, 30>> {
  static constexpr std::string_view name = "gemma-2-27b";
  static constexpr double reference_params = 27.227e9;
};

}  // namespace gemmaforge::models
