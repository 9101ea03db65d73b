/* explain: steps and distancing of a finished run, recomputed (see gad/explain.h).
 * The order is the pipeline's: the original model's maps, then each support model's
 * in turn, then gad_steps_finish and RS on the original model.
 * Not for: printing (cli/cmd_explain_gad.c) or drawing (figures.c). */
#include "gad/explain.h"
#include "core/err.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 32

void gad_run_hull(const RunOpts *o, HullRule *h) {
    h->of = o->hull_of;
    h->keep = o->hull_keep;
    h->present = o->present;
}

void gad_distancing_free(GadDistancing *d) {
    free(d->cls);
    free(d->orig);
    free(d->sup);
    memset(d, 0, sizeof *d);
}

int gad_explainer_open(GadExplainer *e, const RunOpts *o, const GadModelResult *r) {
    memset(e, 0, sizeof *e);
    e->o = o;
    e->r = r;
    if (model_load(&e->orig, r->weights) != 0) return -1;
    if (gad_run_data(o, &e->orig, &e->d) != 0) {
        model_free(&e->orig);
        return -1;
    }
    if (e->d.h != r->H || e->d.w != r->W) {
        err_set("%s: its images are now %dx%d, the run's were %dx%d", o->data, e->d.h, e->d.w, r->H, r->W);
        gad_explainer_close(e);
        return -1;
    }
    if (e->orig.cfg.has_norm) {
        e->mean = e->orig.cfg.mean;
        e->std = e->orig.cfg.std;
    }
    return 0;
}

void gad_explainer_close(GadExplainer *e) {
    dataset_free(&e->d);
    model_free(&e->orig);
}

/* Map k of every steps from model m: each image, each method, its class's output. */
static int maps_of(GadExplainer *e, Model *m, const int *idx, const int *cls, int n, GadSteps *steps, int k) {
    const RunOpts *o = e->o;
    int H = e->r->H, W = e->r->W;
    size_t isz = (size_t)3 * H * W;
    Plan *p = plan_new(m, BATCH, H, W);
    if (!p) return -1;
    float *attr = xmalloc(sizeof(float) * isz);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++)
        for (int mi = 0; mi < o->nmethods && rc == 0; mi++) {
            AttrOpts ao;
            attr_opts_default(&ao);
            ao.method = o->methods[mi];
            ao.steps = o->ig_steps;
            int target = e->r->o[cls[i]];
            rc = attr_compute(m, p, e->d.x + (size_t)idx[i] * isz, 1, &target, &ao, attr, NULL);
            if (rc == 0) gad_steps_set(&steps[i * o->nmethods + mi], k, attr);
        }
    free(attr);
    plan_free(p);
    return rc;
}

/* out [n,2] = m's logits of the two classes' outputs for images x [n,3,H,W]. */
static int logits2(GadExplainer *e, Model *m, const float *x, int n, float *out) {
    int H = e->r->H, W = e->r->W, K = m->cfg.num_classes;
    Plan *p = plan_new(m, BATCH, H, W);
    if (!p) return -1;
    float *y = xmalloc(sizeof(float) * (size_t)K * (n > 0 ? n : 1));
    gad_logits(m, p, x, n, y);
    for (int i = 0; i < n; i++) {
        out[2 * i] = y[(size_t)i * K + e->r->o[0]];
        out[2 * i + 1] = y[(size_t)i * K + e->r->o[1]];
    }
    free(y);
    plan_free(p);
    return 0;
}

/* The first per_class training images of each class, gathered into x. */
static float *training_images(GadExplainer *e, int per_class, GadDistancing *dist) {
    size_t isz = (size_t)3 * e->r->H * e->r->W;
    int *idx[2], cnt[2];
    dist->n = 0;
    for (int a = 0; a < 2; a++) {
        cnt[a] = dataset_select(&e->d, 0, a, per_class, &idx[a]);
        dist->n += cnt[a];
    }
    size_t n = (size_t)(dist->n > 0 ? dist->n : 1);
    float *x = xmalloc(sizeof(float) * isz * n);
    dist->cls = xmalloc(sizeof(int) * n);
    dist->orig = xmalloc(sizeof(float) * 2 * n);
    dist->sup = xmalloc(sizeof(float) * 2 * n * (size_t)(e->o->nalphas > 0 ? e->o->nalphas : 1));
    int k = 0;
    for (int a = 0; a < 2; a++) {
        for (int j = 0; j < cnt[a]; j++, k++) {
            memcpy(x + (size_t)k * isz, e->d.x + (size_t)idx[a][j] * isz, sizeof(float) * isz);
            dist->cls[k] = a;
        }
        free(idx[a]);
    }
    return x;
}

int gad_explain(GadExplainer *e, const int *idx, const int *cls, int n, GadSteps *steps, int per_class,
                GadDistancing *dist) {
    const RunOpts *o = e->o;
    const GadModelResult *r = e->r;
    int H = r->H, W = r->W, nm = o->nmethods, rc = 0;
    size_t isz = (size_t)3 * H * W;
    memset(steps, 0, sizeof *steps * (size_t)n * nm); /* safe to free whatever happens */
    for (int i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= e->d.n)
            return err_set_usage("image %d: %s has %d images of these classes (0..%d)", idx[i], o->data, e->d.n,
                                 e->d.n - 1);
        for (int m = 0; m < nm; m++) gad_steps_init(&steps[i * nm + m], 1 + o->nalphas, H, W);
    }
    float *xt = NULL;
    if (dist) {
        memset(dist, 0, sizeof *dist);
        xt = training_images(e, per_class, dist);
        rc = logits2(e, &e->orig, xt, dist->n, dist->orig);
    }
    if (rc == 0) rc = maps_of(e, &e->orig, idx, cls, n, steps, 0);
    for (int k = 0; k < o->nalphas && rc == 0; k++) {
        Model sup;
        if ((rc = model_load(&sup, r->support_path[k])) != 0) break;
        rc = maps_of(e, &sup, idx, cls, n, steps, 1 + k);
        if (rc == 0 && dist) rc = logits2(e, &sup, xt, dist->n, dist->sup + (size_t)k * 2 * dist->n);
        model_free(&sup);
    }
    free(xt);
    if (rc != 0) return -1;
    /* finish and RS on the original model, occlusion as the run's */
    HullRule hull;
    gad_run_hull(o, &hull);
    float *base = o->occlude_black ? gad_black_input(e->mean, e->std, H, W) : NULL;
    Plan *p = plan_new(&e->orig, BATCH, H, W);
    if (!p) {
        free(base);
        return -1;
    }
    GadEval ev;
    GadModelCtx ctx;
    gad_eval_model(&ev, &ctx, &e->orig, p, BATCH);
    for (int i = 0; i < n && rc == 0; i++)
        for (int m = 0; m < nm && rc == 0; m++) {
            GadSteps *s = &steps[i * nm + m];
            gad_steps_finish(s, o->present, &hull, o->rc_area);
            rc = gad_steps_rs(s, &ev, e->d.x + (size_t)idx[i] * isz, r->o[cls[i]], NAN, base);
        }
    plan_free(p);
    free(base);
    return rc;
}
