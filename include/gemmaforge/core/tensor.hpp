#pragma once
// weight_view: a 2-D weight matrix W[rows][cols] in some storage format, rows contiguous.
// rows = output features, cols = input features (HF's [out, in]; GGUF's dims[1], dims[0]), so
// y = W x is y[r] = sum_c W[r][c] x[c]. The pointer is host memory for the CPU backend (a view
// into the memory-mapped file: weights are never copied) and device memory for CUDA.
#include <cstddef>
#include <cstdint>

#include <gemmaforge/core/format.hpp>

namespace gemmaforge {

struct weight_view {
  tensor_format format = tensor_format::f32;
  const std::byte* data = nullptr;
  std::int64_t rows = 0;
  std::int64_t cols = 0;

  std::uint64_t row_stride() const { return row_bytes(format, std::uint64_t(cols)); }
  const std::byte* row(std::int64_t r) const { return data + std::uint64_t(r) * row_stride(); }
  std::uint64_t bytes() const { return std::uint64_t(rows) * row_stride(); }
  bool empty() const { return data == nullptr; }
};

}  // namespace gemmaforge
