/* test_ops: the kernels of ops/ against (1) PyTorch fixtures (tests/fixtures/ops/,
 * written by tools/gen_fixtures_ops.py), (2) their naive references on random shapes,
 * (3) double-precision central differences of a random linear functional
 * L = sum(r * y) of the output, and (4) determinism across batch and thread count.
 * Tolerances are stated where they are used. */
#include "test.h"
#include "core/err.h"
#include "core/gemm.h"
#include "core/rng.h"
#include "core/threads.h"
#include "core/ws.h"
#include "io/safetensors.h"
#include "ops/act.h"
#include "ops/bn.h"
#include "ops/conv.h"
#include "ops/linear.h"
#include "ops/pool.h"
#include "ops/ref.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

static float *randn(Rng *r, size_t n, float scale) {
    float *a = xmalloc(n * sizeof(float) + 1);
    for (size_t i = 0; i < n; i++) a[i] = scale * rng_normal(r);
    return a;
}

static float *copyf(const float *a, size_t n) {
    float *b = xmalloc(n * sizeof(float) + 1);
    if (n) memcpy(b, a, n * sizeof(float));
    return b;
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* Central difference of loss() with respect to p[i]: the step actually taken in
 * float is used as the denominator. */
typedef double (*LossFn)(void *ctx);
static double central_diff(LossFn loss, void *ctx, float *p, size_t i, float h) {
    float x0 = p[i], xp = x0 + h, xm = x0 - h;
    p[i] = xp;
    double lp = loss(ctx);
    p[i] = xm;
    double lm = loss(ctx);
    p[i] = x0;
    return (lp - lm) / ((double)xp - (double)xm);
}

/* Compare an analytic gradient g [n] with central differences at up to `count`
 * coordinates (all when n <= count, else random ones). */
static void check_fd(const char *what, LossFn loss, void *ctx, float *p, const float *g, size_t n, int count,
                     float h, float atol, float rtol, Rng *r) {
    size_t m = n < (size_t)count ? n : (size_t)count;
    float *fd = xmalloc(m * sizeof(float) + 1), *an = xmalloc(m * sizeof(float) + 1);
    for (size_t k = 0; k < m; k++) {
        size_t i = n <= (size_t)count ? k : rng_below(r, (uint32_t)n);
        fd[k] = (float)central_diff(loss, ctx, p, i, h);
        an[k] = g[i];
    }
    CHECK_CLOSE(what, an, fd, m, atol, rtol);
    free(fd);
    free(an);
}

static int bitwise_equal(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

/* ---- conv ---- */

typedef struct { int N, C, H, W, K, kh, kw, sh, sw, ph, pw, bias; } ConvCase;

static const ConvCase conv_cases[] = {
    {2, 3, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1},   /* 3x3 s1 p1 */
    {2, 3, 13, 11, 5, 7, 7, 2, 2, 3, 3, 1}, /* 7x7 s2 p3 (ResNet stem), odd sizes */
    {3, 4, 7, 7, 6, 1, 1, 2, 2, 0, 0, 0},   /* 1x1 s2 p0 (downsample), no bias */
    {2, 5, 6, 9, 3, 1, 1, 1, 1, 0, 0, 1},   /* 1x1 s1 p0: the pointwise path */
    {1, 2, 9, 7, 3, 3, 3, 2, 2, 1, 1, 0},   /* 3x3 s2 p1, non-square */
    {2, 3, 9, 10, 2, 5, 5, 1, 1, 0, 0, 1},  /* 5x5 p0 */
    {1, 2, 5, 6, 3, 3, 2, 2, 1, 2, 0, 1},   /* rectangular kernel, mixed stride/pad */
    {1, 1, 3, 3, 2, 3, 3, 3, 3, 1, 1, 1},   /* stride larger than the output */
    {2, 2, 2, 1, 3, 7, 7, 2, 1, 3, 3, 1},   /* kernel taps entirely in the padding */
};

static void conv_reserve(Workspace *ws, const ConvShape *s) {
    ws_init(ws);
    ws_reserve(ws, conv_scratch_bytes(s) + 64);
}

/* Fast path vs naive loops (double accumulation). The fast path sums in float, so
 * tolerance atol 1e-5 + rtol 1e-4 relative to values of order 1. Gradients are
 * accumulated onto random non-zero buffers to check "+=". */
TEST(ops_conv_fast_matches_ref) {
    Rng r;
    rng_seed(&r, 11);
    for (size_t t = 0; t < sizeof conv_cases / sizeof conv_cases[0]; t++) {
        const ConvCase *c = &conv_cases[t];
        ConvShape s = conv_shape(c->N, c->C, c->H, c->W, c->K, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw);
        size_t nx = (size_t)s.N * s.C * s.H * s.W, nw = (size_t)s.K * s.C * s.kh * s.kw;
        size_t ny = (size_t)s.N * s.K * s.Ho * s.Wo;
        float *x = randn(&r, nx, 1.0f), *w = randn(&r, nw, 0.3f), *b = c->bias ? randn(&r, s.K, 1.0f) : NULL;
        float *dy = randn(&r, ny, 1.0f);
        float *y = randn(&r, ny, 1.0f), *yr = randn(&r, ny, 1.0f);
        float *dx = randn(&r, nx, 1.0f), *dw = randn(&r, nw, 1.0f), *db = randn(&r, s.K, 1.0f);
        float *dxr = copyf(dx, nx), *dwr = copyf(dw, nw), *dbr = copyf(db, s.K);
        Workspace ws;
        conv_reserve(&ws, &s);
        conv2d_forward(&s, x, w, b, y, &ws);
        conv2d_forward_ref(&s, x, w, b, yr);
        conv2d_backward(&s, x, w, dy, dx, dw, db, &ws);
        conv2d_backward_ref(&s, x, w, dy, dxr, dwr, dbr);
        CHECK(ws.used == 0);
        char what[96];
        snprintf(what, sizeof what, "conv case %d y", (int)t);
        CHECK_CLOSE(what, y, yr, ny, 1e-5f, 1e-4f);
        snprintf(what, sizeof what, "conv case %d dx", (int)t);
        CHECK_CLOSE(what, dx, dxr, nx, 1e-5f, 1e-4f);
        snprintf(what, sizeof what, "conv case %d dw", (int)t);
        CHECK_CLOSE(what, dw, dwr, nw, 1e-5f, 1e-4f);
        snprintf(what, sizeof what, "conv case %d db", (int)t);
        CHECK_CLOSE(what, db, dbr, s.K, 1e-5f, 1e-4f);
        /* NULL gradients are skipped and the others are unaffected by that */
        float *dw2 = xcalloc(nw, sizeof(float)), *dwr2 = xcalloc(nw, sizeof(float));
        conv2d_backward(&s, x, w, dy, NULL, dw2, NULL, &ws);
        conv2d_backward_ref(&s, x, w, dy, NULL, dwr2, NULL);
        snprintf(what, sizeof what, "conv case %d dw alone", (int)t);
        CHECK_CLOSE(what, dw2, dwr2, nw, 1e-5f, 1e-4f);
        free(dw2); free(dwr2);
        ws_free(&ws);
        free(x); free(w); free(b); free(dy); free(y); free(yr);
        free(dx); free(dw); free(db); free(dxr); free(dwr); free(dbr);
    }
}

/* Shapes that take the other routes of the blocked implementation: images cut into
 * column pieces (grid > 1024 columns), many blocks spread over threads, groups of
 * small images, sums longer than a gemm k-block, strided input-gradient classes with
 * pieces, a 1x1 convolution read in place, the col2im input gradient of layers with
 * few input channels, maps so small that some taps only ever see padding. 1 and 2 threads; tolerances as above, atol 1e-4 for the long
 * sums (dw: 1e-6 per summed term). */
TEST(ops_conv_blocked_matches_ref) {
    Rng r;
    rng_seed(&r, 14);
    static const ConvCase cases[] = {
        {3, 4, 52, 27, 8, 3, 3, 1, 1, 1, 1, 1},   /* pieces, per-thread blocks */
        {2, 3, 110, 53, 6, 3, 3, 2, 2, 1, 1, 0},   /* strided, dx classes in pieces */
        {9, 64, 5, 5, 72, 3, 3, 1, 1, 1, 1, 1},   /* groups, long sums (dx by col2im) */
        {9, 64, 9, 9, 72, 3, 3, 1, 1, 1, 1, 1},   /* groups, long sums (dx by gather) */
        {3, 6, 45, 41, 5, 1, 1, 1, 1, 0, 0, 1},   /* pointwise pieces read in place */
        {4, 5, 19, 21, 7, 5, 5, 2, 2, 2, 2, 1},   /* 5x5 stride 2 */
        {2, 3, 80, 76, 16, 7, 7, 2, 2, 3, 3, 1},  /* few channels: dx by col2im, pieces */
        {3, 3, 36, 36, 16, 3, 3, 1, 1, 1, 1, 0},  /* the same, stride 1 */
        {9, 40, 1, 1, 48, 3, 3, 1, 1, 1, 1, 1},   /* 1x1 maps: only the centre tap lives */
        {9, 24, 2, 2, 48, 3, 3, 2, 2, 1, 1, 0},   /* 2x2 -> 1x1, stride 2: 4 live taps */
        /* wide blocks (grids >= 28 wide, unit steps): the frame and gemm_rows_st */
        {2, 120, 20, 50, 8, 3, 3, 1, 1, 1, 1, 1},  /* forward over two k-blocks */
        {2, 40, 12, 64, 130, 3, 3, 1, 1, 1, 1, 0}, /* dx over two k-blocks */
        {2, 4, 30, 101, 6, 5, 5, 2, 2, 2, 2, 1},   /* dx classes of stride 2, 5x5 */
        {1, 3, 5, 61, 4, 3, 5, 1, 1, 0, 2, 0},     /* 3x5 kernel, pad (0, 2), few rows */
        {3, 5, 7, 49, 6, 3, 3, 1, 1, 2, 0, 1},     /* pad (2, 0): the dx grid only */
        /* dx by the direct route (small maps, fewer positions than K): two groups of
         * images, two k-blocks, an edge tile of positions, C not a multiple of 32 */
        {21, 72, 10, 10, 120, 3, 3, 1, 1, 1, 1, 1},
        /* dw by the direct route (few rows, large kernels): two panels (the second
         * partial), and one panel (threads split the rows), over several k-blocks */
        {2, 3, 40, 36, 40, 7, 7, 2, 2, 3, 3, 1},
        {3, 2, 30, 30, 32, 5, 5, 1, 1, 2, 2, 0},
        /* Winograd F(2x2, 3x3) (wino.c): odd sides (cropped tiles), a partial row panel
         * (68 = 8*8 + 4); then groups of tile rows that span images (segments) */
        {2, 64, 15, 17, 68, 3, 3, 1, 1, 1, 1, 1},
        {4, 64, 40, 30, 72, 3, 3, 1, 1, 1, 1, 0},
        /* few tiles (72 < 2 * 200): the threads split the output channels */
        {1, 64, 15, 16, 200, 3, 3, 1, 1, 1, 1, 1},
    };
    for (int th = 1; th <= 2; th++) {
        par_init(th);
        for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
            const ConvCase *c = &cases[t];
            ConvShape s = conv_shape(c->N, c->C, c->H, c->W, c->K, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw);
            size_t nx = (size_t)s.N * s.C * s.H * s.W, nw = (size_t)s.K * s.C * s.kh * s.kw;
            size_t ny = (size_t)s.N * s.K * s.Ho * s.Wo;
            float *x = randn(&r, nx, 1.0f), *w = randn(&r, nw, 0.3f), *b = c->bias ? randn(&r, s.K, 1.0f) : NULL;
            float *dy = randn(&r, ny, 1.0f), *y = randn(&r, ny, 1.0f), *yr = randn(&r, ny, 1.0f);
            float *dx = randn(&r, nx, 1.0f), *dw = randn(&r, nw, 1.0f), *db = randn(&r, s.K, 1.0f);
            float *dxr = copyf(dx, nx), *dwr = copyf(dw, nw), *dbr = copyf(db, s.K);
            Workspace ws;
            conv_reserve(&ws, &s);
            conv2d_forward(&s, x, w, b, y, &ws);
            conv2d_forward_ref(&s, x, w, b, yr);
            conv2d_backward(&s, x, w, dy, dx, dw, db, &ws);
            conv2d_backward_ref(&s, x, w, dy, dxr, dwr, dbr);
            CHECK(ws.used == 0);
            char what[96];
            snprintf(what, sizeof what, "blocked conv %d threads %d y", (int)t, th);
            CHECK_CLOSE(what, y, yr, ny, 1e-4f, 1e-4f);
            snprintf(what, sizeof what, "blocked conv %d threads %d dx", (int)t, th);
            CHECK_CLOSE(what, dx, dxr, nx, 1e-4f, 1e-4f);
            snprintf(what, sizeof what, "blocked conv %d threads %d dw", (int)t, th);
            /* dw sums N*Ho*Wo (up to ~3000) products of order 1: values of order 50 */
            CHECK_CLOSE(what, dw, dwr, nw, 1e-6f * s.N * s.Ho * s.Wo, 1e-4f);
            snprintf(what, sizeof what, "blocked conv %d threads %d db", (int)t, th);
            CHECK_CLOSE(what, db, dbr, s.K, 1e-4f, 1e-4f);
            ws_free(&ws);
            free(x); free(w); free(b); free(dy); free(y); free(yr);
            free(dx); free(dw); free(db); free(dxr); free(dwr); free(dbr);
        }
    }
    par_shutdown();
}

typedef struct {
    ConvShape s;
    const float *x, *w, *b, *r;
    float *y;
} ConvLoss;

static double conv_loss(void *p) {
    ConvLoss *c = p;
    conv2d_forward_ref(&c->s, c->x, c->w, c->b, c->y);
    return dot(c->r, c->y, (size_t)c->s.N * c->s.K * c->s.Ho * c->s.Wo);
}

/* Convolution is linear in x, w and b: central differences are exact up to the
 * float rounding of the output (~1e-7 relative), so a large step is fine.
 * Tolerance atol 1e-3, rtol 1e-3 (the loss is a sum of ~100s of terms). */
TEST(ops_conv_grad_finite_difference) {
    Rng r;
    rng_seed(&r, 12);
    for (size_t t = 0; t < sizeof conv_cases / sizeof conv_cases[0]; t++) {
        const ConvCase *c = &conv_cases[t];
        ConvShape s = conv_shape(c->N, c->C, c->H, c->W, c->K, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw);
        size_t nx = (size_t)s.N * s.C * s.H * s.W, nw = (size_t)s.K * s.C * s.kh * s.kw;
        size_t ny = (size_t)s.N * s.K * s.Ho * s.Wo;
        float *x = randn(&r, nx, 1.0f), *w = randn(&r, nw, 0.3f), *b = randn(&r, s.K, 1.0f);
        float *rr = randn(&r, ny, 1.0f), *y = xmalloc(ny * sizeof(float));
        float *dx = xcalloc(nx, sizeof(float)), *dw = xcalloc(nw, sizeof(float)), *db = xcalloc(s.K, sizeof(float));
        Workspace ws;
        conv_reserve(&ws, &s);
        conv2d_backward(&s, x, w, rr, dx, dw, db, &ws); /* dL/dy = r */
        ConvLoss L = {s, x, w, b, rr, y};
        char what[96];
        snprintf(what, sizeof what, "conv case %d dx vs fd", (int)t);
        check_fd(what, conv_loss, &L, x, dx, nx, 40, 0.25f, 1e-3f, 1e-3f, &r);
        snprintf(what, sizeof what, "conv case %d dw vs fd", (int)t);
        check_fd(what, conv_loss, &L, w, dw, nw, 40, 0.25f, 1e-3f, 1e-3f, &r);
        snprintf(what, sizeof what, "conv case %d db vs fd", (int)t);
        check_fd(what, conv_loss, &L, b, db, s.K, 40, 0.25f, 1e-3f, 1e-3f, &r);
        ws_free(&ws);
        free(x); free(w); free(b); free(rr); free(y); free(dx); free(dw); free(db);
    }
}

/* An image's output and input gradient are bitwise the same alone or in a batch of
 * 5 (at any position), and with 1 or 2 threads; dw and db bitwise the same with 1
 * or 2 threads. Shapes big enough that gemm itself would use threads. */
TEST(ops_conv_deterministic_batch_and_threads) {
    Rng r;
    rng_seed(&r, 13);
    const ConvCase cases[] = {{5, 16, 20, 18, 32, 3, 3, 1, 1, 1, 1, 1},
                              {5, 16, 14, 14, 40, 1, 1, 1, 1, 0, 0, 1},
                              {5, 3, 23, 23, 16, 7, 7, 2, 2, 3, 3, 0},
                              /* sums longer than one gemm k-block (C*9, K*9 > 512),
                               * dx by col2im (few positions) and by the gather */
                              {5, 64, 6, 6, 72, 3, 3, 1, 1, 1, 1, 1},
                              {5, 64, 9, 9, 72, 3, 3, 1, 1, 1, 1, 1},
                              {5, 16, 5, 5, 600, 3, 3, 1, 1, 1, 1, 0},
                              /* images cut into column pieces (forward, dx classes) */
                              {5, 4, 52, 27, 8, 3, 3, 1, 1, 1, 1, 1},
                              {5, 3, 110, 53, 8, 3, 3, 2, 2, 1, 1, 0},
                              /* few channels (dx by col2im) in pieces */
                              {5, 3, 50, 48, 16, 3, 3, 1, 1, 1, 1, 1},
                              /* taps that only see padding left out */
                              {5, 32, 1, 1, 40, 3, 3, 1, 1, 1, 1, 1},
                              /* wide blocks: forward and dx, then dx over two k-blocks */
                              {5, 8, 12, 60, 16, 3, 3, 1, 1, 1, 1, 1},
                              {5, 40, 6, 50, 130, 3, 3, 1, 1, 1, 1, 0},
                              /* dx by the direct route; the forward (and then dx) by it in
                               * the batch, by the gather alone (too few positions) */
                              {5, 64, 10, 11, 120, 3, 3, 1, 1, 1, 1, 1},
                              {5, 64, 10, 11, 96, 3, 3, 1, 1, 1, 1, 0},
                              /* dw by the direct route: two panels, then one (rows split) */
                              {5, 3, 23, 23, 40, 7, 7, 2, 2, 3, 3, 1},
                              {5, 2, 17, 17, 32, 5, 5, 1, 1, 2, 2, 0},
                              /* Winograd: odd sides, partial panel; groups across images */
                              {5, 64, 15, 17, 68, 3, 3, 1, 1, 1, 1, 1},
                              {5, 64, 40, 30, 72, 3, 3, 1, 1, 1, 1, 0},
                              /* an image alone splits the channels, the batch the tiles */
                              {5, 64, 14, 15, 100, 3, 3, 1, 1, 1, 1, 1}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const ConvCase *c = &cases[t];
        ConvShape s = conv_shape(c->N, c->C, c->H, c->W, c->K, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw);
        ConvShape s1 = conv_shape(1, c->C, c->H, c->W, c->K, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw);
        size_t xs = (size_t)s.C * s.H * s.W, ys = (size_t)s.K * s.Ho * s.Wo, nw = (size_t)s.K * s.C * s.kh * s.kw;
        float *x = randn(&r, 5 * xs, 1.0f), *w = randn(&r, nw, 0.2f), *b = c->bias ? randn(&r, s.K, 1.0f) : NULL;
        float *dy = randn(&r, 5 * ys, 1.0f);
        /* dx accumulates onto what is there (e.g. the other branch of a residual) */
        float *dx0 = randn(&r, 5 * xs, 1.0f);
        float *y[2], *dx[2], *dw[2], *db[2];
        for (int th = 0; th < 2; th++) {
            par_init(th + 1);
            Workspace ws;
            conv_reserve(&ws, &s);
            y[th] = xmalloc(5 * ys * sizeof(float));
            dx[th] = copyf(dx0, 5 * xs);
            dw[th] = xcalloc(nw, sizeof(float));
            db[th] = xcalloc(s.K, sizeof(float));
            conv2d_forward(&s, x, w, b, y[th], &ws);
            conv2d_backward(&s, x, w, dy, dx[th], dw[th], db[th], &ws);
            /* each image alone */
            float *y1 = xmalloc(ys * sizeof(float)), *dx1 = xcalloc(xs, sizeof(float));
            int same_y = 1, same_dx = 1;
            for (int n = 0; n < 5; n++) {
                conv2d_forward(&s1, x + n * xs, w, b, y1, &ws);
                memcpy(dx1, dx0 + n * xs, xs * sizeof(float));
                conv2d_backward(&s1, x + n * xs, w, dy + n * ys, dx1, NULL, NULL, &ws);
                same_y &= bitwise_equal(y1, y[th] + n * ys, ys);
                same_dx &= bitwise_equal(dx1, dx[th] + n * xs, xs);
            }
            CHECKF(same_y, "case %d threads %d: y of an image alone differs from in a batch of 5", (int)t, th + 1);
            CHECKF(same_dx, "case %d threads %d: dx of an image alone differs from in a batch of 5", (int)t, th + 1);
            free(y1); free(dx1);
            ws_free(&ws);
        }
        CHECKF(bitwise_equal(y[0], y[1], 5 * ys), "case %d: y differs between 1 and 2 threads", (int)t);
        CHECKF(bitwise_equal(dx[0], dx[1], 5 * xs), "case %d: dx differs between 1 and 2 threads", (int)t);
        CHECKF(bitwise_equal(dw[0], dw[1], nw), "case %d: dw differs between 1 and 2 threads", (int)t);
        CHECKF(bitwise_equal(db[0], db[1], s.K), "case %d: db differs between 1 and 2 threads", (int)t);
        /* a workspace reserved for one thread still works with two, same bits */
        {
            Workspace ws;
            par_init(1);
            conv_reserve(&ws, &s);
            par_init(2);
            float *y3 = xmalloc(5 * ys * sizeof(float)), *dx3 = copyf(dx0, 5 * xs);
            float *dw3 = xcalloc(nw, sizeof(float)), *db3 = xcalloc(s.K, sizeof(float));
            conv2d_forward(&s, x, w, b, y3, &ws);
            CHECKF(bitwise_equal(y3, y[0], 5 * ys), "case %d: small workspace changes y", (int)t);
            conv2d_backward(&s, x, w, dy, dx3, dw3, db3, &ws);
            CHECKF(bitwise_equal(dx3, dx[0], 5 * xs) && bitwise_equal(dw3, dw[0], nw),
                   "case %d: small workspace changes dx or dw", (int)t);
            free(y3); free(dx3); free(dw3); free(db3);
            ws_free(&ws);
        }
        for (int th = 0; th < 2; th++) { free(y[th]); free(dx[th]); free(dw[th]); free(db[th]); }
        free(x); free(w); free(b); free(dy); free(dx0);
    }
    par_shutdown();
}

/* ---- batch norm ---- */

/* Fast vs double reference: forward (y, saved stats, running stats) and backward.
 * Tolerance atol 1e-5, rtol 1e-4. */
TEST(ops_bn_fast_matches_ref) {
    Rng r;
    rng_seed(&r, 21);
    const int shapes[][3] = {{4, 3, 25}, {2, 5, 1 * 7}, {1, 2, 36}, {8, 16, 9}};
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        int N = shapes[t][0], C = shapes[t][1], HW = shapes[t][2];
        size_t n = (size_t)N * C * HW;
        float *x = randn(&r, n, 2.0f), *g = randn(&r, C, 1.0f), *be = randn(&r, C, 1.0f), *dy = randn(&r, n, 1.0f);
        for (size_t i = 0; i < n; i++) x[i] += 3.0f; /* a non-zero mean */
        float *rm = randn(&r, C, 1.0f), *rv = randn(&r, C, 1.0f);
        for (int c = 0; c < C; c++) rv[c] = 0.5f + rv[c] * rv[c];
        float *rm2 = copyf(rm, C), *rv2 = copyf(rv, C);
        float *y = xmalloc(n * 4), *y2 = xmalloc(n * 4), *sm = xmalloc(C * 4), *si = xmalloc(C * 4);
        float *sm2 = xmalloc(C * 4), *si2 = xmalloc(C * 4);
        bn_forward_train(N, C, HW, x, g, be, rm, rv, BN_MOMENTUM, BN_EPS, y, sm, si);
        bn_forward_train_ref(N, C, HW, x, g, be, rm2, rv2, BN_MOMENTUM, BN_EPS, y2, sm2, si2);
        char what[96];
        snprintf(what, sizeof what, "bn %d train y", (int)t);
        CHECK_CLOSE(what, y, y2, n, 1e-5f, 1e-4f);
        snprintf(what, sizeof what, "bn %d save_mean", (int)t);
        CHECK_CLOSE(what, sm, sm2, C, 1e-6f, 1e-6f);
        snprintf(what, sizeof what, "bn %d save_invstd", (int)t);
        CHECK_CLOSE(what, si, si2, C, 1e-6f, 1e-6f);
        snprintf(what, sizeof what, "bn %d running_mean", (int)t);
        CHECK_CLOSE(what, rm, rm2, C, 1e-6f, 1e-6f);
        snprintf(what, sizeof what, "bn %d running_var", (int)t);
        CHECK_CLOSE(what, rv, rv2, C, 1e-6f, 1e-6f);
        float *dx = randn(&r, n, 1.0f), *dg = randn(&r, C, 1.0f), *db = randn(&r, C, 1.0f);
        float *dx2 = copyf(dx, n), *dg2 = copyf(dg, C), *db2 = copyf(db, C);
        bn_backward_train(N, C, HW, x, g, sm, si, dy, dx, dg, db);
        bn_backward_train_ref(N, C, HW, x, g, sm, si, dy, dx2, dg2, db2);
        snprintf(what, sizeof what, "bn %d train dx", (int)t);
        CHECK_CLOSE(what, dx, dx2, n, 1e-5f, 1e-4f);
        snprintf(what, sizeof what, "bn %d train dgamma", (int)t);
        CHECK_CLOSE(what, dg, dg2, C, 1e-5f, 1e-4f);
        snprintf(what, sizeof what, "bn %d train dbeta", (int)t);
        CHECK_CLOSE(what, db, db2, C, 1e-5f, 1e-4f);
        /* eval forward vs the formula in double */
        bn_forward_eval(N, C, HW, x, g, be, rm, rv, BN_EPS, y);
        for (int b = 0; b < N; b++)
            for (int c = 0; c < C; c++)
                for (int p = 0; p < HW; p++) {
                    size_t i = ((size_t)b * C + c) * HW + p;
                    y2[i] = (float)(((double)x[i] - rm[c]) / sqrt((double)rv[c] + BN_EPS) * g[c] + be[c]);
                }
        snprintf(what, sizeof what, "bn %d eval y", (int)t);
        CHECK_CLOSE(what, y, y2, n, 1e-5f, 1e-4f);
        free(x); free(g); free(be); free(dy); free(rm); free(rv); free(rm2); free(rv2);
        free(y); free(y2); free(sm); free(si); free(sm2); free(si2);
        free(dx); free(dg); free(db); free(dx2); free(dg2); free(db2);
    }
}

