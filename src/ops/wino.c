/* wino: 3x3 stride-1 pad-1 convolutions by Winograd's F(2x2, 3x3) (see ops/wino.h).
 *
 * Each 2x2 tile of the output comes from a 4x4 patch d of the zero-bordered input
 * (rows 2ty-1 .. 2ty+2, columns 2tx-1 .. 2tx+2):
 *   y_tile = A^T [ sum_c (G g_kc G^T) (.) (B^T d_c B) ] A       (.) elementwise
 *   B^T = | 1  0 -1  0 |   G = | 1    0    0  |   A^T = | 1 1  1  0 |
 *         | 0  1  1  0 |       | 1/2  1/2  1/2|         | 0 1 -1 -1 |
 *         | 0 -1  1  0 |       | 1/2 -1/2  1/2|
 *         | 0  1  0 -1 |       | 0    0    1  |
 * so the sum over channels is 16 matrix products, one per element e of the 4x4:
 *   U[e] [Cout, Cin]  = (G g G^T)[e]         the weights, transformed and packed per call
 *                                            (or once by the caller: wino_prep)
 *   V[e] [Cin, tiles] = (B^T d B)[e]         the input, transformed per group of tiles
 *   M[e] [Cout, tiles] = U[e] . V[e]         gemm_packed_st
 * then A^T M A per tile and channel, through the epilogue, into the output rows.
 * The input gradient of such a convolution is the same convolution of dy with each
 * kernel turned by 180 degrees and C and K swapped: g'[c][k] = rot180(w[k][c]).
 *
 * The weight gradient is the same algebra run backwards (see its section below).
 *
 * Work: a group is a run of whole tile rows (of one or more images), sized so that its
 * V and M stay near the cache; each thread takes whole groups (transform, 16 products,
 * back-transform: all in its own cache). The weights are transformed and packed once
 * per call, the threads splitting the row panels, or once for as long as they do not
 * change (the caller keeps wino_prep's result). With few tiles the threads split the
 * output channels instead, each packing and using its own panels. The rule throughout:
 * what a thread writes, the same thread reads (moving cache lines between cores is
 * slow at times).
 * Determinism: an output element depends only on its tile's patch, the packed U and
 * gemm's chain over Cin (fixed whatever N, position and thread count), so an image's
 * output and input gradient are bitwise independent of the batch, its place in it and
 * the threads. They differ from the other routes' products by rounding only (the
 * transforms add and subtract before and after the sum; against the naive reference it
 * is no less accurate, see tests/test_wino.c).
 * Not for: other kernels, strides, paddings, dilation; Cin above one gemm k-block (the
 * packing below writes single-k-block panels). */
#include "ops/wino.h"
#include "core/err.h"
#include "core/gemm.h"
#include "core/threads.h"
#include "ops/epi.h"
#include <string.h>

#define WINO_GROUP_FLOATS (512u << 10) /* V and M of one group: 2 MiB, near one core's L2 */
#ifndef WINO_MIN_CH
#define WINO_MIN_CH 64 /* channels in and out (see wino_applies) */
#endif
#ifndef WINO_ROWS_TILES
#define WINO_ROWS_TILES 2 /* fewer tiles than Cout times this: threads split the channels */
#endif
#ifndef WINO_MIN_AREA
#define WINO_MIN_AREA 196 /* map positions, 14x14 (see wino_applies) */
#endif

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

/* The shape rule (figures in docs/perf.md): with 64 channels and up the route wins at
 * batch 8 on every map of 14x14 and more and is level at batch 1 there; on 7x7 the
 * per-call weight transform loses at batch 1, and with 32 channels the transforms cost
 * what the products save. */
int wino_applies(const ConvShape *s, int dx) {
    const int cin = dx ? s->K : s->C, cout = dx ? s->C : s->K;
    if (s->kh != 3 || s->kw != 3 || s->sh != 1 || s->sw != 1 || s->ph != 1 || s->pw != 1) return 0;
    if (gemm_kblocks(cin) != 1) return 0;
    return cin >= WINO_MIN_CH && cout >= WINO_MIN_CH && s->H * s->W >= WINO_MIN_AREA;
}

