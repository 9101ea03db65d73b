/* adam: torch.optim.Adam (PyTorch 1.13, _single_tensor_adam; amsgrad, maximize,
 * foreach and fused paths not implemented), in float32 with the same order of
 * operations, so that results match PyTorch's CPU kernels bit for bit:
 *   g  = fma(p, wd, g)                        (only when wd != 0)
 *   m  = fma(g, 1 - b1, m * b1)
 *   v  = fma((1 - b2) * g, g, v * b2)
 *   denom = sqrt(v) / sqrt(1 - b2^t) + eps
 *   p  = p + (-(lr / (1 - b1^t)) * m) / denom
 * Scalars (1 - b1, bias corrections, step size) are computed in double as Python
 * does and then rounded to float, as PyTorch passes them to its kernels. The fmaf
 * calls are where PyTorch's vectorised kernels use fused multiply-add.
 * The step is split over the thread pool (element-wise, so bitwise the same).
 * Not for: learning-rate schedules, gradient clipping, decoupled (AdamW) decay. */
#include "train/train.h"
#include "core/err.h"
#include "core/threads.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void adam_init(Adam *a, size_t n, float lr, float weight_decay) {
    memset(a, 0, sizeof *a);
    a->n = n;
    a->lr = lr;
    a->beta1 = 0.9;
    a->beta2 = 0.999;
    a->eps = 1e-8;
    a->weight_decay = weight_decay;
    a->m = xcalloc(n ? n : 1, sizeof(float));
    a->v = xcalloc(n ? n : 1, sizeof(float));
}

/* The per-element update over [lo, hi); scalars as prepared by adam_step. Written
 * with restrict pointers and a select instead of a branch so that the compiler can
 * vectorise it; every element's arithmetic is the same as the scalar form's. */
typedef struct {
    float *p, *m, *v;
    const float *g;
    size_t n;
    float neg_step, bc2_sqrt, b1, omb1, b2, omb2, eps, wd;
} AdamJob;

static void adam_range(const AdamJob *j, size_t lo, size_t hi) {
    float *restrict p = j->p, *restrict m = j->m, *restrict v = j->v;
    const float *restrict g = j->g;
    const float neg_step = j->neg_step, bc2_sqrt = j->bc2_sqrt, b1 = j->b1, omb1 = j->omb1;
    const float b2 = j->b2, omb2 = j->omb2, eps = j->eps, wd = j->wd;
    const int decay = wd != 0.0f; /* loop-invariant: the compiler unswitches the loop */
    for (size_t i = lo; i < hi; i++) {
        const float gi = decay ? fmaf(p[i], wd, g[i]) : g[i];
        const float mi = fmaf(gi, omb1, m[i] * b1);
        const float vi = fmaf(omb2 * gi, gi, v[i] * b2);
        const float q = (neg_step * mi) / (sqrtf(vi) / bc2_sqrt + eps);
        m[i] = mi;
        v[i] = vi;
        /* q == 0 (a zero gradient so far): p keeps its bits, even a -0.0 weight
         * (p + 0 would turn -0.0 into +0.0) */
        p[i] = q != 0.0f ? p[i] + q : p[i];
    }
}

/* Thread ith of nth takes a contiguous slice, 16-float aligned at its start. */
static void adam_worker(void *ctx, int ith, int nth) {
    const AdamJob *j = ctx;
    long lo, hi;
    par_range((long)((j->n + 15) / 16), ith, nth, &lo, &hi);
    size_t a = (size_t)lo * 16, b = (size_t)hi * 16;
    if (b > j->n) b = j->n;
    if (a < b) adam_range(j, a, b);
}

void adam_step(Adam *a, float *params, const float *grads) {
    a->t++;
    double bc1 = 1.0 - pow(a->beta1, (double)a->t);
    double bc2 = 1.0 - pow(a->beta2, (double)a->t);
    AdamJob j;
    j.p = params;
    j.g = grads;
    j.m = a->m;
    j.v = a->v;
    j.n = a->n;
    j.neg_step = (float)-(a->lr / bc1);
    j.bc2_sqrt = (float)sqrt(bc2);
    j.b1 = (float)a->beta1;
    j.omb1 = (float)(1.0 - a->beta1);
    j.b2 = (float)a->beta2;
    j.omb2 = (float)(1.0 - a->beta2);
    j.eps = (float)a->eps;
    j.wd = (float)a->weight_decay;
    /* element-wise, so the split cannot change a bit; small models stay serial */
    if (a->n < (1u << 16)) adam_range(&j, 0, a->n);
    else par_run(adam_worker, &j);
}

void adam_free(Adam *a) {
    free(a->m);
    free(a->v);
    a->m = a->v = NULL;
    a->n = 0;
}
