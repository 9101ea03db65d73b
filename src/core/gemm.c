/* gemm: single-precision matrix product (see core/gemm.h), GotoBLAS/BLIS style in
 * C99, with the micro-kernels written on core/simd.h's vector type (intrinsics of
 * the build's ISA, or plain C): no assembly.
 *
 * The panel order (panels_block):
 *
 *   for ic in M by MP:            A panel  [MP x KC] packed (L3)
 *     for kb, k-blocks of K:      the only loop over K: blocks fixed by K alone
 *       pack A[ic.., k..]         into MR-tall micro-panels, zero-padded
 *       for jc in N by NB:        B block  [KC x NB] packed, lives in L2
 *         pack B[k.., jc..]       into NR-wide micro-panels, zero-padded
 *         for ir, jr:             micro-kernel: an MR x NR tile of C in registers
 *                                 (A's micro-panel in L1), then added into C (alpha, beta)
 *
 * Products that read A or B in place, or whose A is packed already (gemm_pack), and
 * SSE2-only builds keep the order with the roles swapped (gemm_block): B panels of
 * KC x NC in L3, A blocks of MC x KC in L2, each B micro-panel against a block.
 *
 * The micro-kernel keeps its R x 2 vector accumulators in named variables (registers
 * by construction, at -O2 as at -O3, whatever the tuning) and runs one broadcast and
 * two multiply-adds per row and k (SSE2 alone reads the broadcast from a copy of the
 * A block stored broadcast: GEMM_SPLAT). Thin products: smaller kernels (R = MR/2 or 1
 * rows, C = NR/2 columns) skip most of
 * the padding; with at most four column panels A is read in place, not packed; and
 * the product may run transposed (C^T = op(B)^T op(A)^T) when a cost estimate says
 * that wastes less (e.g. N = 1).
 *
 * Determinism (the contract in gemm.h): every C element is the same sequence of
 * operations whatever its position, M, N and the thread count: one chain of
 * simd_madd per k-block, k ascending from 0 (every kernel variant and both orientations compute
 * exactly that), the k-blocks fixed by K alone, then c = c0 + alpha*t per k-block
 * with c0 = 0, beta*c or c (see update()). Threads split M and N only, never K.
 * Padding never enters a sum that is kept: edge tiles compute into a temporary
 * tile of which only the valid part is added into C.
 *
 * gemm_rows_st and gemm_arows_st run the same chains with B's (resp. A's) rows read in
 * place at given offsets of one array, for convolutions without an im2col copy;
 * gemm_pix_st with A's rows read through pointers and shared offsets (a direct
 * convolution: rows are output positions, vectors run over output channels).
 *
 * Scratch: each thread keeps its own packing buffers (pthread key), grown on demand
 * to at most MP*KC + KC*NC floats (and 4*MC*KC for GEMM_SPLAT's broadcast copy)
 * and kept for the thread's life: no allocation in the steady state.
 * Not for: double precision, complex, strided batches, K-parallel splits. */
#include "core/gemm.h"
#include "core/threads.h"
#include "core/err.h"
#include "core/simd.h"
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define AT(P, ld, i, j, t) ((t) ? (P)[(size_t)(j) * (ld) + (i)] : (P)[(size_t)(i) * (ld) + (j)])

void gemm_ref(int transA, int transB, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = 0.0f;
            for (int k = 0; k < K; k++) s += AT(A, lda, i, k, transA) * AT(B, ldb, k, j, transB);
            float *c = &C[(size_t)i * ldc + j];
            *c = alpha * s + (beta == 0.0f ? 0.0f : beta * *c);
        }
}

/* ---- tile sizes -------------------------------------------------------------
 * An MR x NR tile of C is MR x 2 vector accumulators (NR = two vectors of the ISA),
 * as many rows as the register file holds with B's two vectors and a broadcast
 * (core/simd.h): AVX-512 and aarch64 8 x 32 and 8 x 8 (16 of 32 registers), AVX and
 * x86-64's SSE2 6 x 16 and 6 x 8 (12 of 16). */
#ifndef GEMM_MR
#define GEMM_MR SIMD_TILE_ROWS(2)
#endif
#define GEMM_NR (2 * SIMD_W)
#if GEMM_NR > 32
#error "gemm_rows_st promises reads of at most 32 columns per row (gemm.h)"
#endif
#ifndef GEMM_KC
/* k-block. Longer blocks mean fewer passes over C, shorter ones keep the A block and
 * the B micro-panels in L2 together; 512 and 768 measured best (docs/perf.md), and 768
 * leaves more convolutions in one k-block (3x3 with up to 85 channels). It must stay
 * >= 512: Winograd needs its 512 channels in one k-block (wino_applies). The k-blocks
 * set the bits of every product with K > KC. */
#define GEMM_KC 768
#endif
/* SSE2 without AVX: the packed A block is also stored broadcast (each A(i,k) as a
 * vector of SIMD_W copies, splat_panels) for the full-tile kernel: SSE2 has no
 * broadcast load, so the plain kernel's 6 broadcasts per step are a load and a
 * shuffle each, and the shuffles share the multiply and add pipes. */
#if defined(__SSE2__) && !defined(__AVX__) && !defined(GEMM_NO_SPLAT)
#define GEMM_SPLAT 1
#else
#define GEMM_SPLAT 0
#endif
#ifndef GEMM_MC
#if GEMM_SPLAT
#define GEMM_MC 24    /* its broadcast copy (4 x MC x KC floats) stays in L2 */
#else
#define GEMM_MC 96    /* A block MC x KC stays in L2; multiple of MR */
#endif
#endif
#ifndef GEMM_NC
#define GEMM_NC 2048  /* B panel KC x NC (6 MiB) streams from L3/memory; multiple of NR */
#endif
/* The panel order (panels_block; not with GEMM_SPLAT): an A panel of MP
 * rows x one k-block is packed once and kept in L3, and B is packed NB columns at a
 * time, a block (KC x NB, 192 KiB at KC 768) that stays in L2 while every MR-row
 * micro-panel of the A panel, each in L1 in turn, runs against it. Each kernel then
 * streams only B's micro-panel from L2, and the C tiles of a micro-panel lie along
 * its rows. docs/perf.md has the measurements. */