typedef struct {
    int N, C, HW, train;
    const float *x, *g, *b, *rm, *rv, *r;
    float *y;
} BnLoss;

static double bn_loss(void *p) {
    BnLoss *c = p;
    size_t n = (size_t)c->N * c->C * c->HW;
    if (c->train) bn_forward_train_ref(c->N, c->C, c->HW, c->x, c->g, c->b, NULL, NULL, 0.1f, BN_EPS, c->y, NULL, NULL);
    else bn_forward_eval(c->N, c->C, c->HW, c->x, c->g, c->b, c->rm, c->rv, BN_EPS, c->y);
    return dot(c->r, c->y, n);
}

/* Train mode is non-linear in x: step 1e-2 on x of spread ~1, and the float output
 * rounding (~1e-7 * |L| / h) allow atol 2e-3, rtol 2e-3. Eval is linear. */
TEST(ops_bn_grad_finite_difference) {
    Rng r;
    rng_seed(&r, 22);
    const int N = 3, C = 4, HW = 10;
    size_t n = (size_t)N * C * HW;
    float *x = randn(&r, n, 1.0f), *g = randn(&r, C, 1.0f), *be = randn(&r, C, 1.0f), *rr = randn(&r, n, 1.0f);
    float *rm = randn(&r, C, 0.5f), *rv = randn(&r, C, 1.0f), *y = xmalloc(n * 4);
    for (int c = 0; c < C; c++) rv[c] = 0.5f + rv[c] * rv[c];
    for (int train = 1; train >= 0; train--) {
        float *sm = xmalloc(C * 4), *si = xmalloc(C * 4);
        float *dx = xcalloc(n, 4), *dg = xcalloc(C, 4), *db = xcalloc(C, 4);
        const char *mode = train ? "train" : "eval";
        char what[64];
        if (train) {
            bn_forward_train(N, C, HW, x, g, be, NULL, NULL, 0.1f, BN_EPS, y, sm, si);
            bn_backward_train(N, C, HW, x, g, sm, si, rr, dx, dg, db);
        } else {
            bn_backward_eval(N, C, HW, x, g, rm, rv, BN_EPS, rr, dx, dg, db);
        }
        BnLoss L = {N, C, HW, train, x, g, be, rm, rv, rr, y};
        snprintf(what, sizeof what, "bn %s dx vs fd", mode);
        check_fd(what, bn_loss, &L, x, dx, n, 60, 1e-2f, 2e-3f, 2e-3f, &r);
        snprintf(what, sizeof what, "bn %s dgamma vs fd", mode);
        check_fd(what, bn_loss, &L, g, dg, C, 60, 1e-2f, 2e-3f, 2e-3f, &r);
        snprintf(what, sizeof what, "bn %s dbeta vs fd", mode);
        check_fd(what, bn_loss, &L, be, db, C, 60, 1e-2f, 2e-3f, 2e-3f, &r);
        free(sm); free(si); free(dx); free(dg); free(db);
    }
    free(x); free(g); free(be); free(rr); free(rm); free(rv); free(y);
}

