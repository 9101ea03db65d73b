/* epi: the forward epilogue of a convolution's output row, shared by conv.c's routes
 * and wino.c: a bias, an affine map (eval-mode batch norm), a ReLU, each optional,
 * applied while the row is in cache.
 * Not for: the input gradient's epilogue (act.h's relu_backward_set_block). */
#ifndef GAD_OPS_EPI_H
#define GAD_OPS_EPI_H

/* One output channel's epilogue: which steps, and its bias, scale and shift. */
typedef struct {
    int bias, affine, relu;
    float bm, sc, sh;
} Epi;

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

#endif