#ifndef GEMM_MP
#define GEMM_MP 1024 /* at most, rounded up to a multiple of MR (panel_rows) */
#endif
#ifndef GEMM_NB
#define GEMM_NB 64   /* multiple of NR */
#endif
#define MR GEMM_MR
#define NR GEMM_NR
#define KC GEMM_KC
#define MC GEMM_MC
#define NC GEMM_NC
#define MP ((GEMM_MP + MR - 1) / MR * MR)
#define NB GEMM_NB

/* ---- per-thread packing buffers ---------------------------------------------- */
typedef struct Scratch {
    float *a, *b, *c;        /* [acap] A block or panel,
                                [bcap] B panel or block, [ccap] the A block
                                broadcast (GEMM_SPLAT; 64-byte aligned) */
    size_t acap, bcap, ccap; /* floats */
    struct Scratch *next;    /* registry: keeps every live buffer reachable */
} Scratch;

static float *grow(float *p, size_t *cap, size_t need) {
    if (need <= *cap) return p;
    xfree_aligned(p);
    *cap = need;
    return xmalloc_aligned(need * sizeof(float));
}

#ifdef GAD_NO_THREADS
static Scratch the_scratch;
static Scratch *scratch_get(void) { return &the_scratch; }
#else
#include <pthread.h>
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t scratch_mu = PTHREAD_MUTEX_INITIALIZER;
static Scratch *scratch_all; /* every thread's scratch, for leak checkers and exit */

static void scratch_free(void *p) {
    Scratch *s = p;
    pthread_mutex_lock(&scratch_mu);
    for (Scratch **q = &scratch_all; *q; q = &(*q)->next)
        if (*q == s) { *q = s->next; break; }
    pthread_mutex_unlock(&scratch_mu);
    xfree_aligned(s->a);
    xfree_aligned(s->b);
    xfree_aligned(s->c);
    free(s);
}

static void scratch_make_key(void) { GAD_ASSERT(pthread_key_create(&scratch_key, scratch_free) == 0); }

static Scratch *scratch_get(void) {
    pthread_once(&scratch_once, scratch_make_key);
    Scratch *s = pthread_getspecific(scratch_key);
    if (s) return s;
    s = xcalloc(1, sizeof *s);
    pthread_mutex_lock(&scratch_mu);
    s->next = scratch_all;
    scratch_all = s;
    pthread_mutex_unlock(&scratch_mu);
    GAD_ASSERT(pthread_setspecific(scratch_key, s) == 0);
    return s;
}
#endif

/* ---- packing ------------------------------------------------------------------
 * Ap: ceil(mc/MR) micro-panels, each [kc][MR] (row i of the panel at [k*MR + i]).
 * Bp: ceil(nc/NR) micro-panels, each [kc][NR]. Rows/columns past the edge are 0. */
static void pack_a(int transA, int mc, int kc, const float *A, int lda, float *Ap) {
    if (transA) { /* op(A)(i,k) = A[k*lda + i]: row by row of A, so reads stream */
        for (int k = 0; k < kc; k++) {
            const float *a = A + (size_t)k * lda;
            int i0 = 0;
            for (; i0 + MR <= mc; i0 += MR) {
                float *d = Ap + (size_t)i0 * kc + (size_t)k * MR;
                for (int i = 0; i < MR; i++) d[i] = a[i0 + i];
            }
            if (i0 < mc) {
                float *d = Ap + (size_t)i0 * kc + (size_t)k * MR;
                for (int i = 0; i < mc - i0; i++) d[i] = a[i0 + i];
                for (int i = mc - i0; i < MR; i++) d[i] = 0.0f;
            }
        }
        return;
    }
    for (int i0 = 0; i0 < mc; i0 += MR) { /* op(A)(i,k) = A[i*lda + k]: MR rows at once */
        int mr = mc - i0 < MR ? mc - i0 : MR;
        const float *a = A + (size_t)i0 * lda;
        if (mr == MR) /* k outer: each packed row of MR is written whole */
            for (int k = 0; k < kc; k++)
                for (int i = 0; i < MR; i++) Ap[k * MR + i] = a[(size_t)i * lda + k];
        else
            for (int k = 0; k < kc; k++) {
                for (int i = 0; i < mr; i++) Ap[k * MR + i] = a[(size_t)i * lda + k];
                for (int i = mr; i < MR; i++) Ap[k * MR + i] = 0.0f;
            }
        Ap += (size_t)kc * MR;
    }
}

static void pack_b(int transB, int kc, int nc, const float *B, int ldb, float *Bp) {
    if (!transB) { /* op(B)(k,j) = B[k*ldb + j]: row by row of B, so reads stream */
        for (int k = 0; k < kc; k++) {
            const float *b = B + (size_t)k * ldb;
            int j0 = 0;
            for (; j0 + NR <= nc; j0 += NR) { /* whole vectors (NR = 2 * SIMD_W) */
                float *d = Bp + (size_t)j0 * kc + (size_t)k * NR;
                simd_store(d, simd_load(b + j0));
                simd_store(d + SIMD_W, simd_load(b + j0 + SIMD_W));
            }
            if (j0 < nc) {
                float *d = Bp + (size_t)j0 * kc + (size_t)k * NR;
                for (int j = 0; j < nc - j0; j++) d[j] = b[j0 + j];
                for (int j = nc - j0; j < NR; j++) d[j] = 0.0f;
            }
        }
        return;
    }
    for (int j0 = 0; j0 < nc; j0 += NR) { /* op(B)(k,j) = B[j*ldb + k]: a transpose, */
        int nr = nc - j0 < NR ? nc - j0 : NR;  /* 16 k at a time (faster than 1 or all) */
        const float *b = B + (size_t)j0 * ldb;
        for (int k0 = 0; k0 < kc; k0 += 16) {
            int kk = kc - k0 < 16 ? kc - k0 : 16;
            for (int j = 0; j < nr; j++)
                for (int k = 0; k < kk; k++) Bp[(k0 + k) * NR + j] = b[(size_t)j * ldb + k0 + k];
        }
        for (int k = 0; k < kc; k++)
            for (int j = nr; j < NR; j++) Bp[k * NR + j] = 0.0f;
        Bp += (size_t)kc * NR;
    }
}

