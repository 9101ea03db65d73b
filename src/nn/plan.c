/* plan: the forward and backward passes of a model over its layer list (a tiny graph
 * executor), and the Plan that holds everything a pass needs, allocated once.
 *
 * Forward runs the layers in order and keeps every activation (ReLU works in place
 * on its input when nothing else reads that input: the layers before a ReLU never
 * need their own output in the backward; a conv, BN or add then applies the ReLU as
 * it writes, and the ReLU layer has nothing left to do). Backward walks the list in reverse; each
 * kernel accumulates (+=) into the gradient of its inputs, so an activation read by
 * two layers (the residual fan-out) simply receives both contributions.
 * Gradient buffers are recycled: the gradient of activation a lives from the backward
 * of its last reader to the backward of its producer; plan_new assigns buffers
 * ("slots") to these intervals once, and backward zeroes a slot when it goes live
 * (a ReLU or conv that writes it first writes it whole instead: no zeroing pass).
 * Prepared weights: where a conv's route has work that depends on its weights alone
 * and would be a notable share of a pass at this plan's batch (conv_prep_floats), the
 * plan keeps the result per layer and direction, made again when the model's stamp
 * changes (a new model, or new values: model_params_changed), so passes over fixed
 * weights (attribution, prediction: no parameter gradients) do that work once; where
 * both directions' are the same floats (conv_prep_shared) one copy serves both, and a
 * training step makes it once for its forward and backward. The same bits either way.
 * Fusions, each with the same bits as the layers apart: an eval forward without
 * parameter gradients applies a BN inside the output of the conv before it
 * (bn_fuse); a conv or max pool that alone reads an in-place ReLU's output does the
 * ReLU's backward in its own input-gradient pass (relu_into), and that output's
 * gradient never exists.
 * Not for: allocation during a pass, graphs other than the layer list, running two
 * passes on one plan at once. */
#include "core/err.h"
#include "nn/layers.h"
#include "nn/model.h"
#include "nn/reference.h"
#include "ops/act.h"
#include "ops/bn.h"
#include "ops/conv.h"
#include "ops/linear.h"
#include "ops/pool.h"
#include <stdlib.h>
#include <string.h>

struct Plan {
    int max_batch, H, W;
    int nlayers;          /* of the model it was made for (checked at every pass) */
    size_t n_params;      /* likewise */
    ActShape *shape;      /* [nlayers+1] */
    float **val;          /* [nlayers+1] activations [max_batch, per]; val[0] is a copy of x */
    int *gslot;           /* [nlayers+1] gradient slot of each activation, -1 for none */
    int *glast;           /* [nlayers+1] layer whose backward first writes it (last reader) */
    float **slot;         /* [nslots] gradient buffers [max_batch, max per] */
    int nslots;
    int32_t **argmax;     /* [nlayers] maxpool winners, else NULL */
    uint8_t **mask;       /* [nlayers] dropout masks, else NULL */
    float **save_mean, **save_invstd; /* [nlayers] BN batch statistics [C], else NULL */
    int *relu_after;      /* [nlayers] 1: layer l + 1 is an in-place ReLU of this conv, BN or
                           * add, which applies it as it writes (the ReLU's forward is skipped) */
    int *bn_fuse;         /* [nlayers] 1: conv l is read only by the BN l + 1, which an eval
                           * forward without parameter gradients applies in the conv's
                           * epilogue (scale and shift in the BN's save_mean, save_invstd;
                           * the conv's own output is then never written) */
    int last_fused;       /* the last forward did that */
    int *relu_into;       /* [nlayers] for a conv or max pool reading only the output of an
                           * in-place ReLU (layer r, read by nothing else): r, whose backward
                           * the layer's input gradient then includes (layer r's backward is
                           * skipped and the layer writes the gradient of r's input); else -1 */
    int *relu_done;       /* [nlayers] 1: a ReLU whose backward a conv or pool does (relu_into) */
    int *fold;            /* [nlayers] 1: an average pool of a 1x1 map, folded into the
                           * linear after it (2); 0 otherwise (see fold_pair) */
    float **wf, **dfeat;  /* [nlayers] at a folded linear: folded weights [O, C] and the
                           * gradient of the pool's input [max_batch, C], else NULL */
    float **prep;         /* [2*nlayers] conv l's prepared weights for the forward (2l) and
                           * the input gradient (2l+1) in prep_block, else NULL */
    uint64_t *prep_stamp; /* [2*nlayers] the model stamp they were made from (0: none yet) */
    float *prep_block;
    void *block;          /* everything above that is per-activation data (one allocation) */
    float *grad_block;    /* the slots */
    Workspace ws;
    size_t batch_bytes;   /* block + slots + workspace: what grows with max_batch */
    int last_n, last_train; /* the last forward (backward must match it) */
    RefPlan *ref;         /* set: a reference plan (plan_new_reference), whose passes go to
                           * nn/reference.c; every field above but the sizes is then unused */
};

