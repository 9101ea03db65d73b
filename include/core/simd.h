/* simd: one vector register of the build's ISA, and the one multiply-add that every
 * product chain in gad runs (gemm's micro-kernels, linear's register tiles, and any
 * code that must give the same bits as they do).
 *
 *   simd_v               SIMD_W floats: AVX-512F 16, AVX 8, SSE2 and aarch64 NEON 4;
 *                        elsewhere a plain struct of 4 floats (C99, any compiler);
 *                        SIMD_REGS of them fit the register file
 *   simd_zero()          all lanes 0
 *   simd_splat(x)        all lanes x
 *   simd_load(p)         p[0 : SIMD_W] (any alignment)
 *   simd_store(p, v)     p[0 : SIMD_W] = v
 *   simd_madd(a, b, c)   a*b + c lane by lane
 *   simd_madd1(a, b, c)  a*b + c on one float, bitwise the same as one lane of simd_madd
 *
 * The multiply-add is fused (one rounding, SIMD_FUSED 1) where the ISA has an FMA:
 * AVX-512F, FMA3 (AVX2 machines), aarch64, and in the plain fallback where the C
 * library says fmaf is fast (FP_FAST_FMAF). Elsewhere (SSE2, AVX without FMA) it is a
 * multiply then an add, each rounded. Either way it is written out, not left to the
 * compiler: the build turns contraction off (-ffp-contract=off), so a*b + c anywhere
 * else in gad rounds twice, as C says, and no tuning or optimisation level can fuse
 * some chains and not others. A kernel written with simd_madd gives every element the
 * same chain of operations whichever variant of it runs.
 *
 * SIMD_ISA names the variant for reports. Not for: integer lanes, reductions across
 * lanes, run-time dispatch (the variant is fixed when the file is compiled). */
#ifndef GAD_CORE_SIMD_H
#define GAD_CORE_SIMD_H

#include <math.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#define SIMD_W 16
#define SIMD_REGS 32
#define SIMD_FUSED 1
#define SIMD_ISA "avx512f"
typedef __m512 simd_v;
static inline simd_v simd_zero(void) { return _mm512_setzero_ps(); }
static inline simd_v simd_splat(float x) { return _mm512_set1_ps(x); }
static inline simd_v simd_load(const float *p) { return _mm512_loadu_ps(p); }
static inline void simd_store(float *p, simd_v v) { _mm512_storeu_ps(p, v); }
static inline simd_v simd_madd(simd_v a, simd_v b, simd_v c) { return _mm512_fmadd_ps(a, b, c); }

#elif defined(__AVX__)
#include <immintrin.h>
#define SIMD_W 8
#define SIMD_REGS 16
typedef __m256 simd_v;
static inline simd_v simd_zero(void) { return _mm256_setzero_ps(); }
static inline simd_v simd_splat(float x) { return _mm256_set1_ps(x); }
static inline simd_v simd_load(const float *p) { return _mm256_loadu_ps(p); }
static inline void simd_store(float *p, simd_v v) { _mm256_storeu_ps(p, v); }
#if defined(__FMA__)
#define SIMD_FUSED 1
#define SIMD_ISA "avx2+fma"
static inline simd_v simd_madd(simd_v a, simd_v b, simd_v c) { return _mm256_fmadd_ps(a, b, c); }
#else
#define SIMD_FUSED 0
#define SIMD_ISA "avx"
static inline simd_v simd_madd(simd_v a, simd_v b, simd_v c) { return _mm256_add_ps(_mm256_mul_ps(a, b), c); }
#endif