/* The problem as the route sees it: src [N, Cin, H, W] -> dst [N, Cout, H, W]. */
typedef struct {
    int N, Cin, Cout, H, W;
    int Th, Tw, G;       /* tile rows and columns per image, tile rows per group */
    int slots;           /* threads with a scratch slice (the others idle) */
    int by_rows;         /* threads split the output channels, not the tiles (few tiles) */
    const float *w;      /* the conv's weights [K, C, 3, 3] */
    int dx;              /* 1: input gradient (g' = rot180(w[k][c]), Cin = K) */
    const float *src;
    float *dst;
    const float *up;     /* 16 packed U[e], up_floats apart (the caller's, or up_out) */
    float *up_out;       /* where pack_panels writes them (NULL: the caller's are ready) */
    size_t up_floats;
    float *scratch;      /* per thread: slice floats */
    size_t slice;
    /* forward epilogue */
    const float *bias, *scale, *shift;
    int relu;
    /* input-gradient epilogue */
    int fresh;
    const float *relu_y;
    ReluRule rule;
} Job;

/* Tile rows per group: within the cache budget, yet at least Cin*Cout/1024 tiles (64 to
 * 256), since every group streams all of U (16 MiB at 512 channels) through the cache;
 * and a multiple of nth groups in all (each thread the same share; docs/perf.md). */
static int group_rows(int N, int Cin, int Cout, int Th, int Tw, int nth) {
    const int rows = N * Th, tiles = imax(64, imin(256, (int)((long)Cin * Cout / 1024)));
    int fit = imax(1, (int)(WINO_GROUP_FLOATS / (16u * (unsigned)(Cin + Cout) * (unsigned)Tw)));
    fit = imax(fit, (tiles + Tw - 1) / Tw);
    int groups = (rows + fit - 1) / fit;
    groups = (groups + nth - 1) / nth * nth;
    return imax(1, (rows + groups - 1) / groups);
}

#define TB 16 /* tiles per block of the transforms: loops of TB that gcc vectorises */

/* Floats of one thread's slice: V and M of a group and the transforms' buffers. */
static size_t slice_floats(int Cin, int Cout, int Tw, int G) {
    const size_t pg = (size_t)G * Tw, vs = pg + TB, twp = (size_t)(Tw + TB - 1) / TB * TB;
    const size_t in = (2 * twp + 4) + (2 * (size_t)G + 2) * 4 * twp;       /* input_seg */
    const size_t out = 4 * vs + (2 * (size_t)G) * (2 * (size_t)Tw) + 2 * twp; /* output_seg */
    size_t vm = size_add(size_mul(16, size_add(size_mul(vs, (size_t)Cin), size_mul(pg, (size_t)Cout))), in > out ? in : out);
    return vm > SIZE_MAX - 15 ? SIZE_MAX : (vm + 15) / 16 * 16; /* a multiple of 16: slices stay aligned */
}

static Job job_of(const ConvShape *s, int dx, int nth) {
    Job j;
    memset(&j, 0, sizeof j);
    j.N = s->N; j.H = s->H; j.W = s->W;
    j.Cin = dx ? s->K : s->C;
    j.Cout = dx ? s->C : s->K;
    j.dx = dx;
    j.Th = (s->H + 1) / 2;
    j.Tw = (s->W + 1) / 2;
    j.slots = nth;
    j.by_rows = nth > 1 && (long long)s->N * j.Th * j.Tw < (long long)j.Cout * WINO_ROWS_TILES;
    j.G = group_rows(s->N, j.Cin, j.Cout, j.Th, j.Tw, j.by_rows ? 1 : nth);
    j.slice = slice_floats(j.Cin, j.Cout, j.Tw, j.G);
    j.up_floats = gemm_packed_floats(j.Cout, j.Cin);
    return j;
}

static size_t dw_floats(const ConvShape *s, int nth);

size_t wino_scratch_bytes(const ConvShape *s, int nth) {
    size_t most = wino_applies(s, 0) && s->N > 0 ? dw_floats(s, nth) : 0;
    for (int dx = 0; dx < 2; dx++) {
        if (!wino_applies(s, dx) || s->N == 0) continue;
        const Job j = job_of(s, dx, nth);
        const size_t f = size_add(size_mul(16, j.up_floats), size_mul((size_t)nth, j.slice));
        if (f > most) most = f;
    }
    return most ? size_add(ws_round(size_mul(sizeof(float), most)), 64 * (size_t)(nth + 1)) : 0;
}

/* ---- weights: U[e] = (G g G^T)[e], packed for gemm by row panels ---- */

#define WB 16 /* kernels transformed at once: each step a loop over WB that gcc vectorises */

/* u[e][i] = (G g_i G^T)[e/4][e%4] for kernels g_i, i < WB: output row r0 + i % mr and
 * input column c0 + i / mr, zero for rows past the panel's `rows` (gemm's zero padding)
 * and junk for columns past Cin (the caller drops them). */
