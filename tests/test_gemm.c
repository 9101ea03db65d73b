/* test_gemm: the blocked, threaded gemm against the naive gemm_ref (odd shapes that
 * cross every tile, k-block and cache-block edge, all transposes, alpha/beta, leading
 * dimensions wider than the matrix), beta = 0 with NaN in C, and the determinism
 * contract: bitwise the same C for 1, 2 and 3 threads, for gemm_st, and when the rows
 * or columns of C are computed in pieces; and every element bitwise the chain the
 * contract describes, computed one element at a time with simd_madd1. */
#include "test.h"
#include "core/gemm.h"
#include "core/rng.h"
#include "core/simd.h"
#include "core/threads.h"
#include <stdlib.h>
#include <string.h>

/* A random problem with leading dimensions `pad` wider than needed. */
typedef struct {
    int tA, tB, M, N, K, lda, ldb, ldc;
    float *A, *B, *C;
} Prob;

static Prob prob_new(Rng *r, int tA, int tB, int M, int N, int K, int pad) {
    Prob p = {tA, tB, M, N, K, (tA ? M : K) + pad, (tB ? K : N) + pad, N + pad, NULL, NULL, NULL};
    size_t na = (size_t)(tA ? K : M) * p.lda, nb = (size_t)(tB ? N : K) * p.ldb, nc = (size_t)M * p.ldc;
    p.A = malloc(sizeof(float) * (na ? na : 1));
    p.B = malloc(sizeof(float) * (nb ? nb : 1));
    p.C = malloc(sizeof(float) * (nc ? nc : 1));
    for (size_t i = 0; i < na; i++) p.A[i] = rng_normal(r);
    for (size_t i = 0; i < nb; i++) p.B[i] = rng_normal(r);
    for (size_t i = 0; i < nc; i++) p.C[i] = rng_normal(r);
    return p;
}

static void prob_free(Prob *p) { free(p->A); free(p->B); free(p->C); }

static float *copy_c(const Prob *p) {
    size_t n = (size_t)p->M * p->ldc;
    float *c = malloc(sizeof(float) * (n ? n : 1));
    memcpy(c, p->C, sizeof(float) * n);
    return c;
}

/* Run gemm (st = 0) or gemm_st (st = 1) on a copy of p's C and return it. */
static float *run(const Prob *p, int st, float alpha, float beta) {
    float *c = copy_c(p);
    (st ? gemm_st : gemm)(p->tA, p->tB, p->M, p->N, p->K, alpha, p->A, p->lda, p->B, p->ldb, beta, c, p->ldc);
    return c;
}

TEST(gemm_matches_reference_odd_shapes) {
    Rng r;
    rng_seed(&r, 7);
    /* M, N, K: around MR (4/6/8), NR (8/16/32), the k-block (1024), MC and NC */
    static const int shapes[][3] = {
        {1, 1, 1},   {1, 33, 17},  {33, 1, 17},  {2, 3, 4},    {5, 7, 9},     {7, 15, 31},
        {8, 32, 64}, {9, 33, 65},  {13, 17, 3},  {31, 47, 100}, {65, 31, 129}, {200, 70, 40},
        {3, 5, 1100}, {17, 40, 2100}, {150, 9, 33}, {2, 4100, 5},  {4, 2, 1030},  {97, 129, 1}};
    static const float ab[][2] = {{1, 0}, {0.5f, 1}, {-2, 0.25f}, {1, 1}, {0.75f, -1}};
    int n = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], tA = t & 1, tB = t >> 1;
            Prob p = prob_new(&r, tA, tB, M, N, K, (int)(s % 3) * 3);
            float alpha = ab[n % 5][0], beta = ab[n % 5][1];
            n++;
            float *got = run(&p, (int)(s & 1), alpha, beta);
            float *want = copy_c(&p);
            gemm_ref(tA, tB, M, N, K, alpha, p.A, p.lda, p.B, p.ldb, beta, want, p.ldc);
            char what[96];
            snprintf(what, sizeof what, "%dx%dx%d tA=%d tB=%d alpha=%g beta=%g ld+%d", M, N, K, tA, tB,
                     (double)alpha, (double)beta, p.ldc - N);
            /* summation order differs (FMA, k-blocks): error grows with K */
            CHECK_CLOSE(what, got, want, (size_t)M * p.ldc, 1e-5f + 5e-7f * K, 1e-4f);
            /* the padding columns beyond N are never written */
            int pad_ok = 1;
            for (int i = 0; i < M; i++)
                for (int j = N; j < p.ldc; j++) pad_ok &= got[(size_t)i * p.ldc + j] == p.C[(size_t)i * p.ldc + j];
            CHECKF(pad_ok, "%s: wrote past N", what);
            free(got); free(want);
            prob_free(&p);
        }
}

