#pragma once
// Which layers attend globally and which through a sliding window.
//   all_global_layers<N>              Gemma 1: every layer sees the whole context.
//   interleaved_layers<N, W, P>       layer i is global iff (i + 1) % P == 0, the others see a
//                                     window of W tokens: Gemma 2 is P = 2 (even layers local),
//                                     Gemma 3 is P = 6 (5 local : 1 global).
//   all_local_layers<N, W>            Mistral 7B v0.1: a 4096 window on every layer.
// A window W means a query at position p sees keys at (p - W, p]: itself and W - 1 before it.
#include <cstdint>

namespace gemmaforge {

enum class layer_kind : std::uint8_t { global, local };

namespace detail {
template <class Derived, int Layers>
struct layer_pattern_base {
  static_assert(Layers > 0, "a model needs at least one layer");
  static constexpr int layers = Layers;
  static constexpr int count(layer_kind k) {
    int n = 0;
    for (int i = 0; i < Layers; ++i) n += Derived::kind(i) == k;
    return n;
  }
  static constexpr int global_layers() { return count(layer_kind::global); }
  static constexpr int local_layers() { return count(layer_kind::local); }
  // Index of layer i among the layers of its own kind (KV pools are laid out per kind).
  static constexpr int index_in_kind(int i) {
    int n = 0;
    for (int j = 0; j < i; ++j) n += Derived::kind(j) == Derived::kind(i);
    return n;
  }
};
}  // namespace detail

template <int Layers>
struct all_global_layers : detail::layer_pattern_base<all_global_layers<Layers>, Layers> {
  static constexpr int window = 0;
  static constexpr layer_kind kind(int) { return layer_kind::global; }
};

template <int Layers, int Window, int Period>
struct interleaved_layers : detail::layer_pattern_base<interleaved_layers<Layers, Window, Period>, Layers> {
  static_assert(Window > 0, "interleaved_layers: window must be positive");
  static_assert(Period >= 2, "interleaved_layers: period must be >= 2 (one global layer per period)");
  static_assert(Layers >= Period, "interleaved_layers: fewer layers than one period");
  static constexpr int window = Window;
  static constexpr int period = Period;
  static constexpr layer_kind kind(int i) { return (i + 1) % Period == 0 ? layer_kind::global : layer_kind::local; }
};

template <int Layers, int Window>
struct all_local_layers : detail::layer_pattern_base<all_local_layers<Layers, Window>, Layers> {
  static_assert(Window > 0, "all_local_layers: window must be positive");
  static constexpr int window = Window;
  static constexpr layer_kind kind(int) { return layer_kind::local; }
};

}  // namespace gemmaforge