static void kernel_block(const Job *j, int r0, int rows, int mr, int c0, float u[16][WB]) {
    for (int i = 0; i < WB; i++) { /* one kernel at a time, in registers: no strided gathers */
        const int r = r0 + imin(i % mr, rows - 1), c = imin(c0 + i / mr, j->Cin - 1);
        /* forward: w[r][c]; input gradient: w[k = c][c' = r] turned by 180 degrees */
        const float *k = j->w + (size_t)(j->dx ? c * j->Cout + r : r * j->Cin + c) * 9;
        if (i % mr >= rows) {
            for (int e = 0; e < 16; e++) u[e][i] = 0.0f;
            continue;
        }
        float g0, g1, g2, g3, g4, g5, g6, g7, g8;
        if (j->dx) {
            g0 = k[8]; g1 = k[7]; g2 = k[6]; g3 = k[5]; g4 = k[4]; g5 = k[3]; g6 = k[2]; g7 = k[1]; g8 = k[0];
        } else {
            g0 = k[0]; g1 = k[1]; g2 = k[2]; g3 = k[3]; g4 = k[4]; g5 = k[5]; g6 = k[6]; g7 = k[7]; g8 = k[8];
        }
        /* t = G g: rows a, columns b */
        const float t00 = g0, t01 = g1, t02 = g2;
        const float t10 = 0.5f * (g0 + g3 + g6), t11 = 0.5f * (g1 + g4 + g7), t12 = 0.5f * (g2 + g5 + g8);
        const float t20 = 0.5f * (g0 - g3 + g6), t21 = 0.5f * (g1 - g4 + g7), t22 = 0.5f * (g2 - g5 + g8);
        const float t30 = g6, t31 = g7, t32 = g8;
#define WINO_ROW(a, x0, x1, x2)                                                                                   \
    u[4 * (a)][i] = (x0);                                                                                         \
    u[4 * (a) + 1][i] = 0.5f * ((x0) + (x1) + (x2));                                                              \
    u[4 * (a) + 2][i] = 0.5f * ((x0) - (x1) + (x2));                                                              \
    u[4 * (a) + 3][i] = (x2);
        WINO_ROW(0, t00, t01, t02)
        WINO_ROW(1, t10, t11, t12)
        WINO_ROW(2, t20, t21, t22)
        WINO_ROW(3, t30, t31, t32)
#undef WINO_ROW
    }
}

/* Row panels of mr output rows, written straight in gemm's packed layout (gemm.h: one
 * k-block, as wino_applies ensures): panel p of U[e] holds (c, r) at c*mr + r, so a
 * block's lanes (column c0 + i / mr, row i % mr) are WB consecutive floats. */
static void pack_panels(const Job *j, long lo, long hi) {
    const int mr = gemm_mr(), cb = WB / mr; /* columns per block */
    GAD_ASSERT(cb >= 1);
    for (long p = lo; p < hi; p++) {
        const int r0 = (int)p * mr, rows = imin(mr, j->Cout - r0);
        float *panel = j->up_out + (size_t)r0 * j->Cin;
        for (int c0 = 0; c0 < j->Cin; c0 += cb) {
            float u[16][WB];
            const int n = imin(cb, j->Cin - c0) * mr;
            kernel_block(j, r0, rows, mr, c0, u);
            for (int e = 0; e < 16; e++) memcpy(panel + e * j->up_floats + (size_t)c0 * mr, u[e], sizeof(float) * n);
        }
    }
}

static void pack_worker(void *arg, int ith, int nth) {
    const Job *j = arg;
    long lo, hi;
    par_range((j->Cout + gemm_mr() - 1) / gemm_mr(), ith, nth, &lo, &hi);
    pack_panels(j, lo, hi);
}

/* ---- input: V[e][c][t] = (B^T d B)[e] for tile t of the group ---- */

/* A segment: the group's tile rows [ty0, ty1) of image n, tiles [t0, ...) of the group. */
typedef struct {
    int n, ty0, ty1, t0;
} Seg;

/* d B across one bordered row d: h[a * hs + t] for n tiles t. */
static void row_bt(const float *restrict d, float *restrict h, size_t hs, int n) {
    for (int t = 0; t < n; t++) {
        const float d0 = d[2 * t], d1 = d[2 * t + 1], d2 = d[2 * t + 2], d3 = d[2 * t + 3];
        h[t] = d0 - d2;
        h[hs + t] = d1 + d2;
        h[2 * hs + t] = d2 - d1;
        h[3 * hs + t] = d1 - d3;
    }
}

