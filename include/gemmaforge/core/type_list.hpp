#pragma once
// A minimal compile-time type list: the registry of model descriptors and the lists of devices
// are type lists, and runtime choices (a name from the command line, metadata from a file) are
// dispatched over them once, with a plain loop instead of nested macros.
#include <cstddef>
#include <type_traits>
#include <utility>

namespace gemmaforge {

template <class... Ts>
struct type_list {
  static constexpr std::size_t size = sizeof...(Ts);
};

template <class T>
struct type_tag {
  using type = T;
};

// Call f(type_tag<T>{}) for every T in the list, in order.
template <class... Ts, class F>
constexpr void for_each_type(type_list<Ts...>, F&& f) {
  (f(type_tag<Ts>{}), ...);
}

// Call f(type_tag<T>{}) for the first T with pred(type_tag<T>{}) true. Returns whether one matched.
template <class... Ts, class Pred, class F>
constexpr bool dispatch_first(type_list<Ts...>, Pred&& pred, F&& f) {
  bool done = false;
  ((!done && pred(type_tag<Ts>{}) ? (f(type_tag<Ts>{}), done = true) : false), ...);
  return done;
}

// The types of A followed by those of B.
template <class A, class B>
struct concat;
template <class... As, class... Bs>
struct concat<type_list<As...>, type_list<Bs...>> {
  using type = type_list<As..., Bs...>;
};
template <class A, class B>
using concat_t = typename concat<A, B>::type;

template <class T, class List>
struct contains;
template <class T, class... Ts>
struct contains<T, type_list<Ts...>> : std::bool_constant<(std::is_same_v<T, Ts> || ...)> {};

}  // namespace gemmaforge
