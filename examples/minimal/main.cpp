// The smallest gemmaforge program: plan a deployment at compile time, load a model, stream text.
#include <cstdio>
#include <memory>

#include <gemmaforge/backend/cpu/backend.hpp>
#include <gemmaforge/io/default_model.hpp>
#include <gemmaforge/io/weight_binding.hpp>
#include <gemmaforge/runtime/planned_engine.hpp>

namespace gf = gemmaforge;

using model = gf::models::gemma_3_270m;
constexpr gf::serving_config cfg{.max_seq_len = 1024, .max_batch = 1, .weights = gf::weight_scheme::q4_k_m};
using backend = gf::backend::cpu<gf::devices::host<4 * gf::GiB>>;
static_assert(gf::require_fit<gf::memory_plan<model, backend::device, cfg>>());  // fails the build, with numbers

int main(int argc, char** argv) {
  const auto path = argc > 1 ? std::filesystem::path(argv[1]) : gf::default_model_path();
  const auto weights = gf::load_model<model>(path);                       // mmap + bind, checked
  const auto tok = std::make_shared<const gf::tokenizer>(gf::tokenizer::load(path));
  gf::engine<model, backend, cfg> eng(weights.weights(), tok);

  gf::generation_request req;
  req.prompt = tok->encode("Question: What is the largest planet?\nAnswer:");
  req.stop.max_tokens = 40;
  req.stop.stop_strings = {"\nQuestion:"};
  req.on_token = [](const gf::token_event& e) { std::fwrite(e.text.data(), 1, e.text.size(), stdout); };
  const auto done = eng.generate(std::move(req));
  std::printf("\n[%d tokens, %s]\n", done->completion_tokens(), std::string(gf::to_string(done->reason())).c_str());
}
