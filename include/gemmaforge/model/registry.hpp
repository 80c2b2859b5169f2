#pragma once
// The registry: every real descriptor by name, as type lists, and one runtime dispatch over them.
// A binary that wants fewer instantiations dispatches over a shorter list of its own. The test
// models (model/tiny.hpp: tiny_models) are not here: only test binaries include them.
#include <string_view>

#include <gemmaforge/core/type_list.hpp>
#include <gemmaforge/model/gemma1.hpp>
#include <gemmaforge/model/gemma2.hpp>
#include <gemmaforge/model/gemma3.hpp>
#include <gemmaforge/model/mistral.hpp>

namespace gemmaforge {

// Real models, in the order the plan CLI lists them.
using production_models =
    type_list<models::gemma_2b, models::gemma_7b, models::openchat_3_5_0106_gemma, models::gemma_2_2b,
              models::gemma_2_9b, models::gemma_2_27b, models::gemma_3_270m, models::gemma_3_1b,
              models::gemma_3_4b, models::gemma_3_12b, models::gemma_3_27b, models::mistral_7b>;
using all_models = production_models;

// f(type_tag<Model>{}) for the descriptor named `name` in List; false when none is.
template <class List = all_models, class F>
bool dispatch_model(std::string_view name, F&& f) {
  return dispatch_first(List{}, [&](auto tag) { return decltype(tag)::type::name == name; }, f);
}

}  // namespace gemmaforge