TEST(gemm_beta_zero_ignores_nan_and_trivial_cases) {
    Rng r;
    rng_seed(&r, 8);
    for (int st = 0; st < 2; st++) {
        Prob p = prob_new(&r, 0, 1, 19, 45, 70, 0);
        for (int i = 0; i < 19 * 45; i++) p.C[i] = NAN;
        float *got = run(&p, st, 1.5f, 0.0f);
        for (int i = 0; i < 19 * 45; i++) p.C[i] = 0.0f;
        float *want = copy_c(&p);
        gemm_ref(0, 1, 19, 45, 70, 1.5f, p.A, p.lda, p.B, p.ldb, 0.0f, want, p.ldc);
        CHECK_CLOSE("beta=0 over NaN", got, want, 19 * 45, 2e-4f, 1e-4f);
        free(got);
        /* alpha = 0 and K = 0: C = beta*C, and beta = 0 still clears NaN */
        for (int i = 0; i < 19 * 45; i++) p.C[i] = NAN;
        got = run(&p, st, 0.0f, 0.0f);
        int zero = 1;
        for (int i = 0; i < 19 * 45; i++) zero &= got[i] == 0.0f;
        CHECKF(zero, "alpha=0 beta=0 must give 0 over NaN (st=%d)", st);
        free(got);
        for (int i = 0; i < 19 * 45; i++) p.C[i] = (float)i;
        float *c = copy_c(&p);
        (st ? gemm_st : gemm)(0, 1, 19, 45, 0, 1.0f, p.A, p.lda, p.B, p.ldb, 0.5f, c, p.ldc);
        int half = 1;
        for (int i = 0; i < 19 * 45; i++) half &= c[i] == 0.5f * (float)i;
        CHECKF(half, "K=0 must give beta*C (st=%d)", st);
        /* M or N = 0: nothing touched */
        (st ? gemm_st : gemm)(0, 1, 0, 45, 70, 1.0f, p.A, p.lda, p.B, p.ldb, 0.0f, NULL, p.ldc);
        free(c); free(want);
        prob_free(&p);
    }
}

static int same_bits(const float *a, const float *b, size_t n) { return memcmp(a, b, sizeof(float) * n) == 0; }

TEST(gemm_bitwise_same_for_any_thread_count) {
    Rng r;
    rng_seed(&r, 9);
    /* large enough to be threaded; tall, wide, tiny-N (transposed orientation); and
     * two big enough for the shared A panels and B blocks taken in turn (M*N*K >=
     * 2^28, split by rows at two threads; with GEMM_SPLAT, the rows split in halves):
     * 800 x 2060 x 1000, two k-blocks, one panel, a last B block narrower than a
     * micro-panel; 1100 x 300 x 1000, two k-blocks of two panels of rows, so each of
     * the two panel buffers is packed while the other is read, twice (one buffer for
     * both fails here), and a last B block and micro-panel of edge columns */
    static const int shapes[][3] = {{100, 300, 150}, {37, 1000, 70}, {700, 3, 200}, {64, 64, 1500}, {5, 900, 90},
                                    {800, 2060, 1000}, {1100, 300, 1000}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++) {
            Prob p = prob_new(&r, t & 1, t >> 1, shapes[s][0], shapes[s][1], shapes[s][2], 1);
            size_t n = (size_t)p.M * p.ldc;
            float *st = run(&p, 1, 0.5f, 0.25f);
            for (int th = 1; th <= 3; th++) {
                par_init(th);
                float *c = run(&p, 0, 0.5f, 0.25f);
                CHECKF(same_bits(c, st, n), "%dx%dx%d tA=%d tB=%d: %d threads differ from gemm_st", p.M, p.N,
                       p.K, p.tA, p.tB, th);
                free(c);
            }
            free(st);
            prob_free(&p);
        }
    par_shutdown();
}