/* Layer l is an adaptive average pool of a 1x1 map (VGG at 32x32: 512 values each
 * spread over 7x7 bins) read only by the linear layer l + 1. The linear then works
 * on the 1x1 map with its weights folded over the bins (linear_fold): the same sums
 * regrouped, 49x fewer multiply-adds, and the 25088-wide activation never exists. */
static int fold_pair(const Model *m, const int *readers, const ActShape *shape, int l) {
    const Layer *L = &m->layers[l];
    return L->kind == LK_AVGPOOL && shape[L->in].h == 1 && shape[L->in].w == 1 && l + 1 < m->nlayers &&
           m->layers[l + 1].kind == LK_LINEAR && m->layers[l + 1].in == l + 1 && readers[l + 1] == 1;
}

static int is_inplace_relu(const Model *m, const int *readers, int l) {
    const Layer *L = &m->layers[l];
    return L->kind == LK_RELU && readers[L->in] == 1 && L->in > 0;
}

/* The activation whose gradient layer l's backward writes through its first input: its
 * input, or for a conv that does a ReLU's backward (relu_into) the ReLU's input. *first:
 * the backward is the first to write it (the gradient goes live there). */
static int grad_target(const Model *m, const Plan *p, int l, int *first) {
    const int r = p->relu_into[l], a = r >= 0 ? m->layers[r].in : m->layers[l].in;
    *first = a > 0 && (r >= 0 || p->glast[a] == l);
    return a;
}

/* Kept whole: one walk over the layer list per decision (readers, what is fused or
 * folded, the memory block's offsets, prepared weights, gradient slots by replaying
 * the backward), each reading the arrays the walk before filled. */
