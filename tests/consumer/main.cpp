// Uses the installed headers: a dtype round trip and the umbrella header compile and run.
#include <gemmaforge/gemmaforge.hpp>

#include <cstdio>

namespace gf = gemmaforge;

int main() {
  const float x = gf::to_float(gf::to_bf16(1.5f));
  if (x != 1.5f) return 1;
  std::printf("consumer: gemmaforge %s works (bf16(1.5) = %g)\n", gf::version, double(x));
  return 0;
}