/* ---- micro-kernels ---------------------------------------------------------------
 * t[R][NR] (first KV*SIMD_W columns) = sum over k of A(i,k) * B(k,j), k ascending,
 * one accumulator per element: acc = simd_madd(A(i,k), B(k,j), acc) from 0 (core/simd.h:
 * an FMA where the ISA has one, else a multiply then an add; never left to the
 * compiler's contraction). Every variant runs that chain per element, so an element
 * gets the same bits from any of them; the small ones only skip padding on thin
 * products and edge tiles.
 * The accumulators are a register tile (SIMD_TILE, core/simd.h), MR x 2 vectors at
 * most: registers by construction at any optimisation level and tuning. The variants
 * differ only in where A(i,k) and row k of B come from (SIMD_TILE_A(r), SIMD_TILE_B,
 * defined around each instantiation):
 *   kernel_*       A(i,k) = a[i*ars + k*acs]: a packed panel [kc][MR] (ars = 1,
 *                  acs = MR) or, when the product has so few columns that packing A
 *                  would cost more than it saves, A itself (row-major: ars = lda,
 *                  acs = 1; transposed: ars = 1, acs = lda); B(k, j) = b[k*bs + j]:
 *                  packed [kc][NR] (bs = NR) or, for one row panel, B itself (ldb)
 *   kernel_rows_*  A packed, B(k, j) = b[off[k] + j]: an implicit im2col (gemm_rows_st)
 *   kernel_arows_* A(i, k) = ap[i][k]: rows read in place (gemm_arows_st), B packed
 *   kernel_pix_*   A(i, k) = ap[i][off[k]]: rows through pointers sharing offsets
 *                  (gemm_pix_st), B packed
 * Each writes t[i*NR + j] for its rows and columns. */
#define SIMD_TILE_INIT(r, c) simd_zero()
#define SIMD_TILE_PUT(r, c, v) simd_store(t + (r) * NR + (c) * SIMD_W, v)

#define KERNEL(name, R, CV)                                                                       \
    static SIMD_NO_INLINE void name(int kc, const float *restrict a, size_t ars, size_t acs,      \
                                    const float *restrict b, size_t bs, float *restrict t) {      \
        enum { KR = R, KV = CV };                                                                 \
        SIMD_TILE(kc, ;)                                                                          \
    }
#define SIMD_TILE_A(r) a[(size_t)k * acs + (size_t)(r) * ars]
#define SIMD_TILE_B (b + (size_t)k * bs)
#define MR_HALF ((MR + 1) / 2)
KERNEL(kernel_full, MR, 2)
KERNEL(kernel_full_halfn, MR, 1)
KERNEL(kernel_half, MR_HALF, 2)
KERNEL(kernel_half_halfn, MR_HALF, 1)
KERNEL(kernel_1, 1, 2)
KERNEL(kernel_1_halfn, 1, 1)
#undef SIMD_TILE_A
#undef SIMD_TILE_B

#if GEMM_SPLAT
/* kernel_full on a broadcast panel [kc][MR][SIMD_W] (splat_panels): the same chain. */
#define SIMD_TILE_AV(r) simd_load(a + ((size_t)k * MR + (r)) * SIMD_W)
#define SIMD_TILE_B (b + (size_t)k * bs)
static SIMD_NO_INLINE void kernel_splat(int kc, const float *restrict a, const float *restrict b, size_t bs,
                                        float *restrict t) {
    enum { KR = MR, KV = 2 };
    SIMD_TILE_V(kc, ;)
}
#undef SIMD_TILE_AV
#undef SIMD_TILE_B
#endif

#define KERNEL_ROWS(name, R)                                                                      \
    static SIMD_NO_INLINE void name(int kc, const float *restrict a, const float *restrict b,     \
                                    const ptrdiff_t *restrict off, float *restrict t) {           \
        enum { KR = R, KV = 2 };                                                                  \
        SIMD_TILE(kc, ;)                                                                          \
    }
#define SIMD_TILE_A(r) a[(size_t)k * MR + (r)]
#define SIMD_TILE_B (b + off[k])
KERNEL_ROWS(kernel_rows_full, MR)
KERNEL_ROWS(kernel_rows_half, MR_HALF)
#undef SIMD_TILE_A
#undef SIMD_TILE_B

#define KERNEL_AROWS(name, R)                                                                     \
    static SIMD_NO_INLINE void name(int kc, const float *const *restrict ap,                      \
                                    const float *restrict b, float *restrict t) {                 \
        enum { KR = R, KV = 2 };                                                                  \
        SIMD_TILE(kc, ;)                                                                          \
    }
#define SIMD_TILE_A(r) ap[r][k]
#define SIMD_TILE_B (b + (size_t)k * NR)
KERNEL_AROWS(kernel_arows_full, MR)
#undef SIMD_TILE_A

#define KERNEL_PIX(name, R)                                                                       \
    static SIMD_NO_INLINE void name(int kc, const float *const *restrict ap,                      \
                                    const ptrdiff_t *restrict off, const float *restrict b,       \
                                    float *restrict t) {                                          \
        enum { KR = R, KV = 2 };                                                                  \
        SIMD_TILE(kc, const ptrdiff_t o = off[k];)                                                \
    }