/* Eval mode: an image's output does not depend on the batch; train-mode running
 * statistics with NULL running buffers are simply not updated. */
TEST(ops_bn_eval_per_image) {
    Rng r;
    rng_seed(&r, 23);
    const int N = 4, C = 3, HW = 5;
    size_t n = (size_t)N * C * HW, is = (size_t)C * HW;
    float *x = randn(&r, n, 1.0f), *g = randn(&r, C, 1.0f), *be = randn(&r, C, 1.0f);
    float *rm = randn(&r, C, 1.0f), *rv = randn(&r, C, 1.0f), *y = xmalloc(n * 4), *y1 = xmalloc(is * 4);
    for (int c = 0; c < C; c++) rv[c] = 1.0f + rv[c] * rv[c];
    par_init(2);
    bn_forward_eval(N, C, HW, x, g, be, rm, rv, BN_EPS, y);
    for (int b = 0; b < N; b++) {
        bn_forward_eval(1, C, HW, x + b * is, g, be, rm, rv, BN_EPS, y1);
        CHECKF(bitwise_equal(y1, y + b * is, is), "image %d: eval output depends on the batch", b);
    }
    par_shutdown();
    free(x); free(g); free(be); free(rm); free(rv); free(y); free(y1);
}

/* ---- pooling ---- */

typedef struct {
    int N, C, H, W, k, s, p, Ho, Wo, maxpool;
    const float *x, *r;
    float *y;
    int32_t *am;
} PoolLoss;

static double pool_loss(void *p) {
    PoolLoss *c = p;
    if (c->maxpool) maxpool_forward(c->N, c->C, c->H, c->W, c->k, c->s, c->p, c->x, c->y, c->am);
    else adaptive_avgpool_forward(c->N, c->C, c->H, c->W, c->Ho, c->Wo, c->x, c->y);
    return dot(c->r, c->y, (size_t)c->N * c->C * c->Ho * c->Wo);
}

/* Max pool on tie-free inputs (a shuffled ramp with steps of 0.01 and a step of
 * 1e-3), and adaptive average pool (linear): both are exact under central
 * differences up to output rounding; atol 1e-3, rtol 1e-3. */
TEST(ops_pool_grad_finite_difference) {
    Rng r;
    rng_seed(&r, 31);
    const int mp[][7] = {{2, 3, 9, 8, 3, 2, 1}, {1, 2, 8, 8, 2, 2, 0}, {2, 2, 7, 5, 3, 1, 1}};
    for (size_t t = 0; t < sizeof mp / sizeof mp[0]; t++) {
        int N = mp[t][0], C = mp[t][1], H = mp[t][2], W = mp[t][3], k = mp[t][4], s = mp[t][5], p = mp[t][6];
        int Ho = pool_out_size(H, k, s, p), Wo = pool_out_size(W, k, s, p);
        size_t nx = (size_t)N * C * H * W, ny = (size_t)N * C * Ho * Wo;
        int *perm = xmalloc(nx * sizeof(int));
        for (size_t i = 0; i < nx; i++) perm[i] = (int)i;
        rng_shuffle(&r, perm, (int)nx);
        float *x = xmalloc(nx * 4), *rr = randn(&r, ny, 1.0f), *y = xmalloc(ny * 4), *dx = xcalloc(nx, 4);
        for (size_t i = 0; i < nx; i++) x[i] = 0.01f * (float)perm[i] - 1.0f;
        int32_t *am = xmalloc(ny * sizeof(int32_t));
        maxpool_forward(N, C, H, W, k, s, p, x, y, am);
        maxpool_backward(N, C, H, W, k, s, p, am, rr, dx);
        PoolLoss L = {N, C, H, W, k, s, p, Ho, Wo, 1, x, rr, y, am};
        char what[64];
        snprintf(what, sizeof what, "maxpool %d dx vs fd", (int)t);
        check_fd(what, pool_loss, &L, x, dx, nx, 1000, 1e-3f, 1e-3f, 1e-3f, &r);
        free(perm); free(x); free(rr); free(y); free(dx); free(am);
    }
    const int ap[][6] = {{2, 2, 1, 1, 7, 7}, {1, 3, 5, 5, 7, 7}, {2, 2, 9, 7, 3, 3}, {1, 2, 7, 7, 1, 1}, {1, 2, 6, 10, 4, 3}};
    for (size_t t = 0; t < sizeof ap / sizeof ap[0]; t++) {
        int N = ap[t][0], C = ap[t][1], H = ap[t][2], W = ap[t][3], Ho = ap[t][4], Wo = ap[t][5];
        size_t nx = (size_t)N * C * H * W, ny = (size_t)N * C * Ho * Wo;
        float *x = randn(&r, nx, 1.0f), *rr = randn(&r, ny, 1.0f), *y = xmalloc(ny * 4), *dx = xcalloc(nx, 4);
        adaptive_avgpool_backward(N, C, H, W, Ho, Wo, rr, dx);
        PoolLoss L = {N, C, H, W, 0, 0, 0, Ho, Wo, 0, x, rr, y, NULL};
        char what[64];
        snprintf(what, sizeof what, "avgpool %dx%d->%dx%d dx vs fd", H, W, Ho, Wo);
        check_fd(what, pool_loss, &L, x, dx, nx, 1000, 0.25f, 1e-3f, 1e-3f, &r);
        free(x); free(rr); free(y); free(dx);
    }
}

