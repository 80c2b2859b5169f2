// The block-sums modes, matmul_precision::int16_block_sums and int8_block_sums (math/quant.hpp
// dot_block_sums; the packed AVX-512 GEMM of backend/cpu/gemm_block_sums.hpp), each of them:
//   - every ISA and schedule (decode, GEMM) gives the scalar reference's bits, on every format of
//     Q4_K_M files and odd shapes (rows 1..131, tokens 1..29 and 512),
//   - the result is within the activation-rounding bound of a double reference,
//   - batch invariance: a token alone (decode order) = the same token in a batch (GEMM),
//   - the biased digits are the same bytes on every ISA; the plan sizes the pack scratch,
//   - the AVX-512 weight packing writes the scalar packing's bytes (every field, rows past the end).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <gemmaforge/backend/cpu/gemm_block_sums.hpp>
#include <gemmaforge/backend/cpu/gemm_pack_avx512.hpp>
#include <gemmaforge/backend/cpu/matmul.hpp>
#include <gemmaforge/backend/cpu/scratch.hpp>
#include <gemmaforge/model/registry.hpp>
#include <gemmaforge/plan/plan.hpp>

#include "unit/cpu_test_util.hpp"

namespace gf = gemmaforge;
namespace cpu = gemmaforge::cpu;
using gf::tensor_format;

namespace {

using prec = cpu::matmul_precision;

std::vector<float> run_bsum(cpu::thread_pool& pool, prec bsum, const gf::weight_view& W, const float* x, int n, cpu::cpu_isa isa,
                            int gemm_min_rows, std::byte* pack = nullptr) {
  std::vector<float> y(std::size_t(n) * std::size_t(W.rows), -1.0f);
  cpu::matmul_options o;
  o.precision = bsum;
  o.isa = isa;
  o.gemm_min_rows = gemm_min_rows;
  o.pack_scratch = pack;
  cpu::matmul(pool, W, x, n, y.data(), o);
  return y;
}

// The reference: the scalar quantizer + math::dot_block_sums, one (row, token) at a time.
std::vector<float> reference(prec bsum, const gf::weight_view& W, const std::vector<float>& x, int n) {
  const int cols = int(W.cols);
  const cpu::act_layout L = cpu::act_layout_for(cols, bsum);
  std::vector<std::byte> qa(L.row_bytes * std::size_t(n));
  for (int t = 0; t < n; ++t) cpu::quantize_act_row(cpu::cpu_isa::scalar, x.data() + std::size_t(t) * cols, L, qa.data() + t * L.row_bytes);
  std::vector<float> y(std::size_t(n) * std::size_t(W.rows));
  for (std::int64_t r = 0; r < W.rows; ++r)
    for (int t = 0; t < n; ++t) {
      const cpu::act_row a = cpu::act_row_at(qa.data(), L, t);
      y[std::size_t(t) * std::size_t(W.rows) + std::size_t(r)] = gf::math::dot_block_sums(W.format, W.row(r), a.q, a.q2, a.dx, L.nb);
    }
  return y;
}

int cols_for(tensor_format f, int i) {
  const bool k = f == tensor_format::q4_k || f == tensor_format::q6_k;
  static const int b32[] = {32, 96, 640};
  static const int kq[] = {256, 512, 768};
  return k ? kq[i % 3] : b32[i % 3];
}

}  // namespace

