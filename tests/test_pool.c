/* test_pool: max and adaptive average pooling (ops/pool.h): central differences,
 * PyTorch's ties and padding, the fused backward through a ReLU, the vectorised rows,
 * and PyTorch fixtures. */
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