/* C computed whole, then again as row pieces and column pieces: identical bits. */
TEST(gemm_bitwise_same_in_pieces) {
    Rng r;
    rng_seed(&r, 10);
    static const int shapes[][3] = {{61, 75, 1100}, {130, 40, 33}, {9, 300, 57}};
    static const int cuts[] = {1, 2, 5, 8, 13, 21, 40, 64};
    par_init(2);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++) {
            Prob p = prob_new(&r, t & 1, t >> 1, shapes[s][0], shapes[s][1], shapes[s][2], 2);
            size_t n = (size_t)p.M * p.ldc;
            float *whole = run(&p, 0, 1.0f, 0.0f);
            /* rows [i0, i1): op(A) rows start at row i0 (A + i0*lda, or A + i0 transposed) */
            float *rows = copy_c(&p);
            for (int i0 = 0, c = 0; i0 < p.M; c++) {
                int i1 = i0 + cuts[c % 8] < p.M ? i0 + cuts[c % 8] : p.M;
                const float *A = p.tA ? p.A + i0 : p.A + (size_t)i0 * p.lda;
                (c & 1 ? gemm_st : gemm)(p.tA, p.tB, i1 - i0, p.N, p.K, 1.0f, A, p.lda, p.B, p.ldb, 0.0f,
                                         rows + (size_t)i0 * p.ldc, p.ldc);
                i0 = i1;
            }
            CHECKF(same_bits(rows, whole, n), "%dx%dx%d tA=%d tB=%d: rows in pieces differ", p.M, p.N, p.K,
                   p.tA, p.tB);
            float *cols = copy_c(&p);
            for (int j0 = 0, c = 3; j0 < p.N; c++) {
                int j1 = j0 + cuts[c % 8] < p.N ? j0 + cuts[c % 8] : p.N;
                const float *B = p.tB ? p.B + (size_t)j0 * p.ldb : p.B + j0;
                (c & 1 ? gemm_st : gemm)(p.tA, p.tB, p.M, j1 - j0, p.K, 1.0f, p.A, p.lda, B, p.ldb, 0.0f,
                                         cols + j0, p.ldc);
                j0 = j1;
            }
            CHECKF(same_bits(cols, whole, n), "%dx%dx%d tA=%d tB=%d: columns in pieces differ", p.M, p.N, p.K,
                   p.tA, p.tB);
            free(whole); free(rows); free(cols);
            prob_free(&p);
        }
    par_shutdown();
}

/* Same bits when one element is computed alone (1x1) as inside a large product:
 * the strongest form of "whatever M, N and position". */
TEST(gemm_bitwise_single_element) {
    Rng r;
    rng_seed(&r, 11);
    Prob p = prob_new(&r, 0, 0, 40, 50, 1500, 0);
    float *whole = run(&p, 0, 1.0f, 0.0f);
    int bad = 0;
    for (int i = 0; i < 40; i += 7)
        for (int j = 0; j < 50; j += 9) {
            float c = NAN;
            gemm_st(0, 0, 1, 1, p.K, 1.0f, p.A + (size_t)i * p.lda, p.lda, p.B + j, p.ldb, 0.0f, &c, 1);
            bad += memcmp(&c, &whole[i * 50 + j], sizeof c) != 0;
        }
    CHECKF(bad == 0, "%d single elements differ from the full product", bad);
    free(whole);
    prob_free(&p);
}

/* gemm and gemm_st called from inside pool workers at the same time (each with its
 * own packing buffers; gemm nested in a job runs serially): the same bits. */
typedef struct {
    const Prob *p;
    float *c;
} NestedJob;

static void nested_rows(void *arg, int ith, int nth) {
    NestedJob *j = arg;
    const Prob *p = j->p;
    long lo, hi;
    par_range(p->M, ith, nth, &lo, &hi);
    for (long i0 = lo; i0 < hi; i0 += 3) { /* 3 rows at a time, alternating entry points */
        int rows = hi - i0 < 3 ? (int)(hi - i0) : 3;
        const float *A = p->tA ? p->A + i0 : p->A + (size_t)i0 * p->lda;
        ((i0 / 3) & 1 ? gemm_st : gemm)(p->tA, p->tB, rows, p->N, p->K, 1.0f, A, p->lda, p->B, p->ldb, 0.0f,
                                        j->c + (size_t)i0 * p->ldc, p->ldc);
    }
}