/* Hand-made cases: ties go to the first maximum, padding never wins, NaN wins. */
TEST(ops_maxpool_ties_and_padding) {
    /* 1x1x2x4, k2 s2: windows {1,1 / 1,1} and {-3,-3 / -3,-3} */
    const float x[8] = {1, 1, -3, -3, 1, 1, -3, -3};
    float y[2];
    int32_t am[2];
    maxpool_forward(1, 1, 2, 4, 2, 2, 0, x, y, am);
    CHECK(y[0] == 1.0f && am[0] == 0);
    CHECK(y[1] == -3.0f && am[1] == 2);
    /* k3 s2 p1 on all-negative 3x3: the first window covers rows 0..1, cols 0..1 */
    const float z[9] = {-5, -2, -7, -2, -9, -1, -8, -8, -8};
    float yz[4];
    int32_t az[4];
    maxpool_forward(1, 1, 3, 3, 3, 2, 1, z, yz, az);
    CHECK(yz[0] == -2.0f && az[0] == 1);
    CHECK(yz[1] == -1.0f && az[1] == 5);
    CHECK(yz[2] == -2.0f && az[2] == 3);
    CHECK(yz[3] == -1.0f && az[3] == 5);
    float dz[9] = {0};
    const float g[4] = {1, 2, 3, 4};
    maxpool_backward(1, 1, 3, 3, 3, 2, 1, az, g, dz);
    CHECK(dz[1] == 1.0f && dz[5] == 6.0f && dz[3] == 3.0f && dz[0] == 0.0f);
    const float q[4] = {1, NAN, 5, 2};
    float yq[1];
    int32_t aq[1];
    maxpool_forward(1, 1, 2, 2, 2, 2, 0, q, yq, aq);
    CHECK(isnan(yq[0]) && aq[0] == 1);
}

/* maxpool_backward_relu against its three steps apart (zeros, maxpool_backward,
 * relu_backward_set), bitwise, for each rule: VGG's 2x2/2 and ResNet's overlapping
 * 3x3/2 pad 1 (a position may take several gradients), odd sizes (a rest shorter
 * than a block), dx full of NaN beforehand, 1 and 2 threads. */
TEST(ops_maxpool_backward_relu_bitwise) {
    static const int cases[][4] = {{2, 2, 0, 9}, {3, 2, 1, 13}, {2, 2, 0, 32}, {3, 2, 1, 56}};
    Rng r;
    rng_seed(&r, 77);
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const int k = cases[t][0], st = cases[t][1], pd = cases[t][2], H = cases[t][3], N = 2, C = 24;
        const int Ho = pool_out_size(H, k, st, pd);
        const size_t nx = (size_t)N * C * H * H, ny = (size_t)N * C * Ho * Ho;
        float *x = randn(&r, nx, 1.0f), *y = xmalloc(ny * 4), *dy = randn(&r, ny, 1.0f);
        float *d0 = xmalloc(nx * 4), *d1 = xmalloc(nx * 4);
        int32_t *am = xmalloc(ny * sizeof(int32_t));
        relu_forward(nx, x, x); /* the ReLU's output, with exact zeros */
        maxpool_forward(N, C, H, H, k, st, pd, x, y, am);
        for (int rule = 0; rule < 3; rule++)
            for (int th = 1; th <= 2; th++) {
                par_init(th);
                memset(d0, 0, nx * 4);
                maxpool_backward(N, C, H, H, k, st, pd, am, dy, d0);
                relu_backward_set(nx, x, d0, d0, (ReluRule)rule);
                for (size_t i = 0; i < nx; i++) d1[i] = NAN;
                maxpool_backward_relu(N, C, H, H, k, st, pd, am, dy, x, (ReluRule)rule, d1);
                CHECKF(bitwise_equal(d0, d1, nx), "case %d rule %d threads %d: fused differs", (int)t, rule, th);
            }
        free(x); free(y); free(dy); free(d0); free(d1); free(am);
    }
}

/* Maxpool's vectorised stride-2 rows against a plain scan with PyTorch's rules
 * (first maximum in row-major order, a NaN takes over), on data full of ties, with
 * NaNs and -inf: bitwise values and indices, odd and even sizes, 1 and 2 threads. */
TEST(ops_maxpool_fast_rows) {
    Rng r;
    rng_seed(&r, 35);
    /* the last four take the small-plane path (16 planes at a time; 36 and 35 planes
     * leave partial groups, split between threads) */
    static const int cases[][7] = {{2, 3, 37, 40, 2, 2, 0}, {2, 3, 35, 34, 3, 2, 1}, {1, 2, 16, 16, 3, 2, 1},
                                   {3, 2, 33, 35, 3, 1, 1}, {1, 3, 112, 112, 3, 2, 1}, {4, 9, 16, 16, 3, 2, 1},
                                   {5, 7, 5, 7, 2, 2, 0},   {2, 5, 9, 9, 3, 1, 1},    {3, 1, 2, 3, 2, 1, 1}};
    for (int th = 1; th <= 2; th++) {
        par_init(th);
        for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
            const int N = cases[t][0], C = cases[t][1], H = cases[t][2], W = cases[t][3];
            const int k = cases[t][4], s = cases[t][5], p = cases[t][6];
            const int Ho = pool_out_size(H, k, s, p), Wo = pool_out_size(W, k, s, p);
            size_t nx = (size_t)N * C * H * W, ny = (size_t)N * C * Ho * Wo;
            float *x = xmalloc(nx * 4), *y = xmalloc(ny * 4), *yr = xmalloc(ny * 4);
            int32_t *am = xmalloc(ny * 4), *amr = xmalloc(ny * 4);
            for (size_t i = 0; i < nx; i++) {
                uint32_t u = rng_below(&r, 200);
                x[i] = u == 0 ? NAN : u == 1 ? -INFINITY : (float)(u % 7);
            }
            maxpool_forward(N, C, H, W, k, s, p, x, y, am);
            for (int nc = 0; nc < N * C; nc++)
                for (int oh = 0; oh < Ho; oh++)
                    for (int ow = 0; ow < Wo; ow++) {
                        float m = -INFINITY;
                        int32_t a = -1;
                        for (int ih = oh * s - p; ih < oh * s - p + k; ih++)
                            for (int iw = ow * s - p; iw < ow * s - p + k; iw++) {
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                float v = x[((size_t)nc * H + ih) * W + iw];
                                if (a < 0) a = ih * W + iw;
                                if (v > m || isnan(v)) { m = v; a = ih * W + iw; }
                            }
                        yr[((size_t)nc * Ho + oh) * Wo + ow] = m;
                        amr[((size_t)nc * Ho + oh) * Wo + ow] = a;
                    }
            CHECKF(!memcmp(y, yr, ny * 4), "maxpool case %d threads %d: values differ", (int)t, th);
            CHECKF(!memcmp(am, amr, ny * 4), "maxpool case %d threads %d: argmax differs", (int)t, th);
            free(x); free(y); free(yr); free(am); free(amr);
        }
    }
    par_shutdown();
}

/* ---- linear ---- */

typedef struct {
    int N, I, O;
    const float *x, *w, *b, *r;
    float *y;
} LinLoss;

static double lin_loss(void *p) {
    LinLoss *c = p;
    linear_forward_ref(c->N, c->I, c->O, c->x, c->w, c->b, c->y);
    return dot(c->r, c->y, (size_t)c->N * c->O);
}

/* Fast vs reference (atol 3e-5, rtol 1e-4: float sums of up to 300 terms of order 1
 * can cancel to small results), finite differences (linear, exact up to rounding;
 * atol 1e-3, rtol 1e-3), and each row independent of the batch (bitwise). */
TEST(ops_linear) {
    Rng r;
    rng_seed(&r, 41);
    /* {11, 2100, 530} crosses every tile and chunk edge of the fast kernels; in
     * {10, 300, 1100} the input gradient goes through gemm for the batch and through
     * the streaming kernel for a row alone, over two of gemm's k-blocks; {3, 1030,
     * 1300} streams a batch of three rows (the most it takes) over two k-blocks */
    const int shapes[][3] = {{1, 7, 3},       {5, 33, 10},  {4, 300, 17},    {64, 100, 100},
                             {11, 2100, 530}, {45, 70, 21}, {10, 300, 1100}, {3, 1030, 1300}};
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        int N = shapes[t][0], I = shapes[t][1], O = shapes[t][2];
        size_t nx = (size_t)N * I, nw = (size_t)O * I, ny = (size_t)N * O;
        float *x = randn(&r, nx, 1.0f), *w = randn(&r, nw, 0.2f), *b = randn(&r, O, 1.0f), *dy = randn(&r, ny, 1.0f);
        float *y = xmalloc(ny * 4), *y2 = xmalloc(ny * 4), *y1 = xmalloc(O * 4);
        linear_forward(N, I, O, x, w, b, y);
        linear_forward_ref(N, I, O, x, w, b, y2);
        char what[64];
        snprintf(what, sizeof what, "linear %d y", (int)t);
        CHECK_CLOSE(what, y, y2, ny, 3e-5f, 1e-4f);
        int same = 1;
        for (int n = 0; n < N; n++) {
            linear_forward(1, I, O, x + (size_t)n * I, w, b, y1);
            same &= bitwise_equal(y1, y + (size_t)n * O, O);
        }
        CHECKF(same, "linear %d: a row alone differs from in the batch", (int)t);
        /* the streaming forward: close to the reference, rows independent of the batch
         * (alone, and in the first and second block of 32 rows), 1 vs 2 threads */
        {
            Workspace ws;
            ws_init(&ws);
            ws_reserve(&ws, linear_scratch_bytes(I));
            float *yw = xmalloc(ny * 4), *yw2 = xmalloc(ny * 4);
            par_init(1);
            linear_forward_ws(N, I, O, x, w, b, yw, &ws);
            par_init(2);
            linear_forward_ws(N, I, O, x, w, b, yw2, &ws);
            snprintf(what, sizeof what, "linear %d y (ws)", (int)t);
            CHECK_CLOSE(what, yw, y2, ny, 3e-5f, 1e-4f);
            CHECKF(bitwise_equal(yw, yw2, ny), "linear %d: y (ws) differs between 1 and 2 threads", (int)t);
            same = 1;
            for (int n = 0; n < N; n++) {
                linear_forward_ws(1, I, O, x + (size_t)n * I, w, b, y1, &ws);
                same &= bitwise_equal(y1, yw + (size_t)n * O, O);
            }
            CHECKF(same, "linear %d: a row alone differs from in the batch (ws)", (int)t);
            CHECK(ws.used == 0);
            linear_forward_ws(N, I, O, x, w, NULL, yw, &ws);
            linear_forward_ref(N, I, O, x, w, NULL, yw2);
            snprintf(what, sizeof what, "linear %d y no bias (ws)", (int)t);
            CHECK_CLOSE(what, yw, yw2, ny, 3e-5f, 1e-4f);
            par_init(0);
            ws_free(&ws);
            free(yw); free(yw2);
        }
        /* input gradient rows too (onto non-zero dx), and 1 vs 2 threads */
        {
            float *g0 = randn(&r, nx, 1.0f), *g[2], *gw[2], *yt = xmalloc(ny * 4), *g1 = xmalloc(I * 4);
            for (int th = 0; th < 2; th++) {
                par_init(th + 1);
                g[th] = copyf(g0, nx);
                gw[th] = xcalloc(nw, 4);
                linear_backward(N, I, O, x, w, dy, g[th], gw[th], NULL);
            }
            linear_forward(N, I, O, x, w, b, yt);
            CHECKF(bitwise_equal(yt, y, ny), "linear %d: y differs between 1 and 2 threads", (int)t);
            CHECKF(bitwise_equal(g[0], g[1], nx), "linear %d: dx differs between 1 and 2 threads", (int)t);
            CHECKF(bitwise_equal(gw[0], gw[1], nw), "linear %d: dw differs between 1 and 2 threads", (int)t);
            same = 1;
            for (int n = 0; n < N; n++) {
                memcpy(g1, g0 + (size_t)n * I, I * 4);
                linear_backward(1, I, O, x + (size_t)n * I, w, dy + (size_t)n * O, g1, NULL, NULL);
                same &= bitwise_equal(g1, g[1] + (size_t)n * I, I);
            }
            CHECKF(same, "linear %d: a dx row alone differs from in the batch", (int)t);
            par_init(0);
            free(g0); free(g[0]); free(g[1]); free(gw[0]); free(gw[1]); free(yt); free(g1);
        }
        float *dx = randn(&r, nx, 1.0f), *dw = randn(&r, nw, 1.0f), *db = randn(&r, O, 1.0f);
        float *dx2 = copyf(dx, nx), *dw2 = copyf(dw, nw), *db2 = copyf(db, O);
        linear_backward(N, I, O, x, w, dy, dx, dw, db);
        linear_backward_ref(N, I, O, x, w, dy, dx2, dw2, db2);
        snprintf(what, sizeof what, "linear %d dx", (int)t);
        CHECK_CLOSE(what, dx, dx2, nx, 3e-5f, 1e-4f);
        snprintf(what, sizeof what, "linear %d dw", (int)t);
        CHECK_CLOSE(what, dw, dw2, nw, 3e-5f, 1e-4f);
        snprintf(what, sizeof what, "linear %d db", (int)t);
        CHECK_CLOSE(what, db, db2, O, 3e-5f, 1e-4f);
        /* finite differences of the fast backward from zero */
        memset(dx, 0, nx * 4); memset(dw, 0, nw * 4); memset(db, 0, O * 4);
        linear_backward(N, I, O, x, w, dy, dx, dw, db);
        LinLoss L = {N, I, O, x, w, b, dy, y2};
        snprintf(what, sizeof what, "linear %d dx vs fd", (int)t);
        check_fd(what, lin_loss, &L, x, dx, nx, 30, 0.25f, 1e-3f, 1e-3f, &r);
        snprintf(what, sizeof what, "linear %d dw vs fd", (int)t);
        check_fd(what, lin_loss, &L, w, dw, nw, 30, 0.25f, 1e-3f, 1e-3f, &r);
        snprintf(what, sizeof what, "linear %d db vs fd", (int)t);
        check_fd(what, lin_loss, &L, b, db, O, 30, 0.25f, 1e-3f, 1e-3f, &r);
        /* NULL bias and NULL gradients */
        linear_forward(N, I, O, x, w, NULL, y);
        linear_forward_ref(N, I, O, x, w, NULL, y2);
        snprintf(what, sizeof what, "linear %d y no bias", (int)t);
        CHECK_CLOSE(what, y, y2, ny, 3e-5f, 1e-4f);
        linear_backward(N, I, O, x, w, dy, NULL, NULL, NULL);
        free(x); free(w); free(b); free(dy); free(y); free(y2); free(y1);
        free(dx); free(dw); free(db); free(dx2); free(dw2); free(db2);
    }
}

