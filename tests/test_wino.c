/* test_wino: the Winograd route (ops/wino.c) through the convolution's API on shapes
 * where it applies (checked with wino_applies): the forward (bias, batch norm and ReLU
 * in its epilogue), the input gradient (added, and fresh through a ReLU's backward) and
 * the weight gradient against the naive kernel (ops/ref/conv_ref.c), an image's output
 * and input gradient bitwise the same alone and in a batch, and every result bitwise
 * the same with 1 and 2 threads.
 * Tolerance: atol TOL * max|reference| + rtol TOL. The transforms add and subtract
 * before and after the sum, so the route rounds differently from a direct sum; it is no
 * less accurate (measured, Zen 3, gcc 12: within 1e-6 of max|reference|). The other
 * routes: test_conv.c. */
#include "test.h"
#include "ops_common.h"
#include "core/err.h"
#include "core/threads.h"
#include "ops/conv.h"
#include "ops/ref.h"
#include "ops/wino.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-4f

/* Odd sides (cropped tiles), channels not a multiple of the panels, few tiles (the
 * threads split the channels), several images per tile group. */
static const ConvCase wino_cases[] = {
    {2, 64, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1},
    {1, 64, 15, 17, 68, 3, 3, 1, 1, 1, 1, 0},
    {3, 72, 16, 14, 64, 3, 3, 1, 1, 1, 1, 1},
    {1, 128, 28, 28, 96, 3, 3, 1, 1, 1, 1, 1},
};

static float maxabs(const float *a, size_t n) {
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) m = fabsf(a[i]) > m ? fabsf(a[i]) : m;
    return m;
}

#define NEAR(what, a, ref, n) CHECK_CLOSE(what, a, ref, n, TOL * maxabs(ref, n), TOL)

TEST(wino_matches_ref) {
    Rng r;
    rng_seed(&r, 91);
    for (size_t t = 0; t < sizeof wino_cases / sizeof wino_cases[0]; t++) {
        const ConvCase *c = &wino_cases[t];
        ConvShape s = conv_shape(c->N, c->C, c->H, c->W, c->K, c->kh, c->kw, c->sh, c->sw, c->ph, c->pw);
        REQUIRE(wino_applies(&s, 0) && wino_applies(&s, 1));
        const size_t nx = (size_t)s.N * s.C * s.H * s.W, ny = (size_t)s.N * s.K * s.Ho * s.Wo;
        const size_t nw = (size_t)s.K * s.C * 9;
        float *x = randn(&r, nx, 1.0f), *w = randn(&r, nw, 0.1f), *b = c->bias ? randn(&r, s.K, 1.0f) : NULL;
        float *dy = randn(&r, ny, 1.0f), *y = xmalloc(ny * 4), *yr = xmalloc(ny * 4);
        float *dx = randn(&r, nx, 1.0f), *dxr = copyf(dx, nx), *dw = randn(&r, nw, 1.0f), *dwr = copyf(dw, nw);
        Workspace ws;
        conv_reserve(&ws, &s);
        char what[96];
        conv2d_forward(&s, x, w, b, y, &ws);
        conv2d_forward_ref(&s, x, w, b, yr);
        snprintf(what, sizeof what, "wino case %d y", (int)t);
        NEAR(what, y, yr, ny);
        /* batch norm and ReLU in the epilogue: y * scale + shift, then max(., 0) */
        float *sc = randn(&r, s.K, 1.0f), *sh = randn(&r, s.K, 1.0f);
        conv2d_forward_affine(&s, x, w, NULL, b, sc, sh, y, 1, &ws);
        for (size_t i = 0; i < ny; i++) {
            const size_t k = i / ((size_t)s.Ho * s.Wo) % (size_t)s.K;
            const float v = yr[i] * sc[k] + sh[k];
            yr[i] = v > 0.0f ? v : 0.0f;
        }
        snprintf(what, sizeof what, "wino case %d y, batch norm and ReLU", (int)t);
        NEAR(what, y, yr, ny);
        conv2d_backward(&s, x, w, dy, dx, dw, NULL, &ws); /* onto the random buffers: += */
        conv2d_backward_ref(&s, x, w, dy, dxr, dwr, NULL);
        snprintf(what, sizeof what, "wino case %d dx", (int)t);
        NEAR(what, dx, dxr, nx);
        snprintf(what, sizeof what, "wino case %d dw", (int)t);
        NEAR(what, dw, dwr, nw);
        /* fresh, through the guided rule of a ReLU whose output was x+ */
        float *xp = xmalloc(nx * 4), *g = xcalloc(nx, sizeof(float));
        relu_forward_ref(nx, x, xp);
        conv2d_backward_fresh(&s, x, w, NULL, dy, dx, 1, xp, RELU_GUIDED, NULL, NULL, &ws);
        conv2d_backward_ref(&s, x, w, dy, g, NULL, NULL);
        memset(dxr, 0, nx * 4);
        relu_backward_ref(nx, xp, g, dxr, RELU_GUIDED);
        snprintf(what, sizeof what, "wino case %d dx fresh through a guided ReLU", (int)t);
        NEAR(what, dx, dxr, nx);
        CHECK(ws.used == 0);
        ws_free(&ws);
        free(x); free(w); free(b); free(dy); free(y); free(yr); free(dx); free(dxr); free(dw); free(dwr);
        free(sc); free(sh); free(xp); free(g);
    }
}

