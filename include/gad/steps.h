/* steps: GAD for one image, one method and one class with every intermediate kept,
 * so that a person can print and draw each step of §4.3 and §5 (the paper's Fig. 3
 * and Fig. 4, `gad explain-gad`, the report's step figures):
 *   the importance map of the original and of each support model, the pixels
 *   present in each, those present in all (the intersection), the GAD map, the hull
 *   points and hulls of the original and GAD maps, their masks and the
 *   supplementary mask, RC, and RS of the GAD and supplementary masks.
 * Every number comes from gad/gad.h's functions called in the order the pipeline
 * calls them (gad_present of the original, gad_present_and of each support,
 * gad_map_mask, gad_map_hull, gad_rc, gad_sup_mask, gad_rs), so they are the
 * pipeline's numbers for that image: a test compares them with results.json.
 * Also here: how well a support model fitted its distanced targets (Fig. 1).
 * Not for: attributions (attr/), loading or training models, drawing
 * (gad/figures.h). */
#ifndef GAD_GAD_STEPS_H
#define GAD_GAD_STEPS_H
#include "gad/gad.h"

typedef struct {
    int H, W, npix;
    int nmaps;                   /* 1 (the original) + the support models */
    float *imp;                  /* [nmaps][npix] importance |channel sum| of each map */
    unsigned char *present;      /* [nmaps][npix] present in that map alone */
    int *npresent;               /* [nmaps] */
    float *maxima;               /* [nmaps] each map's largest importance */
    unsigned char *all;          /* [npix] present in every map (the intersection) */
    int nall;
    float *gad;                  /* [npix] the GAD map: the original's importance on `all` */
    int gad_nnz;                 /* its non-zero pixels */
    GadPoint *pts[2];            /* [npix] hull points of the original (0) and GAD (1) maps */
    int npts[2];
    GadPoint *verts[2];          /* [npix + 1] hull vertices */
    GadHull hull[2];
    unsigned char *mask[3];      /* [npix] M_orig, M_GAD, M_sup = M_orig - M_GAD */
    int mask_pixels[3];          /* their sums (ΣM) */
    double rc;                   /* A(CH_GAD) / A(CH_orig); NaN when undefined */
    int forced;                  /* RC <= 1 forced by the rules (gad_rc_forced): not a finding */
    int target;                  /* the output a of RS */
    float y0;                    /* N_a(I) */
    double rs[2];                /* RS of M_GAD (0) and M_sup (1); NaN for an empty mask */
    double drop[2];              /* |N_a(I) - N_a(I occluded)| = RS * ΣM; NaN when empty */
} GadSteps;

/* Room for nmaps maps of H x W (nmaps >= 1). The caller frees with gad_steps_free. */
void gad_steps_init(GadSteps *s, int nmaps, int H, int W);
void gad_steps_free(GadSteps *s);
/* Map k from an attribution attr [3,H,W]: 0 the original, 1.. the support models
 * (in any order; the intersection does not depend on it). */
void gad_steps_set(GadSteps *s, int k, const float *attr);
/* Presence, intersection, GAD map, hull points, hulls, masks and RC under the
 * run's rules (p, hull, measure). Call after every map is set. */
void gad_steps_finish(GadSteps *s, Presence p, const HullRule *hull, RcArea measure);
/* RS of M_GAD and M_sup for image x [3,H,W] and output `target` on ev (the original
 * model), occlusion as gad_rs (baseline may be NULL). y0: N_target(x), or NaN to
 * have it computed. Returns 0 or -1 (err set). */
int gad_steps_rs(GadSteps *s, const GadEval *ev, const float *x, int target, float y0, const float *baseline);

/* ---- how well a support model fitted (Fig. 1) ---- */

typedef struct {
    double shift;                /* mean drop of the lowered logit, support vs original,
                                  * in units of alpha: 1 = the distancing asked for */
    double rmse;                 /* root mean square of support - target over both outputs */
    int fits;                    /* shift >= 0.5 and rmse <= alpha / 2: at least half the
                                  * distancing done, at most half of alpha off on average */
} GadFit;
/* orig, sup: [n,2] logits of the two classes' outputs for the same n training images
 * of classes cls [n] (0 or 1), under the original and a support model trained with
 * alpha; targets as gad_distance. n >= 1. */
void gad_fit(const float *orig, const float *sup, const int *cls, int n, float alpha, GadFit *f);

#endif