/* Folded weights for an input that repeats each value B times (the average pool of
 * a 1x1 map before VGG's classifier): y and dw through linear_fold/unfold against the
 * reference on the repeated input. atol 1e-5, rtol 1e-4 (sums of ~100 terms). */
TEST(ops_linear_fold) {
    Rng r;
    rng_seed(&r, 43);
    const int N = 5, C = 7, B = 9, O = 13, I = C * B;
    float *x = randn(&r, (size_t)N * C, 1.0f), *w = randn(&r, (size_t)O * I, 0.3f), *b = randn(&r, O, 1.0f);
    float *dy = randn(&r, (size_t)N * O, 1.0f), *xf = xmalloc((size_t)N * I * 4), *wf = xmalloc((size_t)O * C * 4);
    float *y = xmalloc((size_t)N * O * 4), *yr = xmalloc((size_t)N * O * 4);
    float *dw = randn(&r, (size_t)O * I, 1.0f), *dwr = copyf(dw, (size_t)O * I), *dwf = xcalloc((size_t)O * C, 4);
    for (int n = 0; n < N; n++)
        for (int i = 0; i < I; i++) xf[n * I + i] = x[n * C + i / B];
    Workspace ws;
    ws_init(&ws);
    ws_reserve(&ws, linear_scratch_bytes(C));
    linear_fold(O, C, B, w, wf);
    linear_forward_ws(N, C, O, x, wf, b, y, &ws);
    linear_forward_ref(N, I, O, xf, w, b, yr);
    CHECK_CLOSE("folded linear y", y, yr, (size_t)N * O, 1e-5f, 1e-4f);
    linear_backward(N, C, O, x, wf, dy, NULL, dwf, NULL);
    linear_unfold_add(O, C, B, dwf, dw);
    linear_backward_ref(N, I, O, xf, w, dy, NULL, dwr, NULL);
    CHECK_CLOSE("folded linear dw", dw, dwr, (size_t)O * I, 1e-5f, 1e-4f);
    ws_free(&ws);
    free(x); free(w); free(b); free(dy); free(xf); free(wf); free(y); free(yr); free(dw); free(dwr); free(dwf);
}

/* conv2d_backward_fresh with dx_fresh: every input-gradient route (wide blocks, small
 * planes, stride classes, col2im, 1x1 maps, classes no tap reaches) writes dx with
 * exactly the bits of conv2d_backward onto zeros, whatever dx held (NaN here); and
 * with a ReLU's output given, the bits of relu_backward_set after that, each rule. */
TEST(ops_conv_dx_fresh_bitwise) {
    Rng r;
    rng_seed(&r, 49);
    static const ConvCase cases[] = {{2, 40, 12, 64, 130, 3, 3, 1, 1, 1, 1, 0}, {3, 5, 9, 9, 7, 3, 3, 1, 1, 1, 1, 1},
                                     {2, 4, 30, 101, 6, 5, 5, 2, 2, 2, 2, 1},  {2, 3, 80, 76, 16, 7, 7, 2, 2, 3, 3, 1},
                                     {4, 6, 1, 1, 9, 3, 3, 1, 1, 1, 1, 1},     {3, 4, 7, 7, 6, 1, 1, 2, 2, 0, 0, 0},
                                     {2, 3, 52, 27, 8, 3, 3, 1, 1, 1, 1, 0},   {2, 64, 10, 10, 112, 3, 3, 1, 1, 1, 1, 0},
                                     {3, 68, 15, 17, 64, 3, 3, 1, 1, 1, 1, 0}, /* Winograd */
                                     {1, 200, 14, 14, 72, 3, 3, 1, 1, 1, 1, 1}}; /* its channel split */
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const ConvCase *c = &cases[t];
        ConvShape s = conv_shape(c->N, c->C, c->H, c->W, c->K, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw);
        size_t nx = (size_t)s.N * s.C * s.H * s.W, ny = (size_t)s.N * s.K * s.Ho * s.Wo;
        float *w = randn(&r, (size_t)s.K * s.C * s.kh * s.kw, 0.3f), *dy = randn(&r, ny, 1.0f);
        float *d0 = xcalloc(nx, 4), *d1 = xmalloc(nx * 4);
        for (size_t i = 0; i < nx; i++) d1[i] = NAN;
        Workspace ws;
        conv_reserve(&ws, &s);
        conv2d_backward(&s, NULL, w, dy, d0, NULL, NULL, &ws);
        conv2d_backward_fresh(&s, NULL, w, NULL, dy, d1, 1, NULL, RELU_STANDARD, NULL, NULL, &ws);
        CHECKF(bitwise_equal(d0, d1, nx), "conv case %d: fresh dx differs from dx onto zeros", (int)t);
        /* with the backward of a ReLU before the conv applied in the same pass */
        float *yr = randn(&r, nx, 1.0f), *d2 = xmalloc(nx * 4);
        relu_forward(nx, yr, yr);
        for (int rule = 0; rule < 3; rule++) {
            relu_backward_set(nx, yr, d0, d2, (ReluRule)rule);
            for (size_t i = 0; i < nx; i++) d1[i] = NAN;
            conv2d_backward_fresh(&s, NULL, w, NULL, dy, d1, 1, yr, (ReluRule)rule, NULL, NULL, &ws);
            CHECKF(bitwise_equal(d2, d1, nx), "conv case %d rule %d: dx through the ReLU differs", (int)t, rule);
        }
        free(yr); free(d2);
        ws_free(&ws);
        free(w); free(dy); free(d0); free(d1);
    }
}

/* Every route of the forward (bordered planes for small images, the general gather in
 * pieces, wide blocks over one and two k-blocks, rectangular kernels) gives each output
 * exactly the bits of one gemm element over the im2col matrix plus the bias: the
 * determinism contract of conv.c, checked through gemm's own contract. */
TEST(ops_conv_forward_is_gemm_bitwise) {
    Rng r;
    rng_seed(&r, 48);
    static const ConvCase cases[] = {{3, 5, 9, 9, 7, 3, 3, 1, 1, 1, 1, 1},    {2, 3, 52, 27, 8, 3, 3, 1, 1, 1, 1, 0},
                                     {2, 120, 20, 50, 8, 3, 3, 1, 1, 1, 1, 1}, {2, 6, 9, 70, 12, 3, 3, 1, 1, 1, 1, 1},
                                     {1, 3, 5, 61, 4, 3, 5, 1, 1, 0, 2, 1},    {2, 4, 30, 101, 6, 5, 5, 2, 2, 2, 2, 1},
                                     /* the direct route: stride 1 over two k-blocks, stride 2, 3x5 taps */
                                     {4, 120, 9, 10, 70, 3, 3, 1, 1, 1, 1, 1}, {8, 5, 13, 11, 66, 3, 3, 2, 2, 1, 1, 1},
                                     {4, 6, 8, 12, 96, 3, 5, 1, 1, 1, 2, 1}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const ConvCase *c = &cases[t];
        ConvShape s = conv_shape(c->N, c->C, c->H, c->W, c->K, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw);
        const int P = s.Ho * s.Wo, R = s.C * s.kh * s.kw;
        size_t nx = (size_t)s.N * s.C * s.H * s.W, ny = (size_t)s.N * s.K * P;
        float *x = randn(&r, nx, 1.0f), *w = randn(&r, (size_t)s.K * R, 0.3f), *b = randn(&r, s.K, 1.0f);
        float *y = xmalloc(ny * 4), *ye = xmalloc(ny * 4), *cols = xmalloc((size_t)R * P * 4);
        Workspace ws;
        conv_reserve(&ws, &s);
        conv2d_forward(&s, x, w, b, y, &ws);
        for (int n = 0; n < s.N; n++) {
            const float *xn = x + (size_t)n * s.C * s.H * s.W;
            for (int row = 0; row < R; row++) {
                const int ch = row / (s.kh * s.kw), i = row / s.kw % s.kh, j = row % s.kw;
                for (int p = 0; p < P; p++) {
                    const int ih = p / s.Wo * s.sh - s.ph + i, iw = p % s.Wo * s.sw - s.pw + j;
                    const int in = ih >= 0 && ih < s.H && iw >= 0 && iw < s.W;
                    cols[(size_t)row * P + p] = in ? xn[((size_t)ch * s.H + ih) * s.W + iw] : 0.0f;
                }
            }
            float *yn = ye + (size_t)n * s.K * P;
            gemm(0, 0, s.K, P, R, 1.0f, w, R, cols, P, 0.0f, yn, P);
            for (int k = 0; k < s.K; k++)
                for (int p = 0; p < P; p++) yn[(size_t)k * P + p] += b[k];
        }
        CHECKF(bitwise_equal(y, ye, ny), "conv case %d: forward differs from gemm over im2col", (int)t);
        ws_free(&ws);
        free(x); free(w); free(b); free(y); free(ye); free(cols);
    }
}

/* The forwards that apply a following ReLU as they write give exactly the bits of the
 * plain forward followed by relu_forward: conv (grouped and in pieces, with and
 * without bias, a 1x1 map, wide blocks; also with eval-mode batch norm applied in its
 * epilogue), batch norm (train and eval), the residual add. */
