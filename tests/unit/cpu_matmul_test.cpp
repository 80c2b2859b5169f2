// CPU matmul for every weight format, precision and ISA:
//   - exact path vs a plain double-precision reference (rigorous f32 summation error bound),
//   - int8 path vs the same reference (bound from the activation rounding, computed per row),
//   - every SIMD ISA bit-identical to the scalar kernel, which is math::dot_exact / dot_act,
//   - batch invariance: a row's output is the same bits alone, anywhere in a batch, on 1-3 threads.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include <gemmaforge/backend/cpu/matmul.hpp>

#include "unit/cpu_test_util.hpp"

namespace gf = gemmaforge;
namespace cpu = gemmaforge::cpu;
using gf::tensor_format;

namespace {

struct shape {
  std::int64_t rows;
  int cols;
};

std::vector<shape> shapes_for(tensor_format f) {
  if (f == tensor_format::q4_k || f == tensor_format::q6_k) return {{1, 256}, {7, 512}, {37, 768}, {18, 2048}};
  if (f == tensor_format::q8_0 || f == tensor_format::q5_0) return {{1, 32}, {5, 96}, {37, 640}, {18, 2048}};
  return {{3, 40}, {5, 48}, {37, 640}, {18, 2048}};  // 40: not a multiple of 16, runs the scalar kernel
}

// f32 error bound of the canonical order: 16 lanes of n/16 fmas, then a 4-level tree:
// |err| <= (ceil(n/16) + 4) * u * sum|w x|, u = 2^-24 (plus slack for the rounding of the bound).
double f32_sum_bound(int n, double sum_abs) { return (std::ceil(n / 16.0) + 5) * 0x1p-24 * sum_abs + 1e-30; }

std::vector<float> run(cpu::thread_pool& pool, const gf::weight_view& W, const std::vector<float>& x, int n,
                       cpu::matmul_precision p, cpu::cpu_isa isa) {
  std::vector<float> y(std::size_t(n) * std::size_t(W.rows), -1.0f);
  cpu::matmul_options o;
  o.precision = p;
  o.isa = isa;
  cpu::matmul(pool, W, x.data(), n, y.data(), o);
  return y;
}

}  // namespace

TEST_CASE("matmul exact path matches a double reference on every ISA, bit-identical across ISAs", "[cpu][kernels]") {
  cpu::thread_pool pool(2);
  for (tensor_format f : gf::all_tensor_formats) {
    for (const shape s : shapes_for(f)) {
      for (int n : {1, 3, 6}) {
        INFO("format " << gf::to_string(f) << " rows " << s.rows << " cols " << s.cols << " tokens " << n);
        const auto w = gf_test::random_weight(f, s.rows, s.cols, 1234u + unsigned(s.cols) + unsigned(f));
        const auto x = gf_test::random_floats(std::size_t(n) * s.cols, 99u + unsigned(n));
        std::vector<float> scalar;
        for (auto isa : gf_test::available_isas()) {
          INFO("isa " << cpu::to_string(isa));
          const auto y = run(pool, w.view, x, n, cpu::matmul_precision::exact, isa);
          if (isa == cpu::cpu_isa::scalar) scalar = y;
          for (std::int64_t r = 0; r < s.rows; ++r) {
            const auto wr = gf_test::ref_dequant_row(f, w.view.row(r), s.cols);
            for (int t = 0; t < n; ++t) {
              double ref = 0, mag = 0;
              for (int c = 0; c < s.cols; ++c) {
                ref += wr[c] * double(x[std::size_t(t) * s.cols + c]);
                mag += std::fabs(wr[c] * double(x[std::size_t(t) * s.cols + c]));
              }
              const float got = y[std::size_t(t) * s.rows + r];
              REQUIRE(std::fabs(double(got) - ref) <= f32_sum_bound(s.cols, mag));
              // The scalar kernel is the canonical order; every SIMD kernel must give its bits.
              REQUIRE(gf_test::same_bits(got, scalar[std::size_t(t) * s.rows + r]));
            }
          }
        }
      }
    }
  }
}