Plan *plan_new(const Model *m, int max_batch, int H, int W) {
#ifdef GAD_REFERENCE
    return plan_new_reference(m, max_batch, H, W); /* make REFERENCE=1: every plan is one */
#endif
    int nl = m->nlayers, na = nl + 1;
    ActShape *shape = xcalloc((size_t)na, sizeof *shape);
    if (layer_shapes(m, max_batch, H, W, shape)) { free(shape); return NULL; }
    Plan *p = xcalloc(1, sizeof *p);
    p->max_batch = max_batch; p->H = H; p->W = W;
    p->nlayers = nl;
    p->n_params = m->n_params;
    p->shape = shape;
    int *readers = xcalloc((size_t)na, sizeof(int));
    p->glast = xmalloc((size_t)na * sizeof(int));
    for (int a = 0; a < na; a++) p->glast[a] = -1;

    /* readers, workspace */
    size_t ws_bytes = 0, maxper = 0;
    for (int l = 0; l < nl; l++) {
        const Layer *L = &m->layers[l];
        const ActShape in = p->shape[L->in];
        readers[L->in]++;
        p->glast[L->in] = l;
        if (L->in2 >= 0) { readers[L->in2]++; p->glast[L->in2] = l; }
        size_t b = 0;
        if (L->kind == LK_CONV) {
            ConvShape cs = conv_shape(max_batch, in.c, in.h, in.w, L->cout, L->k, L->k, L->s, L->s, L->pad, L->pad);
            b = conv_scratch_bytes(&cs);
        }
        if (L->kind == LK_LINEAR) b = linear_scratch_bytes((int)in.per);
        if (b > ws_bytes) ws_bytes = b;
        if (p->shape[l + 1].per > maxper) maxper = p->shape[l + 1].per;
    }
    p->glast[nl] = nl; /* the logits' gradient is live from the start */

    /* one block for activations and per-layer saved data */
    size_t B = (size_t)max_batch, bytes = 0;
    size_t *off_val = xcalloc((size_t)na, sizeof(size_t));
    size_t *off_aux = xcalloc((size_t)nl, sizeof(size_t));
    size_t *off_aux2 = xcalloc((size_t)nl, sizeof(size_t));
    for (int a = 0; a < na; a++) {
        if (a > 0 && is_inplace_relu(m, readers, a - 1)) continue;
        if (a > 0 && fold_pair(m, readers, p->shape, a - 1)) continue; /* never computed */
        off_val[a] = bytes;
        bytes = size_add(bytes, ws_round(size_mul(size_mul(B, p->shape[a].per), sizeof(float))));
    }
    p->relu_after = xcalloc((size_t)nl, sizeof(int));
    for (int l = 0; l + 1 < nl; l++) {
        LayerKind k = m->layers[l].kind;
        p->relu_after[l] = (k == LK_CONV || k == LK_BN || k == LK_ADD) && is_inplace_relu(m, readers, l + 1) &&
                           m->layers[l + 1].in == l + 1;
    }
    p->relu_into = xmalloc((size_t)nl * sizeof(int));
    for (int l = 0; l < nl; l++) {
        const Layer *L = &m->layers[l];
        const int r = L->in - 1;
        const int fuses = L->kind == LK_CONV || L->kind == LK_MAXPOOL;
        p->relu_into[l] =
            fuses && r >= 0 && is_inplace_relu(m, readers, r) && readers[L->in] == 1 && m->layers[r].in > 0 ? r : -1;
    }
    p->relu_done = xcalloc((size_t)nl, sizeof(int));
    for (int l = 0; l < nl; l++)
        if (p->relu_into[l] >= 0) p->relu_done[p->relu_into[l]] = 1;
    p->bn_fuse = xcalloc((size_t)nl, sizeof(int));
    for (int l = 0; l + 1 < nl; l++)
        p->bn_fuse[l] = m->layers[l].kind == LK_CONV && m->layers[l + 1].kind == LK_BN &&
                        m->layers[l + 1].in == l + 1 && readers[l + 1] == 1;
    p->fold = xcalloc((size_t)nl, sizeof(int));
    for (int l = 0; l + 1 < nl; l++)
        if (fold_pair(m, readers, p->shape, l)) {
            p->fold[l] = 1;
            p->fold[l + 1] = 2;
            const size_t oc = (size_t)m->layers[l + 1].cout * p->shape[m->layers[l].in].c;
            if (oc * sizeof(float) > ws_bytes) ws_bytes = oc * sizeof(float); /* dwf */
        }
    for (int l = 0; l < nl; l++) {
        const Layer *L = &m->layers[l];
        const ActShape *o = &p->shape[l + 1];
        off_aux[l] = bytes;
        if (L->kind == LK_MAXPOOL) bytes = size_add(bytes, ws_round(size_mul(size_mul(B, o->per), sizeof(int32_t))));
        else if (L->kind == LK_DROPOUT) bytes = size_add(bytes, ws_round(size_mul(B, o->per)));
        else if (L->kind == LK_BN || p->fold[l] == 2) {
            /* BN: mean, invstd [C]; folded linear: wf [O, C], dfeat [B, C] */
            const size_t c = p->fold[l] == 2 ? (size_t)p->shape[m->layers[l - 1].in].c : (size_t)o->c;
            bytes = size_add(bytes, ws_round((p->fold[l] == 2 ? (size_t)L->cout : 1) * c * sizeof(float)));
            off_aux2[l] = bytes;
            bytes = size_add(bytes, ws_round(size_mul((p->fold[l] == 2 ? B : 1) * c, sizeof(float))));
        }
    }
    p->block = xmalloc_aligned(bytes ? bytes : 64);
    char *base = p->block;
    p->val = xcalloc((size_t)na, sizeof(float *));
    p->argmax = xcalloc((size_t)nl, sizeof(int32_t *));
    p->mask = xcalloc((size_t)nl, sizeof(uint8_t *));
    p->save_mean = xcalloc((size_t)nl, sizeof(float *));
    p->save_invstd = xcalloc((size_t)nl, sizeof(float *));
    p->wf = xcalloc((size_t)nl, sizeof(float *));
    p->dfeat = xcalloc((size_t)nl, sizeof(float *));
    for (int a = 0; a < na; a++)
        p->val[a] = (a > 0 && is_inplace_relu(m, readers, a - 1))  ? p->val[m->layers[a - 1].in]
                    : (a > 0 && fold_pair(m, readers, p->shape, a - 1)) ? NULL
                                                                         : (float *)(base + off_val[a]);
    for (int l = 0; l < nl; l++) {
        LayerKind k = m->layers[l].kind;
        if (k == LK_MAXPOOL) p->argmax[l] = (int32_t *)(base + off_aux[l]);
        if (k == LK_DROPOUT) p->mask[l] = (uint8_t *)(base + off_aux[l]);
        if (k == LK_BN) {
            p->save_mean[l] = (float *)(base + off_aux[l]);
            p->save_invstd[l] = (float *)(base + off_aux2[l]);
        }
        if (p->fold[l] == 2) {
            p->wf[l] = (float *)(base + off_aux[l]);
            p->dfeat[l] = (float *)(base + off_aux2[l]);
        }
    }
    free(off_val); free(off_aux); free(off_aux2); free(readers);

    /* prepared weights (pages first touched when made: a forward-only user never
     * touches those of the input gradient) */
    p->prep = xcalloc((size_t)2 * nl, sizeof(float *));
    p->prep_stamp = xcalloc((size_t)2 * nl, sizeof(uint64_t));
    size_t *prep_off = xcalloc((size_t)2 * nl, sizeof(size_t)), prep_bytes = 0;
    for (int l = 0; l < nl; l++) {
        const Layer *L = &m->layers[l];
        if (L->kind != LK_CONV) continue;
        const ActShape *in = &p->shape[L->in];
        ConvShape cs = conv_shape(max_batch, in->c, in->h, in->w, L->cout, L->k, L->k, L->s, L->s, L->pad, L->pad);
        for (int d = 0; d < 2; d++) {
            if (d && conv_prep_shared(&cs)) { /* one copy: the input gradient's slot is the forward's */
                prep_off[2 * l + 1] = prep_off[2 * l];
                continue;
            }
            const size_t f = conv_prep_floats(&cs, d);
            prep_off[2 * l + d] = f ? prep_bytes + 1 : 0; /* 0: none */
            prep_bytes = size_add(prep_bytes, ws_round(size_mul(f, sizeof(float))));
        }
    }
    if (prep_bytes) p->prep_block = xmalloc_aligned(prep_bytes);
    for (int i = 0; i < 2 * nl; i++)
        if (prep_off[i]) p->prep[i] = (float *)((char *)p->prep_block + prep_off[i] - 1);
    free(prep_off);

    /* gradient slots: replay the backward order, taking a slot when a gradient goes
     * live (at its last reader) and giving it back after its producer ran */
    p->gslot = xmalloc((size_t)na * sizeof(int));
    int *freelist = xmalloc((size_t)na * sizeof(int)), nfree = 0;
    for (int a = 0; a < na; a++) p->gslot[a] = -1;
    p->gslot[nl] = p->nslots++;
    for (int l = nl - 1; l >= 0; l--) {
        const Layer *L = &m->layers[l];
        if (p->relu_done[l]) continue; /* its output's gradient never exists: nothing to free */
        int first;
        const int a = grad_target(m, p, l, &first);
        if (first) p->gslot[a] = nfree ? freelist[--nfree] : p->nslots++;
        if (L->in2 > 0 && p->glast[L->in2] == l) p->gslot[L->in2] = nfree ? freelist[--nfree] : p->nslots++;
        freelist[nfree++] = p->gslot[l + 1];
    }
    free(freelist);
    size_t slot_bytes = ws_round(size_mul(size_mul(B, maxper), sizeof(float)));
    /* Pages of slots a forward-only user never touches are never made resident. */
    p->grad_block = xmalloc_aligned(size_mul(slot_bytes, (size_t)p->nslots));
    p->slot = xmalloc((size_t)p->nslots * sizeof(float *));
    for (int s = 0; s < p->nslots; s++) p->slot[s] = (float *)((char *)p->grad_block + s * slot_bytes);

    ws_init(&p->ws);
    if (ws_bytes) ws_reserve(&p->ws, ws_bytes);
    p->batch_bytes = size_add(size_add(bytes, size_mul(slot_bytes, (size_t)p->nslots)), ws_bytes);
    p->last_n = -1;
    return p;
}