TEST_CASE("block sums: every ISA and schedule gives the scalar reference's bits", "[cpu][kernels]") {
  const prec bsum = GENERATE(prec::int16_block_sums, prec::int8_block_sums);
  INFO(gf::to_string(bsum));
  cpu::thread_pool pool(2);
  const std::int64_t rows_list[] = {1, 5, 16, 17, 31, 33, 64, 100, 131};
  const int tokens_list[] = {1, 3, 7, 8, 13, 29};
  for (tensor_format f : {tensor_format::q8_0, tensor_format::q5_0, tensor_format::q4_k, tensor_format::q6_k}) {
    int i = 0;
    for (const std::int64_t rows : rows_list) {
      const int cols = cols_for(f, i++);
      const auto w = gf_test::random_weight(f, rows, cols, 31u + unsigned(rows) + unsigned(f));
      for (const int n : tokens_list) {
        INFO("format " << gf::to_string(f) << " rows " << rows << " cols " << cols << " tokens " << n);
        const auto x = gf_test::random_floats(std::size_t(n) * std::size_t(cols), 7u + unsigned(n) + unsigned(rows));
        const auto ref = reference(bsum, w.view, x, n);
        for (auto isa : gf_test::available_isas()) {
          for (int gmin : {1, 1 << 30}) {  // the GEMM for every batch, and never
            INFO("isa " << cpu::to_string(isa) << " gemm_min_rows " << gmin);
            const auto y = run_bsum(pool, bsum, w.view, x.data(), n, isa, gmin);
            for (std::size_t e = 0; e < y.size(); ++e) REQUIRE(gf_test::same_bits(y[e], ref[e]));
          }
        }
      }
    }
  }
}

TEST_CASE("block sums: 512 tokens through the GEMM, the reference's bits", "[cpu][kernels]") {
  const prec bsum = GENERATE(prec::int16_block_sums, prec::int8_block_sums);
  INFO(gf::to_string(bsum));
  cpu::thread_pool pool(2);
  for (tensor_format f : {tensor_format::q8_0, tensor_format::q5_0, tensor_format::q4_k, tensor_format::q6_k}) {
    const int cols = f == tensor_format::q4_k || f == tensor_format::q6_k ? 512 : 640;
    const std::int64_t rows = 45;
    const int n = 512;
    INFO("format " << gf::to_string(f));
    const auto w = gf_test::random_weight(f, rows, cols, 5u + unsigned(f));
    const auto x = gf_test::random_floats(std::size_t(n) * std::size_t(cols), 11u);
    const auto ref = reference(bsum, w.view, x, n);
    std::vector<std::byte> pack(cpu::gemm_pack_scratch_bytes(cols, pool.size()) + 64);
    auto* aligned = reinterpret_cast<std::byte*>((reinterpret_cast<std::uintptr_t>(pack.data()) + 63) & ~std::uintptr_t(63));
    for (auto isa : gf_test::available_isas()) {
      INFO("isa " << cpu::to_string(isa));
      const auto y = run_bsum(pool, bsum, w.view, x.data(), n, isa, 8, aligned);  // planned scratch
      for (std::size_t e = 0; e < y.size(); ++e) REQUIRE(gf_test::same_bits(y[e], ref[e]));
    }
  }
}

TEST_CASE("block sums: within the activation-rounding bound of a double reference", "[cpu][kernels]") {
  const prec bsum = GENERATE(prec::int16_block_sums, prec::int8_block_sums);
  INFO(gf::to_string(bsum));
  cpu::thread_pool pool(2);
  for (tensor_format f : {tensor_format::q8_0, tensor_format::q5_0, tensor_format::q4_k, tensor_format::q6_k}) {
    const int cols = f == tensor_format::q4_k || f == tensor_format::q6_k ? 768 : 640;
    const std::int64_t rows = 37;
    const int n = 9;
    INFO("format " << gf::to_string(f));
    const auto w = gf_test::random_weight(f, rows, cols, 99u + unsigned(f));
    const auto x = gf_test::random_floats(std::size_t(n) * std::size_t(cols), 3u);
    const cpu::act_layout L = cpu::act_layout_for(cols, bsum);
    std::vector<std::byte> qa(L.row_bytes * std::size_t(n));
    for (int t = 0; t < n; ++t) cpu::quantize_act_row(cpu::cpu_isa::scalar, x.data() + std::size_t(t) * cols, L, qa.data() + t * L.row_bytes);
    const auto y = run_bsum(pool, bsum, w.view, x.data(), n, cpu::default_cpu_isa(), 8);
    for (std::int64_t r = 0; r < rows; ++r) {
      const auto wr = gf_test::ref_dequant_row(f, w.view.row(r), cols);
      for (int t = 0; t < n; ++t) {
        const cpu::act_row a = cpu::act_row_at(qa.data(), L, t);
        double ref = 0, bound = 0, mag = 0;
        for (int c = 0; c < cols; ++c) {
          const double xc = x[std::size_t(t) * cols + c];
          ref += wr[c] * xc;
          bound += std::fabs(wr[c]) * double(a.dx[c / 32]) * 0.5;
          mag += std::fabs(wr[c] * xc) + std::fabs(wr[c]) * double(a.dx[c / 32]);
        }
        // f32 rounding: per block the convert (|s| >= 2^24), the scale product and the FMA; the
        // q4_k min chain and its subtraction. (nb + 8) * 4 units of 2^-24 of the magnitude.
        const int nb = cols / 32;  // cols is a multiple of 32
        const double f32 = double(nb + 8) * 4 * 0x1p-24 * mag;
        REQUIRE(std::fabs(double(y[std::size_t(t) * rows + std::size_t(r)]) - ref) <= bound + f32);
      }
    }
  }
}