TEST(ops_fused_relu_bitwise) {
    Rng r;
    rng_seed(&r, 47);
    static const ConvCase cases[] = {{3, 5, 9, 9, 7, 3, 3, 1, 1, 1, 1, 1}, {2, 3, 52, 27, 8, 3, 3, 1, 1, 1, 1, 0},
                                     {2, 4, 13, 11, 6, 3, 3, 2, 2, 1, 1, 1}, {4, 6, 1, 1, 9, 3, 3, 1, 1, 1, 1, 1},
                                     {2, 3, 9, 60, 8, 3, 3, 1, 1, 1, 1, 1}, {8, 6, 9, 9, 64, 3, 3, 1, 1, 1, 1, 1},
                                     {8, 6, 9, 9, 64, 3, 3, 1, 1, 1, 1, 0},
                                     /* Winograd, with and without bias */
                                     {2, 64, 15, 17, 68, 3, 3, 1, 1, 1, 1, 1}, {2, 64, 15, 17, 68, 3, 3, 1, 1, 1, 1, 0}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const ConvCase *c = &cases[t];
        ConvShape s = conv_shape(c->N, c->C, c->H, c->W, c->K, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw);
        size_t nx = (size_t)s.N * s.C * s.H * s.W, ny = (size_t)s.N * s.K * s.Ho * s.Wo;
        float *x = randn(&r, nx, 1.0f), *w = randn(&r, (size_t)s.K * s.C * s.kh * s.kw, 0.3f);
        float *b = c->bias ? randn(&r, s.K, 1.0f) : NULL, *y1 = xmalloc(ny * 4), *y2 = xmalloc(ny * 4);
        Workspace ws;
        conv_reserve(&ws, &s);
        conv2d_forward(&s, x, w, b, y1, &ws);
        relu_forward(ny, y1, y1);
        conv2d_forward_act(&s, x, w, b, y2, 1, &ws);
        CHECKF(bitwise_equal(y1, y2, ny), "conv case %d: fused ReLU differs", (int)t);
        /* eval-mode batch norm (and its ReLU) in the convolution's epilogue */
        float *g = randn(&r, s.K, 1.0f), *be = randn(&r, s.K, 0.5f), *rm = randn(&r, s.K, 0.3f);
        float *rv = xmalloc(s.K * 4), *sc = xmalloc(s.K * 4), *sh = xmalloc(s.K * 4);
        for (int k = 0; k < s.K; k++) rv[k] = 0.3f + 0.1f * (float)k;
        bn_eval_affine(s.K, g, be, rm, rv, BN_EPS, sc, sh);
        for (int relu = 0; relu <= 1; relu++) {
            conv2d_forward(&s, x, w, b, y1, &ws);
            bn_forward_eval_act(s.N, s.K, s.Ho * s.Wo, y1, g, be, rm, rv, BN_EPS, y1, relu);
            conv2d_forward_affine(&s, x, w, NULL, b, sc, sh, y2, relu, &ws);
            CHECKF(bitwise_equal(y1, y2, ny), "conv case %d relu %d: batch norm in the epilogue differs", (int)t, relu);
        }
        free(g); free(be); free(rm); free(rv); free(sc); free(sh);
        ws_free(&ws);
        free(x); free(w); free(b); free(y1); free(y2);
    }
    const int N = 3, C = 5, HW = 37;
    const size_t n = (size_t)N * C * HW;
    float *x = randn(&r, n, 1.0f), *g = randn(&r, C, 1.0f), *be = randn(&r, C, 0.5f), *rm = randn(&r, C, 0.2f);
    float *rv = xmalloc(C * 4), *y1 = xmalloc(n * 4), *y2 = xmalloc(n * 4), *a2 = randn(&r, n, 1.0f);
    float sm[5], si[5];
    for (int k = 0; k < C; k++) rv[k] = 0.5f + (float)k;
    bn_forward_train(N, C, HW, x, g, be, NULL, NULL, BN_MOMENTUM, BN_EPS, y1, sm, si);
    relu_forward(n, y1, y1);
    bn_forward_train_act(N, C, HW, x, g, be, NULL, NULL, BN_MOMENTUM, BN_EPS, y2, sm, si, 1);
    CHECKF(bitwise_equal(y1, y2, n), "bn train: fused ReLU differs");
    bn_forward_eval(N, C, HW, x, g, be, rm, rv, BN_EPS, y1);
    relu_forward(n, y1, y1);
    bn_forward_eval_act(N, C, HW, x, g, be, rm, rv, BN_EPS, y2, 1);
    CHECKF(bitwise_equal(y1, y2, n), "bn eval: fused ReLU differs");
    add_forward(n, x, a2, y1);
    relu_forward(n, y1, y1);
    add_relu_forward(n, x, a2, y2);
    CHECKF(bitwise_equal(y1, y2, n), "add: fused ReLU differs");
    free(x); free(g); free(be); free(rm); free(rv); free(y1); free(y2); free(a2);
}

/* Prepared weights (conv_prep): the forward (with bias, batch norm and ReLU in the
 * epilogue) and the input gradient (added, and fresh through a ReLU's backward) give
 * exactly the bits they give without, for Winograd's tile groups and its channel
 * split and the input gradient's direct route, prepared with 2 threads and used with
 * 1 or 2 (the prepared floats are the same either way); shapes with nothing to
 * prepare, or many tiles, report 0. */
TEST(ops_conv_prep_bitwise) {
    Rng r;
    rng_seed(&r, 46);
    static const ConvCase cases[] = {{2, 64, 15, 17, 68, 3, 3, 1, 1, 1, 1, 1},   /* groups of tile rows */
                                     {1, 64, 15, 16, 200, 3, 3, 1, 1, 1, 1, 1},  /* forward: channel split */
                                     {1, 200, 14, 14, 72, 3, 3, 1, 1, 1, 1, 0},  /* dx: channel split */
                                     {2, 64, 7, 7, 128, 3, 3, 1, 1, 1, 1, 1}};  /* dx: direct route */
    static const int has_fwd[] = {1, 1, 1, 0};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const ConvCase *c = &cases[t];
        ConvShape s = conv_shape(c->N, c->C, c->H, c->W, c->K, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw);
        size_t nx = (size_t)s.N * s.C * s.H * s.W, ny = (size_t)s.N * s.K * s.Ho * s.Wo;
        float *x = randn(&r, nx, 1.0f), *w = randn(&r, (size_t)s.K * s.C * 9, 0.3f), *dy = randn(&r, ny, 1.0f);
        float *b = c->bias ? randn(&r, s.K, 1.0f) : NULL, *sc = randn(&r, s.K, 1.0f), *sh = randn(&r, s.K, 0.5f);
        float *yr = randn(&r, nx, 1.0f), *base = randn(&r, nx, 1.0f);
        relu_forward(nx, yr, yr);
        float *y[2], *d[2], *prep[2][2];
        for (int k = 0; k < 2; k++) { y[k] = xmalloc(ny * 4); d[k] = xmalloc(nx * 4); }
        for (int dx = 0; dx < 2; dx++) {
            const size_t f = conv_prep_floats(&s, dx);
            CHECKF((f > 0) == (dx || has_fwd[t]), "conv case %d dx %d: %zu prepared floats", (int)t, dx, f);
            prep[dx][0] = prep[dx][1] = NULL;
            if (!f) continue;
            for (int th = 1; th <= 2; th++) {
                par_init(th);
                prep[dx][th - 1] = xmalloc(f * 4);
                Workspace ws;
                conv_reserve(&ws, &s);
                conv_prep(&s, w, dx, prep[dx][th - 1], &ws);
                ws_free(&ws);
            }
            CHECKF(!memcmp(prep[dx][0], prep[dx][1], f * 4), "conv case %d dx %d: prepared with 1 and 2 threads differ",
                   (int)t, dx);
        }
        for (int th = 1; th <= 2; th++) {
            par_init(th);
            Workspace ws;
            conv_reserve(&ws, &s);
            for (int k = 0; k < 2 && prep[0][1]; k++) /* k = 1: prepared */
                conv2d_forward_affine(&s, x, w, k ? prep[0][1] : NULL, b, sc, sh, y[k], 1, &ws);
            CHECKF(!prep[0][1] || bitwise_equal(y[0], y[1], ny), "conv case %d threads %d: forward differs prepared",
                   (int)t, th);
            for (int fresh = 0; fresh < 2; fresh++) {
                for (int k = 0; k < 2; k++) {
                    memcpy(d[k], base, nx * 4);
                    conv2d_backward_fresh(&s, NULL, w, k ? prep[1][1] : NULL, dy, d[k], fresh, fresh ? yr : NULL,
                                          RELU_GUIDED, NULL, NULL, &ws);
                }
                CHECKF(bitwise_equal(d[0], d[1], nx), "conv case %d threads %d fresh %d: dx differs prepared", (int)t, th,
                       fresh);
            }
            ws_free(&ws);
        }
        for (int k = 0; k < 2; k++) { free(y[k]); free(d[k]); free(prep[k][0]); free(prep[k][1]); }
        free(x); free(w); free(dy); free(b); free(sc); free(sh); free(yr); free(base);
    }
    par_shutdown();
    /* nothing to prepare: other kernels, strides, few channels; or too many tiles */
    static const ConvCase none[] = {{1, 64, 14, 14, 64, 3, 3, 2, 2, 1, 1, 1}, {1, 32, 28, 28, 32, 3, 3, 1, 1, 1, 1, 1},
                                    {1, 64, 14, 14, 64, 1, 1, 1, 1, 0, 0, 1}, {8, 64, 28, 28, 64, 3, 3, 1, 1, 1, 1, 1},
                                    {100, 64, 7, 7, 128, 3, 3, 1, 1, 1, 1, 1}};
    for (size_t t = 0; t < sizeof none / sizeof none[0]; t++) {
        const ConvCase *c = &none[t];
        ConvShape s = conv_shape(c->N, c->C, c->H, c->W, c->K, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw);
        CHECKF(conv_prep_floats(&s, 0) == 0 && conv_prep_floats(&s, 1) == 0, "case %d: prepared floats reported",
               (int)t);
    }
    ConvShape one = conv_shape(1, 64, 28, 28, 64, 3, 3, 1, 1, 1, 1); /* 196 tiles: the same layer at batch 1 */
    CHECK(conv_prep_floats(&one, 0) > 0);
}

/* ---- element-wise ---- */

/* The three ReLU rules on hand-checked values, accumulating onto 1. */
TEST(ops_relu_rules) {
    const float x[6] = {-2, -0.5f, 0, 0.5f, 2, 3};
    const float dy[6] = {1, -1, 2, -3, 4, -0.0f};
    float y[6];
    relu_forward(6, x, y);
    const float ey[6] = {0, 0, 0, 0.5f, 2, 3};
    CHECK(memcmp(y, ey, sizeof y) == 0);
    const float expect[3][6] = {
        {1, 1, 1, -2, 5, 1},  /* standard: 1 + dy * [x > 0] */
        {2, 1, 3, 1, 5, 1},   /* deconv:   1 + relu(dy) */
        {1, 1, 1, 1, 5, 1}};  /* guided:   1 + relu(dy) * [x > 0] */
    for (int rule = 0; rule < 3; rule++) {
        float dx[6] = {1, 1, 1, 1, 1, 1};
        relu_backward(6, y, dy, dx, (ReluRule)rule);
        CHECKF(memcmp(dx, expect[rule], sizeof dx) == 0, "relu rule %d: %g %g %g %g %g %g", rule, dx[0], dx[1],
               dx[2], dx[3], dx[4], dx[5]);
    }
    relu_backward(6, y, dy, NULL, RELU_STANDARD); /* NULL dx: nothing to do */
    /* relu_backward_set: the bits of relu_backward onto zeros (-0 terms included),
     * over whole blocks and a remainder, without reading dx (NaN there is ignored) */
    {
        Rng r;
        rng_seed(&r, 50);
        const size_t n = 1000;
        float *yy = randn(&r, n, 1.0f), *dd = randn(&r, n, 1.0f), *acc = xcalloc(n, 4), *set = xmalloc(n * 4);
        for (size_t i = 0; i < n; i += 7) dd[i] = -0.0f;
        relu_forward(n, yy, yy);
        for (int rule = 0; rule < 3; rule++) {
            memset(acc, 0, n * 4);
            for (size_t i = 0; i < n; i++) set[i] = NAN;
            relu_backward(n, yy, dd, acc, (ReluRule)rule);
            relu_backward_set(n, yy, dd, set, (ReluRule)rule);
            CHECKF(bitwise_equal(acc, set, n), "relu rule %d: relu_backward_set differs", rule);
        }
        free(yy); free(dd); free(acc); free(set);
    }
    float z[6];
    memcpy(z, x, sizeof z);
    relu_forward(6, z, z); /* in place */
    CHECK(memcmp(z, ey, sizeof z) == 0);
}