#elif defined(__SSE2__)
#include <emmintrin.h>
#define SIMD_W 4
#if defined(__x86_64__)
#define SIMD_REGS 16
#else
#define SIMD_REGS 8
#endif
#define SIMD_FUSED 0
#define SIMD_ISA "sse2"
typedef __m128 simd_v;
static inline simd_v simd_zero(void) { return _mm_setzero_ps(); }
static inline simd_v simd_splat(float x) { return _mm_set1_ps(x); }
static inline simd_v simd_load(const float *p) { return _mm_loadu_ps(p); }
static inline void simd_store(float *p, simd_v v) { _mm_storeu_ps(p, v); }
static inline simd_v simd_madd(simd_v a, simd_v b, simd_v c) { return _mm_add_ps(_mm_mul_ps(a, b), c); }

#elif defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#define SIMD_W 4
#define SIMD_REGS 32
#define SIMD_FUSED 1
#define SIMD_ISA "neon"
typedef float32x4_t simd_v;
static inline simd_v simd_zero(void) { return vdupq_n_f32(0.0f); }
static inline simd_v simd_splat(float x) { return vdupq_n_f32(x); }
static inline simd_v simd_load(const float *p) { return vld1q_f32(p); }
static inline void simd_store(float *p, simd_v v) { vst1q_f32(p, v); }
static inline simd_v simd_madd(simd_v a, simd_v b, simd_v c) { return vfmaq_f32(c, a, b); }

#else /* plain C99 */
#define SIMD_W 4
#define SIMD_REGS 12 /* not registers: sizes the tiles as for a small register file */
#if defined(FP_FAST_FMAF)
#define SIMD_FUSED 1
#define SIMD_ISA "c99+fmaf"
#else
#define SIMD_FUSED 0
#define SIMD_ISA "c99"
#endif
typedef struct { float f[SIMD_W]; } simd_v;
static inline simd_v simd_zero(void) {
    simd_v v;
    for (int l = 0; l < SIMD_W; l++) v.f[l] = 0.0f;
    return v;
}
static inline simd_v simd_splat(float x) {
    simd_v v;
    for (int l = 0; l < SIMD_W; l++) v.f[l] = x;
    return v;
}
static inline simd_v simd_load(const float *p) {
    simd_v v;
    for (int l = 0; l < SIMD_W; l++) v.f[l] = p[l];
    return v;
}
static inline void simd_store(float *p, simd_v v) {
    for (int l = 0; l < SIMD_W; l++) p[l] = v.f[l];
}
static inline float simd_madd1(float a, float b, float c);
static inline simd_v simd_madd(simd_v a, simd_v b, simd_v c) {
    for (int l = 0; l < SIMD_W; l++) c.f[l] = simd_madd1(a.f[l], b.f[l], c.f[l]);
    return c;
}
#endif

/* fmaf rounds once, like the fused vector instructions (the compiler inlines it as
 * one instruction where the ISA has it); the unfused form rounds the product, then
 * the sum, like the separate vector multiply and add. */
static inline float simd_madd1(float a, float b, float c) {
#if SIMD_FUSED
    return fmaf(a, b, c);
#else
    const float p = a * b;
    return p + c;
#endif
}

/* ---- register tiles ---------------------------------------------------------------
 * SIMD_TILE(n, PER_K): acc[r][c] = simd_madd(A(r, k), B(k, c*SIMD_W ...), acc[r][c]) for
 * k in [0, n) ascending, r < KR <= 8 rows, c < KV <= 4 vectors: one broadcast and KV
 * multiply-adds per row and step. The accumulators are named variables (acc0_0,
 * acc0_1, ...) written out by macro and guarded by constant conditions, so they are
 * registers by construction, at any optimisation level and tuning, when KR x KV of
 * them fit with 3 to spare (SIMD_TILE_ROWS(KV) rows do); B's vectors are then loaded
 * once per step or read by the multiply-adds from L1. Around it the user defines:
 *   enum { KR = ..., KV = ... };   in the function, before SIMD_TILE
 *   SIMD_TILE_INIT(r, c)  the accumulator's start, a simd_v (simd_zero(), or a load)
 *   SIMD_TILE_A(r)        A(r, k), a float (k is the loop's variable)
 *   SIMD_TILE_B           a pointer to B(k, 0)
 *   SIMD_TILE_PUT(r, c, v)  a statement that stores row r's vector c, v, at the end
 * PER_K: statements run first in each step (e.g. an offset the others read).
 * The function around the tile is declared SIMD_NO_INLINE (below).
 * SIMD_TILE_V(n, PER_K) is the same tile with A's rows given as vectors whose lanes
 * are all A(r, k) (a panel stored broadcast): SIMD_TILE_AV(r), a simd_v, instead of
 * SIMD_TILE_A(r). The same operations on the same values: the same bits. */
