/* linear: fully connected layer, y = x w^T + b (see ops/linear.h).
 *   x [N,I], w [O,I], b [O] or NULL, y [N,O]; dx [N,I], dw [O,I], db [O]
 * The layer is a "skinny" product: the batch N is small and w is large (VGG's first
 * classifier layer holds 103M weights), so the time goes into streaming w once per
 * pass. gemm would copy w into packed panels first; two of the three products here
 * read w (or dw) where it lies instead, in R x TW register tiles (R rows: as many as
 * the vector registers hold, 8 at most):
 *   forward (linear_forward_ws)  y[n,o] = sum_i w[o,i] xt[i,n]: R rows of w broadcast,
 *            TW (or TW/2, TW/4) rows of x as vector lanes (x transposed once into scratch);
 *   dw[o,i] += sum_n dy[n,o] x[n,i]: R rows o, TW columns i, a chain over n; dw is
 *            read and written once, an i-chunk of x stays in cache;
 *   dx[n,i] += sum_o dy[n,o] w[o,i] (batches up to 3; gemm above): w streams row by
 *            row, each row's chunk of columns added, times dy[n,o], into an
 *            in-cache accumulator per row n, in gemm's k-blocks and order.
 * linear_forward (no workspace) is gemm: small layers and callers without one.
 * Determinism: y[n,o] is one chain of simd_madd over i in order in its own lane (the
 * edge tiles run it with simd_madd1, core/simd.h), and dx[n,i] is
 * gemm's sum whichever way it is computed, so each row of y and dx is bitwise the
 * same whatever N, its place in the batch and the thread count. dw and db do not
 * depend on threads.
 * References: plain loops with double accumulation.
 * Not for: inputs with more than one batch dimension (flatten first). */
#include "ops/linear.h"
#include "core/err.h"
#include "core/gemm.h"
#include "core/simd.h"
#include "core/threads.h"
#include <stddef.h>

/* Tile width (lanes: batch rows in the forward and dx, columns i in dw): up to four
 * vectors and at most 32 floats, or half or a quarter of that for small batches
 * (never less than one vector). */
#define TW (4 * SIMD_W < 32 ? 4 * SIMD_W : 32)
#define TW_MIN SIMD_W
#define DWCHUNK 1024 /* dw: i per chunk (x's chunk stays in L2) */

/* ---- register tiles: c_r[0:W] = chain of simd_madd(P(r, k), Q(k, 0:W), .) from c_r ----
 * For k in [0, len): c_r[0:W] += P[k*ps + r*pr] * Q[k*qs + 0:W], each lane its own
 * chain of simd_madd (core/simd.h) starting from c_r = c0 + r*cs and stored back there;
 * rows r >= `rows` are computed from row 0 and dropped. The accumulators are a
 * register tile (SIMD_TILE) of TILE_R(W) rows and W / SIMD_W vectors. */
#define TILE_R(w) SIMD_TILE_ROWS((w) / SIMD_W)
#define ROW_PTR(r) const float *p##r = P + (size_t)(r < rows ? r : 0) * pr;
#define SIMD_TILE_INIT(r, c) simd_load(c0 + (size_t)(r < rows ? r : 0) * cs + (c) * SIMD_W)
#define SIMD_TILE_A(r) p##r[(size_t)k * ps]
#define SIMD_TILE_B (Q + (size_t)k * qs)
#define SIMD_TILE_PUT(r, c, v) if (r < rows) simd_store(c0 + (size_t)(r) * cs + (c) * SIMD_W, v)
#define TILE(name, W)                                                                               \
    static SIMD_NO_INLINE void name(int len, const float *P, size_t ps, size_t pr, const float *Q,  \
                                    size_t qs, float *c0, size_t cs, int rows) {                    \
        enum { KR = TILE_R(W), KV = (W) / SIMD_W };                                                 \
        SIMD_ROWS8(ROW_PTR)                                                                         \
        SIMD_TILE(len, ;)                                                                           \
    }
TILE(tile_w, TW)
TILE(tile_half, TW / 2)
TILE(tile_quarter, TW / 4 > TW_MIN ? TW / 4 : TW_MIN)
#undef TILE
#undef ROW_PTR
#undef SIMD_TILE_INIT
#undef SIMD_TILE_A
#undef SIMD_TILE_B
#undef SIMD_TILE_PUT

