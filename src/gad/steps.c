/* steps: one image's GAD, every intermediate kept (see gad/steps.h). This file
 * calls gad.h's functions in the pipeline's order and stores what they return;
 * the only computations of its own are for display (each map's presence alone,
 * its maximum) and the fit of a support model (Fig. 1).
 * Not for: attributions, models, drawing. */
#include "gad/steps.h"
#include "core/err.h"
#include "gad/run.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void gad_steps_init(GadSteps *s, int nmaps, int H, int W) {
    GAD_ASSERT(nmaps >= 1 && H >= 1 && W >= 1);
    memset(s, 0, sizeof *s);
    size_t n = (size_t)H * W;
    s->H = H;
    s->W = W;
    s->npix = (int)n;
    s->nmaps = nmaps;
    s->imp = xcalloc((size_t)nmaps * n, sizeof(float));
    s->present = xcalloc((size_t)nmaps * n, 1);
    s->npresent = xcalloc((size_t)nmaps, sizeof(int));
    s->maxima = xcalloc((size_t)nmaps, sizeof(float));
    s->all = xcalloc(n, 1);
    s->gad = xcalloc(n, sizeof(float));
    for (int h = 0; h < 2; h++) {
        s->pts[h] = xmalloc(sizeof(GadPoint) * n);
        s->verts[h] = xmalloc(sizeof(GadPoint) * (n + 1));
    }
    for (int k = 0; k < 3; k++) s->mask[k] = xcalloc(n, 1);
    s->rc = s->rs[0] = s->rs[1] = s->drop[0] = s->drop[1] = NAN;
    s->y0 = NAN;
}

void gad_steps_free(GadSteps *s) {
    free(s->imp);
    free(s->present);
    free(s->npresent);
    free(s->maxima);
    free(s->all);
    free(s->gad);
    for (int h = 0; h < 2; h++) {
        free(s->pts[h]);
        free(s->verts[h]);
    }
    for (int k = 0; k < 3; k++) free(s->mask[k]);
    memset(s, 0, sizeof *s);
}

void gad_steps_set(GadSteps *s, int k, const float *attr) {
    GAD_ASSERT(k >= 0 && k < s->nmaps);
    gad_importance(attr, 3, s->H, s->W, s->imp + (size_t)k * s->npix);
}

void gad_steps_finish(GadSteps *s, Presence p, const HullRule *hull, RcArea measure) {
    int n = s->npix;
    for (int k = 0; k < s->nmaps; k++) {
        const float *m = s->imp + (size_t)k * n;
        s->npresent[k] = gad_present(m, n, p, s->present + (size_t)k * n);
        float mx = 0;
        for (int i = 0; i < n; i++) mx = m[i] > mx ? m[i] : mx;
        s->maxima[k] = mx;
    }
    /* the pipeline's order: the original's presence, AND each support's, the map */
    gad_present(s->imp, n, p, s->all);
    for (int k = 1; k < s->nmaps; k++) gad_present_and(s->imp + (size_t)k * n, n, p, s->all);
    s->nall = 0;
    for (int i = 0; i < n; i++) s->nall += s->all[i];
    s->gad_nnz = gad_map_mask(s->imp, s->all, n, s->gad);
    const float *maps[2] = {s->imp, s->gad};
    for (int h = 0; h < 2; h++) {
        s->npts[h] = gad_hull_points(maps[h], s->H, s->W, hull, s->pts[h]);
        gad_map_hull(maps[h], s->H, s->W, hull, &s->hull[h], s->verts[h], s->mask[h]);
    }
    s->rc = gad_rc(&s->hull[1], &s->hull[0], measure);
    s->forced = gad_rc_forced(s->imp, s->gad, s->H, s->W, hull);
    s->mask_pixels[2] = gad_sup_mask(s->mask[0], s->mask[1], n, s->mask[2]);
    for (int h = 0; h < 2; h++) s->mask_pixels[h] = s->hull[h].pixels;
}

int gad_steps_rs(GadSteps *s, const GadEval *ev, const float *x, int target, float y0, const float *baseline) {
    GadRsJob jobs[2];
    for (int k = 0; k < 2; k++) {
        jobs[k].x = x;
        jobs[k].mask = s->mask[k + 1];
        jobs[k].target = target;
        jobs[k].y0 = y0;
    }
    if (gad_rs(ev, 3, s->H, s->W, jobs, 2, baseline, s->rs) < 0) return -1;
    s->target = target;
    s->y0 = jobs[0].y0;
    if (isnan(s->y0)) {  /* gad_rs computed it on its own copy: evaluate once more */
        float *out = xmalloc(sizeof(float) * (size_t)ev->nout);
        int rc = ev->fn(ev->ctx, x, 1, out);
        s->y0 = out[target];
        free(out);
        if (rc != 0) return -1;
    }
    for (int k = 0; k < 2; k++) s->drop[k] = s->mask_pixels[k + 1] ? s->rs[k] * s->mask_pixels[k + 1] : NAN;
    return 0;
}

void gad_fit(const float *orig, const float *sup, const int *cls, int n, float alpha, GadFit *f) {
    GAD_ASSERT(n >= 1);
    float *t = xmalloc(sizeof(float) * 2 * (size_t)n);
    gad_distance(orig, cls, n, 2, 0, 1, alpha, t);
    double se = 0, shift = 0;
    for (int i = 0; i < n; i++) {
        int lowered = cls[i] == 0 ? 1 : 0;  /* gad_distance's rule */
        for (int k = 0; k < 2; k++) {
            double d = (double)sup[2 * i + k] - t[2 * i + k];
            se += d * d;
        }
        shift += (double)orig[2 * i + lowered] - sup[2 * i + lowered];
    }
    free(t);
    f->rmse = sqrt(se / (2.0 * n));
    f->shift = alpha != 0 ? shift / n / alpha : NAN;
    f->fits = f->rmse <= (alpha > 0 ? alpha : 0) / 2 + 1e-6 && !(f->shift < 0.5);
}
