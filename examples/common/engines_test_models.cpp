// The test models (model/tiny.hpp) on the CPU backend, for test binaries only: the programs'
// twins under bin/test-models/ (tests/programs) and gemmaforge_program_tests link this object,
// which registers them with open_engine() at start-up. The programs themselves never contain them.
#include <gemmaforge/backend/cpu/executor.hpp>
#include <gemmaforge/model/registry.hpp>
#include <gemmaforge/model/tiny.hpp>

#include "cpu_executor_maker.hpp"
#include "engine_factory.hpp"

namespace gemmaforge::programs::detail {
namespace {

std::unique_ptr<program_engine> make_test_model_engine(std::shared_ptr<const model_file> file, std::string_view name,
                                                       std::shared_ptr<const tokenizer> tok, const engine_options& o,
                                                       const startup& st) {
  return make_engine_from<tiny_models, cpu_executor_maker, cpu_kv_types>(std::move(file), name, std::move(tok), o, st);
}

// Among the real and the test descriptors, so that a near miss names the closest of all of them.
std::string_view identify_with_test_models(const model_file& file) {
  return identify_model<concat_t<all_models, tiny_models>>(file);
}

[[maybe_unused]] const bool registered = [] {
  test_models().identify = identify_with_test_models;
  test_models().make = make_test_model_engine;
  return true;
}();

}  // namespace
}  // namespace gemmaforge::programs::detail