/* B^T down four rows a, a + as, ..: v[i * vs + t] for n tiles t. */
static void col_bt(const float *restrict a, size_t as, float *restrict v, size_t vs, int n) {
    for (int t = 0; t < n; t++) {
        const float x0 = a[t], x1 = a[as + t], x2 = a[2 * as + t], x3 = a[3 * as + t];
        v[t] = x0 - x2;
        v[vs + t] = x1 + x2;
        v[2 * vs + t] = x2 - x1;
        v[3 * vs + t] = x1 - x3;
    }
}

/* Row i alone of col_bt's four (the same operations): v[t]. */
static void col_bt_one(const float *restrict a, size_t as, int i, float *restrict v, int n) {
    const float *restrict a0 = a, *restrict a1 = a + as, *restrict a2 = a + 2 * as, *restrict a3 = a + 3 * as;
    if (i == 0)
        for (int t = 0; t < n; t++) v[t] = a0[t] - a2[t];
    else if (i == 1)
        for (int t = 0; t < n; t++) v[t] = a1[t] + a2[t];
    else if (i == 2)
        for (int t = 0; t < n; t++) v[t] = a2[t] - a1[t];
    else
        for (int t = 0; t < n; t++) v[t] = a1[t] - a3[t];
}

/* The segment's tiles of plane x (one channel) into v (row e at + e*vs). First d B
 * across each bordered input row (each row once), h [rows][4][twp]; then B^T (d B)
 * down each tile's four rows, for e in [e0, e1). Loops run over whole blocks of TB tiles: the columns past
 * Tw are junk that lands in the next tile row's place (written after it) or in the
 * slack past the group's row (vs >= pg + TB). */
static void input_seg(const Job *j, const float *x, const Seg *g, float *v, size_t vs, int e0, int e1, float *buf) {
    const int W = j->W, Tw = j->Tw, twp = (Tw + TB - 1) / TB * TB, bw = 2 * twp + 4;
    const int rows = 2 * (g->ty1 - g->ty0) + 2;
    float *rb = buf, *h = buf + bw; /* one bordered row [bw], then h */
    memset(rb, 0, sizeof(float) * (size_t)bw);
    for (int i = 0; i < rows; i++) {
        const int r = 2 * g->ty0 - 1 + i;
        if (r >= 0 && r < j->H) memcpy(rb + 1, x + (size_t)r * W, sizeof(float) * (size_t)W);
        else memset(rb + 1, 0, sizeof(float) * (size_t)W);
        row_bt(rb, h + (size_t)(4 * i) * twp, (size_t)twp, twp);
    }
    for (int ty = g->ty0; ty < g->ty1; ty++) {
        const float *hr = h + (size_t)(2 * (ty - g->ty0)) * 4 * twp; /* bordered rows 2ty .. 2ty+3 */
        float *vr = v + g->t0 + (size_t)(ty - g->ty0) * Tw;
        if (e0 == 0 && e1 == 16)
            for (int b = 0; b < 4; b++) col_bt(hr + (size_t)b * twp, 4 * (size_t)twp, vr + (size_t)b * vs, 4 * vs, twp);
        else
            for (int e = e0; e < e1; e++) col_bt_one(hr + (size_t)(e % 4) * twp, 4 * (size_t)twp, e / 4, vr + e * vs, twp);
    }
}

/* ---- output: A^T M A per tile, through the epilogue ---- */

/* One output channel's tiles of the group: m row e at + e*ms, pg tiles, A^T m A into
 * o [4][os] (o[(2i + j) * os + t] the output at (2ty + i, 2tx + j)), flat loops. */
static void output_tiles(const float *restrict m, size_t ms, size_t pg, float *restrict o, size_t os) {
    for (int i = 0; i < 2; i++) { /* output row i of the tiles: (A^T m)[i] A */
        float *restrict oa = o + 2 * (size_t)i * os, *restrict ob = oa + os;
        for (size_t t = 0; t < pg; t++) {
            float s[4];
            for (int b = 0; b < 4; b++) { /* (A^T m)[i][b]: m0 + m1 + m2, or m1 - m2 - m3 */
                const float *restrict c = m + (size_t)b * ms + t;
                s[b] = i ? c[4 * ms] - c[8 * ms] - c[12 * ms] : c[0] + c[4 * ms] + c[8 * ms];
            }
            oa[t] = s[0] + s[1] + s[2];
            ob[t] = s[1] - s[2] - s[3];
        }
    }
}

/* The segment's output rows (o as output_tiles, os apart) interleaved into buf, then
 * through the epilogue into the plane at offset `at` of dst: its rows are contiguous
 * there, one run. Interleaving runs over whole blocks of TB tiles (junk past W lands
 * on the next row, written after it, or in buf's slack). */
