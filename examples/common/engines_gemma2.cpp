// Engine instantiations for the gemma2 descriptors on the CPU backend (one translation unit per
// family keeps each compile bounded and lets them build in parallel).
#include <gemmaforge/backend/cpu/executor.hpp>
#include <gemmaforge/model/gemma2.hpp>

#include "cpu_executor_maker.hpp"
#include "engine_factory.hpp"

namespace gemmaforge::programs::detail {

// cppcheck-suppress unusedFunction ; called through program_engine.cpp's table of factories (a declaration in engine_factory.hpp)
std::unique_ptr<program_engine> make_gemma2_engine(std::shared_ptr<const model_file> file, std::string_view name,
                                                   std::shared_ptr<const tokenizer> tok, const engine_options& o, const startup& st) {
  using list = type_list<models::gemma_2_2b, models::gemma_2_9b, models::gemma_2_27b>;
  return make_engine_from<list, cpu_executor_maker, cpu_kv_types>(std::move(file), name, std::move(tok), o, st);
}

}  // namespace gemmaforge::programs::detail