#define SIMD_TILE_ROWS(kv) ((SIMD_REGS - 3) / (kv) < 8 ? (SIMD_REGS - 3) / (kv) : 8)
/* The step loop is not unrolled: clang 14 unrolls it 8 times and, loading the next
 * steps' B vectors early, runs out of registers on 16-register ISAs (AVX2: one
 * accumulator of the 6x16 tile spilled, sgemm at half speed). */
#if defined(__clang__)
#define SIMD_NO_UNROLL _Pragma("clang loop unroll(disable)")
#elif defined(__GNUC__)
#define SIMD_NO_UNROLL _Pragma("GCC unroll 1")
#else
#define SIMD_NO_UNROLL
#endif
/* A function holding a register tile is kept out of line, so that its registers are
 * its own: inlined into a larger caller, its accumulators compete with the caller's
 * values, and one may be kept on the stack (docs/perf.md: gcc 12, SSE2). */
#if defined(__GNUC__) || defined(__clang__)
#define SIMD_NO_INLINE __attribute__((noinline))
#else
#define SIMD_NO_INLINE
#endif
#define SIMD_ROWS8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define SIMD_VECS4(X, r) X(r, 0) X(r, 1) X(r, 2) X(r, 3)
#define SIMD_TILE_DECL_(r, c) simd_v acc##r##_##c = SIMD_TILE_INIT(r, c);
#define SIMD_TILE_BLOAD_(r, c) const simd_v b##c##_ = c < KV ? simd_load(SIMD_TILE_B + c * SIMD_W) : simd_zero();
#define SIMD_TILE_MADD_(r, c) if (c < KV) acc##r##_##c = simd_madd(a_, b##c##_, acc##r##_##c);
#define SIMD_TILE_ROW_(r) if (r < KR) { const simd_v a_ = simd_splat(SIMD_TILE_A(r)); SIMD_VECS4(SIMD_TILE_MADD_, r) }
#define SIMD_TILE_ROWV_(r) if (r < KR) { const simd_v a_ = SIMD_TILE_AV(r); SIMD_VECS4(SIMD_TILE_MADD_, r) }
#define SIMD_TILE_PUT_(r, c) if (r < KR && c < KV) SIMD_TILE_PUT(r, c, acc##r##_##c);
#define SIMD_TILE_DECLS_(r) SIMD_VECS4(SIMD_TILE_DECL_, r)
#define SIMD_TILE_PUTS_(r) SIMD_VECS4(SIMD_TILE_PUT_, r)
#define SIMD_TILE_LOOP_(n, PER_K, ROW)                                                            \
    SIMD_ROWS8(SIMD_TILE_DECLS_)                                                                  \
    SIMD_NO_UNROLL                                                                                \
    for (int k = 0; k < (n); k++) {                                                               \
        PER_K                                                                                     \
        SIMD_VECS4(SIMD_TILE_BLOAD_, 0)                                                           \
        SIMD_ROWS8(ROW)                                                                           \
    }                                                                                             \
    SIMD_ROWS8(SIMD_TILE_PUTS_)
#define SIMD_TILE(n, PER_K) SIMD_TILE_LOOP_(n, PER_K, SIMD_TILE_ROW_)
#define SIMD_TILE_V(n, PER_K) SIMD_TILE_LOOP_(n, PER_K, SIMD_TILE_ROWV_)

#endif