Plan *plan_new_reference(const Model *m, int max_batch, int H, int W) {
    ActShape *shape = xcalloc((size_t)m->nlayers + 1, sizeof *shape);
    if (layer_shapes(m, max_batch, H, W, shape)) { free(shape); return NULL; }
    Plan *p = xcalloc(1, sizeof *p);
    p->max_batch = max_batch; p->H = H; p->W = W;
    p->nlayers = m->nlayers;
    p->n_params = m->n_params;
    p->ref = ref_new(m, max_batch, shape);
    free(shape);
    return p;
}

void plan_free(Plan *p) {
    if (!p) return;
    ref_free(p->ref);
    free(p->shape); free(p->val); free(p->gslot); free(p->glast); free(p->slot);
    free(p->argmax); free(p->mask); free(p->save_mean); free(p->save_invstd);
    free(p->fold); free(p->wf); free(p->dfeat); free(p->relu_after); free(p->bn_fuse); free(p->relu_into);
    free(p->relu_done); free(p->prep); free(p->prep_stamp);
    xfree_aligned(p->prep_block);
    xfree_aligned(p->block);
    xfree_aligned(p->grad_block);
    ws_free(&p->ws);
    free(p);
}

size_t plan_batch_bytes(const Plan *p) { return p->ref ? 0 : p->batch_bytes; }

