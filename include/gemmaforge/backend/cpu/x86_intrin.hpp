#pragma once
// <immintrin.h> for the CPU kernels. GCC 12's AVX-512 headers build _mm512_undefined_*() from a
// self-initialised variable, which -Wuninitialized / -Wmaybe-uninitialized report (GCC bug
// 105593, fixed in GCC 13) wherever an intrinsic using it is inlined. The warnings are located
// in the header's own lines, so silencing them while the header is parsed is enough; include this
// header first, before anything else pulls in <immintrin.h>.
#include <gemmaforge/core/macros.hpp>

#if GF_X86
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#include <immintrin.h>
#endif
#endif