TEST_CASE("block sums: a token alone gives the bits it gets in a batch", "[cpu][kernels]") {
  const prec bsum = GENERATE(prec::int16_block_sums, prec::int8_block_sums);
  INFO(gf::to_string(bsum));
  cpu::thread_pool pool(2);
  for (tensor_format f : {tensor_format::q8_0, tensor_format::q5_0, tensor_format::q4_k, tensor_format::q6_k}) {
    const int cols = f == tensor_format::q4_k || f == tensor_format::q6_k ? 512 : 640;
    const std::int64_t rows = 70;
    const int n = 23;
    const auto w = gf_test::random_weight(f, rows, cols, 17u + unsigned(f));
    const auto x = gf_test::random_floats(std::size_t(n) * std::size_t(cols), 23u);
    for (auto isa : gf_test::available_isas()) {
      INFO("format " << gf::to_string(f) << " isa " << cpu::to_string(isa));
      const auto batch = run_bsum(pool, bsum, w.view, x.data(), n, isa, 8);
      for (int t : {0, 6, 22}) {
        const auto alone = run_bsum(pool, bsum, w.view, x.data() + std::size_t(t) * cols, 1, isa, 8);
        for (std::int64_t r = 0; r < rows; ++r) REQUIRE(gf_test::same_bits(alone[std::size_t(r)], batch[std::size_t(t) * rows + std::size_t(r)]));
      }
    }
  }
}

TEST_CASE("block sums: the biased digits are the same bytes on every ISA", "[cpu][kernels]") {
  const prec bsum = GENERATE(prec::int16_block_sums, prec::int8_block_sums);
  const bool wide = bsum == prec::int16_block_sums;
  const std::size_t stride = wide ? 64 : 32;
  for (int cols : {32, 96, 640}) {
    auto x = gf_test::random_floats(std::size_t(cols), 5u + unsigned(cols), 3.0f);
    const cpu::act_layout L = cpu::act_layout_for(cols, bsum);
    REQUIRE(L.biased);
    REQUIRE(L.wide == wide);
    std::vector<std::byte> ref(L.row_bytes, std::byte{0xAB});
    cpu::quantize_act_row(cpu::cpu_isa::scalar, x.data(), L, ref.data());
    const cpu::act_row a = cpu::act_row_at(ref.data(), L, 0);
    REQUIRE((a.q2 != nullptr) == wide);
    for (int i = 0; i < cols; ++i) {  // qu = digits + 128, high then low per block (8-bit: the values)
      REQUIRE(int(std::uint8_t(ref[L.qu + stride * std::size_t(i / 32) + std::size_t(i % 32)])) == a.q[i] + 128);
      if (wide) REQUIRE(int(std::uint8_t(ref[L.qu + 64 * std::size_t(i / 32) + 32 + std::size_t(i % 32)])) == a.q2[i] + 128);
    }
    for (auto isa : gf_test::available_isas()) {
      std::vector<std::byte> got(L.row_bytes, std::byte{0xAB});
      cpu::quantize_act_row(isa, x.data(), L, got.data());
      INFO(gf::to_string(bsum) << " cols " << cols << " isa " << cpu::to_string(isa));
      REQUIRE(std::memcmp(got.data(), ref.data(), L.xsum + 4 * std::size_t(L.nbp)) == 0);
      REQUIRE(std::memcmp(got.data() + L.qu, ref.data() + L.qu, stride * std::size_t(L.nbp)) == 0);
    }
  }
}