#define SIMD_TILE_A(r) ap[r][o]
KERNEL_PIX(kernel_pix, MR)
KERNEL_PIX(kernel_pix_half, MR_HALF)
KERNEL_PIX(kernel_pix_1, 1)
#undef SIMD_TILE_A
#undef SIMD_TILE_B

typedef void (*KernelFn)(int kc, const float *restrict a, size_t ars, size_t acs, const float *restrict b,
                         size_t bs, float *restrict t);

/* The smallest kernel that covers an mr x nr tile; *rows gets the rows it reads. */
static KernelFn kernel_for(int mr, int nr, int *rows) {
    int halfn = nr <= NR / 2;
    if (mr == 1) { *rows = 1; return halfn ? kernel_1_halfn : kernel_1; }
    if (mr <= MR_HALF) { *rows = MR_HALF; return halfn ? kernel_half_halfn : kernel_half; }
    *rows = MR;
    return halfn ? kernel_full_halfn : kernel_full;
}

/* The broadcast copy of np packed panels [kc][MR] (ap) into sp: [kc][MR][SIMD_W] each,
 * or nothing (0) where it does not pay: without GEMM_SPLAT, or with fewer than 4
 * column panels to reuse it. */
static int splat_panels(int np, int kc, int ncols, const float *ap, Scratch *s) {
#if GEMM_SPLAT
    if (ncols <= 3 * NR) return 0;
    const size_t n = (size_t)np * kc * MR;
    s->c = grow(s->c, &s->ccap, n * SIMD_W);
    for (size_t i = 0; i < n; i++) simd_store(s->c + i * SIMD_W, simd_splat(ap[i]));
    return 1;
#else
    (void)np, (void)kc, (void)ncols, (void)ap, (void)s;
    return 0;
#endif
}

/* A full tile from panel p of a block packed by pack_a (ap) or of its broadcast copy. */
static void kernel_full_of(int splat, int kc, const float *ap, const Scratch *s, int p, const float *b, size_t bs,
                           float *t) {
#if GEMM_SPLAT
    if (splat) { kernel_splat(kc, s->c + (size_t)p * kc * MR * SIMD_W, b, bs, t); return; }
#else
    (void)splat, (void)s;
#endif
    kernel_full(kc, ap + (size_t)p * kc * MR, 1, MR, b, bs, t);
}

/* One row of update()'s tile with cs == 1: c[j] = 0 + alpha*r[j] or c[j] + alpha*r[j]. */
static inline void update_row(float *restrict c, const float *restrict r, int n, int zero, float alpha) {
    if (zero && alpha == 1.0f)
        for (int j = 0; j < n; j++) c[j] = 0.0f + r[j];
    else if (zero)
        for (int j = 0; j < n; j++) c[j] = 0.0f + alpha * r[j];
    else if (alpha == 1.0f)
        for (int j = 0; j < n; j++) c[j] += r[j];
    else
        for (int j = 0; j < n; j++) c[j] += alpha * r[j];
}

/* C tile [mr][nr] at C, element (i,j) at C[i*rs + j*cs]: c = c0 + alpha*t[i][j]
 * where c0 is, on the first k-block, 0 when beta == 0 (C not read: NaN in it does
 * not matter) or beta*c (a separate pass), and c on later k-blocks: alpha*t rounded,
 * then the sum rounded (the build does not contract), the same for full and edge
 * tiles and both orientations; alpha == 1 skips the multiply (1*t == t exactly). */
static void update(int mr, int nr, const float *restrict t, float alpha, float beta, int first,
                   float *restrict C, size_t rs, size_t cs) {
    const int zero = first && beta == 0.0f;
    if (first && beta != 0.0f && beta != 1.0f)
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++) C[i * rs + j * cs] *= beta;
    if (cs == 1) { /* the common case, kept apart so it vectorises; a whole row's */
        if (nr == NR) /* length a constant, so with no loop around the vectors */
            for (int i = 0; i < mr; i++) update_row(C + i * rs, t + i * NR, NR, zero, alpha);
        else
            for (int i = 0; i < mr; i++) update_row(C + i * rs, t + i * NR, nr, zero, alpha);
    } else {
        for (int j = 0; j < nr; j++)
            for (int i = 0; i < mr; i++) {
                float *c = C + i * rs + j * cs, c0 = zero ? 0.0f : *c;
                *c = alpha == 1.0f ? c0 + t[i * NR + j] : c0 + alpha * t[i * NR + j];
            }
    }
}

/* Ask for the C tile's cache lines before the kernel runs, so that they have
 * arrived when update() needs them (a C row of a large product is far from the
 * last one touched: without this each tile waits for its lines). A hint only:
 * nothing where the compiler has no prefetch builtin. */
static void prefetch_tile(const float *C, int mr, int nr, size_t rs, size_t cs) {
#if defined(__GNUC__) || defined(__clang__)
    /* every line of a row (column): 16 floats apart, and the last element's, which
     * is on a line of its own when C is not 64-byte aligned */
    if (cs == 1)
        for (int i = 0; i < mr; i++) {
            for (int j = 0; j < nr; j += 16) __builtin_prefetch(C + i * rs + j, 1, 3);
            __builtin_prefetch(C + i * rs + nr - 1, 1, 3);
        }
    else
        for (int j = 0; j < nr; j++) {
            for (int i = 0; i < mr; i += 16) __builtin_prefetch(C + j * cs + i, 1, 3);
            __builtin_prefetch(C + j * cs + mr - 1, 1, 3);
        }
#else
    (void)C, (void)mr, (void)nr, (void)rs, (void)cs;
#endif
}

/* One product in kernel orientation: C'[M,N] = alpha * op(A)[M,K] op(B)[K,N] + beta C'
 * with C' element (i,j) at C[i*rs + j*cs]. gemm() maps the caller's problem or its
 * transpose (C^T = op(B)^T op(A)^T, same sums) onto this. direct: full row panels
 * of A are read in place instead of packed (few column panels reuse them). */
