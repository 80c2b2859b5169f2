#pragma once
// Prefill matmul (many token rows): Y[T][rows] = X[T][cols] W^T, two implementations.
//
//   launch_gemm_exact      the canonical order (math::dot_exact: lane = column % 16, fmaf in
//                          ascending column, tree_sum16) as a tiled SIMT GEMM over every weight
//                          format. Each weight tile is dequantized once into shared memory
//                          (weight_load.cuh's load8, the exact f32 values) and serves 16 token rows.
//                          Same bits as the matvec kernels and as the CPU backend's exact path, so a
//                          row's result never depends on how many rows share the matmul: decode rows
//                          batched with a prefill chunk and chunked prefill stay batch invariant.
//                          This is the executor's default.
//   cublaslt_gemm          tensor cores through cuBLASLt: f32 weights as an f32 GEMM (CUBLAS_COMPUTE_32F,
//                          no TF32), bf16/f16 weights with the activations converted to the weight's
//                          type, quantized weights dequantized to bf16 row panels first. Faster prefill,
//                          but cuBLASLt picks its algorithm (and so its summation order) per shape:
//                          results differ from the canonical order in the last bits and depend on T.
//                          The executor uses it only when asked (cuda_executor_config::prefill_gemm).
//
// Exact tile (gemm_tile below): 64 weight rows x 16 tokens x 32 columns per step, 256 threads. The
// 16 canonical lanes of an output live in the 16 threads of a half-warp (lane = threadIdx % 16),
// each thread accumulating an 8 x 8 (row x token) micro-tile of its lane: 64 FMAs per 16 shared
// loads. The two half-warps of a warp share weight rows (broadcast reads) and take interleaved
// tokens (t and t + 1), so the token tile's row stride of 48 floats (= 16 mod 32 banks) keeps their
// reads conflict-free; the weight tile's stride of 36 floats spreads the float4 stores of
// neighbouring rows over different banks. Not tuned on hardware (no GPU was available).
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include <gemmaforge/backend/cuda/common.cuh>
#include <gemmaforge/backend/cuda/matvec.cuh>
#include <gemmaforge/backend/cuda/weight_load.cuh>
#include <gemmaforge/core/error.hpp>
#include <gemmaforge/core/format.hpp>
#include <gemmaforge/core/tensor.hpp>

