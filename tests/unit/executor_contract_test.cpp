// The executor contract (runtime/forward.hpp, step/step.hpp): logits rows chosen once, the step
// view an executor hands its ops, and the quantized matmul input as a value (no memo).
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <vector>

#include <gemmaforge/backend/cpu/executor.hpp>
#include <gemmaforge/model/tiny.hpp>
#include <gemmaforge/plan/arena_layout.hpp>
#include <gemmaforge/step/step.hpp>

#include "support/random_inputs.hpp"

namespace gf = gemmaforge;

namespace {

gf::step_sequence seq(std::int32_t first_row, std::int32_t n_tokens, gf::step_sequence::logits want) {
  gf::step_sequence s;
  s.first_row = first_row;
  s.n_tokens = n_tokens;
  s.want = want;
  return s;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("executor: logits rows are chosen from the sequences' wants, in sequence order", "[cpu]") {
  using L = gf::step_sequence::logits;
  // Two decode rows, a prefill chunk that wants nothing, a scored chunk that wants every row.
  const std::vector<gf::step_sequence> seqs = {seq(0, 1, L::last), seq(1, 1, L::last), seq(2, 4, L::none), seq(6, 3, L::all)};
  std::vector<std::int32_t> rows(9, -1);
  const std::int32_t n = gf::choose_logit_rows(seqs.data(), std::int32_t(seqs.size()), rows.data());
  REQUIRE(n == 5);
  CHECK(std::vector<std::int32_t>(rows.begin(), rows.begin() + n) == std::vector<std::int32_t>{0, 1, 6, 7, 8});
  CHECK(rows[5] == -1);  // nothing written past the chosen rows

  const std::vector<gf::step_sequence> last_chunk = {seq(0, 5, L::last)};
  CHECK(gf::choose_logit_rows(last_chunk.data(), 1, rows.data()) == 1);
  CHECK(rows[0] == 4);
}

TEST_CASE("executor: the CPU step view is the batch's own host arrays", "[cpu]") {
  const std::vector<std::int32_t> tokens = {5, 6, 7}, positions = {0, 1, 2}, logit_rows = {2};
  const std::vector<gf::step_sequence> seqs = {seq(0, 3, gf::step_sequence::logits::last)};
  gf::step_batch b;
  b.tokens = tokens.data();
  b.positions = positions.data();
  b.n_tokens = 3;
  b.seqs = seqs.data();
  b.n_seqs = 1;
  b.logit_rows = logit_rows.data();
  b.n_logits_rows = 1;
  const gf::step_view v = gf::host_step_view(b);
  CHECK(v.batch == &b);
  CHECK(v.tokens == tokens.data());
  CHECK(v.positions == positions.data());
  CHECK(v.logit_rows == logit_rows.data());
  CHECK(v.n_tokens == 3);
  CHECK(v.n_logits_rows == 1);
}

TEST_CASE("executor: the CPU quantized input is a value: quantized once, same bits, stale values refused", "[cpu]") {
  using M = gf::models::tiny_gemma3;
  gf::cpu::executor_options o;
  o.threads = 2;
  gf::cpu::cpu_executor exec(o);
  gf::layout_inputs in;
  in.config = gf::serving_config{.max_seq_len = 64, .max_batch = 2, .kv = gf::dtype::f32, .prefill_chunk = 16, .block_tokens = 16};
  const gf::arena_layout layout = gf::make_arena_layout<M>(in);
  exec.allocate_arena<M, float>(layout);

  constexpr int T = 3, cols = M::hidden, rows = 32;
  const auto q8 = gf::testing::random_weight_bytes(gf::tensor_format::q8_0, rows, cols, 1);
  const auto f32 = gf::testing::random_weight_bytes(gf::tensor_format::f32, rows, cols, 2);
  const gf::weight_view wq{gf::tensor_format::q8_0, q8.data(), rows, cols};
  const gf::weight_view wf{gf::tensor_format::f32, f32.data(), rows, cols};
  const auto x = gf::testing::random_floats(std::size_t(T) * cols, 3);
  const auto x2 = gf::testing::random_floats(std::size_t(T) * cols, 4);

  // The reference: cpu::matmul quantizing into its own scratch, as a matmul without a shared input.
  auto reference = [&](const gf::weight_view& w, const std::vector<float>& in_x) {
    std::vector<float> y(std::size_t(T) * rows);
    gf::cpu::matmul_options mo;
    mo.precision = o.precision;
    mo.isa = exec.options().isa;
    gf::cpu::matmul(exec.pool(), w, in_x.data(), T, y.data(), mo);
    return y;
  };
  std::vector<float> y(std::size_t(T) * rows), y2(std::size_t(T) * rows);

  SECTION("one quantization feeds every consumer, with the bits of quantizing for each") {
    const auto xq = exec.quantize_input(x.data(), T, {&wq, &wf});
    CHECK(xq.q != nullptr);
    exec.matmul(wq, xq, T, y.data());
    CHECK(same_bits(y, reference(wq, x)));
    exec.matmul(wq, xq, T, y2.data());  // a second consumer reads the same quantized rows
    CHECK(same_bits(y2, y));
    exec.matmul(wf, xq, T, y.data());  // an f32 weight reads the f32 rows
    CHECK(same_bits(y, reference(wf, x)));
  }
  SECTION("unquantized consumers get only the f32 rows") {
    const auto xf = exec.quantize_input(x.data(), T, {&wf});
    CHECK(xf.q == nullptr);
    CHECK(xf.x == x.data());
    REQUIRE_THROWS_AS(exec.matmul(wq, xf, T, y.data()), gf::error);  // not quantized for this weight
  }
  SECTION("a value is valid until the next quantize_input") {
    const auto first = exec.quantize_input(x.data(), T, {&wq});
    const auto second = exec.quantize_input(x2.data(), T, {&wq});
    REQUIRE_THROWS_AS(exec.matmul(wq, first, T, y.data()), gf::error);  // its rows were overwritten
    exec.matmul(wq, second, T, y.data());
    CHECK(same_bits(y, reference(wq, x2)));
  }
  SECTION("consumers of one input share its width") {
    const auto narrow = gf::testing::random_weight_bytes(gf::tensor_format::q8_0, rows, 32, 5);
    const gf::weight_view wn{gf::tensor_format::q8_0, narrow.data(), rows, 32};
    REQUIRE_THROWS_AS(exec.quantize_input(x.data(), T, {&wq, &wn}), gf::error);
  }
}