typedef struct {
    int tA, tB, M, N, K, lda, ldb;
    float alpha, beta;
    const float *A, *B;
    float *C;
    size_t rs, cs;
    int direct;
    const float *Ap; /* or NULL: A already packed (gemm_pack), Mp rows padded, job row 0 at */
    size_t Mp;       /* its row am0 */
    int am0;
} GemmJob;

/* k-blocks: K split into ceil(K/KC) nearly equal parts; depends on K alone. */
static int kblocks(int K) { return (K + KC - 1) / KC; }

int gemm_kblocks(int K) { return K > 0 ? kblocks(K) : 0; }

void gemm_kblock(int K, int kb, int *k0, int *k1) {
    long lo, hi;
    par_range(K, kb, kblocks(K), &lo, &hi);
    *k0 = (int)lo;
    *k1 = (int)hi;
}

/* ---- the panel order ------------------------------------------------------------ */
/* An A panel: rows [ic, ic + mc) of k-block kb = [pc, pc + kc). */
typedef struct {
    int ic, mc, kb, pc, kc;
    float *ap; /* its packed micro-panels [ceil(mc/MR)][kc][MR] (pack_a) */
} Panel;

/* One B block against A panel p: C'[ic:ic+mc, jc:jc+nc] += the product over p's
 * k-block, with B's block packed here into bp ([ceil(nc/NR)][kc][NR]). */
static void panel_cols(const GemmJob *g, const Panel *p, int jc, int nc, float *bp) {
    const int kc = p->kc;
    const float *B = g->tB ? g->B + (size_t)jc * g->ldb + p->pc : g->B + (size_t)p->pc * g->ldb + jc;
    float t[MR * NR];
    pack_b(g->tB, kc, nc, B, g->ldb, bp);
    for (int ir = 0; ir < p->mc; ir += MR) {
        const int mr = p->mc - ir < MR ? p->mc - ir : MR;
        for (int jr = 0; jr < nc; jr += NR) {
            int nr = nc - jr < NR ? nc - jr : NR, rows;
            KernelFn kern = kernel_for(mr, nr, &rows);
            float *ct = g->C + (size_t)(p->ic + ir) * g->rs + (size_t)(jc + jr) * g->cs;
            prefetch_tile(ct, mr, nr, g->rs, g->cs);
            kern(kc, p->ap + (size_t)ir * kc, 1, MR, bp + (size_t)jr * kc, NR, t);
            update(mr, nr, t, g->alpha, g->beta, p->kb == 0, ct, g->rs, g->cs);
        }
    }
}

/* Rows per A panel for m rows: ceil(m / MP) panels of nearly equal size, each a
 * multiple of MR but the last (a panel of a few rows would cost a packing of B). */
static int panel_rows(int m) {
    const int np = (m + MP - 1) / MP, r = (m + np - 1) / np;
    return (r + MR - 1) / MR * MR;
}

/* C'[m0:m1, n0:n1] of a packed job (not direct, not pre-packed) in the panel order,
 * single-threaded: for each A panel and k-block, every B block. */
static void panels_block(const GemmJob *g, int m0, int m1, int n0, int n1) {
    Scratch *s = scratch_get();
    const int nkb = kblocks(g->K), kmax = (g->K + nkb - 1) / nkb;
    const int pr = panel_rows(m1 - m0), nspan = n1 - n0 < NB ? n1 - n0 : NB;
    const size_t ars = g->tA ? 1 : (size_t)g->lda, acs = g->tA ? (size_t)g->lda : 1;
    s->a = grow(s->a, &s->acap, (size_t)pr * kmax);
    s->b = grow(s->b, &s->bcap, (size_t)(nspan + NR - 1) / NR * NR * kmax);
    for (int ic = m0; ic < m1; ic += pr) {
        const int mc = m1 - ic < pr ? m1 - ic : pr;
        for (int kb = 0; kb < nkb; kb++) {
            int pc, pe;
            gemm_kblock(g->K, kb, &pc, &pe);
            const Panel p = {ic, mc, kb, pc, pe - pc, s->a};
            pack_a(g->tA, mc, p.kc, g->A + (size_t)ic * ars + (size_t)pc * acs, g->lda, s->a);
            for (int jc = n0; jc < n1; jc += NB) panel_cols(g, &p, jc, n1 - jc < NB ? n1 - jc : NB, s->b);
        }
    }
}

/* C'[m0:m1, n0:n1] of the job, single-threaded: in the panel order, or, for products
 * that read A or B in place or have A packed already, and with GEMM_SPLAT, in this
 * order: a B panel (KC x NC) in L3, an A block (MC x KC) in L2, each B micro-panel
 * against all of the block's row panels. */
