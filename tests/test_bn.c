/* test_bn: batch normalisation (ops/bn.h) against the naive kernel, central
 * differences and PyTorch fixtures; eval mode image by image. */
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