static void output_seg(const Job *j, const float *o, size_t os, const Seg *g, size_t at, const Epi *e,
                       float *buf) {
    const int Tw = j->Tw, W = j->W, twp = (Tw + TB - 1) / TB * TB;
    for (int ty = g->ty0; ty < g->ty1; ty++)
        for (int i = 0; i < 2; i++) {
            const float *restrict a = o + 2 * (size_t)i * os + g->t0 + (size_t)(ty - g->ty0) * Tw,
                                  *restrict b = a + os;
            float *restrict d = buf + (size_t)(2 * (ty - g->ty0) + i) * W;
            for (int t = 0; t < twp; t++) {
                d[2 * t] = a[t];
                d[2 * t + 1] = b[t];
            }
        }
    const int r0 = 2 * g->ty0, r1 = imin(j->H, 2 * g->ty1), n = (r1 - r0) * W;
    const size_t r = at + (size_t)r0 * W;
    if (!j->dx) epi_row(j->dst + r, buf, n, e);
    else if (j->fresh) epi_dx_fresh(j->rule, j->relu_y ? j->relu_y + r : NULL, j->dst + r, buf, n);
    else
        for (int k = 0; k < n; k++) j->dst[r + k] += buf[k];
}

/* ---- groups ---- */

/* Segment s of the group's tile rows [q0, q1): *g, or 0 past the last. */
static int seg_of(const Job *j, int q0, int q1, int q, Seg *g) {
    if (q >= q1) return 0;
    g->n = q / j->Th;
    g->ty0 = q % j->Th;
    g->ty1 = imin(j->Th, g->ty0 + (q1 - q));
    g->t0 = (q - q0) * j->Tw;
    return 1;
}

/* Tile rows [q0, q1) for output channels [r0, r1) (r0 a multiple of gemm_mr()), with
 * V, M and the row buffers in the thread's slice. */
static void group(const Job *j, int q0, int q1, int r0, int r1, float *V) {
    const size_t plane = (size_t)j->H * j->W, pg = (size_t)(q1 - q0) * j->Tw, vs = pg + TB;
    const size_t ms = (size_t)(r1 - r0) * pg; /* floats between M's rows e */
    float *M = V + 16 * vs * j->Cin, *buf = M + 16 * ms;
    Seg g;
    for (int c = 0; c < j->Cin; c++)
        for (int q = q0; seg_of(j, q0, q1, q, &g); q += g.ty1 - g.ty0)
            input_seg(j, j->src + ((size_t)g.n * j->Cin + c) * plane, &g, V + (size_t)c * vs, j->Cin * vs, 0, 16, buf);
    for (int e = 0; e < 16; e++)
        gemm_packed_st(r1 - r0, (int)pg, j->Cin, j->up + e * j->up_floats, j->Cout, r0, V + e * j->Cin * vs, (int)vs,
                       0.0f, M + e * ms, (int)pg);
    for (int k = r0; k < r1; k++) {
        const Epi ep = epi_for(j->bias, j->scale, j->shift, j->relu, k); /* the forward's (dx: all NULL, 0) */
        output_tiles(M + (size_t)(k - r0) * pg, ms, pg, buf, vs);
        for (int q = q0; seg_of(j, q0, q1, q, &g); q += g.ty1 - g.ty0)
            output_seg(j, buf, vs, &g, ((size_t)g.n * j->Cout + k) * plane, &ep, buf + 4 * vs);
    }
}

/* Each thread its share of the groups, every output channel (after pack_worker). */
static void group_worker(void *arg, int ith, int nth) {
    const Job *j = arg;
    const int rows = j->N * j->Th, groups = (rows + j->G - 1) / j->G;
    long lo, hi;
    if (ith >= j->slots) return;
    par_range(groups, ith, nth < j->slots ? nth : j->slots, &lo, &hi);
    for (long gi = lo; gi < hi; gi++)
        group(j, (int)gi * j->G, imin(rows, ((int)gi + 1) * j->G), 0, j->Cout, j->scratch + (size_t)ith * j->slice);
}

/* Few tiles: each thread packs its own row panels of U and computes those output
 * channels for every group, transforming the input itself (the input transforms are
 * repeated per thread, but U, the bulk, never changes cores). */
