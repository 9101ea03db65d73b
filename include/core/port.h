/* port: what gad needs of the C implementation beyond what C99 promises, checked
 * when anything is compiled (core/err.h includes this header).
 *  - Float expressions evaluated in float (FLT_EVAL_METHOD 0). C99 also allows wider
 *    evaluation: 2 on the x87 (every float expression in long double, rounded only
 *    where it is stored), 1 with gcc on s390x (in double). gad's results are the same
 *    bits whatever the thread count and the kernel route, and PyTorch's float32 results
 *    in the tests, only when every operation rounds to float. The Makefile adds the
 *    flags that give it where the compiler's default does not (32-bit x86: -msse2
 *    -mfpmath=sse; gcc on s390x: -fexcess-precision=fast).
 *  - IEEE 754 binary32 floats, 8-bit bytes, int of at least 32 bits.
 * Not assumed: the byte order (every file format is read and written byte by byte,
 * little-endian or big-endian as the format says). */
#ifndef GAD_CORE_PORT_H
#define GAD_CORE_PORT_H
#include <float.h>
#include <limits.h>

/* tcc's <float.h> does not define FLT_EVAL_METHOD; it computes floats in SSE
 * registers on x86-64, in float. */
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0
#error "gad needs float arithmetic in float precision (FLT_EVAL_METHOD 0); build with -msse2 -mfpmath=sse on 32-bit x86, -fexcess-precision=fast with gcc on s390x (the Makefile adds these itself)"
#endif
#if defined(__i386__) && !defined(FLT_EVAL_METHOD) && !defined(__SSE2_MATH__)
#error "gad needs float arithmetic in float precision: on 32-bit x86 build with SSE2 math (-msse2 -mfpmath=sse)"
#endif
#if FLT_RADIX != 2 || FLT_MANT_DIG != 24 || FLT_MAX_EXP != 128
#error "gad needs IEEE 754 binary32 floats"
#endif
#if CHAR_BIT != 8 || INT_MAX < 2147483647
#error "gad needs 8-bit bytes and an int of at least 32 bits"
#endif

#endif
