// open_engine() (what every program calls) is all-or-nothing: a load that fails, whether the file
// is missing, corrupt, of no registered descriptor, or the engine cannot start (limits refused,
// arena larger than the host has), throws gf::error with a one-line message and leaves nothing
// behind: no thread (the CPU executor's pool is joined), no mapping of the model file, and no
// leak (the sanitizer pass runs this binary under ASan, whose leak check runs at exit).
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>

#include <gemmaforge/core/error.hpp>
#include <gemmaforge/io/default_model.hpp>

#include "../support/process_self.hpp"
#include "program_engine.hpp"

namespace fs = std::filesystem;
namespace gf = gemmaforge;
namespace gp = gemmaforge::programs;

namespace {

using gemmaforge::testing::mappings_of;
using gemmaforge::testing::settled_thread_count;
using gemmaforge::testing::thread_count;

std::string read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void write_text(const fs::path& p, std::string_view s) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(s.data(), std::streamsize(s.size()));
}

class scratch_dir {
 public:
  scratch_dir() : path_(fs::temp_directory_path() / ("gemmaforge-open-" + std::to_string(std::random_device{}()))) {
    fs::create_directories(path_);
  }
  ~scratch_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A copy of the tiny-gemma3 golden checkpoint (config.json + model.safetensors) in `dir`.
fs::path tiny_checkpoint(const fs::path& dir) {
  const fs::path src = fs::path(GF_TEST_DATA_DIR) / "golden" / "tiny_gemma3";
  fs::create_directories(dir);
  for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(src / f, dir / f, fs::copy_options::overwrite_existing);
  return dir;
}

gp::engine_options options(const fs::path& model) {
  gp::engine_options o;
  o.model = model;
  o.threads = 3;  // the executor starts 2 pool threads: they must be gone after a failure
  o.limits.max_batch = 2;
  o.progress = false;
  return o;
}

// open_engine must throw gf::error of `code` whose message contains `part`, and
// leave the thread count and the file's mappings as they were.
void expect_clean_failure(const gp::engine_options& o, gf::errc code, std::string_view part, const fs::path& mapped) {
  const int before = thread_count();
  try {
    (void)gp::open_engine(o);
    FAIL("open_engine succeeded");
  } catch (const gf::error& e) {
    const std::string m = e.what();
    INFO(m);
    CHECK(e.code() == code);
    CHECK(m.find(part) != std::string::npos);
    // One line, except a model mismatch: it lists each problem on a line of its own.
    if (code != gf::errc::model_mismatch) CHECK(m.find('\n') == std::string::npos);
  }
  CHECK(settled_thread_count(before) == before);
  if (!mapped.empty()) CHECK(mappings_of(mapped) == 0);
}

}  // namespace

TEST_CASE("open_engine: every failed load leaves no thread and no mapping", "[cpu][fault][programs]") {
  scratch_dir d;
  const fs::path good = tiny_checkpoint(d.path() / "good");
  const int before = thread_count();
  {
    // The control: it loads, generates, and shuts down cleanly.
    auto eng = gp::open_engine(options(good));
    CHECK(eng->info().name == "tiny-gemma3");
    CHECK(mappings_of(good / "model.safetensors") >= 1);
    gf::generation_request r;
    r.prompt = {2, 10, 11};
    r.stop.max_tokens = 3;
    r.decode_text = false;
    const auto h = eng->generate(std::move(r));  // outside CHECK, which spells its expression twice
    CHECK(h->completion_tokens() == 3);
    CHECK(thread_count() > before);
  }
  CHECK(settled_thread_count(before) == before);
  CHECK(mappings_of(good / "model.safetensors") == 0);

  SECTION("missing") {
    expect_clean_failure(options(d.path() / "nope"), gf::errc::io, "no such file", {});
  }
  SECTION("empty weights file") {
    const fs::path m = tiny_checkpoint(d.path() / "empty");
    write_text(m / "model.safetensors", "");
    expect_clean_failure(options(m), gf::errc::format, "model.safetensors", m / "model.safetensors");
  }
  SECTION("truncated weights at 10 points") {
    const std::string full = read_text(good / "model.safetensors");
    for (int i = 1; i <= 10; ++i) {
      const fs::path m = tiny_checkpoint(d.path() / ("cut" + std::to_string(i)));
      write_text(m / "model.safetensors", std::string_view(full).substr(0, full.size() * std::size_t(i) / 11));
      INFO("cut at " << full.size() * std::size_t(i) / 11);
      expect_clean_failure(options(m), gf::errc::format, "model.safetensors", m / "model.safetensors");
    }
  }
  SECTION("config of another shape than the tensors") {
    const fs::path m = tiny_checkpoint(d.path() / "shapes");
    std::string cfg = read_text(m / "config.json");
    const auto at = cfg.find("\"intermediate_size\": 128");
    REQUIRE(at != std::string::npos);
    cfg.replace(at, 24, "\"intermediate_size\": 96");
    write_text(m / "config.json", cfg);
    expect_clean_failure(options(m), gf::errc::model_mismatch, "no registered model matches", m / "model.safetensors");
    expect_clean_failure(options(m), gf::errc::model_mismatch, "file has feed-forward size 96, tiny-gemma3 expects 128",
                         m / "model.safetensors");
  }
  SECTION("limits the start-up plan refuses, before the weights are bound") {
    auto o = options(good);
    o.limits.max_batch = 100000;
    expect_clean_failure(o, gf::errc::invalid_argument, "max_batch must be at most 65536", good / "model.safetensors");
    o = options(good);
    o.limits.max_seq_len = 100000;
    expect_clean_failure(o, gf::errc::invalid_argument, "--ctx-size 100000 exceeds the model's 256 positions",
                         good / "model.safetensors");
  }
  SECTION("an arena larger than the host has") {
    auto o = options(good);
    o.limits.kv_blocks = 1 << 30;
    expect_clean_failure(o, gf::errc::out_of_memory, "does not fit host", good / "model.safetensors");
  }
}

TEST_CASE("open_engine: a truncated copy of the real model fails cleanly", "[programs][fault][model]") {
  const fs::path real = gf::default_model_location();
  if (!fs::exists(real)) {
    WARN("SKIPPED: the default model is not installed (scripts/setup)");
    return;
  }
  scratch_dir d;
  const fs::path cut = d.path() / "cut.gguf";
  {
    // The first 8 MiB: the whole header (metadata, vocabulary, tensor infos), a part of the data.
    std::ifstream in(real, std::ios::binary);
    std::string head(8u << 20, '\0');
    in.read(head.data(), std::streamsize(head.size()));
    write_text(cut, head);
  }
  expect_clean_failure(options(cut), gf::errc::format, "cut.gguf", cut);
}
