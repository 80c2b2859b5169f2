// Engine instantiations for the tiny descriptors on the CPU backend (one translation unit per
// family keeps each compile bounded and lets them build in parallel).
#include <gemmaforge/backend/cpu/executor.hpp>
#include <gemmaforge/model/tiny.hpp>

#include "cpu_executor_maker.hpp"
#include "engine_factory.hpp"

namespace gemmaforge::programs::detail {

std::unique_ptr<program_engine> make_tiny_engine(std::shared_ptr<const model_file> file, std::string_view name,
                                                   std::shared_ptr<const tokenizer> tok, const engine_options& o, const startup& st) {
  using list = type_list<models::tiny_gemma1, models::tiny_gemma2, models::tiny_gemma3>;
  return make_engine_from<list, cpu_executor_maker, cpu_kv_types>(std::move(file), name, std::move(tok), o, st);
}

}  // namespace gemmaforge::programs::detail
