/* layer_bench: every layer of a model run alone on random data, for `gad bench
 * --layers` (nn/layer_bench.h). One set of buffers as large as the largest
 * activation of the batch serves every layer; the outputs are never read.
 * Not for: a pass (plan.c, reference.c), correctness. */
#include "nn/layer_bench.h"
#include "core/err.h"
#include "core/rng.h"
#include "core/ws.h"
#include "nn/layers.h"
#include "ops/act.h"
#include "ops/bn.h"
#include "ops/conv.h"
#include "ops/linear.h"
#include "ops/pool.h"
#include <stdio.h>
#include <stdlib.h>

struct LayerBench {
    Model *m;
    int n;
    ActShape *shape;          /* [nlayers + 1] per image */
    float *x, *y, *dy, *dx;   /* [n * largest activation] */
    int32_t *argmax;          /* [n * largest activation] */
    uint8_t *mask;            /* [n * largest activation]: dropout's */
    float *mean, *invstd;     /* [largest channel count]: batch norm's saved statistics */
    Workspace ws;             /* reserved for the largest convolution */
};

static ConvShape layer_conv(const LayerBench *b, const Layer *L) {
    const ActShape i = b->shape[L->in];
    return conv_shape(b->n, i.c, i.h, i.w, L->cout, L->k, L->k, L->s, L->s, L->pad, L->pad);
}

LayerBench *layer_bench_new(Model *m, int n, int H, int W) {
    LayerBench *b = xcalloc(1, sizeof *b);
    b->m = m;
    b->n = n;
    b->shape = xmalloc(sizeof(ActShape) * (size_t)(m->nlayers + 1));
    if (layer_shapes(m, n, H, W, b->shape)) { free(b->shape); free(b); return NULL; }
    size_t per = 0, scratch = 0;
    int chans = 1;
    for (int l = 0; l <= m->nlayers; l++) {
        if (b->shape[l].per > per) per = b->shape[l].per;
        if (b->shape[l].c > chans) chans = b->shape[l].c;
        if (l < m->nlayers && m->layers[l].kind == LK_CONV) {
            ConvShape cs = layer_conv(b, &m->layers[l]);
            size_t s = conv_scratch_bytes(&cs);
            if (s > scratch) scratch = s;
        }
    }
    const size_t cap = (size_t)n * per;
    b->x = xmalloc(cap * sizeof(float));
    b->y = xmalloc(cap * sizeof(float));
    b->dy = xmalloc(cap * sizeof(float));
    b->dx = xcalloc(cap, sizeof(float));
    b->argmax = xcalloc(cap, sizeof(int32_t));
    b->mask = xcalloc(cap, 1);
    b->mean = xcalloc((size_t)chans, sizeof(float));
    b->invstd = xcalloc((size_t)chans, sizeof(float));
    Rng r;
    rng_seed(&r, 3);
    for (size_t i = 0; i < cap; i++) { b->x[i] = rng_normal(&r); b->dy[i] = rng_normal(&r); }
    ws_init(&b->ws);
    ws_reserve(&b->ws, scratch);
    model_alloc_grads(m);
    return b;
}

void layer_bench_free(LayerBench *b) {
    if (!b) return;
    ws_free(&b->ws);
    free(b->shape); free(b->x); free(b->y); free(b->dy); free(b->dx); free(b->argmax); free(b->mask);
    free(b->mean); free(b->invstd);
    free(b);
}

void layer_bench_describe(const LayerBench *b, int l, const char **kind, char *shape, size_t cap, int *h, int *w) {
    GAD_ASSERT(l >= 0 && l < b->m->nlayers);
    const Layer *L = &b->m->layers[l];
    const ActShape i = b->shape[L->in];
    *kind = layer_kind_name(L->kind);
    if (L->kind == LK_CONV) snprintf(shape, cap, "%dx%d/%d %d->%d", L->k, L->k, L->s, i.c, L->cout);
    else if (L->kind == LK_LINEAR) snprintf(shape, cap, "%zu->%d", i.per, L->cout);
    else if (cap) shape[0] = '\0';
    *h = i.h;
    *w = i.w;
}

void layer_bench_run(LayerBench *b, int l, int phase) {
    GAD_ASSERT(l >= 0 && l < b->m->nlayers && phase >= 0 && phase < LB_NPHASES);
    const Layer *L = &b->m->layers[l];
    const Param *P = b->m->params_info;
    const ActShape i = b->shape[L->in], o = b->shape[l + 1];
    const int n = b->n, fwd = phase == LB_FORWARD, dw = phase == LB_BACKWARD_DW;
    const size_t cnt = (size_t)n * o.per;
    const float *W = L->w >= 0 ? P[L->w].data : NULL, *B = L->b >= 0 ? P[L->b].data : NULL;
    float *gw = dw && L->w >= 0 ? P[L->w].grad : NULL, *gb = dw && L->b >= 0 ? P[L->b].grad : NULL;
    switch (L->kind) {
    case LK_CONV: {
        ConvShape cs = layer_conv(b, L);
        if (fwd) conv2d_forward(&cs, b->x, W, B, b->y, &b->ws);
        else conv2d_backward(&cs, b->x, W, b->dy, b->dx, gw, gb, &b->ws);
        break;
    }
    case LK_BN:
        if (fwd) bn_forward_train(n, i.c, i.h * i.w, b->x, W, B, NULL, NULL, BN_MOMENTUM, BN_EPS, b->y, b->mean,
                                  b->invstd);
        else bn_backward_train(n, i.c, i.h * i.w, b->x, W, b->mean, b->invstd, b->dy, b->dx, gw, gb);
        break;
    case LK_RELU:
        if (fwd) relu_forward(cnt, b->x, b->y);
        else relu_backward(cnt, b->x, b->dy, b->dx, RELU_STANDARD);
        break;
    case LK_MAXPOOL:
        if (fwd) maxpool_forward(n, i.c, i.h, i.w, L->k, L->s, L->pad, b->x, b->y, b->argmax);
        else maxpool_backward(n, i.c, i.h, i.w, L->k, L->s, L->pad, b->argmax, b->dy, b->dx);
        break;
    case LK_AVGPOOL:
        if (fwd) adaptive_avgpool_forward(n, i.c, i.h, i.w, o.h, o.w, b->x, b->y);
        else adaptive_avgpool_backward(n, i.c, i.h, i.w, o.h, o.w, b->dy, b->dx);
        break;
    case LK_LINEAR:
        if (fwd) linear_forward(n, (int)i.per, L->cout, b->x, W, B, b->y);
        else linear_backward(n, (int)i.per, L->cout, b->x, W, b->dy, b->dx, gw, gb);
        break;
    case LK_DROPOUT:
        if (fwd) dropout_forward(cnt, L->p, 1, layer_seed(1, l), b->x, b->y, b->mask);
        else dropout_backward(cnt, L->p, 1, b->mask, b->dy, b->dx);
        break;
    case LK_ADD:
        if (fwd) add_forward(cnt, b->x, b->dy, b->y);
        else add_backward(cnt, b->dy, b->dx, b->y);
        break;
    }
}