/* Edge tile, tw < TW columns: the same chain per element, one lane at a time. */
static void tile_edge(int len, const float *P, size_t ps, size_t pr, const float *Q, size_t qs, float *c0, size_t cs,
                      int rows, int tw) {
    for (int r = 0; r < rows; r++)
        for (int t = 0; t < tw; t++) {
            float a = c0[r * cs + t];
            for (int k = 0; k < len; k++) a = simd_madd1(P[k * ps + r * pr], Q[k * qs + t], a);
            c0[r * cs + t] = a;
        }
}

static void tile(int len, const float *P, size_t ps, size_t pr, const float *Q, size_t qs, float *c0, size_t cs,
                 int rows, int tw) {
    if (tw == TW) tile_w(len, P, ps, pr, Q, qs, c0, cs, rows);
    else tile_edge(len, P, ps, pr, Q, qs, c0, cs, rows, tw);
}

/* The tile for `lanes` (TW, TW/2 or TW/4 but at least one vector) columns, and its
 * rows. */
typedef void (*TileFn)(int, const float *, size_t, size_t, const float *, size_t, float *, size_t, int);
static TileFn lanes_tile(int lanes) { return lanes == TW ? tile_w : lanes == TW / 2 ? tile_half : tile_quarter; }
static int lanes_rows(int lanes) { return TILE_R(lanes); }

/* ---- forward ---- */

typedef struct {
    int N, I, O;
    const float *x, *w, *b, *dy;
    float *y, *dx, *dw;
    size_t wr, wc;     /* w[o][i] at w[o*wr + i*wc] (a plain matrix: wr = I, wc = 1) */
    const float *src;  /* the rows packed into xt: x [N,I] (forward) or dy [N,O] (dx) */
    int len;           /* their length, I or O */
    float *xt;         /* src^T of the current rows [len][lanes] */
    int n0, lanes;     /* the first of those rows, TW, TW/2 or TW/4 of them */
} LinJob;

/* xt[i][t] = src[n0 + t][i] for the `lanes` rows from n0 (rows past N: zeros). */
static void pack_xt_worker(void *arg, int ith, int nth) {
    const LinJob *j = arg;
    float *xt = j->xt;
    long lo, hi;
    par_range(j->len, ith, nth, &lo, &hi);
    const int L = j->lanes;
    for (int t = 0; t < L; t++) {
        const int n = j->n0 + t;
        if (n < j->N) {
            const float *xr = j->src + (size_t)n * j->len;
            for (long i = lo; i < hi; i++) xt[i * L + t] = xr[i];
        } else {
            for (long i = lo; i < hi; i++) xt[i * L + t] = 0.0f;
        }
    }
}

/* y[n0 + t][o] for blocks of outputs o (the tile's rows): a chain over i of
 * w[o][i] * xt[i][t] (the w rows are read where they lie, as broadcasts). Each lane is its own chain,
 * so a row's result does not depend on the tile width or the other rows. */
static void fwd_worker(void *arg, int ith, int nth) {
    const LinJob *j = arg;
    const int N = j->N, I = j->I, O = j->O, L = j->lanes, R = lanes_rows(L), nob = (O + R - 1) / R;
    const int rows_n = N - j->n0 < L ? N - j->n0 : L;
    long lo, hi;
    par_range(nob, ith, nth, &lo, &hi);
    for (long ob = lo; ob < hi; ob++) {
        const int o0 = (int)ob * R, rows = O - o0 < R ? O - o0 : R;
        float t[8 * TW];
        for (int k = 0; k < R * L; k++) t[k] = 0.0f;
        lanes_tile(L)(I, j->w + o0 * j->wr, j->wc, j->wr, j->xt, (size_t)L, t, (size_t)L, rows);
        for (int r = 0; r < rows; r++) {
            const float bo = j->b ? j->b[o0 + r] : 0.0f;
            for (int c = 0; c < rows_n; c++) {
                float *yp = j->y + (size_t)(j->n0 + c) * O + o0 + r;
                *yp = j->b ? t[r * L + c] + bo : t[r * L + c];
            }
        }
    }
}

/* dx[n0 + t][i] += sum_o dy[n0 + t][o] w[o][i] for blocks of inputs i (the tile's
 * rows): a chain over o in its own lane against dy^T (in xt), added to dx at the end. */
static void dx_strided_worker(void *arg, int ith, int nth) {
    const LinJob *j = arg;
    const int N = j->N, I = j->I, O = j->O, L = j->lanes, R = lanes_rows(L), nib = (I + R - 1) / R;
    const int rows_n = N - j->n0 < L ? N - j->n0 : L;
    long lo, hi;
    par_range(nib, ith, nth, &lo, &hi);
    for (long ib = lo; ib < hi; ib++) {
        const int i0 = (int)ib * R, rows = I - i0 < R ? I - i0 : R;
        float t[8 * TW];
        for (int k = 0; k < R * L; k++) t[k] = 0.0f;
        lanes_tile(L)(O, j->w + i0 * j->wc, j->wr, j->wc, j->xt, (size_t)L, t, (size_t)L, rows);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < rows_n; c++) j->dx[(size_t)(j->n0 + c) * I + i0 + r] += t[r * L + c];
    }
}