TEST(gemm_bitwise_same_inside_workers) {
    Rng r;
    rng_seed(&r, 12);
    for (int t = 0; t < 4; t++) {
        Prob p = prob_new(&r, t & 1, t >> 1, 50, 200, 1100, 1);
        float *whole = run(&p, 1, 1.0f, 0.0f);
        for (int th = 2; th <= 3; th++) {
            par_init(th);
            NestedJob j = {&p, copy_c(&p)};
            par_run(nested_rows, &j);
            CHECKF(same_bits(j.c, whole, (size_t)p.M * p.ldc), "tA=%d tB=%d, %d threads: products inside workers differ",
                   p.tA, p.tB, th);
            free(j.c);
        }
        free(whole);
        prob_free(&p);
    }
    par_shutdown();
}

/* op(A) [M, K] packed whole, in two panel ranges (as two threads would); caller frees. */
static float *pack_all(int tA, int M, int K, const float *A, int lda) {
    float *Ap = malloc(sizeof(float) * (gemm_packed_floats(M, K) + 1));
    const int np = (M + gemm_mr() - 1) / gemm_mr();
    gemm_pack(tA, M, K, A, lda, Ap, np / 2, np);
    gemm_pack(tA, M, K, A, lda, Ap, 0, np / 2);
    return Ap;
}

/* The packed layout gemm.h states for one k-block, element by element, zero rows
 * past M included (wino.c writes its panels that way). */
TEST(gemm_pack_single_kblock_layout) {
    Rng r;
    rng_seed(&r, 29);
    int kmax = 1; /* the longest K in one k-block */
    while (gemm_kblocks(kmax + 1) == 1) kmax++;
    REQUIRE(kmax >= 512); /* Winograd's 512 channels (wino_applies) */
    const int shapes[][2] = {{13, 70}, {64, 512}, {5, 1}, {17, kmax}};
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        const int M = shapes[t][0], K = shapes[t][1], mr = gemm_mr(), np = (M + mr - 1) / mr;
        REQUIRE(gemm_kblocks(K) == 1);
        float *A = malloc(sizeof(float) * (size_t)M * K);
        for (size_t i = 0; i < (size_t)M * K; i++) A[i] = rng_normal(&r);
        float *Ap = pack_all(0, M, K, A, K);
        CHECK(gemm_packed_floats(M, K) == (size_t)np * mr * K);
        int bad = 0;
        for (int p = 0; p < np; p++)
            for (int k = 0; k < K; k++)
                for (int i = 0; i < mr; i++) {
                    const int row = p * mr + i;
                    const float want = row < M ? A[(size_t)row * K + k] : 0.0f;
                    bad += memcmp(&Ap[(size_t)p * mr * K + (size_t)k * mr + i], &want, sizeof want) != 0;
                }
        CHECKF(bad == 0, "%dx%d: %d packed elements not where gemm.h says", M, K, bad);
        free(A); free(Ap);
    }
}

/* gemm_packed_st (A packed once by gemm_pack, either transpose) against gemm: the
 * same bits, for the whole of A and for a range of its rows, beta 0 and 1, shapes
 * with edge tiles and several k-blocks. */
TEST(gemm_packed_bitwise_same_as_gemm) {
    Rng r;
    rng_seed(&r, 23);
    static const int shapes[][3] = {{13, 70, 37}, {64, 200, 1500}, {9, 1, 20}, {100, 250, 2100}, {512, 40, 64}};
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++)
        for (int tA = 0; tA <= 1; tA++) {
            const int M = shapes[t][0], N = shapes[t][1], K = shapes[t][2], lda = tA ? M + 3 : K + 1;
            float *A = malloc(sizeof(float) * (size_t)(tA ? K : M) * lda), *B = malloc(sizeof(float) * (size_t)K * N);
            for (size_t i = 0; i < (size_t)(tA ? K : M) * lda; i++) A[i] = rng_normal(&r);
            for (size_t i = 0; i < (size_t)K * N; i++) B[i] = rng_normal(&r);
            float *Ap = pack_all(tA, M, K, A, lda);
            const int m0 = M > 2 * gemm_mr() ? 2 * gemm_mr() : 0;
            for (int beta = 0; beta <= 1; beta++)
                for (int sub = 0; sub <= 1; sub++) {
                    const int r0 = sub ? m0 : 0, Ms = M - r0 - (sub && M > r0 + 3 ? 3 : 0);
                    float *c1 = malloc(sizeof(float) * (size_t)M * N), *c2 = malloc(sizeof(float) * (size_t)M * N);
                    for (size_t i = 0; i < (size_t)M * N; i++) c1[i] = c2[i] = beta ? rng_normal(&r) : NAN;
                    const float *Ar = tA ? A + r0 : A + (size_t)r0 * lda;
                    gemm_st(tA, 0, Ms, N, K, 1.0f, Ar, lda, B, N, (float)beta, c1, N);
                    gemm_packed_st(Ms, N, K, Ap, M, r0, B, N, (float)beta, c2, N);
                    CHECKF(same_bits(c1, c2, (size_t)Ms * N), "gemm_packed_st %dx%dx%d tA %d rows %d+%d beta %d differs",
                           M, N, K, tA, r0, Ms, beta);
                    free(c1); free(c2);
                }
            free(A); free(B); free(Ap);
        }
}