void plan_size(const Plan *p, int *max_batch, int *h, int *w) {
    if (max_batch) *max_batch = p->max_batch;
    if (h) *h = p->H;
    if (w) *w = p->W;
}

static float *P(Model *m, int i) { return i >= 0 ? m->params_info[i].data : NULL; }

static void check_plan(const Model *m, const Plan *p) {
    GAD_ASSERT(p->nlayers == m->nlayers && p->n_params == m->n_params);
}

/* Conv l's prepared weights for the forward (dx = 0) or input gradient, made again
 * if the model's values are not those they were made from; NULL where the plan keeps
 * none, or in passes that are a training step's (want: 0), whose weights change
 * before the next pass (the route then prepares them in the workspace: the same
 * work, in memory the cache already holds), unless both passes share them
 * (conv_prep_shared: one slot, 2l, made once for the step's forward and backward). */
static const float *prep_of(Model *m, Plan *p, int l, const ConvShape *cs, int dx, int want) {
    const int shared = p->prep[2 * l] && p->prep[2 * l + 1] == p->prep[2 * l], i = shared ? 2 * l : 2 * l + dx;
    float *d = p->prep[i];
    if (!d || !(want || shared)) return NULL;
    if (m->stamp == 0 || p->prep_stamp[i] != m->stamp) { /* 0: a model made by hand */
        conv_prep(cs, P(m, m->layers[l].w), dx, d, &p->ws);
        p->prep_stamp[i] = m->stamp;
    }
    return d;
}