TEST_CASE("block sums: the plan holds its activation rows and, given threads, its pack scratch", "[cpu][plan]") {
  using Model = gf::models::gemma_3_270m;
  gf::serving_config c;
  c.max_batch = 2;
  c.max_seq_len = 1024;
  gf::layout_inputs in;
  in.config = c;
  const auto without = gf::make_arena_layout<Model>(in);
  CHECK(without.find("cpu_gemm_pack") == nullptr);
  in.cpu_threads = 3;
  const auto L = gf::make_arena_layout<Model>(in);
  const int widest = std::max({Model::hidden, Model::q_dim, Model::ffn});
  REQUIRE(L.find("cpu_gemm_pack") != nullptr);
  CHECK(L.bytes("cpu_gemm_pack") >= cpu::gemm_pack_scratch_bytes(widest, 3));
  for (auto bsum : {prec::int16_block_sums, prec::int8_block_sums})
    CHECK(cpu::matmul_scratch_bytes(widest, int(L.step_tokens), bsum) <= L.bytes("cpu_act_quant"));
}

#if GF_X86
TEST_CASE("block sums: the AVX-512 packing writes the scalar packing's bytes", "[cpu][kernels]") {
  if (!cpu::cpu_isa_supported(cpu::cpu_isa::avx512)) {
    WARN("no AVX-512 VNNI on this CPU: the packing is not checked");
    return;
  }
  const std::int64_t rows_list[] = {1, 5, 15, 16, 17, 31, 32, 45};
  for (tensor_format f : {tensor_format::q8_0, tensor_format::q5_0, tensor_format::q4_k, tensor_format::q6_k}) {
    const bool kq = f == tensor_format::q4_k || f == tensor_format::q6_k;
    for (const int cols : kq ? std::vector<int>{256, 768} : std::vector<int>{32, 96, 640}) {
      for (const std::int64_t rows : rows_list) {
        for (const bool raw : {false, true}) {  // raw: every byte random (odd scales, subnormal / NaN f16)
          auto w = gf_test::random_weight(f, rows, cols, 41u + unsigned(rows) + unsigned(cols) + unsigned(f));
          if (raw) {
            std::mt19937 rng(unsigned(rows) * 7u + unsigned(cols));
            for (auto& b : w.bytes) b = std::byte(std::uint8_t(rng()));
          }
          cpu::detail::mm_task k;
          k.fmt = f;
          k.w = w.view.data;
          k.w_stride = w.view.row_stride();
          k.rows = rows;
          k.cols = cols;
          k.L.nb = cols / 32;
          for (const int bias : {129, 128}) {
            for (std::int64_t r0 = 0; r0 < rows + 16; r0 += 16) {  // the last group: past the end, or partial
              INFO("format " << gf::to_string(f) << " cols " << cols << " rows " << rows << " raw " << raw << " bias " << bias
                             << " group " << r0);
              std::vector<cpu::packed_block> ref(std::size_t(k.L.nb)), got(std::size_t(k.L.nb));
              std::memset(ref.data(), 0xAB, ref.size() * sizeof(cpu::packed_block));
              std::memset(got.data(), 0xCD, got.size() * sizeof(cpu::packed_block));  // a byte left unwritten differs
              cpu::detail::pack_group(k, r0, ref.data(), bias);
              REQUIRE(cpu::detail::avx512::pack_group_any(k, r0, got.data(), bias));
              REQUIRE(std::memcmp(ref.data(), got.data(), ref.size() * sizeof(cpu::packed_block)) == 0);
            }
          }
        }
      }
    }
  }
}
#endif