/* gemm_rows_st (A packed, whole and from a row range; B given as rows scattered in one array, at arbitrary offsets, some
 * overlapping as in a convolution's windows) against gemm on the same B written out
 * as a matrix: the same bits, for beta 0 (NaN in C ignored) and 1, M not a multiple
 * of the tile height (the half-height kernel), N not a multiple of 32, K over two
 * k-blocks. The array is followed by 32 readable floats (the contract). */
TEST(gemm_rows_bitwise_same_as_gemm) {
    Rng r;
    rng_seed(&r, 21);
    static const int shapes[][3] = {{13, 70, 37}, {4, 33, 1500}, {64, 96, 576}, {9, 1, 20}, {100, 250, 1030}};
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        const int M = shapes[t][0], N = shapes[t][1], K = shapes[t][2];
        const size_t span = (size_t)K * 3 + (size_t)N + 32;
        float *arr = malloc(sizeof(float) * span), *A = malloc(sizeof(float) * (size_t)M * K);
        float *B = malloc(sizeof(float) * (size_t)K * N);
        ptrdiff_t *off = malloc(sizeof(ptrdiff_t) * (size_t)K);
        for (size_t i = 0; i < span; i++) arr[i] = rng_normal(&r);
        for (size_t i = 0; i < (size_t)M * K; i++) A[i] = rng_normal(&r);
        for (int k = 0; k < K; k++) {
            off[k] = (ptrdiff_t)rng_below(&r, (uint32_t)(3 * K)); /* rows overlap */
            memcpy(B + (size_t)k * N, arr + off[k], sizeof(float) * (size_t)N);
        }
        float *Ap = pack_all(0, M, K, A, K);
        const int m0 = M > gemm_mr() ? gemm_mr() : 0; /* also a row range of the packing */
        for (int beta = 0; beta <= 1; beta++)
            for (int sub = 0; sub <= 1; sub++) {
                const int r0 = sub ? m0 : 0, Ms = M - r0;
                float *c1 = malloc(sizeof(float) * (size_t)M * N), *c2 = malloc(sizeof(float) * (size_t)M * N);
                for (size_t i = 0; i < (size_t)M * N; i++) c1[i] = c2[i] = beta ? rng_normal(&r) : NAN;
                gemm_st(0, 0, Ms, N, K, 1.0f, A + (size_t)r0 * K, K, B, N, (float)beta, c1, N);
                gemm_rows_st(Ms, N, K, Ap, M, r0, arr, off, (float)beta, c2, N);
                CHECKF(same_bits(c1, c2, (size_t)Ms * N), "gemm_rows_st %dx%dx%d rows from %d beta %d differs from gemm",
                       M, N, K, r0, beta);
                free(c1); free(c2);
            }
        free(arr); free(A); free(B); free(off); free(Ap);
    }
}

/* gemm_pix_st (A's rows through pointers with shared offsets, windows that overlap
 * as a convolution's do; B packed by gemm_pack_b from row offsets, row-major and
 * transposed, in two panel ranges) against gemm on A written out: the same bits,
 * for beta 0 (NaN in C ignored) and 1, the whole of B and a range of its panels,
 * M not a multiple of the tile (repeated edge rows), N not a multiple of 32, K over
 * several k-blocks. */
