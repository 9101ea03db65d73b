/* metrics: RC (eq. 1) and RS (eq. 2) of §5, the supplementary mask, Table 1 and
 * Table 2 tallies, and an evaluator over a Model + Plan for RS's occluded images.
 * Not for: choosing the hull points or building masks (hull.c). */
#include "gad/gad.h"
#include "core/err.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

double gad_rc(const GadHull *gad, const GadHull *orig, RcArea measure) {
    double a_gad = measure == RC_AREA_PIXELS ? gad->pixels : gad->area;
    double a_orig = measure == RC_AREA_PIXELS ? orig->pixels : orig->area;
    if (!(a_orig > 0)) return NAN;
    return a_gad / a_orig;
}

int gad_sup_mask(const unsigned char *orig, const unsigned char *gad, int npix, unsigned char *sup) {
    int count = 0;
    for (int i = 0; i < npix; i++) {
        sup[i] = orig[i] && !gad[i];  /* M_orig - M_GAD clipped to {0, 1} */
        count += sup[i];
    }
    return count;
}

static int eval_model_fn(void *ctx, const float *x, int n, float *out) {
    GadModelCtx *c = ctx;
    PassMode mode = {0, RELU_STANDARD, 0, 0};
    const float *y = model_forward(c->m, c->p, x, n, mode);
    if (!y) return -1;
    memcpy(out, y, sizeof(float) * (size_t)n * (size_t)c->m->cfg.num_classes);
    return 0;
}

void gad_eval_model(GadEval *ev, GadModelCtx *ctx, Model *m, Plan *p, int max_batch) {
    ctx->m = m;
    ctx->p = p;
    ev->fn = eval_model_fn;
    ev->ctx = ctx;
    ev->nout = m->cfg.num_classes;
    ev->max_batch = max_batch;
}

/* Evaluate images xb[nb,C,H,W] and pick output targets[j] of each into y[j]. */
static int eval_pick(const GadEval *ev, const float *xb, int nb, const int *targets, float *outb,
                     float *y) {
    if (ev->fn(ev->ctx, xb, nb, outb) != 0) return -1;
    for (int j = 0; j < nb; j++) y[j] = outb[(size_t)j * ev->nout + targets[j]];
    return 0;
}

int gad_rs(const GadEval *ev, int C, int H, int W, GadRsJob *jobs, int njobs, const float *baseline,
           double *rs) {
    GAD_ASSERT(ev->max_batch >= 1 && ev->nout >= 1);
    size_t npix = (size_t)H * W, isz = (size_t)C * npix;
    int B = ev->max_batch, empty = 0, rc = 0;
    float *xb = xmalloc(sizeof(float) * isz * (size_t)B);
    float *outb = xmalloc(sizeof(float) * (size_t)ev->nout * (size_t)B);
    float *y = xmalloc(sizeof(float) * (size_t)B);
    int *tg = xmalloc(sizeof(int) * (size_t)B);
    int *who = xmalloc(sizeof(int) * (size_t)B);
    int *area = xmalloc(sizeof(int) * (size_t)(njobs > 0 ? njobs : 1));
    for (int j = 0; j < njobs; j++) {
        GAD_ASSERT(jobs[j].target >= 0 && jobs[j].target < ev->nout);
        area[j] = 0;
        for (size_t i = 0; i < npix; i++) area[j] += jobs[j].mask[i] != 0;
        rs[j] = NAN;
        if (area[j] == 0) empty++;
    }
    /* Pass 1: unoccluded outputs still unknown. Pass 2: occluded images. */
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        int nb = 0;
        for (int j = 0; j <= njobs && rc == 0; j++) {
            int want = j < njobs && area[j] > 0 && (pass == 1 || isnan(jobs[j].y0));
            if (want) {
                float *dst = xb + (size_t)nb * isz;
                const float *src = jobs[j].x;
                if (pass == 0) {
                    memcpy(dst, src, sizeof(float) * isz);
                } else {
                    const unsigned char *m = jobs[j].mask;
                    for (int c = 0; c < C; c++)
                        for (size_t i = 0; i < npix; i++) {
                            size_t k = (size_t)c * npix + i;
                            dst[k] = m[i] ? (baseline ? baseline[k] : 0.0f) : src[k];
                        }
                }
                tg[nb] = jobs[j].target;
                who[nb++] = j;
            }
            if (nb > 0 && (nb == B || j == njobs)) {
                if (eval_pick(ev, xb, nb, tg, outb, y) != 0) {
                    rc = -1;
                    break;
                }
                for (int b = 0; b < nb; b++) {
                    GadRsJob *jb = &jobs[who[b]];
                    if (pass == 0) jb->y0 = y[b];
                    else rs[who[b]] = fabs((double)jb->y0 - (double)y[b]) / area[who[b]];
                }
                nb = 0;
            }
        }
    }
    free(area);
    free(who);
    free(tg);
    free(y);
    free(outb);
    free(xb);
    return rc == 0 ? empty : -1;
}

RcCount gad_rc_count(double rc, int gad_empty, int count_empty) {
    if (gad_empty && !count_empty) return RC_COUNT_EMPTY;
    if (isnan(rc)) return RC_COUNT_UNDEFINED;
    return rc < 1.0 ? RC_COUNT_GAD : RC_COUNT_ORIG;
}

void gad_tally_rc(GadRcTally *t, double rc, int gad_empty, int forced, int count_empty) {
    switch (gad_rc_count(rc, gad_empty, count_empty)) {
    case RC_COUNT_EMPTY: t->empty++; return;
    case RC_COUNT_UNDEFINED: t->undefined++; return;
    case RC_COUNT_GAD: t->gad++; break;
    case RC_COUNT_ORIG: t->orig++; t->tie += rc == 1.0; break;
    }
    t->forced += forced != 0;
}

int gad_rc_structural(const GadRcTally *t, int n) {
    int counted = 0, forced = 0;
    for (int k = 0; k < n; k++) {
        counted += t[k].gad + t[k].orig;
        forced += t[k].forced;
    }
    return counted > 0 && forced == counted;
}

void gad_tally_rs(GadRsMean *m, double rs) {
    if (isnan(rs)) m->empty++;
    else {
        m->sum += rs;
        m->n++;
    }
}

double gad_rs_mean(const GadRsMean *m) { return m->n > 0 ? m->sum / m->n : NAN; }
