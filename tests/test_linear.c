/* test_linear: the linear layer (ops/linear.h) against the naive kernel, central
 * differences, folded weights and PyTorch fixtures. */
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