static void rows_worker(void *arg, int ith, int nth) {
    const Job *j = arg;
    const int rows = j->N * j->Th, mr = gemm_mr();
    long lo, hi;
    if (ith >= j->slots) return;
    par_range((j->Cout + mr - 1) / mr, ith, nth < j->slots ? nth : j->slots, &lo, &hi);
    if (j->up_out) pack_panels(j, lo, hi);
    const int r0 = (int)lo * mr, r1 = imin(j->Cout, (int)hi * mr);
    if (r0 >= r1) return;
    for (int q0 = 0; q0 < rows; q0 += j->G)
        group(j, q0, imin(rows, q0 + j->G), r0, r1, j->scratch + (size_t)ith * j->slice);
}

/* ---- weight gradient: dU[e] = sum over tiles of (A dY A^T)[e] . V[e]^T ---- */

/* With y = A^T (U (.) V) A and U = G g G^T, dL/dU = sum over tiles of (A dY A^T) (.) V,
 * and dL/dg = G^T (dL/dU) G: 16 products over the tiles of the batch, K x tiles by
 * tiles x C (2.25 times fewer multiplications than the direct 9). Each thread owns a
 * range of the 16 elements e from start to end: for every group of tile rows in
 * order (their size set by the shape and the batch, never the threads) it transforms
 * x and dy for its e alone and adds its products onto dU[e] (the first group
 * overwrites), so no cache line of V, Z or dU changes cores (that costs more here than
 * the transforms). Then dw += G^T dU G, split by output channel. */
#define WINO_DW_GROUP_FLOATS (2u << 20) /* V and Z of one group: 8 MiB, in L3 */

typedef struct {
    const ConvShape *s;
    const float *x, *dy;
    float *dw, *du; /* dw [K, C, 3, 3]; du [16][K][C] */
    float *V, *Z;   /* [16][C][vs], [16][K][vs] (a thread writes and reads its rows e only) */
    float *scratch; /* per thread: `slice` floats of row buffers */
    size_t slice, vs;
    int G;          /* tile rows per group */
    int slots;      /* threads with a slice (a workspace reserved for fewer: the others idle) */
    Job shape;      /* H, W, Th, Tw for the transforms */
} DwJob;

/* A dY A^T across one row of dy: h[a * hs + t], a = 0..3, for n tiles (dy zero-padded
 * to 2n columns in d). */
static void row_at(const float *restrict d, float *restrict h, size_t hs, int n) {
    for (int t = 0; t < n; t++) {
        const float p0 = d[2 * t], p1 = d[2 * t + 1];
        h[t] = p0;
        h[hs + t] = p0 + p1;
        h[2 * hs + t] = p0 - p1;
        h[3 * hs + t] = -p1;
    }
}

/* ... and row i of (A .) down the tile's two rows a0, a1: z[t]. */
static void col_at_one(const float *restrict a0, const float *restrict a1, int i, float *restrict z, int n) {
    if (i == 0)
        for (int t = 0; t < n; t++) z[t] = a0[t];
    else if (i == 1)
        for (int t = 0; t < n; t++) z[t] = a0[t] + a1[t];
    else if (i == 2)
        for (int t = 0; t < n; t++) z[t] = a0[t] - a1[t];
    else
        for (int t = 0; t < n; t++) z[t] = -a1[t];
}

/* The segment's tiles of one channel's dy plane into z (row e at + e*zs, e in [e0, e1)),
 * in runs of whole TB blocks as input_seg. */
static void grad_seg(const Job *j, const float *dyp, const Seg *g, float *z, size_t zs, int e0, int e1,
                     float *buf) {
    const int W = j->W, Tw = j->Tw, twp = (Tw + TB - 1) / TB * TB, bw = 2 * twp;
    float *rb = buf, *h = buf + bw; /* one zero-padded row [bw], then h [2][4][twp] */
    memset(rb, 0, sizeof(float) * (size_t)bw);
    for (int ty = g->ty0; ty < g->ty1; ty++) {
        for (int i = 0; i < 2; i++) {
            const int r = 2 * ty + i;
            if (r < j->H) memcpy(rb, dyp + (size_t)r * W, sizeof(float) * (size_t)W);
            else memset(rb, 0, sizeof(float) * (size_t)W);
            row_at(rb, h + (size_t)(4 * i) * twp, (size_t)twp, twp);
        }
        float *zr = z + g->t0 + (size_t)(ty - g->ty0) * Tw;
        for (int e = e0; e < e1; e++)
            col_at_one(h + (size_t)(e % 4) * twp, h + (size_t)(4 + e % 4) * twp, e / 4, zr + e * zs, twp);
    }
}

