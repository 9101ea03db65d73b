/* layers: what both executors read off the layer list (nn/layers.h): every
 * activation's shape for an input size, and each dropout layer's seed, so that the
 * fast executor (plan.c) and the reference one (reference.c) see the same shapes and
 * draw the same masks; and the multiply-adds of a forward pass (model_forward_macs,
 * for benchmarks' GFLOP/s).
 * Not for: building the list (model.c), running it (plan.c, reference.c). */
#include "nn/layers.h"
#include "core/err.h"
#include "ops/pool.h"
#include <stdlib.h>

int layer_shapes(const Model *m, int max_batch, int H, int W, ActShape *shape) {
    const int minside = model_min_input(m);
    if (max_batch < 1) { err_set("batch size %d: must be at least 1", max_batch); return -1; }
    if (H < minside || W < minside) {
        err_set("input %dx%d is too small: %s takes at least %dx%d", H, W, model_arch_name(m->cfg.arch),
                minside, minside);
        return -1;
    }
    if (H > 16384 || W > 16384) { err_set("input %dx%d is too large (limit 16384)", H, W); return -1; }
    shape[0] = (ActShape){3, H, W, (size_t)3 * H * W};
    for (int l = 0; l < m->nlayers; l++) {
        const Layer *L = &m->layers[l];
        ActShape in = shape[L->in], o = in;
        switch (L->kind) {
        case LK_CONV:
            GAD_ASSERT(m->params_info[L->w].dim[1] == in.c);
            if (in.h + 2 * L->pad < L->k || in.w + 2 * L->pad < L->k) o.h = 0;
            else {
                o.c = L->cout;
                o.h = (in.h + 2 * L->pad - L->k) / L->s + 1;
                o.w = (in.w + 2 * L->pad - L->k) / L->s + 1;
            }
            break;
        case LK_MAXPOOL:
            o.h = in.h + 2 * L->pad < L->k ? 0 : pool_out_size(in.h, L->k, L->s, L->pad);
            o.w = in.w + 2 * L->pad < L->k ? 0 : pool_out_size(in.w, L->k, L->s, L->pad);
            break;
        case LK_AVGPOOL: o.h = o.w = L->k; break;
        case LK_LINEAR:
            GAD_ASSERT((size_t)m->params_info[L->w].dim[1] == in.per);
            o.c = L->cout; o.h = o.w = 1;
            break;
        case LK_ADD: {
            ActShape b = shape[L->in2];
            GAD_ASSERT(b.c == in.c && b.h == in.h && b.w == in.w && L->in2 != L->in);
            break;
        }
        default: break;
        }
        if (o.h < 1 || o.w < 1) {
            err_set("input %dx%d is too small for %s (layer %d, %s, gets %dx%d)", H, W,
                    model_arch_name(m->cfg.arch), l, layer_kind_name(L->kind), in.h, in.w);
            return -1;
        }
        o.per = size_mul(size_mul((size_t)o.c, (size_t)o.h), (size_t)o.w); /* saturates on 32 bits */
        shape[l + 1] = o;
    }
    return 0;
}

double model_forward_macs(const Model *m, int H, int W) {
    ActShape *shape = xmalloc(sizeof(ActShape) * (size_t)(m->nlayers + 1));
    double macs = 0.0;
    if (layer_shapes(m, 1, H, W, shape)) { free(shape); return -1.0; }
    for (int l = 0; l < m->nlayers; l++) {
        const Layer *L = &m->layers[l];
        const ActShape in = shape[L->in], o = shape[l + 1];
        if (L->kind == LK_CONV) macs += (double)in.c * L->k * L->k * o.per;
        else if (L->kind == LK_LINEAR) macs += (double)in.per * L->cout;
    }
    free(shape);
    return macs;
}

/* A well-mixed per-layer dropout seed. */
uint64_t layer_seed(uint64_t seed, int l) {
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (uint64_t)(l + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