static void gemm_block(const GemmJob *g, int m0, int m1, int n0, int n1) {
    if (m1 <= m0 || n1 <= n0) return;
    /* one row panel with B row-major: B is read in place below (bdirect) */
    if (!GEMM_SPLAT && !g->direct && !g->Ap && (g->tB || m1 - m0 > MR)) {
        panels_block(g, m0, m1, n0, n1);
        return;
    }
    Scratch *s = scratch_get();
    int nkb = kblocks(g->K);
    int kmax = (g->K + nkb - 1) / nkb;
    int mspan = m1 - m0 < MC ? m1 - m0 : MC;
    int nspan = n1 - n0 < NC ? n1 - n0 : NC;
    /* one row panel uses each element of B once: B row-major is then read in place
     * (packing it would only add a pass over it; a skinny product streams B) */
    const int bdirect = !g->tB && m1 - m0 <= MR;
    if (!g->Ap) s->a = grow(s->a, &s->acap, (size_t)(mspan + MR - 1) / MR * MR * kmax);
    s->b = grow(s->b, &s->bcap, (size_t)(bdirect ? NR : (nspan + NR - 1) / NR * NR) * kmax);
    /* A(i,k) at A[i*ars + k*acs] for the direct kernels */
    const size_t ars = g->tA ? 1 : (size_t)g->lda, acs = g->tA ? (size_t)g->lda : 1;
    float t[MR * NR];
    for (int jc = n0; jc < n1; jc += NC) {
        int nc = n1 - jc < NC ? n1 - jc : NC;
        for (int kb = 0; kb < nkb; kb++) {
            long plo, phi;
            par_range(g->K, kb, nkb, &plo, &phi);
            int pc = (int)plo, kc = (int)(phi - plo);
            const float *B = g->tB ? g->B + (size_t)jc * g->ldb + pc : g->B + (size_t)pc * g->ldb + jc;
            if (!bdirect) pack_b(g->tB, kc, nc, B, g->ldb, s->b);
            for (int ic = m0; ic < m1; ic += MC) {
                int mc = m1 - ic < MC ? m1 - ic : MC;
                /* A's block in place (direct, or to pack), or already packed (no A then) */
                const float *A = g->Ap ? NULL : g->A + (size_t)ic * ars + (size_t)pc * acs;
                const float *ap = g->Ap ? g->Ap + g->Mp * pc + (size_t)(g->am0 + ic) * kc : s->a;
                if (!g->direct && !g->Ap) pack_a(g->tA, mc, kc, A, g->lda, s->a);
                const int splat = !g->direct && splat_panels((mc + MR - 1) / MR, kc, nc, ap, s);
                for (int jr = 0; jr < nc; jr += NR) {
                    int nr = nc - jr < NR ? nc - jr : NR;
                    const float *bp = s->b + (size_t)jr * kc;
                    size_t bs = NR;
                    if (bdirect && nr == NR) { /* in place */
                        bp = B + jr;
                        bs = (size_t)g->ldb;
                    } else if (bdirect) { /* the edge panel: packed alone (the kernel reads NR columns) */
                        pack_b(0, kc, nr, B + jr, g->ldb, s->b);
                        bp = s->b;
                    }
                    for (int ir = 0; ir < mc; ir += MR) {
                        int mr = mc - ir < MR ? mc - ir : MR, rows;
                        KernelFn kern = kernel_for(mr, nr, &rows);
                        float *ct = g->C + (size_t)(ic + ir) * g->rs + (size_t)(jc + jr) * g->cs;
                        prefetch_tile(ct, mr, nr, g->rs, g->cs);
                        if (g->direct && rows == mr) { /* read A in place */
                            kern(kc, A + ir * ars, ars, acs, bp, bs, t);
                        } else if (g->direct) {        /* a partial panel: pack it alone */
                            pack_a(g->tA, mr, kc, A + ir * ars, g->lda, s->a);
                            kern(kc, s->a, 1, MR, bp, bs, t);
                        } else if (kern == kernel_full) {
                            kernel_full_of(splat, kc, ap, s, ir / MR, bp, bs, t);
                        } else {
                            kern(kc, ap + (size_t)ir * kc, 1, MR, bp, bs, t);
                        }
                        update(mr, nr, t, g->alpha, g->beta, kb == 0, ct, g->rs, g->cs);
                    }
                }
            }
        }
    }
}

/* C = beta*C when there is nothing to add (K == 0 or alpha == 0). */
static void scale_c(int M, int N, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f) memset(c, 0, sizeof(float) * (size_t)N);
        else if (beta != 1.0f)
            for (int j = 0; j < N; j++) c[j] *= beta;
    }
}

void gemm_arows_st(int M, int N, int K, const float *A, const ptrdiff_t *off, const float *B, int ldb, float beta,
                   float *C, size_t rs, size_t cs) {
    GAD_ASSERT(beta == 0.0f || beta == 1.0f);
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (beta == 0.0f)
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) C[i * rs + j * cs] = 0.0f;
        return;
    }
    Scratch *s = scratch_get();
    const int nkb = kblocks(K), kmax = (K + nkb - 1) / nkb;
    const int nspan = N < NC ? N : NC;
    s->b = grow(s->b, &s->bcap, (size_t)(nspan + NR - 1) / NR * NR * kmax);
    float t[MR * NR];
    const float *ar[MR];
    for (int jc = 0; jc < N; jc += NC) {
        const int nc = N - jc < NC ? N - jc : NC;
        for (int kb = 0; kb < nkb; kb++) {
            int pc, pe;
            gemm_kblock(K, kb, &pc, &pe);
            const int kc = pe - pc;
            pack_b(1, kc, nc, B + (size_t)jc * ldb + pc, ldb, s->b);
            for (int ir = 0; ir < M; ir += MR) { /* A's rows stay in L1 across the panels */
                const int mr = M - ir < MR ? M - ir : MR;
                for (int i = 0; i < MR; i++) ar[i] = A + off[ir + (i < mr ? i : mr - 1)] + pc; /* edge: repeats */
                for (int jr = 0; jr < nc; jr += NR) {
                    const int nr = nc - jr < NR ? nc - jr : NR;
                    float *ct = C + (size_t)ir * rs + (size_t)(jc + jr) * cs;
                    kernel_arows_full(kc, ar, s->b + (size_t)jr * kc, t);
                    update(mr, nr, t, 1.0f, beta, kb == 0, ct, rs, cs);
                }
            }
        }
    }
}