static void dw_worker(void *arg, int ith, int nth) {
    const DwJob *d = arg;
    const Job *j = &d->shape;
    const ConvShape *s = d->s;
    const size_t plane = (size_t)s->H * s->W;
    const int rows = s->N * j->Th;
    float *buf = d->scratch + (size_t)ith * d->slice;
    long e0, e1;
    Seg g;
    if (ith >= d->slots) return;
    par_range(16, ith, nth < d->slots ? nth : d->slots, &e0, &e1);
    for (int q0 = 0; q0 < rows; q0 += d->G) {
        const int q1 = imin(rows, q0 + d->G), pg = (q1 - q0) * j->Tw;
        for (int c = 0; c < s->C; c++)
            for (int q = q0; seg_of(j, q0, q1, q, &g); q += g.ty1 - g.ty0)
                input_seg(j, d->x + ((size_t)g.n * s->C + c) * plane, &g, d->V + (size_t)c * d->vs,
                          (size_t)s->C * d->vs, (int)e0, (int)e1, buf);
        for (int k = 0; k < s->K; k++)
            for (int q = q0; seg_of(j, q0, q1, q, &g); q += g.ty1 - g.ty0)
                grad_seg(j, d->dy + ((size_t)g.n * s->K + k) * plane, &g, d->Z + (size_t)k * d->vs,
                         (size_t)s->K * d->vs, (int)e0, (int)e1, buf);
        for (long e = e0; e < e1; e++)
            gemm_st(0, 1, s->K, s->C, pg, 1.0f, d->Z + (size_t)e * s->K * d->vs, (int)d->vs,
                    d->V + (size_t)e * s->C * d->vs, (int)d->vs, q0 == 0 ? 0.0f : 1.0f,
                    d->du + (size_t)e * s->K * s->C, s->C);
    }
}

/* dw[k][c] += G^T dU[:, k, c] G, WB columns c at a time. */
static void dw_finish_worker(void *arg, int ith, int nth) {
    const DwJob *d = arg;
    const ConvShape *s = d->s;
    const size_t kc = (size_t)s->K * s->C;
    long lo, hi;
    par_range((long)s->K, ith, nth, &lo, &hi);
    for (long k = lo; k < hi; k++)
        for (int c0 = 0; c0 < s->C; c0 += WB) {
            const int n = imin(WB, s->C - c0);
            float u[16][WB], t[4][3][WB], g[9][WB];
            for (int e = 0; e < 16; e++) {
                const float *src = d->du + e * kc + (size_t)k * s->C + c0;
                for (int i = 0; i < WB; i++) u[e][i] = i < n ? src[i] : 0.0f;
            }
            for (int a = 0; a < 4; a++) /* dU G */
                for (int i = 0; i < WB; i++) {
                    const float u0 = u[4 * a][i], u1 = u[4 * a + 1][i], u2 = u[4 * a + 2][i], u3 = u[4 * a + 3][i];
                    t[a][0][i] = u0 + 0.5f * (u1 + u2);
                    t[a][1][i] = 0.5f * (u1 - u2);
                    t[a][2][i] = 0.5f * (u1 + u2) + u3;
                }
            for (int b = 0; b < 3; b++) /* G^T (dU G) */
                for (int i = 0; i < WB; i++) {
                    const float t0 = t[0][b][i], t1 = t[1][b][i], t2 = t[2][b][i], t3 = t[3][b][i];
                    g[b][i] = t0 + 0.5f * (t1 + t2);
                    g[3 + b][i] = 0.5f * (t1 - t2);
                    g[6 + b][i] = 0.5f * (t1 + t2) + t3;
                }
            float *dst = d->dw + ((size_t)k * s->C + c0) * 9;
            for (int i = 0; i < n; i++)
                for (int q = 0; q < 9; q++) dst[(size_t)i * 9 + q] += g[q][i];
        }
}

/* Tile rows per group of the weight gradient (shape and batch only): the cache budget,
 * but at least WINO_DW_MIN_TILES tiles, so that wide layers (512 channels: 16 MiB of
 * dU) do not spend their time adding short products onto dU (docs/perf.md). */
#define WINO_DW_MIN_TILES 512
static int dw_group_rows(const ConvShape *s, int Th, int Tw) {
    const int fit = (int)(WINO_DW_GROUP_FLOATS / (16u * (unsigned)(s->C + s->K) * (unsigned)(Tw + TB)));
    return imax(1, imin(imax(fit, (WINO_DW_MIN_TILES + Tw - 1) / Tw), s->N * Th));
}

static size_t dw_row_floats(int Tw, int G) {
    const size_t twp = (size_t)(Tw + TB - 1) / TB * TB;
    const size_t in = (2 * twp + 4) + (2 * (size_t)G + 2) * 4 * twp, gr = 2 * twp + 8 * twp;
    return ((in > gr ? in : gr) + 15) / 16 * 16;
}

