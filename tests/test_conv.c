/* test_conv: the convolution's routes (ops/conv.h) against (1) the naive kernel
 * (ops/ref/conv_ref.c) on random shapes that reach every route, (2) central differences
 * of L = sum(r * y), (3) PyTorch fixtures (tools/fixtures/gen_fixtures_ops.py), and (4) bitwise
 * contracts: across batch and thread count, the fused epilogues against the passes
 * apart, the routes against gemm over im2col, prepared weights against none. The
 * Winograd route's own tests: test_wino.c. Tolerances are stated where they are used. */
#include "test.h"
#include "ops_common.h"
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
    {3, 5, 2, 2, 6, 3, 3, 1, 1, 1, 1, 1},   /* 2x2 map: the dense route */
    {2, 4, 2, 3, 3, 5, 3, 1, 2, 2, 1, 0},   /* dense, strided, rectangular */
};



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
                                     {2, 64, 7, 7, 128, 3, 3, 1, 1, 1, 1, 1},   /* dx: direct route */
                                     {3, 40, 2, 2, 24, 3, 3, 1, 1, 1, 1, 1}};   /* dense: both, shared */
    static const int has_fwd[] = {1, 1, 1, 0, 1};
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
        /* shared (the dense route only): both directions' prepared weights the same floats */
        CHECKF(conv_prep_shared(&s) == (t == 4), "conv case %d: shared %d", (int)t, conv_prep_shared(&s));
        CHECKF(!conv_prep_shared(&s) || (conv_prep_floats(&s, 0) == conv_prep_floats(&s, 1) &&
                                         !memcmp(prep[0][1], prep[1][1], conv_prep_floats(&s, 0) * 4)),
               "conv case %d: shared prepared weights differ", (int)t);
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


/* Workspace sizes that a 32-bit size_t cannot hold saturate instead of wrapping round
 * into a small workspace: ResNet's 7x7 stride-2 first layer on an 8192x8192 image
 * needs 5.2 GB of scratch (its direct weight gradient packs all 4096x4096 positions),
 * which i686 computed as 873 MB. And the prepared weights' tile count does not
 * overflow a 32-bit long: 64 images of 12000x12000 are 2.3e9 tiles, far past the 256
 * whose prepared weights pay (i686 prepared them). */
TEST(ops_conv_sizes_beyond_32_bits) {
    const ConvShape big = conv_shape(1, 3, 8192, 8192, 64, 7, 7, 2, 2, 3, 3);
    const size_t b = conv_scratch_bytes(&big);
    if (SIZE_MAX > 0xffffffffu)
        CHECKF(b > 0xffffffffu, "conv_scratch_bytes %.0f: not past 4 GiB, so this test checks nothing on 32 bits",
               (double)b);
    else
        CHECKF(b >= SIZE_MAX - 63, "conv_scratch_bytes %.0f: wrapped round instead of saturating", (double)b);
    const ConvShape many = conv_shape(64, 64, 12000, 12000, 64, 3, 3, 1, 1, 1, 1);
    CHECK(conv_prep_floats(&many, 0) == 0 && conv_prep_floats(&many, 1) == 0);
}