/* Every element-wise operation's vector blocks against one plain loop per element
 * (the expressions of ops/act.h), bitwise, on data with zeros of both signs, NaN and
 * infinities, 1 and 2 threads, a length with a remainder and one past PAR_MIN. */
TEST(ops_act_blocks_vs_scalar) {
    static const size_t lens[2] = {1003, 70001};
    Rng r;
    rng_seed(&r, 52);
    for (int li = 0; li < 2; li++) {
        const size_t n = lens[li];
        float *a = randn(&r, n, 1.0f), *b = randn(&r, n, 1.0f), *o0 = randn(&r, n, 1.0f);
        float *got = xmalloc(n * 4), *want = xmalloc(n * 4);
        for (size_t i = 0; i < n; i += 11) a[i] = -0.0f;
        for (size_t i = 3; i < n; i += 13) b[i] = 0.0f;
        for (size_t i = 5; i < n; i += 17) b[i] = -0.0f;
        a[1] = NAN; b[2] = NAN; a[4] = INFINITY; b[6] = -INFINITY;
        for (int th = 1; th <= 2; th++) {
            par_init(th);
            for (int op = 0; op < 10; op++) { /* 4-6: relu_backward, 7-9: _set, rules 0-2 */
                const ReluRule rule = (ReluRule)((op - 4) % 3);
                memcpy(got, o0, n * 4);
                if (op == 0) relu_forward(n, a, got);
                else if (op == 1) add_forward(n, a, b, got);
                else if (op == 2) add_relu_forward(n, a, b, got);
                else if (op == 3) add_backward(n, a, got, NULL);
                else if (op < 7) relu_backward(n, a, b, got, rule);
                else relu_backward_set(n, a, b, got, rule);
                for (size_t i = 0; i < n; i++) {
                    float v;
                    if (op == 0) v = a[i] > 0.0f ? a[i] : 0.0f;
                    else if (op == 1) v = a[i] + b[i];
                    else if (op == 2) v = a[i] + b[i] > 0.0f ? a[i] + b[i] : 0.0f;
                    else if (op == 3) v = o0[i] + a[i];
                    else if (op < 7) v = o0[i] + relu_backward_term(rule, a[i], b[i]);
                    else v = 0.0f + relu_backward_term(rule, a[i], b[i]);
                    want[i] = v;
                }
                CHECKF(bitwise_equal(got, want, n), "n %zu threads %d op %d: blocks differ", n, th, op);
            }
        }
        free(a); free(b); free(o0); free(got); free(want);
    }
}

TEST(ops_add) {
    const float a[3] = {1, 2, 3}, b[3] = {10, 20, 30}, dy[3] = {1, -1, 2};
    float y[3], da[3] = {1, 1, 1}, db[3] = {0, 0, 0};
    add_forward(3, a, b, y);
    CHECK(y[0] == 11 && y[1] == 22 && y[2] == 33);
    add_backward(3, dy, da, db);
    CHECK(da[0] == 2 && da[1] == 0 && da[2] == 3);
    CHECK(db[0] == 1 && db[1] == -1 && db[2] == 2);
    add_backward(3, dy, NULL, db);
    CHECK(db[0] == 2 && db[1] == -2 && db[2] == 4);
    add_forward(3, y, a, y); /* aliasing */
    CHECK(y[0] == 12 && y[1] == 24 && y[2] == 36);
}

/* Train: about 1-p kept (10000 draws, within 3%), kept units scaled by 1/(1-p),
 * the same seed gives the same mask, another seed another mask; the backward uses
 * the mask. Eval: identity both ways. */
TEST(ops_dropout) {
    enum { n = 10000 };
    float *x = xmalloc(n * 4), *y = xmalloc(n * 4), *y2 = xmalloc(n * 4), *dx = xcalloc(n, 4), *dy = xmalloc(n * 4);
    uint8_t *m = xmalloc(n), *m2 = xmalloc(n);
    Rng r;
    rng_seed(&r, 51);
    for (int i = 0; i < n; i++) { x[i] = rng_normal(&r); dy[i] = rng_normal(&r); }
    const float p = 0.3f, scale = 1.0f / (1.0f - p);
    dropout_forward(n, p, 1, 7, x, y, m);
    int kept = 0, ok = 1;
    for (int i = 0; i < n; i++) {
        kept += m[i];
        ok &= m[i] <= 1 && y[i] == (m[i] ? x[i] * scale : 0.0f);
    }
    CHECK(ok);
    CHECKF(fabs(kept / (double)n - 0.7) < 0.03, "kept fraction %g", kept / (double)n);
    dropout_forward(n, p, 1, 7, x, y2, m2);
    CHECK(memcmp(m, m2, n) == 0 && bitwise_equal(y, y2, n));
    dropout_forward(n, p, 1, 8, x, y2, m2);
    CHECK(memcmp(m, m2, n) != 0);
    dropout_backward(n, p, 1, m, dy, dx);
    ok = 1;
    for (int i = 0; i < n; i++) ok &= dx[i] == (m[i] ? dy[i] * scale : 0.0f);
    CHECK(ok);
    dropout_forward(n, p, 0, 7, x, y, NULL);
    CHECK(bitwise_equal(x, y, n));
    memset(dx, 0, n * 4);
    dropout_backward(n, p, 0, NULL, dy, dx);
    CHECK(bitwise_equal(dx, dy, n));
    free(x); free(y); free(y2); free(dx); free(dy); free(m); free(m2);
}

/* ---- PyTorch fixtures (tools/gen_fixtures_ops.py) ---- */

static int fx_open(StFile *f, const char *name) {
    if (st_read(fixture(name), f) == 0) return 1;
    test_fail(__FILE__, __LINE__, "%s", err_get());
    return 0;
}

/* The F32 tensor `name` with `numel` elements, or NULL (failure recorded). */
static const float *fx_get(const StFile *f, const char *file, const char *name, size_t numel) {
    const StTensor *t = st_find(f, name);
    if (!t || t->dtype != ST_F32 || t->numel != numel) {
        test_fail(__FILE__, __LINE__, "%s: tensor %s missing, not F32 or not %zu elements", file, name, numel);
        return NULL;
    }
    return t->f32;
}

static int fx_meta(const StFile *f, const char *key) {
    const char *v = meta_get(&f->meta, key);
    return v ? atoi(v) : -1;
}

#define GET(var, name, n) const float *var = fx_get(&f, file, name, n); if (!var) { st_free(&f); return; }

static void conv_fixture(const char *file) {
    StFile f;
    if (!fx_open(&f, file)) return;
    const StTensor *tx = st_find(&f, "x"), *tw = st_find(&f, "w");
    if (!tx || !tw || tx->ndim != 4 || tw->ndim != 4) { test_fail(__FILE__, __LINE__, "%s: x/w", file); st_free(&f); return; }
    int bias = fx_meta(&f, "bias");
    ConvShape s = conv_shape((int)tx->dim[0], (int)tx->dim[1], (int)tx->dim[2], (int)tx->dim[3], (int)tw->dim[0],
                             (int)tw->dim[2], (int)tw->dim[3], fx_meta(&f, "sh"), fx_meta(&f, "sw"),
                             fx_meta(&f, "ph"), fx_meta(&f, "pw"));
    size_t nx = tx->numel, nw = tw->numel, ny = (size_t)s.N * s.K * s.Ho * s.Wo;
    GET(dy, "dy", ny);
    GET(ey, "y", ny);
    GET(edx, "dx", nx);
    GET(edw, "dw", nw);
    const float *b = NULL, *edb = NULL;
    if (bias) {
        b = fx_get(&f, file, "b", s.K);
        edb = fx_get(&f, file, "db", s.K);
        if (!b || !edb) { st_free(&f); return; }
    }
    for (int ref = 0; ref < 2; ref++) {
        float *y = xmalloc(ny * 4), *dx = xcalloc(nx, 4), *dw = xcalloc(nw, 4), *db = xcalloc(s.K, 4);
        Workspace ws;
        conv_reserve(&ws, &s);
        if (ref) {
            conv2d_forward_ref(&s, tx->f32, tw->f32, b, y);
            conv2d_backward_ref(&s, tx->f32, tw->f32, dy, dx, dw, bias ? db : NULL);
        } else {
            conv2d_forward(&s, tx->f32, tw->f32, b, y, &ws);
            conv2d_backward(&s, tx->f32, tw->f32, dy, dx, dw, bias ? db : NULL, &ws);
        }
        char what[128];
        const char *k = ref ? "ref" : "fast";
        /* conv vs torch: atol 1e-5, rtol 1e-4 */
        snprintf(what, sizeof what, "%s %s y", file + 4, k);
        CHECK_CLOSE(what, y, ey, ny, 1e-5f, 1e-4f);
        snprintf(what, sizeof what, "%s %s dx", file + 4, k);
        CHECK_CLOSE(what, dx, edx, nx, 1e-5f, 1e-4f);
        snprintf(what, sizeof what, "%s %s dw", file + 4, k);
        CHECK_CLOSE(what, dw, edw, nw, 1e-5f, 1e-4f);
        if (bias) {
            snprintf(what, sizeof what, "%s %s db", file + 4, k);
            CHECK_CLOSE(what, db, edb, s.K, 1e-5f, 1e-4f);
        } else {
            CHECK(db[0] == 0.0f); /* NULL db: nothing written */
        }
        ws_free(&ws);
        free(y); free(dx); free(dw); free(db);
    }
    st_free(&f);
}

TEST(ops_conv_matches_torch) {
    const char *files[] = {"ops/conv_3x3_s1_p1.safetensors", "ops/conv_7x7_s2_p3.safetensors",
                           "ops/conv_1x1_s2_p0.safetensors", "ops/conv_1x1_s1_p0.safetensors",
                           "ops/conv_3x3_s2_p1.safetensors", "ops/conv_5x5_s1_p0.safetensors",
                           "ops/conv_3x3_s1_p1_nobias.safetensors"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) conv_fixture(files[i]);
}