/* Forward, input and weight gradient of one case with nth threads. */
static void run_case(const ConvShape *s, const float *x, const float *w, const float *dy, int nth, float *y, float *dx,
                     float *dw) {
    par_init(nth);
    Workspace ws;
    conv_reserve(&ws, s);
    conv2d_forward(s, x, w, NULL, y, &ws);
    memset(dx, 0, (size_t)s->N * s->C * s->H * s->W * 4);
    memset(dw, 0, (size_t)s->K * s->C * 9 * 4);
    conv2d_backward(s, x, w, dy, dx, dw, NULL, &ws);
    ws_free(&ws);
}

TEST(wino_batch_and_threads_bitwise) {
    Rng r;
    rng_seed(&r, 92);
    for (size_t t = 0; t < sizeof wino_cases / sizeof wino_cases[0]; t++) {
        const ConvCase *c = &wino_cases[t];
        const int N = 3;
        ConvShape s = conv_shape(N, c->C, c->H, c->W, c->K, 3, 3, 1, 1, 1, 1);
        ConvShape s1 = conv_shape(1, c->C, c->H, c->W, c->K, 3, 3, 1, 1, 1, 1);
        const size_t nx = (size_t)N * s.C * s.H * s.W, ny = (size_t)N * s.K * s.Ho * s.Wo, nw = (size_t)s.K * s.C * 9;
        float *x = randn(&r, nx, 1.0f), *w = randn(&r, nw, 0.1f), *dy = randn(&r, ny, 1.0f);
        float *y1 = xmalloc(ny * 4), *y2 = xmalloc(ny * 4), *dx1 = xmalloc(nx * 4), *dx2 = xmalloc(nx * 4);
        float *dw1 = xmalloc(nw * 4), *dw2 = xmalloc(nw * 4);
        run_case(&s, x, w, dy, 1, y1, dx1, dw1);
        run_case(&s, x, w, dy, 2, y2, dx2, dw2);
        CHECKF(bitwise_equal(y1, y2, ny), "wino case %d: y differs between 1 and 2 threads", (int)t);
        CHECKF(bitwise_equal(dx1, dx2, nx), "wino case %d: dx differs between 1 and 2 threads", (int)t);
        CHECKF(bitwise_equal(dw1, dw2, nw), "wino case %d: dw differs between 1 and 2 threads", (int)t);
        /* the last image alone: its output and input gradient are those it had in the batch */
        const size_t ix = nx / N, iy = ny / N;
        run_case(&s1, x + 2 * ix, w, dy + 2 * iy, 2, y2, dx2, dw2);
        CHECKF(bitwise_equal(y1 + 2 * iy, y2, iy), "wino case %d: an image's y depends on its batch", (int)t);
        CHECKF(bitwise_equal(dx1 + 2 * ix, dx2, ix), "wino case %d: an image's dx depends on its batch", (int)t);
        free(x); free(w); free(dy); free(y1); free(y2); free(dx1); free(dx2); free(dw1); free(dw2);
    }
}
