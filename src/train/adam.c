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
 * Not for: learning-rate schedules, gradient clipping, decoupled (AdamW) decay. */
#include "train/train.h"
#include "core/err.h"
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

void adam_step(Adam *a, float *params, const float *grads) {
    a->t++;
    double bc1 = 1.0 - pow(a->beta1, (double)a->t);
    double bc2 = 1.0 - pow(a->beta2, (double)a->t);
    const float neg_step = (float)-(a->lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    const float b1 = (float)a->beta1, omb1 = (float)(1.0 - a->beta1);
    const float b2 = (float)a->beta2, omb2 = (float)(1.0 - a->beta2);
    const float eps = (float)a->eps, wd = (float)a->weight_decay;
    const int decay = a->weight_decay != 0;
    float *m = a->m, *v = a->v;
    for (size_t i = 0; i < a->n; i++) {
        float g = grads[i];
        if (decay) g = fmaf(params[i], wd, g);
        m[i] = fmaf(g, omb1, m[i] * b1);
        v[i] = fmaf(omb2 * g, g, v[i] * b2);
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        float q = (neg_step * m[i]) / denom;
        /* q == 0 (a zero gradient so far): leave p untouched, so that even a -0.0
         * weight keeps its bits (p + 0 would turn -0.0 into +0.0) */
        if (q != 0) params[i] += q;
    }
}

void adam_free(Adam *a) {
    free(a->m);
    free(a->v);
    a->m = a->v = NULL;
    a->n = 0;
}