static size_t dw_floats(const ConvShape *s, int nth) {
    const int Th = (s->H + 1) / 2, Tw = (s->W + 1) / 2, G = dw_group_rows(s, Th, Tw);
    const size_t vs = (size_t)G * Tw + TB;
    return size_add(size_add(size_mul(16 * (size_t)s->K, (size_t)s->C), size_mul(16 * vs, (size_t)(s->C + s->K))),
                    size_mul((size_t)nth, dw_row_floats(Tw, G)));
}

void wino_backward_dw(const ConvShape *s, const float *x, const float *dy, float *dw, Workspace *ws) {
    GAD_ASSERT(wino_applies(s, 0));
    if (s->N == 0) return;
    const int nth = par_nthreads();
    const size_t mark = ws_mark(ws);
    DwJob d;
    memset(&d, 0, sizeof d);
    d.s = s;
    d.x = x;
    d.dy = dy;
    d.dw = dw;
    d.shape = job_of(s, 0, 1);
    d.G = dw_group_rows(s, d.shape.Th, d.shape.Tw);
    d.vs = (size_t)d.G * d.shape.Tw + TB;
    d.slice = dw_row_floats(d.shape.Tw, d.G);
    d.du = ws_floats(ws, 16 * (size_t)s->K * s->C);
    d.V = ws_floats(ws, 16 * d.vs * s->C);
    d.Z = ws_floats(ws, 16 * d.vs * s->K);
    d.slots = nth;
    while (d.slots > 1 && ws_round(sizeof(float) * (size_t)d.slots * d.slice) > ws->cap - ws->used) d.slots--;
    d.scratch = ws_floats(ws, (size_t)d.slots * d.slice); /* asserts if even one does not fit */
    par_run(dw_worker, &d);
    par_run(dw_finish_worker, &d);
    ws_release(ws, mark);
}

/* The packed weights (unless the caller prepared them: up given), then one slice per
 * thread; with a workspace reserved for fewer threads than now run, fewer slices
 * (smaller groups or idle threads: the same bits). */
static void run(Job *j, const float *up, Workspace *ws) {
    const size_t mark = ws_mark(ws);
    j->up_out = up ? NULL : ws_floats(ws, 16 * j->up_floats);
    j->up = up ? up : j->up_out;
    const size_t avail = ws->cap - ws->used;
    while (j->slots > 1 && ws_round(sizeof(float) * (size_t)j->slots * j->slice) > avail) {
        j->slots--;
        j->G = group_rows(j->N, j->Cin, j->Cout, j->Th, j->Tw, j->by_rows ? 1 : j->slots);
        j->slice = slice_floats(j->Cin, j->Cout, j->Tw, j->G);
    }
    j->scratch = ws_floats(ws, (size_t)j->slots * j->slice); /* asserts if even one does not fit */
    if (j->by_rows) par_run(rows_worker, j);
    else {
        if (j->up_out) par_run(pack_worker, j);
        par_run(group_worker, j);
    }
    ws_release(ws, mark);
}

size_t wino_prep_floats(const ConvShape *s, int dx) {
    return wino_applies(s, dx) ? size_mul(16, job_of(s, dx, 1).up_floats) : 0;
}

void wino_prep(const ConvShape *s, const float *w, int dx, float *up) {
    GAD_ASSERT(wino_applies(s, dx));
    Job j = job_of(s, dx, par_nthreads());
    j.w = w;
    j.up = j.up_out = up;
    par_run(pack_worker, &j);
}

void wino_forward(const ConvShape *s, const float *x, const float *w, const float *up, const float *b,
                  const float *scale, const float *shift, int relu, float *y, Workspace *ws) {
    GAD_ASSERT(wino_applies(s, 0) && !scale == !shift);
    if (s->N == 0) return;
    Job j = job_of(s, 0, par_nthreads());
    j.w = w;
    j.src = x;
    j.dst = y;
    j.bias = b;
    j.scale = scale;
    j.shift = shift;
    j.relu = relu;
    run(&j, up, ws);
}

void wino_backward_dx(const ConvShape *s, const float *w, const float *up, const float *dy, float *dx, int fresh,
                      const float *relu_y, ReluRule rule, Workspace *ws) {
    GAD_ASSERT(wino_applies(s, 1) && (!relu_y || fresh));
    if (s->N == 0) return;
    Job j = job_of(s, 1, par_nthreads());
    j.w = w;
    j.src = dy;
    j.dst = dx;
    j.fresh = fresh;
    j.relu_y = relu_y;
    j.rule = rule;
    run(&j, up, ws);
}
