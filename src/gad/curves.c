/* curves: deletion and insertion curves of an attribution map (not in the paper;
 * Petsiuk, Das and Saenko, "RISE", BMVC 2018, the usual check of a map's
 * faithfulness): pixels are removed from the image (deletion) or restored onto the
 * baseline (insertion) in the map's order of importance, and the model's output for
 * the target is recorded at each step; the area under the curve sums it up
 * (deletion: lower is better, insertion: higher is better).
 * Not for: choosing the maps or the images (run.c). */
#include "gad/gad.h"
#include "core/err.h"
#include <stdlib.h>
#include <string.h>

void gad_curve_order(const float *imp, int npix, const int *tiebreak, int *order) {
    gad_rank_ties(imp, npix, tiebreak, order);
}

/* Pixels changed at step s of steps: the first round(s * npix / steps). */
static int step_count(int s, int steps, int npix) {
    return (int)(((long long)s * npix * 2 + steps) / (2LL * steps));
}

/* Does point s of job j repeat one of job j - 1? Both ends of a curve (nothing
 * changed, everything changed) depend on the image and target alone. */
static int shared_end(const GadCurveJob *jobs, int j, int s, int steps) {
    return j > 0 && (s == 0 || s == steps) && jobs[j].x == jobs[j - 1].x && jobs[j].target == jobs[j - 1].target;
}

int gad_curves(const GadEval *ev, int C, int H, int W, const GadCurveJob *jobs, int njobs, int steps, int insertion,
               const float *baseline, double *curves) {
    GAD_ASSERT(steps >= 1 && ev->max_batch >= 1);
    int npix = H * W, B = ev->max_batch, total = njobs * (steps + 1), rc = 0;
    size_t isz = (size_t)C * npix;
    float *xb = xmalloc(sizeof(float) * isz * (size_t)B);
    float *outb = xmalloc(sizeof(float) * (size_t)ev->nout * (size_t)B);
    unsigned char *on = xmalloc((size_t)npix);  /* 1: the pixel is from x */
    int *who = xmalloc(sizeof(int) * (size_t)B);  /* point t = job * (steps + 1) + step */
    for (int t = 0, nb = 0; t <= total && rc == 0; t++) {
        if (t < total && !shared_end(jobs, t / (steps + 1), t % (steps + 1), steps)) {
            const GadCurveJob *j = &jobs[t / (steps + 1)];
            int k = step_count(t % (steps + 1), steps, npix);
            GAD_ASSERT(j->target >= 0 && j->target < ev->nout);
            memset(on, insertion ? 0 : 1, (size_t)npix);
            for (int r = 0; r < k; r++) on[j->order[r]] = (unsigned char)insertion;
            float *dst = xb + (size_t)nb * isz;
            for (int c = 0; c < C; c++)
                for (int i = 0; i < npix; i++) {
                    size_t e = (size_t)c * npix + i;
                    dst[e] = on[i] ? j->x[e] : baseline ? baseline[e] : 0.0f;
                }
            who[nb++] = t;
        }
        if (nb > 0 && (nb == B || t == total)) {
            if (ev->fn(ev->ctx, xb, nb, outb) != 0) {
                rc = -1;
                break;
            }
            for (int b = 0; b < nb; b++) curves[who[b]] = outb[(size_t)b * ev->nout + jobs[who[b] / (steps + 1)].target];
            nb = 0;
        }
    }
    for (int t = 0; t < total && rc == 0; t++)  /* in order: a chain of shared ends copies down */
        if (shared_end(jobs, t / (steps + 1), t % (steps + 1), steps)) curves[t] = curves[t - (steps + 1)];
    free(who);
    free(on);
    free(outb);
    free(xb);
    return rc;
}

double gad_auc(const double *curve, int steps) {
    double s = 0;
    for (int i = 0; i < steps; i++) s += 0.5 * (curve[i] + curve[i + 1]);
    return s / steps;
}