TEST(gemm_pix_bitwise_same_as_gemm) {
    Rng r;
    rng_seed(&r, 24);
    static const int shapes[][3] = {{13, 70, 37}, {50, 33, 1500}, {64, 96, 2100}, {1, 9, 20}, {100, 250, 1030}};
    const int nr = gemm_nr();
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++)
        for (int tB = 0; tB <= 1; tB++) {
            const int M = shapes[t][0], N = shapes[t][1], K = shapes[t][2], ldb = tB ? K + 2 : N + 1;
            const size_t span = (size_t)K * 3 + (size_t)M;
            float *arr = malloc(sizeof(float) * span), *A = malloc(sizeof(float) * (size_t)M * K);
            float *B = malloc(sizeof(float) * (size_t)(tB ? N : K) * ldb);
            ptrdiff_t *off = malloc(sizeof(ptrdiff_t) * (size_t)K);
            const float **rows = malloc(sizeof(float *) * (size_t)M);
            for (size_t i = 0; i < span; i++) arr[i] = rng_normal(&r);
            for (size_t i = 0; i < (size_t)(tB ? N : K) * ldb; i++) B[i] = rng_normal(&r);
            for (int k = 0; k < K; k++) off[k] = (ptrdiff_t)rng_below(&r, (uint32_t)(3 * K));
            for (int i = 0; i < M; i++) {
                rows[i] = arr + i; /* row i+1 is row i shifted by one: overlapping windows */
                for (int k = 0; k < K; k++) A[(size_t)i * K + k] = rows[i][off[k]];
            }
            const int np = (N + nr - 1) / nr;
            float *Bp = malloc(sizeof(float) * (gemm_packed_b_floats(K, N) + 1));
            ptrdiff_t *roff = malloc(sizeof(ptrdiff_t) * (size_t)K);
            for (int k = 0; k < K; k++) roff[k] = tB ? k : (ptrdiff_t)k * ldb;
            gemm_pack_b(K, N, B, roff, tB ? (size_t)ldb : 1, Bp, np / 2, np);
            gemm_pack_b(K, N, B, roff, tB ? (size_t)ldb : 1, Bp, 0, np / 2);
            free(roff);
            for (int beta = 0; beta <= 1; beta++)
                for (int sub = 0; sub <= 1; sub++) {
                    const int c0 = sub && np > 1 ? nr : 0, Ns = N - c0;
                    float *c1 = malloc(sizeof(float) * (size_t)M * N), *c2 = malloc(sizeof(float) * (size_t)M * N);
                    for (size_t i = 0; i < (size_t)M * N; i++) c1[i] = c2[i] = beta ? rng_normal(&r) : NAN;
                    const float *Bs = tB ? B + (size_t)c0 * ldb : B + c0;
                    gemm_st(0, tB, M, Ns, K, 1.0f, A, K, Bs, ldb, (float)beta, c1, N);
                    gemm_pix_st(M, Ns, K, rows, off, Bp, N, c0, (float)beta, c2, N);
                    int same = 1;
                    for (int i = 0; i < M; i++) same &= same_bits(c1 + (size_t)i * N, c2 + (size_t)i * N, (size_t)Ns);
                    CHECKF(same, "gemm_pix_st %dx%dx%d tB %d columns from %d beta %d differs from gemm", M, N, K, tB, c0,
                           beta);
                    free(c1); free(c2);
                }
            free(arr); free(A); free(B); free(off); free(rows); free(Bp);
        }
}

/* gemm_arows_st (A's rows scattered in one array, read in place; B transposed; C
 * written row-major or transposed) against gemm on the same A written out: the same
 * bits, for beta 0 and 1, M and N not multiples of the tile, K over two k-blocks. */
