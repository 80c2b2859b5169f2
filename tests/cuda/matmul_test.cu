// Matmul kernels against math/quant.hpp, for every weight format:
//   exact path:  matvec (both policies) and the tiled GEMM, bit-identical to math::dot_exact, for
//                token counts 1..33 (so decode, token tiles with a ragged end, and GEMM tiles);
//   int8/int16 paths: activation quantization bit-identical to math::quantize_act_block(15), and the int8
//                matvec (both policies) bit-identical to math::dot_act;
//   cuBLASLt:    within |y - ref| <= tol * sum_c |w_c x_c| of the exact result, tol = 1e-5 for f32
//                weights (another summation order) and 2^-7 for 16-bit/quantized weights (bf16/f16
//                activations and bf16 weight panels each round to 2^-9 relative).
#include <catch2/catch.hpp>

#include <gemmaforge/backend/cuda/gemm.cuh>
#include <gemmaforge/backend/cuda/matvec.cuh>
#include <gemmaforge/math/quant.hpp>

#include "cuda/cuda_test_util.cuh"

#include <cmath>
#include <vector>

namespace gf = gemmaforge;
namespace gc = gemmaforge::cuda;
using namespace gf_cuda_test;

namespace {

std::vector<float> exact_ref(const weight_pair& w, const std::vector<float>& x, int T) {
  const int rows = int(w.host_view.rows), cols = int(w.host_view.cols);
  std::vector<float> y(std::size_t(T) * rows);
  for (int t = 0; t < T; ++t)
    for (int r = 0; r < rows; ++r)
      y[std::size_t(t) * rows + std::size_t(r)] =
          gf::math::dot_exact(w.host_view.format, w.host_view.row(r), x.data() + std::size_t(t) * cols, cols);
  return y;
}

}  // namespace

TEST_CASE("cuda matmul, exact path: matvec policies and tiled GEMM equal math::dot_exact", "[cuda][matmul]") {
  const int rows = 97, cols = 512;  // 97 rows: partial blocks of every tile size
  for (gf::tensor_format f : gf::all_tensor_formats) {
    INFO(gf::to_string(f));
    weight_pair w(f, rows, cols, 40 + unsigned(f));
    for (int T : {1, 2, 3, 4, 5, 9, 16, 33}) {
      INFO("T " << T);
      const auto x = random_floats(std::size_t(T) * cols, 7 * unsigned(T));
      const auto ref = exact_ref(w, x, T);
      dbuf<float> dx(x), dy(std::size_t(T) * rows);
      REQUIRE(gc::launch_matvec_exact<gc::matvec_policy_pair>(w.dev_view, dx.get(), T, dy.get(), nullptr) == gf::status::ok);
      CHECK(bit_mismatches(dy.download(), ref, ref.size()) == 0);
      REQUIRE(gc::launch_matvec_exact<gc::matvec_policy_single>(w.dev_view, dx.get(), T, dy.get(), nullptr) == gf::status::ok);
      CHECK(bit_mismatches(dy.download(), ref, ref.size()) == 0);
      REQUIRE(gc::launch_gemm_exact(w.dev_view, dx.get(), T, dy.get(), nullptr) == gf::status::ok);
      CHECK(bit_mismatches(dy.download(), ref, ref.size()) == 0);
    }
  }
}