void gemm_rows_st(int M, int N, int K, const float *Ap, int Mall, int m0, const float *B, const ptrdiff_t *off,
                  float beta, float *C, int ldc) {
    GAD_ASSERT(beta == 0.0f || beta == 1.0f);
    GAD_ASSERT(m0 % MR == 0 && m0 + M <= Mall);
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { scale_c(M, N, beta, C, ldc); return; }
    const size_t Mp = (size_t)(Mall + MR - 1) / MR * MR;
    const int nkb = kblocks(K);
    float t[MR * NR];
    for (int kb = 0; kb < nkb; kb++) {
        int pc, pe;
        gemm_kblock(K, kb, &pc, &pe);
        const int kc = pe - pc;
        for (int ic = 0; ic < M; ic += MC) {
            const int mc = M - ic < MC ? M - ic : MC;
            const float *ap = Ap + Mp * pc + (size_t)(m0 + ic) * kc;
            for (int jr = 0; jr < N; jr += NR) {
                const int nr = N - jr < NR ? N - jr : NR;
                for (int ir = 0; ir < mc; ir += MR) {
                    const int mr = mc - ir < MR ? mc - ir : MR;
                    float *ct = C + (size_t)(ic + ir) * ldc + jr;
                    prefetch_tile(ct, mr, nr, (size_t)ldc, 1);
                    if (mr <= MR_HALF) kernel_rows_half(kc, ap + (size_t)ir * kc, B + jr, off + pc, t);
                    else kernel_rows_full(kc, ap + (size_t)ir * kc, B + jr, off + pc, t);
                    update(mr, nr, t, 1.0f, beta, kb == 0, ct, (size_t)ldc, 1);
                }
            }
        }
    }
}


/* Reading A in place (row-major or transposed) beats packing it when each row
 * panel serves at most this many column panels; packing stays the choice for wide
 * products: no cache-set conflicts from power-of-two lda, no TLB misses. */
#ifndef DIRECT_MAX_PANELS
#define DIRECT_MAX_PANELS 4
#endif
static void set_direct(GemmJob *g) { g->direct = (g->N + NR - 1) / NR <= DIRECT_MAX_PANELS; }

/* A rough cost, in kernel multiply-adds, of running a product in one orientation:
 * the kernel's work including padding; packing (an element ~ PACK_COST, twice that
 * when packing transposes); and the C updates, once per k-block (UPDATE_COST per
 * element, 16 times that when C is written transposed, element by element). */
#define PACK_COST 16.0
#define UPDATE_COST 2.0
static double job_cost(const GemmJob *g) {
    double mp = (double)((g->M + MR - 1) / MR * MR), np = (double)((g->N + NR - 1) / NR * NR);
    if (g->N <= NR / 2) np = NR / 2; /* the half-width kernels */
    double work = mp * np * g->K;
    double b = !g->tB && g->M <= MR ? 0.0 : (double)g->N * g->K * PACK_COST * (g->tB ? 2.0 : 1.0); /* in place */
    double a = g->direct ? 0.0 : (double)g->M * g->K * PACK_COST * (g->tA ? 1.0 : 2.0) * ((g->N + NC - 1) / NC);
    double c = (double)g->M * g->N * kblocks(g->K) * UPDATE_COST * (g->cs == 1 ? 1.0 : 16.0);
    return work + a + b + c;
}

/* The job for the caller's problem in the cheaper orientation (results are the same
 * bits either way: each element is the same chain of multiply-adds). */
static GemmJob make_job(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc) {
    GemmJob g = {transA, transB, M, N, K, lda, ldb, alpha, beta, A, B, C, (size_t)ldc, 1, 0, NULL, 0, 0};
    /* A' = op(B)^T: A'(i,k) = op(B)(k,i), i.e. B read with the other transpose */
    GemmJob t = {!transB, !transA, N, M, K, ldb, lda, alpha, beta, B, A, C, 1, (size_t)ldc, 0, NULL, 0, 0};
    set_direct(&g);
    set_direct(&t);
    return job_cost(&t) < job_cost(&g) ? t : g;
}

void gemm_st(int transA, int transB, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) { scale_c(M, N, beta, C, ldc); return; }
    GemmJob g = make_job(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    gemm_block(&g, 0, g.M, 0, g.N);
}

int gemm_mr(void) { return MR; }

size_t gemm_packed_floats(int M, int K) {
    return M > 0 && K > 0 ? size_mul((size_t)(M + MR - 1) / MR * MR, (size_t)K) : 0;
}

/* k-block kb ([pc, pe)) of the packing starts at Ap + Mp*pc; in it, panel p (rows
 * p*MR...) at + p*MR*kc, laid out as pack_a lays out a block: [kc][MR]. */
void gemm_pack(int transA, int M, int K, const float *A, int lda, float *Ap, int p0, int p1) {
    const size_t Mp = (size_t)(M + MR - 1) / MR * MR;
    const int nkb = K > 0 ? kblocks(K) : 0;
    GAD_ASSERT(p0 >= 0 && p1 <= (M + MR - 1) / MR);
    for (int kb = 0; kb < nkb; kb++) {
        int pc, pe;
        gemm_kblock(K, kb, &pc, &pe);
        const int kc = pe - pc;
        for (int p = p0; p < p1; p++) {
            const int i0 = p * MR, mr = M - i0 < MR ? M - i0 : MR;
            const float *a = transA ? A + (size_t)pc * lda + i0 : A + (size_t)i0 * lda + pc;
            pack_a(transA, mr, kc, a, lda, Ap + Mp * pc + (size_t)i0 * kc);
        }
    }
}

void gemm_packed_st(int M, int N, int K, const float *Ap, int Mall, int m0, const float *B, int ldb, float beta,
                    float *C, int ldc) {
    GAD_ASSERT(beta == 0.0f || beta == 1.0f);
    GAD_ASSERT(m0 % MR == 0 && m0 + M <= Mall);
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { scale_c(M, N, beta, C, ldc); return; }
    GemmJob g = {0, 0, M, N, K, 0, ldb, 1.0f, beta, NULL, B, C, (size_t)ldc, 1, 0,
                 Ap, (size_t)(Mall + MR - 1) / MR * MR, m0};
    gemm_block(&g, 0, M, 0, N);
}

int gemm_nr(void) { return NR; }

size_t gemm_packed_b_floats(int K, int N) {
    return N > 0 && K > 0 ? size_mul((size_t)(N + NR - 1) / NR * NR, (size_t)K) : 0;
}

/* k-block kb ([pc, pe)) of the packing starts at Bp + Np*pc; in it, panel p (columns
 * p*NR...) at + p*NR*kc, laid out as pack_b lays out a panel: [kc][NR]. */
