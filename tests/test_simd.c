/* test_simd: core/simd.h's multiply-add, and the kernels written with it outside gemm
 * (linear's register tiles and its streamed input gradient) against the scalar chain
 * they promise, bitwise, for every tile width and edge. (gemm's own kernels:
 * gemm_bitwise_same_as_the_chain in test_gemm.c.) */
#include "test.h"
#include "core/gemm.h"
#include "core/rng.h"
#include "core/simd.h"
#include "core/threads.h"
#include "core/ws.h"
#include "ops/linear.h"
#include <stdlib.h>
#include <string.h>

static int same_bits(const float *a, const float *b, size_t n) { return memcmp(a, b, sizeof(float) * n) == 0; }

/* simd_madd1 is one lane of simd_madd, bitwise, on values where fused and unfused differ. */
TEST(simd_madd1_is_a_lane_of_simd_madd) {
    Rng r;
    rng_seed(&r, 5);
    float a[SIMD_W], b[SIMD_W], c[SIMD_W], v[SIMD_W];
    int differ = 0;
    for (int it = 0; it < 1000; it++) {
        for (int l = 0; l < SIMD_W; l++) {
            a[l] = rng_normal(&r);
            b[l] = rng_normal(&r);
            c[l] = -a[l] * b[l] * (1.0f + 1e-3f * rng_normal(&r)); /* cancellation: rounding shows */
        }
        simd_store(v, simd_madd(simd_load(a), simd_load(b), simd_load(c)));
        for (int l = 0; l < SIMD_W; l++) {
            float one = simd_madd1(a[l], b[l], c[l]);
            differ += memcmp(&one, &v[l], sizeof one) != 0;
        }
    }
    CHECKF(differ == 0, "%d of %d lanes differ (" SIMD_ISA ")", differ, 1000 * SIMD_W);
}

static float *randn(Rng *r, size_t n) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = rng_normal(r);
    return p;
}

/* linear_forward_ws: y[n][o] = (chain over i of simd_madd1(w[o][i], x[n][i], .) from 0)
 * + b[o]; linear_backward: dw[o][i] continues its chain over n, simd_madd1(dy[n][o],
 * x[n][i], dw[o][i]); dx (streamed for batches up to 3, else gemm) is gemm's chain in
 * gemm's k-blocks, added to dx block by block. Batches of every tile width and rest,
 * widths with edge tiles. */
TEST(linear_bitwise_same_as_the_chain) {
    Rng r;
    rng_seed(&r, 3);
    static const int shapes[][3] = {{1, 7, 5}, {2, 33, 17}, {3, 40, 9}, {5, 100, 30}, {9, 64, 70},
                                    {17, 50, 11}, {33, 130, 20}, {40, 9, 1000}};
    par_init(2);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int N = shapes[s][0], I = shapes[s][1], O = shapes[s][2];
        float *x = randn(&r, (size_t)N * I), *w = randn(&r, (size_t)O * I), *b = randn(&r, (size_t)O);
        float *dy = randn(&r, (size_t)N * O), *y = randn(&r, (size_t)N * O), *want = randn(&r, (size_t)N * O);
        float *dx = randn(&r, (size_t)N * I), *dw = randn(&r, (size_t)O * I);
        float *dx_want = malloc(sizeof(float) * (size_t)N * I), *dw_want = malloc(sizeof(float) * (size_t)O * I);
        memcpy(dx_want, dx, sizeof(float) * (size_t)N * I);
        memcpy(dw_want, dw, sizeof(float) * (size_t)O * I);
        Workspace ws;
        ws_init(&ws);
        ws_reserve(&ws, linear_scratch_bytes(I));
        linear_forward_ws(N, I, O, x, w, b, y, &ws);
        linear_backward(N, I, O, x, w, dy, dx, dw, NULL);
        for (int n = 0; n < N; n++)
            for (int o = 0; o < O; o++) {
                float t = 0.0f;
                for (int i = 0; i < I; i++) t = simd_madd1(w[(size_t)o * I + i], x[(size_t)n * I + i], t);
                want[(size_t)n * O + o] = t + b[o];
            }
        for (int o = 0; o < O; o++)
            for (int i = 0; i < I; i++)
                for (int n = 0; n < N; n++)
                    dw_want[(size_t)o * I + i] =
                        simd_madd1(dy[(size_t)n * O + o], x[(size_t)n * I + i], dw_want[(size_t)o * I + i]);
        for (int n = 0; n < N; n++)
            for (int i = 0; i < I; i++)
                for (int kb = 0; kb < gemm_kblocks(O); kb++) {
                    int o0, o1;
                    gemm_kblock(O, kb, &o0, &o1);
                    float t = 0.0f;
                    for (int o = o0; o < o1; o++) t = simd_madd1(dy[(size_t)n * O + o], w[(size_t)o * I + i], t);
                    dx_want[(size_t)n * I + i] += t;
                }
        CHECKF(same_bits(y, want, (size_t)N * O), "%dx%d->%d: y is not the chain", N, I, O);
        CHECKF(same_bits(dw, dw_want, (size_t)O * I), "%dx%d->%d: dw is not the chain", N, I, O);
        CHECKF(same_bits(dx, dx_want, (size_t)N * I), "%dx%d->%d: dx is not gemm's chain", N, I, O);
        ws_free(&ws);
        free(x); free(w); free(b); free(dy); free(y); free(want); free(dx); free(dw); free(dx_want); free(dw_want);
    }
    par_shutdown();
}
