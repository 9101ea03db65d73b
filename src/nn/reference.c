/* reference: the plain executor, the reference path's half in nn/ (the naive kernels,
 * ops/ref.h, are the other). A pass is the layer list read once:
 *   forward:  layer 0, 1, ..., each computing activation l + 1 from its input(s);
 *   backward: layer nl - 1, ..., 0, each adding the gradient of its input(s) from the
 *             gradient of its output (so an activation read by two layers, ResNet's
 *             residual fan-out, receives both), the ReLU rule applied at every ReLU.
 * Every activation and every gradient has its own buffer, zeroed before a backward;
 * nothing is fused, folded, prepared or done in place. This is the loop that plan.c's
 * fast executor optimises (and is tested against: tests/test_reference.c).
 * Not for: speed; anything plan.c's executor does not also do. */
#include "nn/reference.h"
#include "core/err.h"
#include "ops/bn.h"
#include "ops/ref.h"
#include <stdlib.h>
#include <string.h>

struct RefPlan {
    int max_batch, nlayers;
    ActShape *shape;         /* [nlayers + 1] */
    float **val;             /* [nlayers + 1] activations [max_batch, per]: 0 the input, nlayers the logits */
    float **grad;            /* [nlayers + 1] their gradients (grad[0] unused: the caller's dx) */
    int32_t **argmax;        /* [nlayers] a max pool's winners [max_batch, per of its output], else NULL */
    uint8_t **mask;          /* [nlayers] a dropout's mask, else NULL */
    float **mean, **invstd;  /* [nlayers] a train-mode BN's batch statistics [C], else NULL */
    int last_n, last_train;  /* the last forward (the backward must match it) */
};

RefPlan *ref_new(const Model *m, int max_batch, const ActShape *shape) {
    const int nl = m->nlayers;
    const size_t B = (size_t)max_batch;
    RefPlan *r = xcalloc(1, sizeof *r);
    r->max_batch = max_batch;
    r->nlayers = nl;
    r->shape = xmalloc((size_t)(nl + 1) * sizeof *shape);
    memcpy(r->shape, shape, (size_t)(nl + 1) * sizeof *shape);
    r->val = xcalloc((size_t)nl + 1, sizeof(float *));
    r->grad = xcalloc((size_t)nl + 1, sizeof(float *));
    r->argmax = xcalloc((size_t)nl, sizeof(int32_t *));
    r->mask = xcalloc((size_t)nl, sizeof(uint8_t *));
    r->mean = xcalloc((size_t)nl, sizeof(float *));
    r->invstd = xcalloc((size_t)nl, sizeof(float *));
    for (int a = 0; a <= nl; a++) {
        r->val[a] = xmalloc(size_mul(size_mul(B, shape[a].per), sizeof(float)));
        if (a > 0) r->grad[a] = xmalloc(size_mul(size_mul(B, shape[a].per), sizeof(float)));
    }
    for (int l = 0; l < nl; l++) {
        const size_t out = size_mul(B, shape[l + 1].per);
        if (m->layers[l].kind == LK_MAXPOOL) r->argmax[l] = xmalloc(size_mul(out, sizeof(int32_t)));
        if (m->layers[l].kind == LK_DROPOUT) r->mask[l] = xmalloc(out);
        if (m->layers[l].kind == LK_BN) {
            r->mean[l] = xmalloc((size_t)shape[l + 1].c * sizeof(float));
            r->invstd[l] = xmalloc((size_t)shape[l + 1].c * sizeof(float));
        }
    }
    r->last_n = -1;
    return r;
}

void ref_free(RefPlan *r) {
    if (!r) return;
    for (int a = 0; a <= r->nlayers; a++) { free(r->val[a]); free(r->grad[a]); }
    for (int l = 0; l < r->nlayers; l++) { free(r->argmax[l]); free(r->mask[l]); free(r->mean[l]); free(r->invstd[l]); }
    free(r->shape); free(r->val); free(r->grad); free(r->argmax); free(r->mask); free(r->mean); free(r->invstd);
    free(r);
}

static float *param(const Model *m, int i) { return i >= 0 ? m->params_info[i].data : NULL; }

static ConvShape conv_of(const Layer *L, const ActShape *in, int n) {
    return conv_shape(n, in->c, in->h, in->w, L->cout, L->k, L->k, L->s, L->s, L->pad, L->pad);
}