static void bn_fixture(const char *file) {
    StFile f;
    if (!fx_open(&f, file)) return;
    const StTensor *tx = st_find(&f, "x");
    if (!tx || tx->ndim != 4) { test_fail(__FILE__, __LINE__, "%s: x", file); st_free(&f); return; }
    const int N = (int)tx->dim[0], C = (int)tx->dim[1], HW = (int)(tx->dim[2] * tx->dim[3]);
    const size_t n = tx->numel;
    const float *x = tx->f32;
    GET(g, "gamma", C);
    GET(be, "beta", C);
    GET(rm0, "running_mean", C);
    GET(rv0, "running_var", C);
    GET(dy, "dy", n);
    GET(ey, "y_train", n);
    GET(edx, "dx_train", n);
    GET(edg, "dgamma_train", C);
    GET(edb, "dbeta_train", C);
    GET(erm, "running_mean_after", C);
    GET(erv, "running_var_after", C);
    GET(esm, "save_mean", C);
    GET(esi, "save_invstd", C);
    GET(eyv, "y_eval", n);
    GET(edxv, "dx_eval", n);
    GET(edgv, "dgamma_eval", C);
    GET(edbv, "dbeta_eval", C);
    char what[128];
    /* BN vs torch: atol 1e-5, rtol 1e-4 (outputs of order 1); statistics 1e-6 */
    for (int ref = 0; ref < 2; ref++) {
        const char *k = ref ? "ref" : "fast";
        float *rm = copyf(rm0, C), *rv = copyf(rv0, C), *y = xmalloc(n * 4), *sm = xmalloc(C * 4), *si = xmalloc(C * 4);
        float *dx = xcalloc(n, 4), *dg = xcalloc(C, 4), *db = xcalloc(C, 4);
        if (ref) {
            bn_forward_train_ref(N, C, HW, x, g, be, rm, rv, BN_MOMENTUM, BN_EPS, y, sm, si);
            bn_backward_train_ref(N, C, HW, x, g, sm, si, dy, dx, dg, db);
        } else {
            bn_forward_train(N, C, HW, x, g, be, rm, rv, BN_MOMENTUM, BN_EPS, y, sm, si);
            bn_backward_train(N, C, HW, x, g, sm, si, dy, dx, dg, db);
        }
        snprintf(what, sizeof what, "%s train %s y", file + 4, k);
        CHECK_CLOSE(what, y, ey, n, 1e-5f, 1e-4f);
        snprintf(what, sizeof what, "%s train %s running_mean", file + 4, k);
        CHECK_CLOSE(what, rm, erm, C, 1e-6f, 1e-6f);
        snprintf(what, sizeof what, "%s train %s running_var", file + 4, k);
        CHECK_CLOSE(what, rv, erv, C, 1e-6f, 1e-6f);
        snprintf(what, sizeof what, "%s train %s save_mean", file + 4, k);
        CHECK_CLOSE(what, sm, esm, C, 1e-6f, 1e-6f);
        snprintf(what, sizeof what, "%s train %s save_invstd", file + 4, k);
        CHECK_CLOSE(what, si, esi, C, 1e-6f, 1e-6f);
        snprintf(what, sizeof what, "%s train %s dx", file + 4, k);
        CHECK_CLOSE(what, dx, edx, n, 1e-5f, 1e-4f);
        snprintf(what, sizeof what, "%s train %s dgamma", file + 4, k);
        CHECK_CLOSE(what, dg, edg, C, 1e-5f, 1e-4f);
        snprintf(what, sizeof what, "%s train %s dbeta", file + 4, k);
        CHECK_CLOSE(what, db, edb, C, 1e-5f, 1e-4f);
        free(rm); free(rv); free(y); free(sm); free(si); free(dx); free(dg); free(db);
    }
    float *y = xmalloc(n * 4), *dx = xcalloc(n, 4), *dg = xcalloc(C, 4), *db = xcalloc(C, 4);
    bn_forward_eval(N, C, HW, x, g, be, rm0, rv0, BN_EPS, y);
    bn_backward_eval(N, C, HW, x, g, rm0, rv0, BN_EPS, dy, dx, dg, db);
    snprintf(what, sizeof what, "%s eval y", file + 4);
    CHECK_CLOSE(what, y, eyv, n, 1e-5f, 1e-4f);
    snprintf(what, sizeof what, "%s eval dx", file + 4);
    CHECK_CLOSE(what, dx, edxv, n, 1e-5f, 1e-4f);
    snprintf(what, sizeof what, "%s eval dgamma", file + 4);
    CHECK_CLOSE(what, dg, edgv, C, 1e-5f, 1e-4f);
    snprintf(what, sizeof what, "%s eval dbeta", file + 4);
    CHECK_CLOSE(what, db, edbv, C, 1e-5f, 1e-4f);
    free(y); free(dx); free(dg); free(db);
    st_free(&f);
}

TEST(ops_bn_matches_torch) {
    bn_fixture("ops/bn_4x3x5x5.safetensors");
    bn_fixture("ops/bn_2x8x3x3.safetensors");
    bn_fixture("ops/bn_6x4x1x1.safetensors");
}

static void maxpool_fixture(const char *file) {
    StFile f;
    if (!fx_open(&f, file)) return;
    const StTensor *tx = st_find(&f, "x"), *ta = st_find(&f, "argmax");
    if (!tx || tx->ndim != 4 || !ta || ta->dtype != ST_I64) {
        test_fail(__FILE__, __LINE__, "%s: x/argmax", file);
        st_free(&f);
        return;
    }
    const int N = (int)tx->dim[0], C = (int)tx->dim[1], H = (int)tx->dim[2], W = (int)tx->dim[3];
    const int k = fx_meta(&f, "k"), s = fx_meta(&f, "s"), p = fx_meta(&f, "p");
    const size_t nx = tx->numel, ny = (size_t)N * C * pool_out_size(H, k, s, p) * pool_out_size(W, k, s, p);
    GET(dy, "dy", ny);
    GET(ey, "y", ny);
    GET(edx, "dx", nx);
    REQUIRE(ta->numel == ny);
    float *y = xmalloc(ny * 4), *dx = xcalloc(nx, 4);
    int32_t *am = xmalloc(ny * 4);
    maxpool_forward(N, C, H, W, k, s, p, tx->f32, y, am);
    maxpool_backward(N, C, H, W, k, s, p, am, dy, dx);
    size_t bad = 0;
    for (size_t i = 0; i < ny; i++) bad += am[i] != ta->i64[i];
    CHECKF(bad == 0, "%s: %zu argmax entries differ from torch", file, bad);
    char what[128];
    /* max pool vs torch: y exact; dx sums the same terms in the same order: 1e-6 */
    snprintf(what, sizeof what, "%s y", file + 4);
    CHECK_CLOSE(what, y, ey, ny, 0.0f, 0.0f);
    snprintf(what, sizeof what, "%s dx", file + 4);
    CHECK_CLOSE(what, dx, edx, nx, 1e-6f, 1e-6f);
    free(y); free(dx); free(am);
    st_free(&f);
}

TEST(ops_maxpool_matches_torch) {
    maxpool_fixture("ops/maxpool_3x3_s2_p1.safetensors");
    maxpool_fixture("ops/maxpool_2x2_s2.safetensors");
    maxpool_fixture("ops/maxpool_ties.safetensors");
    maxpool_fixture("ops/maxpool_negative_pad.safetensors");
}

static void avgpool_fixture(const char *file) {
    StFile f;
    if (!fx_open(&f, file)) return;
    const StTensor *tx = st_find(&f, "x");
    if (!tx || tx->ndim != 4) { test_fail(__FILE__, __LINE__, "%s: x", file); st_free(&f); return; }
    const int N = (int)tx->dim[0], C = (int)tx->dim[1], H = (int)tx->dim[2], W = (int)tx->dim[3];
    const int Ho = fx_meta(&f, "Ho"), Wo = fx_meta(&f, "Wo");
    REQUIRE(Ho > 0 && Wo > 0);
    const size_t nx = tx->numel, ny = (size_t)N * C * Ho * Wo;
    GET(dy, "dy", ny);
    GET(ey, "y", ny);
    GET(edx, "dx", nx);
    float *y = xmalloc(ny * 4), *dx = xcalloc(nx, 4);
    adaptive_avgpool_forward(N, C, H, W, Ho, Wo, tx->f32, y);
    adaptive_avgpool_backward(N, C, H, W, Ho, Wo, dy, dx);
    char what[128];
    /* adaptive avg pool vs torch: atol 1e-6, rtol 1e-5 (torch's 1x1 output is a mean) */
    snprintf(what, sizeof what, "%s y", file + 4);
    CHECK_CLOSE(what, y, ey, ny, 1e-6f, 1e-5f);
    snprintf(what, sizeof what, "%s dx", file + 4);
    CHECK_CLOSE(what, dx, edx, nx, 1e-6f, 1e-5f);
    free(y); free(dx);
    st_free(&f);
}

TEST(ops_avgpool_matches_torch) {
    avgpool_fixture("ops/avgpool_1x1_to_7x7.safetensors");
    avgpool_fixture("ops/avgpool_5x5_to_7x7.safetensors");
    avgpool_fixture("ops/avgpool_9x7_to_3x3.safetensors");
    avgpool_fixture("ops/avgpool_7x7_to_1x1.safetensors");
    avgpool_fixture("ops/avgpool_10x6_to_4x4.safetensors");
}

TEST(ops_linear_matches_torch) {
    const char *file = "ops/linear.safetensors";
    StFile f;
    if (!fx_open(&f, file)) return;
    const StTensor *tx = st_find(&f, "x"), *tw = st_find(&f, "w");
    if (!tx || !tw || tx->ndim != 2 || tw->ndim != 2) { test_fail(__FILE__, __LINE__, "x/w"); st_free(&f); return; }
    const int N = (int)tx->dim[0], I = (int)tx->dim[1], O = (int)tw->dim[0];
    GET(b, "b", O);
    GET(dy, "dy", (size_t)N * O);
    GET(ey, "y", (size_t)N * O);
    GET(edx, "dx", (size_t)N * I);
    GET(edw, "dw", (size_t)O * I);
    GET(edb, "db", O);
    /* linear vs torch: atol 1e-5, rtol 1e-4 */
    for (int ref = 0; ref < 2; ref++) {
        float *y = xmalloc((size_t)N * O * 4), *dx = xcalloc((size_t)N * I, 4), *dw = xcalloc((size_t)O * I, 4);
        float *db = xcalloc(O, 4);
        if (ref) {
            linear_forward_ref(N, I, O, tx->f32, tw->f32, b, y);
            linear_backward_ref(N, I, O, tx->f32, tw->f32, dy, dx, dw, db);
        } else {
            linear_forward(N, I, O, tx->f32, tw->f32, b, y);
            linear_backward(N, I, O, tx->f32, tw->f32, dy, dx, dw, db);
        }
        CHECK_CLOSE(ref ? "linear ref y" : "linear fast y", y, ey, (size_t)N * O, 1e-5f, 1e-4f);
        CHECK_CLOSE(ref ? "linear ref dx" : "linear fast dx", dx, edx, (size_t)N * I, 1e-5f, 1e-4f);
        CHECK_CLOSE(ref ? "linear ref dw" : "linear fast dw", dw, edw, (size_t)O * I, 1e-5f, 1e-4f);
        CHECK_CLOSE(ref ? "linear ref db" : "linear fast db", db, edb, O, 1e-5f, 1e-4f);
        free(y); free(dx); free(dw); free(db);
    }
    st_free(&f);
}

/* ReLU forward and the three backward rules (deconv/guided expected values were
 * computed in Python from their formulas): exact. Dropout in eval mode: identity. */
TEST(ops_relu_dropout_match_torch) {
    const char *file = "ops/relu.safetensors";
    StFile f;
    if (!fx_open(&f, file)) return;
    const StTensor *tx = st_find(&f, "x");
    if (!tx) { test_fail(__FILE__, __LINE__, "relu: x"); st_free(&f); return; }
    const size_t n = tx->numel;
    GET(dy, "dy", n);
    GET(ey, "y", n);
    GET(es, "dx_standard", n);
    GET(ed, "dx_deconv", n);
    GET(eg, "dx_guided", n);
    float *y = xmalloc(n * 4), *dx = xmalloc(n * 4);
    relu_forward(n, tx->f32, y);
    CHECK_CLOSE("relu y", y, ey, n, 0.0f, 0.0f);
    const float *expect[3] = {es, ed, eg};
    const char *names[3] = {"relu dx standard", "relu dx deconv", "relu dx guided"};
    for (int rule = 0; rule < 3; rule++) {
        memset(dx, 0, n * 4);
        relu_backward(n, y, dy, dx, (ReluRule)rule);
        CHECK_CLOSE(names[rule], dx, expect[rule], n, 0.0f, 0.0f);
    }
    free(y); free(dx);
    st_free(&f);

    file = "ops/dropout_eval.safetensors";
    if (!fx_open(&f, file)) return;
    tx = st_find(&f, "x");
    if (!tx) { test_fail(__FILE__, __LINE__, "dropout: x"); st_free(&f); return; }
    const size_t m = tx->numel;
    GET(ddy, "dy", m);
    GET(dey, "y", m);
    GET(dedx, "dx", m);
    float *yy = xmalloc(m * 4), *dd = xcalloc(m, 4);
    dropout_forward(m, 0.5f, 0, 1, tx->f32, yy, NULL);
    dropout_backward(m, 0.5f, 0, NULL, ddy, dd);
    CHECK_CLOSE("dropout eval y", yy, dey, m, 0.0f, 0.0f);
    CHECK_CLOSE("dropout eval dx", dd, dedx, m, 0.0f, 0.0f);
    free(yy); free(dd);
    st_free(&f);
}