size_t linear_scratch_bytes(int len) { return ws_round(sizeof(float) * (size_t)len * TW); }

/* Rows of src TW at a time (TW/2 or TW/4 for a small rest: fewer wasted lanes), each
 * block transposed into scratch, then `work`. */
static void run_lanes(LinJob *j, par_fn work, Workspace *ws) {
    size_t mark = ws_mark(ws);
    j->xt = ws_floats(ws, (size_t)j->len * TW);
    for (j->n0 = 0; j->n0 < j->N; j->n0 += j->lanes) {
        const int left = j->N - j->n0;
        j->lanes = left <= TW / 4 && TW / 4 >= TW_MIN ? TW / 4 : left <= TW / 2 ? TW / 2 : TW;
        par_run(pack_xt_worker, j);
        par_run(work, j);
    }
    ws_release(ws, mark);
}

static LinJob lin_job(int N, int I, int O, const float *x, const float *w, const float *b, const float *dy,
                      float *y, float *dx, float *dw, size_t wr, size_t wc) {
    LinJob j = {N, I, O, x, w, b, dy, y, dx, dw, wr, wc, NULL, 0, NULL, 0, 0};
    return j;
}

void linear_forward_strided(int N, int I, int O, const float *x, const float *w, size_t wr, size_t wc,
                            const float *b, float *y, Workspace *ws) {
    if (N == 0 || O == 0) return;
    LinJob j = lin_job(N, I, O, x, w, b, NULL, y, NULL, NULL, wr, wc);
    j.src = x;
    j.len = I;
    run_lanes(&j, fwd_worker, ws);
}

void linear_forward_ws(int N, int I, int O, const float *x, const float *w, const float *b, float *y,
                       Workspace *ws) {
    linear_forward_strided(N, I, O, x, w, (size_t)I, 1, b, y, ws);
}

void linear_forward(int N, int I, int O, const float *x, const float *w, const float *b, float *y) {
    if (N == 0) return;
    gemm(0, 1, N, O, I, 1.0f, x, I, w, I, 0.0f, y, O);   /* y [N,O] = x [N,I] w^T [I,O] */
    if (b)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < O; o++) y[(size_t)n * O + o] += b[o];
}

void linear_backward_dx_strided(int N, int I, int O, const float *dy, const float *w, size_t wr, size_t wc,
                                float *dx, Workspace *ws) {
    if (N == 0 || O == 0 || I == 0) return;
    LinJob j = lin_job(N, I, O, NULL, w, NULL, dy, NULL, dx, NULL, wr, wc);
    j.src = dy;
    j.len = O;
    run_lanes(&j, dx_strided_worker, ws);
}

/* dw[o, i] += sum_n dy[n,o] x[n,i]: for each chunk of i, threads split the tile-row
 * blocks of o; the chain runs over n. */
static void dw_worker(void *arg, int ith, int nth) {
    const LinJob *j = arg;
    const int N = j->N, I = j->I, O = j->O, R = lanes_rows(TW), nob = (O + R - 1) / R;
    long lo, hi;
    par_range(nob, ith, nth, &lo, &hi);
    for (int c0 = 0; c0 < I; c0 += DWCHUNK) {
        const int c1 = I - c0 < DWCHUNK ? I : c0 + DWCHUNK;
        for (long ob = lo; ob < hi; ob++) {
            const int o0 = (int)ob * R, rows = O - o0 < R ? O - o0 : R;
            for (int i0 = c0; i0 < c1; i0 += TW)
                tile(N, j->dy + o0, (size_t)O, 1, j->x + i0, (size_t)I, j->dw + (size_t)o0 * I + i0, (size_t)I, rows,
                     c1 - i0 < TW ? c1 - i0 : TW);
        }
    }
}

/* y[0:n] = simd_madd(d, x[0:n], y[0:n]): gemm's step of a chain, lane by lane. */
static void axpy(int n, float d, const float *restrict x, float *restrict y) {
    const simd_v dv = simd_splat(d);
    int k = 0;
    for (; k + SIMD_W <= n; k += SIMD_W) simd_store(y + k, simd_madd(dv, simd_load(x + k), simd_load(y + k)));
    for (; k < n; k++) y[k] = simd_madd1(d, x[k], y[k]);
}