const float *ref_forward(Model *m, RefPlan *r, const float *x, int n, PassMode mode) {
    GAD_ASSERT(n >= 1 && n <= r->max_batch && r->nlayers == m->nlayers);
    memcpy(r->val[0], x, (size_t)n * r->shape[0].per * sizeof(float));
    int has_bn = 0;
    for (int l = 0; l < m->nlayers; l++) {
        const Layer *L = &m->layers[l];
        const ActShape *si = &r->shape[L->in], *so = &r->shape[l + 1];
        const float *in = r->val[L->in];
        float *out = r->val[l + 1];
        const size_t cnt = (size_t)n * so->per;
        const int HW = si->h * si->w;
        switch (L->kind) {
        case LK_CONV: {
            const ConvShape cs = conv_of(L, si, n);
            conv2d_forward_ref(&cs, in, param(m, L->w), param(m, L->b), out);
            break;
        }
        case LK_BN:
            has_bn = 1;
            if (mode.train) /* batch statistics; the running ones updated */
                bn_forward_train_ref(n, si->c, HW, in, param(m, L->w), param(m, L->b), param(m, L->rm),
                                     param(m, L->rv), BN_MOMENTUM, BN_EPS, out, r->mean[l], r->invstd[l]);
            else
                bn_forward_eval_ref(n, si->c, HW, in, param(m, L->w), param(m, L->b), param(m, L->rm),
                                    param(m, L->rv), BN_EPS, out);
            break;
        case LK_RELU: relu_forward_ref(cnt, in, out); break;
        case LK_MAXPOOL: maxpool_forward_ref(n, si->c, si->h, si->w, L->k, L->s, L->pad, in, out, r->argmax[l]); break;
        case LK_AVGPOOL: adaptive_avgpool_forward_ref(n, si->c, si->h, si->w, so->h, so->w, in, out); break;
        case LK_LINEAR: linear_forward_ref(n, (int)si->per, L->cout, in, param(m, L->w), param(m, L->b), out); break;
        case LK_DROPOUT:
            dropout_forward(cnt, L->p, mode.train, layer_seed(mode.seed, l), in, out, r->mask[l]);
            break;
        case LK_ADD: add_forward_ref(cnt, in, r->val[L->in2], out); break;
        }
    }
    if (mode.train && has_bn) m->bn_batches++;
    r->last_n = n;
    r->last_train = mode.train;
    return r->val[m->nlayers];
}

void ref_backward(Model *m, RefPlan *r, const float *dlogits, float *dx, int param_grads, PassMode mode) {
    const int n = r->last_n, nl = m->nlayers;
    GAD_ASSERT(n >= 1 && r->last_train == mode.train && r->nlayers == nl); /* backward of the last forward */
    GAD_ASSERT(!param_grads || m->grads);
    for (int a = 1; a < nl; a++) memset(r->grad[a], 0, (size_t)n * r->shape[a].per * sizeof(float));
    memcpy(r->grad[nl], dlogits, (size_t)n * r->shape[nl].per * sizeof(float));
    for (int l = nl - 1; l >= 0; l--) {
        const Layer *L = &m->layers[l];
        const ActShape *si = &r->shape[L->in], *so = &r->shape[l + 1];
        const float *in = r->val[L->in], *dy = r->grad[l + 1];
        float *din = L->in == 0 ? dx : r->grad[L->in]; /* NULL: nobody asked for it */
        float *dw = param_grads && L->w >= 0 ? m->params_info[L->w].grad : NULL;
        float *db = param_grads && L->b >= 0 ? m->params_info[L->b].grad : NULL;
        const size_t cnt = (size_t)n * so->per;
        const int HW = si->h * si->w;
        switch (L->kind) {
        case LK_CONV: {
            const ConvShape cs = conv_of(L, si, n);
            conv2d_backward_ref(&cs, in, param(m, L->w), dy, din, dw, db);
            break;
        }
        case LK_BN:
            if (mode.train)
                bn_backward_train_ref(n, si->c, HW, in, param(m, L->w), r->mean[l], r->invstd[l], dy, din, dw, db);
            else
                bn_backward_eval_ref(n, si->c, HW, in, param(m, L->w), param(m, L->rm), param(m, L->rv), BN_EPS, dy,
                                     din, dw, db);
            break;
        case LK_RELU: relu_backward_ref(cnt, r->val[l + 1], dy, din, mode.relu); break; /* the method's rule */
        case LK_MAXPOOL: maxpool_backward_ref(n, si->c, si->h, si->w, L->k, L->s, L->pad, r->argmax[l], dy, din); break;
        case LK_AVGPOOL: adaptive_avgpool_backward_ref(n, si->c, si->h, si->w, so->h, so->w, dy, din); break;
        case LK_LINEAR: linear_backward_ref(n, (int)si->per, L->cout, in, param(m, L->w), dy, din, dw, db); break;
        case LK_DROPOUT: dropout_backward(cnt, L->p, mode.train, r->mask[l], dy, din); break;
        case LK_ADD: add_backward_ref(cnt, dy, din, L->in2 == 0 ? dx : r->grad[L->in2]); break;
        }
    }
}
