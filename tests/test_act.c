/* test_act: ReLU and its three backward rules, add and dropout (ops/act.h):
 * hand-made cases, the vectorised blocks against the scalar tails, and PyTorch
 * fixtures. */
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