namespace gemmaforge::cuda {

struct gemm_tile {
  static constexpr int bm = 64;   // weight rows per block
  static constexpr int bn = 16;   // token rows per block
  static constexpr int bk = 32;   // columns per step (two 16-column canonical chunks)
  static constexpr int threads = 256;
  static constexpr int w_stride = bk + 4;   // floats per weight-tile row in shared memory
  static constexpr int x_stride = bk + 16;  // floats per token-tile row
  static constexpr int smem_bytes = (bm * w_stride + bn * x_stride) * 4;
  static_assert(smem_bytes <= 48 * 1024, "gemm tile must fit static shared memory");
  static_assert(threads == 16 * (bm / 8) * (bn / 8), "one half-warp per 8x8 micro-tile group");
};

namespace detail {

template <tensor_format F>
__global__ void __launch_bounds__(gemm_tile::threads)
    gemm_exact_kernel(const std::byte* __restrict__ w, std::uint64_t row_stride, int rows, int cols,
                      const float* __restrict__ x, int T, float* __restrict__ y) {
  using G = gemm_tile;
  __shared__ __align__(16) float ws[G::bm * G::w_stride];  // (bm, bk) dequantized weights
  __shared__ __align__(16) float xs[G::bn * G::x_stride];  // (bn, bk) activations
  const int tid = int(threadIdx.x);
  const int l = tid % 16;       // canonical lane
  const int g = tid / 16;       // half-warp index 0..15
  const int rg = g / 2;         // weight rows rg*8 .. rg*8+7
  const int tg = g % 2;         // tokens tg, tg+2, ..., tg+14
  const int r0 = int(blockIdx.x) * G::bm;
  const int t0 = int(blockIdx.y) * G::bn;

  // Loader roles: weights, 8 values per thread (row tid/4, columns (tid%4)*8..+8);
  // activations, one float4 per thread for the first 128 threads.
  const int lr = tid / 4, lc = (tid % 4) * 8;
  const bool w_ok = r0 + lr < rows;
  const std::byte* wrow = w + std::uint64_t(w_ok ? r0 + lr : 0) * row_stride;
  const int xt = tid / 8, xc = (tid % 8) * 4;
  const bool x_ok = tid < 128 && t0 + xt < T;
  const float* xrow = x + std::int64_t(x_ok ? t0 + xt : 0) * cols;

  float acc[8][8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;

  for (int k0 = 0; k0 < cols; k0 += G::bk) {
    {
      float v[8];
      if (w_ok) {
        load8<F>(wrow, k0 + lc, v);
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) v[e] = 0.0f;
      }
      float4* dst = reinterpret_cast<float4*>(ws + lr * G::w_stride + lc);
      dst[0] = make_float4(v[0], v[1], v[2], v[3]);
      dst[1] = make_float4(v[4], v[5], v[6], v[7]);
    }
    if (tid < 128) {
      const float4 v = x_ok ? ldg_f4(xrow + k0 + xc) : make_float4(0.f, 0.f, 0.f, 0.f);
      *reinterpret_cast<float4*>(xs + xt * G::x_stride + xc) = v;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < G::bk / 16; ++kk) {
      float wv[8], xv[8];
#pragma unroll
      for (int i = 0; i < 8; ++i) wv[i] = ws[(rg * 8 + i) * G::w_stride + kk * 16 + l];
#pragma unroll
      for (int j = 0; j < 8; ++j) xv[j] = xs[(tg + 2 * j) * G::x_stride + kk * 16 + l];
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(wv[i], xv[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float v = half_warp_tree_sum16(acc[i][j]);
      const int r = r0 + rg * 8 + i, t = t0 + tg + 2 * j;
      if (l == 0 && r < rows && t < T) y[std::int64_t(t) * rows + r] = v;
    }
}

template <tensor_format F>
struct gemm_exact_launch {
  static status run(const weight_view& w, const float* x, int T, float* y, cudaStream_t s) {
    const dim3 grid(unsigned(ceil_div64(w.rows, gemm_tile::bm)), unsigned(ceil_div(T, gemm_tile::bn)));
    gemm_exact_kernel<F><<<grid, gemm_tile::threads, 0, s>>>(w.data, w.row_stride(), int(w.rows), int(w.cols), x, T, y);
    return launch_status();
  }
};

// ---------------------------------------------------------------- cuBLASLt helpers
template <tensor_format F>
// cppcheck-suppress unusedFunction ; launched with <<<...>>>, which cppcheck does not read as a call
__global__ void dequant_bf16_kernel(const std::byte* __restrict__ w, std::uint64_t row_stride, int rows, int cols,
                                    std::uint16_t* __restrict__ out) {
  const std::int64_t chunks = std::int64_t(rows) * (cols / 8);
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < chunks;
       i += std::int64_t(gridDim.x) * blockDim.x) {
    const std::int64_t r = i / (cols / 8);
    const int c0 = int(i % (cols / 8)) * 8;
    float v[8];
    load8<F>(w + std::uint64_t(r) * row_stride, c0, v);
    std::uint32_t packed[4];
#pragma unroll
    for (int e = 0; e < 4; ++e)
      packed[e] = std::uint32_t(to_bf16(v[2 * e]).bits) | (std::uint32_t(to_bf16(v[2 * e + 1]).bits) << 16);
    *reinterpret_cast<uint4*>(out + r * cols + c0) = make_uint4(packed[0], packed[1], packed[2], packed[3]);
  }
}

template <tensor_format F>
struct dequant_bf16_launch {
  static status run(const weight_view& w, std::int64_t r0, std::int64_t n_rows, std::uint16_t* out, cudaStream_t s) {
    const std::int64_t chunks = n_rows * (w.cols / 8);
    const unsigned blocks = unsigned(std::min<std::int64_t>(ceil_div64(chunks, 256), 65535));
    dequant_bf16_kernel<F><<<blocks, 256, 0, s>>>(w.row(r0), w.row_stride(), int(n_rows), int(w.cols), out);
    return launch_status();
  }
};

// f32 -> bf16 (Dst16 = 0) or f16 (1), round to nearest even (core/dtype.hpp's conversions).
template <int Dst16>
// cppcheck-suppress unusedFunction ; launched with <<<...>>>, which cppcheck does not read as a call
__global__ void convert_f32_kernel(const float* __restrict__ x, std::int64_t n, std::uint16_t* __restrict__ out) {
  for (std::int64_t i = std::int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += std::int64_t(gridDim.x) * blockDim.x)
    out[i] = Dst16 == 0 ? to_bf16(x[i]).bits : to_f16(x[i]).bits;
}

}  // namespace detail

// Canonical-order GEMM, any format. x: [T][cols], y: [T][rows], cols % 32 == 0, y must not alias x.
inline status launch_gemm_exact(const weight_view& w, const float* x, int T, float* y, cudaStream_t stream) noexcept {
  if (!detail::valid_matmul_shape(w, T) || x == nullptr || y == nullptr) return status::invalid_argument;
  return detail::dispatch_format<detail::gemm_exact_launch>(w.format, w, x, T, y, stream);
}

// ------------------------------------------------------------------------------ cuBLASLt
// One handle + a workspace, owned by the executor. Scratch for a call: converted activations
// ([T][cols] 16-bit) and, for quantized weights, a bf16 panel of weight rows (panel_bytes).
class cublaslt_gemm {
 public:
  static constexpr std::size_t default_workspace_bytes = cublaslt_workspace_bytes;  // backend/cuda/scratch.hpp
  static constexpr std::size_t panel_bytes = cublaslt_panel_bytes;

  cublaslt_gemm() = default;
  cublaslt_gemm(const cublaslt_gemm&) = delete;
  cublaslt_gemm& operator=(const cublaslt_gemm&) = delete;
  ~cublaslt_gemm() {
    if (handle_) cublasLtDestroy(handle_);
  }

  status init(void* workspace, std::size_t workspace_bytes) noexcept {
    if (!handle_ && cublasLtCreate(&handle_) != CUBLAS_STATUS_SUCCESS) return status::cuda_error;
    workspace_ = workspace;
    workspace_bytes_ = workspace_bytes;
    return status::ok;
  }

  // Scratch bytes run() needs for T rows of `cols` activations.
  static constexpr std::size_t scratch_bytes(int T, int cols) { return cublaslt_scratch_bytes(T, cols); }

  status run(const weight_view& w, const float* x, int T, float* y, std::byte* scratch, cudaStream_t stream) noexcept {
    if (!handle_) return status::invalid_argument;
    if (!detail::valid_matmul_shape(w, T) || x == nullptr || y == nullptr || scratch == nullptr)
      return status::invalid_argument;
    const int K = int(w.cols);
    const std::int64_t R = w.rows;
    if (w.format == tensor_format::f32) return matmul(CUDA_R_32F, w.data, x, K, R, R, T, y, stream);
    // Activations in the weight's 16-bit type (bf16 for quantized weights, whose panels are bf16).
    auto* xb = reinterpret_cast<std::uint16_t*>(scratch);
    const std::int64_t n = std::int64_t(T) * K;
    const unsigned cblocks = unsigned(std::min<std::int64_t>(detail::ceil_div64(n, 256), 65535));
    const bool half = w.format == tensor_format::f16;
    if (half) detail::convert_f32_kernel<1><<<cblocks, 256, 0, stream>>>(x, n, xb);
    else detail::convert_f32_kernel<0><<<cblocks, 256, 0, stream>>>(x, n, xb);
    if (detail::launch_status() != status::ok) return status::cuda_error;
    if (w.format == tensor_format::bf16 || half)
      return matmul(half ? CUDA_R_16F : CUDA_R_16BF, w.data, xb, K, R, R, T, y, stream);
    // Quantized: bf16 panels of whole 64-row groups, multiplied one after the other.
    auto* panel = reinterpret_cast<std::uint16_t*>(scratch + (std::size_t(n) * 2 + 255) / 256 * 256);
    std::int64_t panel_rows = std::int64_t(panel_bytes / (std::size_t(K) * 2)) / 64 * 64;
    if (panel_rows <= 0) return status::unsupported;
    for (std::int64_t r0 = 0; r0 < R; r0 += panel_rows) {
      const std::int64_t nr = std::min(panel_rows, R - r0);
      const status s = detail::dispatch_format<detail::dequant_bf16_launch>(w.format, w, r0, nr, panel, stream);
      if (s != status::ok) return s;
      const status m = matmul(CUDA_R_16BF, reinterpret_cast<const std::byte*>(panel), xb, K, nr, R, T, y + r0, stream);
      if (m != status::ok) return m;
    }
    return status::ok;
  }

 private:
  // Column-major view: W row-major [rows][K] is A (K x rows, ld K) used transposed; X row-major
  // [T][K] is B (K x T, ld K); Y row-major [T][ld_y] is D (rows x T, ld ld_y).
  status matmul(cudaDataType_t ab_type, const void* a, const void* b, int K, std::int64_t rows, std::int64_t ld_y, int T,
                float* d, cudaStream_t stream) noexcept {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t la = nullptr, lb = nullptr, ld = nullptr;
    cublasLtMatmulPreference_t pref = nullptr;
    status result = status::cuda_error;
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    const float alpha = 1.0f, beta = 0.0f;
    cublasLtMatmulHeuristicResult_t heur{};
    int found = 0;
    if (cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F) != CUBLAS_STATUS_SUCCESS) goto done;
    if (cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta) != CUBLAS_STATUS_SUCCESS) goto done;
    if (cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb) != CUBLAS_STATUS_SUCCESS) goto done;
    if (cublasLtMatrixLayoutCreate(&la, ab_type, std::uint64_t(K), std::uint64_t(rows), K) != CUBLAS_STATUS_SUCCESS) goto done;
    if (cublasLtMatrixLayoutCreate(&lb, ab_type, std::uint64_t(K), std::uint64_t(T), K) != CUBLAS_STATUS_SUCCESS) goto done;
    if (cublasLtMatrixLayoutCreate(&ld, CUDA_R_32F, std::uint64_t(rows), std::uint64_t(T), ld_y) != CUBLAS_STATUS_SUCCESS) goto done;
    if (cublasLtMatmulPreferenceCreate(&pref) != CUBLAS_STATUS_SUCCESS) goto done;
    if (cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes_,
                                             sizeof workspace_bytes_) != CUBLAS_STATUS_SUCCESS)
      goto done;
    if (cublasLtMatmulAlgoGetHeuristic(handle_, op, la, lb, ld, ld, pref, 1, &heur, &found) != CUBLAS_STATUS_SUCCESS ||
        found == 0) {
      result = status::unsupported;
      goto done;
    }
    if (cublasLtMatmul(handle_, op, &alpha, a, la, b, lb, &beta, d, ld, d, ld, &heur.algo, workspace_, workspace_bytes_,
                       stream) == CUBLAS_STATUS_SUCCESS)
      result = status::ok;
  done:
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (ld) cublasLtMatrixLayoutDestroy(ld);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (op) cublasLtMatmulDescDestroy(op);
    return result;
  }

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  std::size_t workspace_bytes_ = 0;
};

}  // namespace gemmaforge::cuda