TEST_CASE("cuda matmul, int8 and int16 paths: activation quantization and matvec equal math::dot_act", "[cuda][matmul][int8][int16]") {
  const int rows = 53, cols = 768;
  for (int digits : {1, 2}) {  // 8-bit activations; 15-bit as two int8 digits (the default)
    INFO("digits " << digits);
    const bool wide = digits == 2;
    for (gf::tensor_format f : {gf::tensor_format::q8_0, gf::tensor_format::q5_0, gf::tensor_format::q4_k, gf::tensor_format::q6_k}) {
      INFO(gf::to_string(f));
      weight_pair w(f, rows, cols, 60 + unsigned(f));
      for (int T : {1, 3, 4, 7}) {
        INFO("T " << T);
        auto x = random_floats(std::size_t(T) * cols, 3 + unsigned(T), 2.0f);
        std::fill(x.begin(), x.begin() + 32, 0.0f);  // an all-zero block: scale 0
        if (wide) x[40] = 1e30f;                     // one huge value: every other quant of its block rounds to 0
        const int nb = cols / 32;
        std::vector<std::int8_t> hq(std::size_t(T) * cols), hq2(wide ? hq.size() : 0);
        std::vector<float> hdx(std::size_t(T) * nb);
        for (int t = 0; t < T; ++t)
          for (int b = 0; b < nb; ++b) {
            const std::size_t at = std::size_t(t) * cols + 32 * std::size_t(b);
            hdx[std::size_t(t) * nb + std::size_t(b)] = wide ? gf::math::quantize_act_block15(x.data() + at, hq.data() + at, hq2.data() + at)
                                                             : gf::math::quantize_act_block(x.data() + at, hq.data() + at);
          }
        dbuf<float> dx(x), dy(std::size_t(T) * rows);
        dbuf<std::byte> scratch(gc::act_quant_bytes(T, cols, digits));
        const gc::act_quant_view act = gc::carve_act_quant(scratch.get(), T, cols, digits);
        REQUIRE((act.q2 != nullptr) == wide);
        REQUIRE(gc::launch_quantize_activations(dx.get(), T, cols, act, nullptr) == gf::status::ok);
        std::vector<std::int8_t> gq(hq.size()), gq2(hq2.size());
        std::vector<float> gdx(hdx.size());
        GF_REQUIRE_CUDA(cudaDeviceSynchronize());
        GF_REQUIRE_CUDA(cudaMemcpy(gq.data(), act.q, gq.size(), cudaMemcpyDeviceToHost));
        if (wide) GF_REQUIRE_CUDA(cudaMemcpy(gq2.data(), act.q2, gq2.size(), cudaMemcpyDeviceToHost));
        GF_REQUIRE_CUDA(cudaMemcpy(gdx.data(), act.dx, gdx.size() * 4, cudaMemcpyDeviceToHost));
        CHECK(gq == hq);
        CHECK(gq2 == hq2);
        CHECK(bit_mismatches(gdx, hdx, hdx.size()) == 0);
        std::vector<float> ref(std::size_t(T) * rows);
        for (int t = 0; t < T; ++t)
          for (int r = 0; r < rows; ++r)
            ref[std::size_t(t) * rows + std::size_t(r)] =
                gf::math::dot_act(f, w.host_view.row(r), hq.data() + std::size_t(t) * cols,
                                  wide ? hq2.data() + std::size_t(t) * cols : nullptr, hdx.data() + std::size_t(t) * nb, nb);
        REQUIRE(gc::launch_matvec_qact<gc::matvec_policy_pair>(w.dev_view, act, T, dy.get(), nullptr) == gf::status::ok);
        CHECK(bit_mismatches(dy.download(), ref, ref.size()) == 0);
        REQUIRE(gc::launch_matvec_qact<gc::matvec_policy_single>(w.dev_view, act, T, dy.get(), nullptr) == gf::status::ok);
        CHECK(bit_mismatches(dy.download(), ref, ref.size()) == 0);
      }
    }
  }
}

TEST_CASE("cuda matmul, cuBLASLt prefill: within the stated tolerance of the exact result", "[cuda][matmul][cublaslt]") {
  const int rows = 160, cols = 512, T = 37;
  gc::cublaslt_gemm g;
  dbuf<std::byte> ws(gc::cublaslt_gemm::default_workspace_bytes), scratch(gc::cublaslt_gemm::scratch_bytes(T, cols));
  REQUIRE(g.init(ws.get(), gc::cublaslt_gemm::default_workspace_bytes) == gf::status::ok);
  for (gf::tensor_format f : gf::all_tensor_formats) {
    INFO(gf::to_string(f));
    weight_pair w(f, rows, cols, 80 + unsigned(f));
    const auto x = random_floats(std::size_t(T) * cols, 5);
    const auto ref = exact_ref(w, x, T);
    dbuf<float> dx(x), dy(std::size_t(T) * rows);
    REQUIRE(g.run(w.dev_view, dx.get(), T, dy.get(), scratch.get(), nullptr) == gf::status::ok);
    const auto got = dy.download();
    const double tol = f == gf::tensor_format::f32 ? 1e-5 : 1.0 / 128.0;
    std::vector<float> wrow(cols);
    int bad = 0;
    for (int r = 0; r < rows; ++r) {
      gf::math::dequantize_row(f, w.host_view.row(r), wrow.data(), cols);
      for (int t = 0; t < T; ++t) {
        double mag = 0;
        for (int c = 0; c < cols; ++c) mag += std::fabs(double(wrow[std::size_t(c)]) * x[std::size_t(t) * cols + std::size_t(c)]);
        const double err = std::fabs(double(got[std::size_t(t) * rows + std::size_t(r)]) - ref[std::size_t(t) * rows + std::size_t(r)]);
        bad += err > tol * mag;
      }
    }
    CHECK(bad == 0);
  }
}