const float *model_forward(Model *m, Plan *p, const float *x, int n, PassMode mode) {
    check_plan(m, p);
    if (p->ref) return ref_forward(m, p->ref, x, n, mode);
    GAD_ASSERT(n >= 1 && n <= p->max_batch);
    memcpy(p->val[0], x, (size_t)n * p->shape[0].per * sizeof(float));
    int has_bn = 0;
    const int fuse = !mode.train && !mode.param_grads;
    p->last_fused = 0;
    for (int l = 0; l < m->nlayers; l++) {
        const Layer *L = &m->layers[l];
        const ActShape *si = &p->shape[L->in], *so = &p->shape[l + 1];
        const float *in = p->val[L->in];
        float *out = p->val[l + 1];
        size_t cnt = (size_t)n * so->per;
        switch (L->kind) {
        case LK_CONV: {
            ConvShape cs = conv_shape(n, si->c, si->h, si->w, L->cout, L->k, L->k, L->s, L->s, L->pad, L->pad);
            if (fuse && p->bn_fuse[l]) { /* conv, then BN l + 1 (and its ReLU) as it writes; BN skipped */
                const Layer *B = &m->layers[l + 1];
                float *sc = p->save_mean[l + 1], *sh = p->save_invstd[l + 1];
                bn_eval_affine(L->cout, P(m, B->w), P(m, B->b), P(m, B->rm), P(m, B->rv), BN_EPS, sc, sh);
                conv2d_forward_affine(&cs, in, P(m, L->w), prep_of(m, p, l, &cs, 0, fuse), P(m, L->b), sc, sh,
                                      p->val[l + 2], p->relu_after[l + 1], &p->ws);
                p->last_fused = 1;
                l++;
            } else {
                conv2d_forward_affine(&cs, in, P(m, L->w), prep_of(m, p, l, &cs, 0, fuse), P(m, L->b), NULL, NULL, out,
                                      p->relu_after[l], &p->ws);
            }
            GAD_ASSERT(p->ws.used == 0);
            break;
        }
        case LK_BN:
            has_bn = 1;
            if (mode.train)
                bn_forward_train_act(n, si->c, si->h * si->w, in, P(m, L->w), P(m, L->b), P(m, L->rm),
                                     P(m, L->rv), BN_MOMENTUM, BN_EPS, out, p->save_mean[l], p->save_invstd[l],
                                     p->relu_after[l]);
            else
                bn_forward_eval_act(n, si->c, si->h * si->w, in, P(m, L->w), P(m, L->b), P(m, L->rm), P(m, L->rv),
                                    BN_EPS, out, p->relu_after[l]);
            break;
        case LK_RELU:
            if (!(l > 0 && p->relu_after[l - 1])) relu_forward(cnt, in, out); /* else done by layer l - 1 */
            break;
        case LK_MAXPOOL: maxpool_forward(n, si->c, si->h, si->w, L->k, L->s, L->pad, in, out, p->argmax[l]); break;
        case LK_AVGPOOL:
            if (!p->fold[l]) adaptive_avgpool_forward(n, si->c, si->h, si->w, so->h, so->w, in, out);
            break;
        case LK_LINEAR:
            if (p->fold[l]) { /* on the pool's 1x1 input, with the weights folded over its bins */
                const int a = m->layers[l - 1].in, C = p->shape[a].c, bins = (int)(si->per / (size_t)C);
                linear_fold(L->cout, C, bins, P(m, L->w), p->wf[l]);
                linear_forward_ws(n, C, L->cout, p->val[a], p->wf[l], P(m, L->b), out, &p->ws);
            } else {
                linear_forward_ws(n, (int)si->per, L->cout, in, P(m, L->w), P(m, L->b), out, &p->ws);
            }
            break;
        case LK_DROPOUT:
            dropout_forward(cnt, L->p, mode.train, layer_seed(mode.seed, l), in, out, p->mask[l]);
            break;
        case LK_ADD:
            if (p->relu_after[l]) add_relu_forward(cnt, in, p->val[L->in2], out);
            else add_forward(cnt, in, p->val[L->in2], out);
            break;
        }
    }
    if (mode.train && has_bn) m->bn_batches++;
    p->last_n = n;
    p->last_train = mode.train;
    return p->val[m->nlayers];
}

/* Backward of a folded linear (layer l, after the pool l - 1 of a 1x1 map a): the
 * gradient of the map goes to dfeat (the pool's backward adds it into the map's
 * gradient once that is live); dw through the folded weights, spread back over the
 * bins. */
static void backward_folded(Model *m, Plan *p, int l, int n, const float *dy, float *dw, float *db) {
    const Layer *L = &m->layers[l];
    const int a = m->layers[l - 1].in, C = p->shape[a].c, O = L->cout;
    const int bins = (int)(p->shape[L->in].per / (size_t)C);
    const float *x = p->val[a];
    memset(p->dfeat[l], 0, (size_t)n * C * sizeof(float));
    linear_backward(n, C, O, x, p->wf[l], dy, p->dfeat[l], NULL, db);
    if (dw) {
        size_t mark = ws_mark(&p->ws);
        float *dwf = ws_floats(&p->ws, (size_t)O * C);
        memset(dwf, 0, (size_t)O * C * sizeof(float));
        linear_backward(n, C, O, x, p->wf[l], dy, NULL, dwf, NULL);
        linear_unfold_add(O, C, bins, dwf, dw);
        ws_release(&p->ws, mark);
    }
}

/* Gradient buffer of activation a: the caller's dx for the input, else its slot. */
static float *G(Plan *p, int a, float *dx) { return a == 0 ? dx : p->slot[p->gslot[a]]; }