TEST_CASE("matmul int8/int16-activation paths: canonical bits on every ISA, error within the rounding bound", "[cpu][kernels]") {
  cpu::thread_pool pool(2);
  for (auto prec : {cpu::matmul_precision::int8_activations, cpu::matmul_precision::int16_activations})
  for (tensor_format f : {tensor_format::q8_0, tensor_format::q5_0, tensor_format::q4_k, tensor_format::q6_k}) {
    for (const shape s : shapes_for(f)) {
      for (int n : {1, 5}) {
        const bool wide = prec == cpu::matmul_precision::int16_activations;
        INFO("format " << gf::to_string(f) << " rows " << s.rows << " cols " << s.cols << " tokens " << n << " 15-bit " << wide);
        const auto w = gf_test::random_weight(f, s.rows, s.cols, 777u + unsigned(s.cols) + unsigned(f));
        const auto x = gf_test::random_floats(std::size_t(n) * s.cols, 5u + unsigned(n));
        // Canonical result: the scalar quantizer + math::dot_act.
        const cpu::act_layout L = cpu::make_act_layout(s.cols, wide);
        std::vector<std::byte> qa(cpu::matmul_scratch_bytes(s.cols, n, prec));
        for (int t = 0; t < n; ++t)
          cpu::quantize_act_row(cpu::cpu_isa::scalar, x.data() + std::size_t(t) * s.cols, L, qa.data() + t * L.row_bytes);
        for (auto isa : gf_test::available_isas()) {
          INFO("isa " << cpu::to_string(isa));
          const auto y = run(pool, w.view, x, n, prec, isa);
          for (std::int64_t r = 0; r < s.rows; ++r) {
            const auto wr = gf_test::ref_dequant_row(f, w.view.row(r), s.cols);
            for (int t = 0; t < n; ++t) {
              const cpu::act_row a = cpu::act_row_at(qa.data(), L, t);
              const float canon = gf::math::dot_act(f, w.view.row(r), a.q, a.q2, a.dx, L.nb);
              const float got = y[std::size_t(t) * s.rows + r];
              REQUIRE(gf_test::same_bits(got, canon));
              // |sum w (x - q dx)| <= sum |w| dx / 2; plus f32 rounding of the scaled sums.
              double ref = 0, bound = 0, mag = 0;
              for (int c = 0; c < s.cols; ++c) {
                const double xc = x[std::size_t(t) * s.cols + c];
                ref += wr[c] * xc;
                bound += std::fabs(wr[c]) * double(a.dx[c / 32]) * 0.5;
                mag += std::fabs(wr[c] * xc) + std::fabs(wr[c]) * double(a.dx[c / 32]);
              }
              REQUIRE(std::fabs(double(got) - ref) <= bound + 4 * f32_sum_bound(s.cols, mag));
            }
          }
        }
      }
    }
  }
}

TEST_CASE("quantized activations are the same bytes on every ISA", "[cpu][kernels]") {
  for (bool wide : {false, true})
  for (int cols : {32, 96, 640, 2048}) {
    auto x = gf_test::random_floats(std::size_t(cols), 42u + unsigned(cols), 3.0f);
    x[5] = 0.0f;
    if (cols >= 64) std::fill(x.begin() + 32, x.begin() + 64, 0.0f);  // an all-zero block: scale 0
    const cpu::act_layout L = cpu::make_act_layout(cols, wide);
    std::vector<std::byte> ref(L.row_bytes, std::byte{0xAB});
    cpu::quantize_act_row(cpu::cpu_isa::scalar, x.data(), L, ref.data());
    for (auto isa : gf_test::available_isas()) {
      std::vector<std::byte> got(L.row_bytes, std::byte{0xAB});
      cpu::quantize_act_row(isa, x.data(), L, got.data());
      INFO("cols " << cols << " isa " << cpu::to_string(isa) << " 15-bit " << wide);
      REQUIRE(std::memcmp(got.data(), ref.data(), L.xsum + 4 * std::size_t(L.nbp)) == 0);
    }
  }
}

TEST_CASE("matmul is batch and thread-count invariant", "[cpu][kernels]") {
  cpu::thread_pool p1(1), p2(2), p3(3);
  const int T = 9;
  for (tensor_format f : gf::all_tensor_formats) {
    const int cols = is_block_quantized(f) && gf::block_elems(f) == 256 ? 768 : 640;
    const std::int64_t rows = 77;
    const auto w = gf_test::random_weight(f, rows, cols, 4242u + unsigned(f));
    const auto x = gf_test::random_floats(std::size_t(T) * cols, 17u);
    for (auto prec : {cpu::matmul_precision::exact, cpu::matmul_precision::int8_activations, cpu::matmul_precision::int16_activations}) {
      for (auto isa : gf_test::available_isas()) {
        INFO("format " << gf::to_string(f) << " isa " << cpu::to_string(isa) << " precision " << int(prec));
        const auto full = run(p2, w.view, x, T, prec, isa);
        REQUIRE(full == run(p1, w.view, x, T, prec, isa));
        REQUIRE(full == run(p3, w.view, x, T, prec, isa));
        for (int t0 : {0, 3, 8}) {
          for (int len : {1, 2, 5}) {
            if (t0 + len > T) continue;
            std::vector<float> sub(x.begin() + std::ptrdiff_t(t0) * cols, x.begin() + std::ptrdiff_t(t0 + len) * cols);
            const auto y = run(t0 % 2 ? p3 : p1, w.view, sub, len, prec, isa);
            for (int t = 0; t < len; ++t)
              for (std::int64_t r = 0; r < rows; ++r)
                REQUIRE(gf_test::same_bits(y[std::size_t(t) * rows + r], full[std::size_t(t0 + t) * rows + r]));
          }
        }
      }
    }
  }
}