/* dx[n, i] += sum_o dy[n,o] w[o,i] for small batches, w streamed row by row where it
 * lies (gemm would first copy all of w into packed panels: twice the traffic of a
 * product that only streams w). Threads split the columns i (in TW-wide tiles); for
 * a chunk of columns, acc[rows][chunk] (in cache) takes, for each o of one of gemm's
 * k-blocks in order, dy[n,o] times the chunk of row o of w, and is added to dx after
 * each block: exactly gemm's sums (gemm_kblock), so a row gets the same bits here as
 * through gemm in a larger batch, whatever the thread count. */
#define DX_STREAM_MAX 3 /* larger batches: gemm (which reads w in place for up to 8
                         * rows); the measurements: docs/perf.md */
#define DXACC (DX_STREAM_MAX * 2048) /* floats of acc: DX_STREAM_MAX rows of a chunk */
static void dx_worker(void *arg, int ith, int nth) {
    const LinJob *j = arg;
    const int N = j->N, I = j->I, O = j->O, wch = DXACC / N / TW * TW; /* chunk: >= TW */
    float acc[DXACC];
    long lo, hi;
    GAD_ASSERT(N >= 1 && N <= DX_STREAM_MAX);
    par_range((I + TW - 1) / TW, ith, nth, &lo, &hi);
    const int c_lo = (int)lo * TW, c_hi = hi * TW < I ? (int)hi * TW : I;
    for (int c0 = c_lo; c0 < c_hi; c0 += wch) {
        const int cw = c_hi - c0 < wch ? c_hi - c0 : wch;
        for (int kb = 0; kb < gemm_kblocks(O); kb++) { /* gemm's k-blocks: gemm's bits */
            int oa, ob;
            gemm_kblock(O, kb, &oa, &ob);
            for (int k = 0; k < N * cw; k++) acc[k] = 0.0f;
            for (int o = oa; o < ob; o++) {
                const float *wr = j->w + (size_t)o * I + c0;
                for (int n = 0; n < N; n++) axpy(cw, j->dy[(size_t)n * O + o], wr, acc + (size_t)n * cw);
            }
            for (int n = 0; n < N; n++) {
                float *d = j->dx + (size_t)n * I + c0;
                for (int c = 0; c < cw; c++) d[c] += acc[(size_t)n * cw + c];
            }
        }
    }
}

void linear_backward(int N, int I, int O, const float *x, const float *w, const float *dy,
                     float *dx, float *dw, float *db) {
    if (N == 0) return;
    LinJob j = lin_job(N, I, O, x, w, NULL, dy, NULL, dx, dw, (size_t)I, 1);
    if (dx && N <= DX_STREAM_MAX) {
        if (I > 0 && O > 0) par_run(dx_worker, &j);
    } else if (dx) {
        gemm(0, 0, N, I, O, 1.0f, dy, O, w, I, 1.0f, dx, I); /* dx += dy [N,O] w [O,I] */
    }
    if (dw && I > 0 && O > 0) par_run(dw_worker, &j);
    if (db)
        for (int o = 0; o < O; o++) {
            double s = 0.0;
            for (int n = 0; n < N; n++) s += dy[(size_t)n * O + o];
            db[o] += (float)s;
        }
}

/* ---- inputs that repeat each value B times ---- */

typedef struct {
    int O, C, B;
    const float *w, *dwf;
    float *wf, *dw;
} FoldJob;

static void fold_worker(void *arg, int ith, int nth) {
    const FoldJob *j = arg;
    const size_t I = (size_t)j->C * j->B;
    long lo, hi;
    par_range(j->O, ith, nth, &lo, &hi);
    for (long o = lo; o < hi; o++)
        for (int c = 0; c < j->C; c++) {
            if (j->wf) {
                const float *wr = j->w + (size_t)o * I + (size_t)c * j->B;
                float s = 0.0f;
                for (int p = 0; p < j->B; p++) s += wr[p];
                j->wf[(size_t)o * j->C + c] = s;
            } else {
                float *dr = j->dw + (size_t)o * I + (size_t)c * j->B;
                const float g = j->dwf[(size_t)o * j->C + c];
                for (int p = 0; p < j->B; p++) dr[p] += g;
            }
        }
}

void linear_fold(int O, int C, int B, const float *w, float *wf) {
    FoldJob j = {O, C, B, w, NULL, wf, NULL};
    par_run(fold_worker, &j);
}

void linear_unfold_add(int O, int C, int B, const float *dwf, float *dw) {
    FoldJob j = {O, C, B, NULL, dwf, NULL, dw};
    par_run(fold_worker, &j);
}
