// Engine instantiations for the gemma1 descriptors on the CPU backend (one translation unit per
// family keeps each compile bounded and lets them build in parallel).
#include <gemmaforge/backend/cpu/executor.hpp>
#include <gemmaforge/model/gemma1.hpp>

#include "cpu_executor_maker.hpp"
#include "engine_factory.hpp"

namespace gemmaforge::programs::detail {

// cppcheck-suppress unusedFunction ; called through program_engine.cpp's table of factories (a declaration in engine_factory.hpp)
std::unique_ptr<program_engine> make_gemma1_engine(std::shared_ptr<const model_file> file, std::string_view name,
                                                   std::shared_ptr<const tokenizer> tok, const engine_options& o, const startup& st) {
  using list = type_list<models::gemma_2b, models::gemma_7b, models::openchat_3_5_0106_gemma>;
  return make_engine_from<list, cpu_executor_maker, cpu_kv_types>(std::move(file), name, std::move(tok), o, st);
}

}  // namespace gemmaforge::programs::detail