void model_backward(Model *m, Plan *p, const float *dlogits, float *dx, int param_grads, PassMode mode) {
    check_plan(m, p);
    if (p->ref) {
        ref_backward(m, p->ref, dlogits, dx, param_grads, mode);
        return;
    }
    int n = p->last_n, nl = m->nlayers;
    GAD_ASSERT(n >= 1 && p->last_train == mode.train); /* backward of the last forward */
    GAD_ASSERT(!param_grads || m->grads);
    /* parameter gradients after an eval forward need mode.param_grads set there (BN's
     * weight gradient reads the conv output that the fused forward never wrote) */
    GAD_ASSERT(!param_grads || !p->last_fused);
    memcpy(G(p, nl, dx), dlogits, (size_t)n * p->shape[nl].per * sizeof(float));
    for (int l = nl - 1; l >= 0; l--) {
        const Layer *L = &m->layers[l];
        const ActShape *si = &p->shape[L->in], *so = &p->shape[l + 1];
        if (p->relu_done[l]) continue; /* done by the conv or pool that reads it */
        /* gradients that go live here start from zero (a folded linear's input has none;
         * a ReLU, a conv or a pool with relu_into writes its input's gradient whole when
         * it goes live: no zeroing) */
        int first;
        const int a = grad_target(m, p, l, &first);
        if (first && p->fold[l] != 2 && L->kind != LK_RELU && L->kind != LK_CONV && p->relu_into[l] < 0)
            memset(G(p, a, dx), 0, (size_t)n * si->per * sizeof(float));
        if (L->in2 > 0 && p->glast[L->in2] == l)
            memset(G(p, L->in2, dx), 0, (size_t)n * p->shape[L->in2].per * sizeof(float));
        const float *in = p->val[L->in], *dy = G(p, l + 1, dx);
        float *din = G(p, a, dx);
        float *dw = param_grads && L->w >= 0 ? m->params_info[L->w].grad : NULL;
        float *db = param_grads && L->b >= 0 ? m->params_info[L->b].grad : NULL;
        size_t cnt = (size_t)n * so->per;
        if (!din && !dw && !db && L->kind != LK_ADD) continue; /* nothing wanted from this layer */
        switch (L->kind) {
        case LK_CONV: {
            ConvShape cs = conv_shape(n, si->c, si->h, si->w, L->cout, L->k, L->k, L->s, L->s, L->pad, L->pad);
            /* with relu_into, in is the ReLU's output and din its input's gradient */
            conv2d_backward_fresh(&cs, in, P(m, L->w), prep_of(m, p, l, &cs, 1, din && !param_grads), dy, din, first,
                                  p->relu_into[l] >= 0 ? in : NULL, mode.relu, dw, db, &p->ws);
            GAD_ASSERT(p->ws.used == 0);
            break;
        }
        case LK_BN:
            if (mode.train)
                bn_backward_train(n, si->c, si->h * si->w, in, P(m, L->w), p->save_mean[l], p->save_invstd[l], dy,
                                  din, dw, db);
            else
                bn_backward_eval(n, si->c, si->h * si->w, in, P(m, L->w), P(m, L->rm), P(m, L->rv), BN_EPS, dy,
                                 din, dw, db);
            break;
        case LK_RELU:
            (first ? relu_backward_set : relu_backward)(cnt, p->val[l + 1], dy, din, mode.relu);
            break;
        case LK_MAXPOOL:
            if (p->relu_into[l] >= 0) /* in is the ReLU's output, din its input's gradient */
                maxpool_backward_relu(n, si->c, si->h, si->w, L->k, L->s, L->pad, p->argmax[l], dy, in, mode.relu,
                                      din);
            else
                maxpool_backward(n, si->c, si->h, si->w, L->k, L->s, L->pad, p->argmax[l], dy, din);
            break;
        case LK_AVGPOOL:
            if (p->fold[l]) add_backward((size_t)n * si->c, p->dfeat[l + 1], din, NULL); /* from the linear */
            else adaptive_avgpool_backward(n, si->c, si->h, si->w, so->h, so->w, dy, din);
            break;
        case LK_LINEAR:
            if (p->fold[l]) backward_folded(m, p, l, n, dy, dw, db);
            else linear_backward(n, (int)si->per, L->cout, in, P(m, L->w), dy, din, dw, db);
            break;
        case LK_DROPOUT: dropout_backward(cnt, L->p, mode.train, p->mask[l], dy, din); break;
        case LK_ADD: add_backward(cnt, dy, din, G(p, L->in2, dx)); break;
        }
    }
}