void gemm_pack_b(int K, int N, const float *B, const ptrdiff_t *roff, size_t cs, float *Bp, int p0, int p1) {
    const size_t Np = (size_t)(N + NR - 1) / NR * NR;
    const int nkb = K > 0 ? kblocks(K) : 0;
    GAD_ASSERT(p0 >= 0 && p1 <= (N + NR - 1) / NR);
    for (int kb = 0; kb < nkb; kb++) {
        int pc, pe;
        gemm_kblock(K, kb, &pc, &pe);
        const int kc = pe - pc;
        for (int p = p0; p < p1; p++) {
            const int j0 = p * NR, nr = N - j0 < NR ? N - j0 : NR;
            float *d = Bp + Np * pc + (size_t)j0 * kc;
            if (!roff) { /* B^T row-major: pack_b's transpose, 16 k (a cache line) at a time */
                pack_b(1, kc, nr, B + (size_t)j0 * cs + pc, (int)cs, d);
                continue;
            }
            for (int k = pc; k < pe; k++, d += NR) {
                const float *b = B + roff[k] + (size_t)j0 * cs;
                if (cs == 1) memcpy(d, b, sizeof(float) * (size_t)nr);
                else
                    for (int j = 0; j < nr; j++) d[j] = b[(size_t)j * cs];
                for (int j = nr; j < NR; j++) d[j] = 0.0f;
            }
        }
    }
}

void gemm_pix_st(int M, int N, int K, const float *const *a, const ptrdiff_t *off, const float *Bp, int Nall, int n0,
                 float beta, float *C, int ldc) {
    GAD_ASSERT(beta == 0.0f || beta == 1.0f);
    GAD_ASSERT(n0 % NR == 0 && n0 + N <= Nall);
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { scale_c(M, N, beta, C, ldc); return; }
    const size_t Np = (size_t)(Nall + NR - 1) / NR * NR;
    const int nkb = kblocks(K);
    float t[MR * NR];
    const float *ar[MR];
    for (int kb = 0; kb < nkb; kb++) {
        int pc, pe;
        gemm_kblock(K, kb, &pc, &pe);
        const int kc = pe - pc;
        for (int jr = 0; jr < N; jr += NR) { /* the panel (kc x NR) stays in L2 across the rows */
            const int nr = N - jr < NR ? N - jr : NR;
            const float *bp = Bp + Np * pc + (size_t)(n0 + jr) * kc;
            for (int ir = 0; ir < M; ir += MR) {
                const int mr = M - ir < MR ? M - ir : MR;
                for (int i = 0; i < MR; i++) ar[i] = a[ir + (i < mr ? i : mr - 1)]; /* edge: repeats */
                float *ct = C + (size_t)ir * ldc + jr;
                if (mr == 1) kernel_pix_1(kc, ar, off + pc, bp, t); /* edge tiles: less padding */
                else if (mr <= MR_HALF) kernel_pix_half(kc, ar, off + pc, bp, t);
                else kernel_pix(kc, ar, off + pc, bp, t);
                update(mr, nr, t, 1.0f, beta, kb == 0, ct, (size_t)ldc, 1);
            }
        }
    }
}

int gemm_packs_a(int transA, int M, int N, int K) {
    static const float a, b; /* stand-ins: make_job only compares costs */
    GemmJob j = make_job(transA, 0, M, N, K, 1.0f, &a, transA ? M : K, &b, N, 0.0f, NULL, N);
    return j.A == &a && !j.direct;
}

/* Threads: a grid of tm x tn rectangles of whole tiles, one per thread, each
 * multiplied on its own (its own packed A panels and B blocks): nothing one thread
 * packs is read by the other. A fixed share each, so a slower core makes the other
 * wait; sharing the packed A panel and taking B blocks in turn measured slower
 * (docs/perf.md). */
typedef struct {
    GemmJob g;
    int tm, tn;
} ParJob;

static void gemm_worker(void *p, int ith, int nth) {
    ParJob *j = p;
    const GemmJob *g = &j->g;
    if (nth != j->tm * j->tn) {  /* pool ran it serially (nested call) */
        if (ith == 0) gemm_block(g, 0, g->M, 0, g->N);
        return;
    }
    long mt = (g->M + MR - 1) / MR, nt = (g->N + NR - 1) / NR, lo, hi, lo2, hi2;
    par_range(mt, ith / j->tn, j->tm, &lo, &hi);
    par_range(nt, ith % j->tn, j->tn, &lo2, &hi2);
    int m1 = (int)(hi * MR < g->M ? hi * MR : g->M), n1 = (int)(hi2 * NR < g->N ? hi2 * NR : g->N);
    gemm_block(g, (int)lo * MR, m1, (int)lo2 * NR, n1);
}

void gemm(int transA, int transB, int M, int N, int K, float alpha,
          const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) { scale_c(M, N, beta, C, ldc); return; }
    ParJob j;
    memset(&j, 0, sizeof j);
    j.g = make_job(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    j.tm = j.tn = 1;
    int nth = job_cost(&j.g) < (1 << 19) ? 1 : par_nthreads(); /* ~10 us: not worth a wake-up */
    if (nth > 1) {
        /* the split with the fewest tiles on the busiest thread; on a tie, more
         * threads along the longer side (the other operand's packing is repeated) */
        long mt = (j.g.M + MR - 1) / MR, nt = (j.g.N + NR - 1) / NR, best = -1;
        for (int tm = 1; tm <= nth; tm++) {
            if (nth % tm) continue;
            int tn = nth / tm;
            long w = ((mt + tm - 1) / tm) * ((nt + tn - 1) / tn);
            int better = best < 0 || w < best || (w == best && (j.g.M >= j.g.N ? tm > j.tm : tn > j.tn));
            if (better) { best = w; j.tm = tm; j.tn = tn; }
        }
    }
    if (j.tm * j.tn == 1) { gemm_block(&j.g, 0, j.g.M, 0, j.g.N); return; }
    par_run(gemm_worker, &j);
}