// The GEMM order (T >= gemm_min_rows: L2 panels, token tiles outer, wider tiles) against the
// canonical scalar formulas and against the matvec path (each token alone, decode tiles), byte
// for byte, on shapes that are not multiples of any tile or panel: rows 1..131, T 8..29.
TEST_CASE("matmul GEMM order gives the canonical and the matvec path bits on odd shapes", "[cpu][kernels][gemm]") {
  cpu::thread_pool p1(1), p3(3);
  for (tensor_format f : gf::all_tensor_formats) {
    const bool k = gf::block_elems(f) == 256;
    const std::vector<int> col_set = k ? std::vector<int>{256, 768} : std::vector<int>{32, 96, 672};
    for (auto prec : {cpu::matmul_precision::exact, cpu::matmul_precision::int8_activations, cpu::matmul_precision::int16_activations}) {
      if (!gf::is_block_quantized(f) && prec != cpu::matmul_precision::exact) continue;
      const bool integer = cpu::matmul_uses_quantized_activations(f, prec);
      for (int cols : col_set) {
        for (std::int64_t rows : {std::int64_t(1), std::int64_t(17), std::int64_t(131)}) {
          for (int T : {8, 13, 29}) {
            const auto w = gf_test::random_weight(f, rows, cols, 9001u + unsigned(cols) + unsigned(rows) + unsigned(f));
            const auto x = gf_test::random_floats(std::size_t(T) * std::size_t(cols), 31u + unsigned(T));
            const cpu::act_layout L = cpu::make_act_layout(cols, prec == cpu::matmul_precision::int16_activations);
            std::vector<std::byte> qa(integer ? cpu::matmul_scratch_bytes(cols, T, prec) : 0);
            for (int t = 0; integer && t < T; ++t)
              cpu::quantize_act_row(cpu::cpu_isa::scalar, x.data() + std::size_t(t) * std::size_t(cols), L, qa.data() + std::size_t(t) * L.row_bytes);
            for (auto isa : gf_test::available_isas()) {
              INFO("format " << gf::to_string(f) << " precision " << int(prec) << " rows " << rows << " cols " << cols << " T " << T
                             << " isa " << cpu::to_string(isa));
              cpu::matmul_options o;
              o.precision = prec;
              o.isa = isa;
              std::vector<float> y(std::size_t(T) * std::size_t(rows), -1.0f);
              std::vector<float> y_old = y;
              std::vector<float> y1(static_cast<std::size_t>(rows));
              cpu::matmul(T % 2 ? p3 : p1, w.view, x.data(), T, y.data(), o);
              cpu::matmul_options old = o;
              old.gemm_min_rows = T + 1;
              cpu::matmul(p3, w.view, x.data(), T, y_old.data(), old);
              REQUIRE(std::memcmp(y.data(), y_old.data(), y.size() * sizeof(float)) == 0);
              for (int t = 0; t < T; ++t) {
                cpu::matmul(p1, w.view, x.data() + std::size_t(t) * std::size_t(cols), 1, y1.data(), o);
                for (std::int64_t r = 0; r < rows; ++r) {
                  const float got = y[std::size_t(t) * std::size_t(rows) + std::size_t(r)];
                  REQUIRE(gf_test::same_bits(got, y1[std::size_t(r)]));
                  float canon;
                  if (integer) {
                    const cpu::act_row a = cpu::act_row_at(qa.data(), L, t);
                    canon = gf::math::dot_act(f, w.view.row(r), a.q, a.q2, a.dx, L.nb);
                  } else {
                    canon = gf::math::dot_exact(f, w.view.row(r), x.data() + std::size_t(t) * std::size_t(cols), cols);
                  }
                  REQUIRE(gf_test::same_bits(got, canon));
                }
              }
            }
          }
        }
      }
    }
  }
}