TEST(gemm_arows_bitwise_same_as_gemm) {
    Rng r;
    rng_seed(&r, 22);
    static const int shapes[][3] = {{13, 70, 37}, {4, 33, 1500}, {576, 64, 700}, {9, 1, 20}, {100, 250, 1030}};
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        const int M = shapes[t][0], N = shapes[t][1], K = shapes[t][2];
        const size_t span = (size_t)M * 3 + (size_t)K;
        float *arr = malloc(sizeof(float) * span), *A = malloc(sizeof(float) * (size_t)M * K);
        float *B = malloc(sizeof(float) * (size_t)N * (K + 3));
        ptrdiff_t *off = malloc(sizeof(ptrdiff_t) * (size_t)M);
        for (size_t i = 0; i < span; i++) arr[i] = rng_normal(&r);
        for (size_t i = 0; i < (size_t)N * (K + 3); i++) B[i] = rng_normal(&r);
        for (int i = 0; i < M; i++) {
            off[i] = (ptrdiff_t)rng_below(&r, (uint32_t)(3 * M)); /* rows overlap */
            memcpy(A + (size_t)i * K, arr + off[i], sizeof(float) * (size_t)K);
        }
        for (int v = 0; v < 4; v++) { /* beta = v & 1; C transposed when v >= 2 */
            const int beta = v & 1, tr = v >= 2;
            float *c1 = malloc(sizeof(float) * (size_t)M * N), *c2 = malloc(sizeof(float) * (size_t)M * N);
            for (size_t i = 0; i < (size_t)M * N; i++) c1[i] = c2[i] = beta ? rng_normal(&r) : NAN;
            if (tr) gemm_st(0, 1, N, M, K, 1.0f, B, K + 3, A, K, (float)beta, c1, M); /* C^T = B . A^T */
            else gemm_st(0, 1, M, N, K, 1.0f, A, K, B, K + 3, (float)beta, c1, N);
            gemm_arows_st(M, N, K, arr, off, B, K + 3, (float)beta, c2, tr ? 1 : (size_t)N, tr ? (size_t)M : 1);
            CHECKF(same_bits(c1, c2, (size_t)M * N), "gemm_arows_st %dx%dx%d beta %d transposed %d differs from gemm", M,
                   N, K, beta, tr);
            free(c1); free(c2);
        }
        free(arr); free(A); free(B); free(off);
    }
}

/* C as gemm.h's contract says each element is computed, one element at a time: per
 * k-block (gemm_kblock), t = simd_madd1(A(i,k), B(k,j), t) from 0, k ascending; then c =
 * c0 + alpha*t, where c0 is 0 (beta 0), c (beta 1) or beta*c on the first block and
 * c on the others. */
static void gemm_chain(const Prob *p, float alpha, float beta, float *C) {
    for (int i = 0; i < p->M; i++)
        for (int j = 0; j < p->N; j++) {
            float *c = &C[(size_t)i * p->ldc + j];
            for (int kb = 0; kb < gemm_kblocks(p->K); kb++) {
                int k0, k1;
                gemm_kblock(p->K, kb, &k0, &k1);
                float t = 0.0f;
                for (int k = k0; k < k1; k++) {
                    float a = p->tA ? p->A[(size_t)k * p->lda + i] : p->A[(size_t)i * p->lda + k];
                    float b = p->tB ? p->B[(size_t)j * p->ldb + k] : p->B[(size_t)k * p->ldb + j];
                    t = simd_madd1(a, b, t);
                }
                float c0 = kb > 0 || beta == 1.0f ? *c : beta == 0.0f ? 0.0f : beta * *c;
                *c = alpha == 1.0f ? c0 + t : c0 + alpha * t;
            }
        }
}

/* Every route (tiles of every size, A read in place or packed, B in place, the
 * transposed orientation, several k-blocks, two threads) gives each element exactly
 * the chain above: the kernels are written with the same multiply-add, not left to the
 * compiler's contraction. (The shared-B path is held to gemm_st's bits above.) */
TEST(gemm_bitwise_same_as_the_chain) {
    Rng r;
    rng_seed(&r, 21);
    static const int shapes[][3] = {{1, 1, 1},   {3, 5, 7},     {1, 40, 33},   {40, 1, 33},  {7, 9, 1600},
                                    {13, 70, 90}, {64, 8, 300},  {100, 300, 150}, {2, 500, 64}, {130, 200, 800}};
    static const float ab[][2] = {{1, 0}, {0.5f, 1}, {-2, 0.25f}, {1, 1}};
    int n = 0;
    par_init(2);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++, n++) {
            Prob p = prob_new(&r, t & 1, t >> 1, shapes[s][0], shapes[s][1], shapes[s][2], 1);
            const float alpha = ab[n % 4][0], beta = ab[n % 4][1];
            float *got = run(&p, 0, alpha, beta), *got_st = run(&p, 1, alpha, beta), *want = copy_c(&p);
            gemm_chain(&p, alpha, beta, want);
            size_t nc = (size_t)p.M * p.ldc;
            CHECKF(same_bits(got, want, nc), "%dx%dx%d tA=%d tB=%d: gemm is not the chain", p.M, p.N, p.K, p.tA,
                   p.tB);
            CHECKF(same_bits(got_st, want, nc), "%dx%dx%d tA=%d tB=%d: gemm_st is not the chain", p.M, p.N, p.K,
                   p.tA, p.tB);
            free(got); free(got_st); free(want);
            prob_free(&p);
        }
    par_shutdown();
}
