/* epi: the epilogues of a convolution's output rows, shared by its routes (conv_gemm.c,
 * conv_direct.c, wino.c), applied while the row is in cache: the forward's bias, affine
 * map (eval-mode batch norm) and ReLU, each optional; the input gradient's fresh write,
 * optionally through the backward of the ReLU before the conv.
 * Not for: strided rows (conv_route.h's fresh_row keeps a per-element loop for those). */
#ifndef GAD_OPS_EPI_H
#define GAD_OPS_EPI_H
#include "ops/act.h"

/* One output channel's epilogue: which steps, and its bias, scale and shift. */
typedef struct {
    int bias, affine, relu;
    float bm, sc, sh;
} Epi;

/* Output channel m's epilogue; bias, scale, shift may each be NULL (scale and shift
 * together). */
static inline Epi epi_for(const float *bias, const float *scale, const float *shift, int relu, int m) {
    Epi e = {bias != NULL, scale != NULL, relu, bias ? bias[m] : 0.0f, scale ? scale[m] : 1.0f,
             shift ? shift[m] : 0.0f};
    return e;
}

/* d[0:n] = o[0:n], plus the bias, times scale plus shift, then max(., 0) (d may be o):
 * the same operations as a separate bias add, bn_forward_eval and relu_forward, so the
 * same bits. */
static inline void epi_row(float *d, const float *o, int n, const Epi *e) {
    const float bm = e->bm, sc = e->sc, sh = e->sh;
    int k = 0;
    for (; k + 16 <= n; k += 16) {
        float v[16];
        for (int t = 0; t < 16; t++) v[t] = o[k + t];
        if (e->bias)
            for (int t = 0; t < 16; t++) v[t] += bm;
        if (e->affine)
            for (int t = 0; t < 16; t++) v[t] = v[t] * sc + sh;
        if (e->relu)
            for (int t = 0; t < 16; t++) v[t] = v[t] > 0.0f ? v[t] : 0.0f;
        for (int t = 0; t < 16; t++) d[k + t] = v[t];
    }
    for (; k < n; k++) {
        float v = o[k];
        if (e->bias) v += bm;
        if (e->affine) v = v * sc + sh;
        if (e->relu) v = v > 0.0f ? v : 0.0f;
        d[k] = v;
    }
}

/* The input gradient's first write of a run: d[k] = 0 + o[k] (no zeroing pass: the bits
 * of adding onto zeros), then with y (the output of the ReLU before the conv, NULL for
 * none) that ReLU's backward by rule: the operations of relu_backward_set. d may be o. */
static inline void epi_dx_fresh(ReluRule rule, const float *y, float *d, const float *o, int n) {
    int k = 0;
    for (; k + RELU_BLK <= n; k += RELU_BLK) {
        float v[RELU_BLK];
        for (int t = 0; t < RELU_BLK; t++) v[t] = 0.0f + o[k + t];
        if (y) relu_backward_set_block(rule, y + k, v, d + k);
        else
            for (int t = 0; t < RELU_BLK; t++) d[k + t] = v[t];
    }
    for (; k < n; k++) d[k] = y ? 0.0f + relu_backward_term(rule, y[k], 0.0f + o[k]) : 0.0f + o[k];
}

#endif
