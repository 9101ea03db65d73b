/* gad: the computations of GAD after the attributions exist (paper §4.3 and §5):
 * importance maps, the intersection of the original map with the support models'
 * maps, convex hulls of the most important pixels (Andrew's monotone chain, exact
 * integer arithmetic), hull areas and masks, and the RC / RS metrics.
 *
 * Conventions
 *   Maps are [H,W] row-major floats; pixel index i = y*W + x; a point is (x = column,
 *   y = row) of a pixel centre, so a hull's area is the area of the polygon through
 *   pixel centres (a single pixel or a line of pixels has area 0). The count of
 *   pixels whose centre is inside or on the hull is reported beside it (>= 1 for
 *   any non-empty point set) and is the sum of the hull's mask, the ΣM of eq. 2.
 *   Hulls are counter-clockwise in (x, y) coordinates (positive shoelace sum; on a
 *   screen, where y grows downwards, they run clockwise).
 *   Ranking of pixels (presence-top and hull points): importance descending, then
 *   pixel index ascending, so ties never depend on the sort.
 *   A count "fraction f of n items" is ceil(f*n) (with a 1e-6 tolerance against
 *   float noise, so 0.1f*10 is 1), at least 1 when n > 0 and f > 0.
 *
 * Presence (which pixels of a map count as "present", §4.3 and Fig. 3):
 *   PRESENT_FRAC (default, --present 0.1): importance >= frac * max of that map;
 *     a map whose max is 0 has no present pixel (nothing to explain).
 *   PRESENT_TOP (--present-top F): among the top ceil(F * nnz) of the map's
 *     NON-ZERO pixels (a pixel of importance 0 is never present). Counting among the
 *     non-zero pixels, as the hull points are, makes the warning below exact.
 *   Warning: with --present-top F and --hull-keep F (e.g. both 0.5) the GAD map's
 *   non-zero pixels are a subset of the original's hull points, and the GAD hull
 *   points a subset of those: the GAD hull can never be larger (RC <= 1 always)
 *   and Table 1 carries no information. Under PRESENT_FRAC the original's present
 *   pixels are a prefix of its ranking: when they are no more than its hull points
 *   (ceil(keep * nnz)), the same subset argument gives RC <= 1. RC > 1 needs an
 *   original map with more than that many pixels above the threshold and supports
 *   that drop some of its top pixels, so that GAD's top half reaches pixels the
 *   original's top half leaves out (a test builds one).
 *
 * RC (eq. 1) = A(CH_GAD) / A(CH_orig) with a chosen area measure:
 *   RC_AREA_POLYGON (default): shoelace area through pixel centres, as the paper.
 *     A(CH_orig) = 0 (empty, one point, collinear points) leaves RC undefined (NaN):
 *     such images are counted apart, in neither Table 1 column.
 *   RC_AREA_PIXELS: pixels inside or on the hull; defined whenever the original
 *     map has a non-zero pixel.
 *   An empty GAD map (no pixel present in every map) has area 0: RC = 0, for GAD.
 * RS (eq. 2) = |N_a(I) - N_a(occluded I)| / ΣM, occlusion x*(1-M) on every channel
 *   (or x*(1-M) + b*M with a baseline image b). An empty mask gives no RS (NaN),
 *   never a division by zero.
 *
 * Not for: attributions (attr/), training support models, files or figures. */
#ifndef GAD_GAD_GAD_H
#define GAD_GAD_GAD_H
#include "nn/model.h"
#include <stdint.h>

/* ---- importance and intersection ---- */

/* imp[H*W] = |sum over c of attr[c,H,W]|. */
void gad_importance(const float *attr, int C, int H, int W, float *imp);

typedef enum { PRESENT_FRAC = 0, PRESENT_TOP = 1 } PresentRule;
typedef struct {
    PresentRule rule;
    float value;         /* frac of the max (FRAC) or fraction of non-zero pixels (TOP) */
} Presence;

/* present[npix] = 1 where the pixel is present in map imp[npix], else 0.
 * Returns the number of present pixels. */
int gad_present(const float *imp, int npix, Presence p, unsigned char *present);
/* acc[npix] &= presence of map imp[npix]: what a support model's map does to the
 * running "present in every map so far" mask (start it with gad_present of the
 * original). */
void gad_present_and(const float *imp, int npix, Presence p, unsigned char *acc);
/* The GAD map (Fig. 3, "filtered attribution maps"): out[i] = orig[i] where
 * present_all[i] (present in every map), 0 elsewhere. out may alias orig. Returns
 * the number of non-zero pixels of out. */
int gad_map_mask(const float *orig, const unsigned char *present_all, int npix, float *out);
/* The whole of §4.3 at once: gad_present of maps[0] (the original), gad_present_and
 * of every other, gad_map_mask. maps: nmaps pointers to [npix]. out may alias
 * maps[0]. Returns the number of non-zero pixels of out. The pipeline calls the
 * same three functions one support model at a time (gad/run.h). */
int gad_intersect(const float *const *maps, int nmaps, int npix, Presence p, float *out);

/* ---- hulls ---- */

typedef struct { int x, y; } GadPoint;   /* x = column, y = row */

/* Ranking of the pixels of imp[npix]: order[npix] gets the pixel indices sorted by
 * importance descending, then index ascending. Returns the number of non-zero
 * pixels (they come first in order). */
int gad_rank(const float *imp, int npix, int *order);
/* Count of "fraction f of n" (see conventions). */
int gad_frac_count(double f, int n);
/* Hull points: the pixels of the top ceil(keep * nnz) of imp's non-zero pixels.
 * pts: room for H*W points. Returns the count (0 for an all-zero map). */
int gad_hull_points(const float *imp, int H, int W, float keep, GadPoint *pts);
/* Convex hull of pts[n] by Andrew's monotone chain. Sorts pts in place (x, then y).
 * hull: room for n + 1 points; gets the vertices counter-clockwise starting at the
 * smallest (x, y), without repeated or collinear points. Returns the vertex count:
 * 0 (no points), 1 (all equal), 2 (all on one line: its two ends), or >= 3. */
int gad_convex_hull(GadPoint *pts, int n, GadPoint *hull);
/* Twice the signed shoelace area of a polygon (exact; >= 0 for our hulls). */
int64_t gad_area2(const GadPoint *hull, int nh);
/* Mask[H*W] = 1 for pixels whose centre is inside or on the hull (any nh, from 0),
 * else 0. Returns the number of 1s. */
int gad_hull_mask(const GadPoint *hull, int nh, int H, int W, unsigned char *mask);

/* One map's hull, everything derived from it. */
typedef struct {
    int npoints;         /* hull points (top half of the non-zero pixels) */
    int nvert;           /* hull vertices */
    double area;         /* polygon area through pixel centres */
    int pixels;          /* pixels inside or on the hull (= sum of mask) */
} GadHull;
/* Points, hull, area and mask of map imp [H,W]. verts (may be NULL): room for
 * H*W + 1 points, gets the vertices. mask (may be NULL): [H*W]. */
void gad_map_hull(const float *imp, int H, int W, float keep, GadHull *h, GadPoint *verts,
                  unsigned char *mask);

/* ---- metrics ---- */

typedef enum { RC_AREA_POLYGON = 0, RC_AREA_PIXELS = 1 } RcArea;
/* RC of two hulls: GAD / orig under the measure; NaN when the original's measure is 0. */
double gad_rc(const GadHull *gad, const GadHull *orig, RcArea measure);
/* Supplementary mask sup = orig AND NOT gad. Returns its number of 1s. */
int gad_sup_mask(const unsigned char *orig, const unsigned char *gad, int npix, unsigned char *sup);

/* Evaluates the network: out[n*nout] = outputs of x[n,C,H,W] for n <= max_batch.
 * Returns 0 or -1 (err set). */
typedef struct {
    int (*fn)(void *ctx, const float *x, int n, float *out);
    void *ctx;
    int nout;            /* outputs per image (classes) */
    int max_batch;
} GadEval;

/* An evaluator over a model in eval mode (plain backward rules): ctx must outlive ev.
 * max_batch must not exceed the plan's. */
typedef struct {
    Model *m;
    Plan *p;
} GadModelCtx;
void gad_eval_model(GadEval *ev, GadModelCtx *ctx, Model *m, Plan *p, int max_batch);

/* One RS question: image x [C,H,W], mask [H*W] of 0/1, output `target`. */
typedef struct {
    const float *x;
    const unsigned char *mask;
    int target;
    float y0;            /* N_target(x) unoccluded; computed by gad_rs when NaN */
} GadRsJob;

/* RS of every job (eq. 2), occluded images evaluated in batches of ev->max_batch.
 * baseline [C,H,W] or NULL (occlusion x*(1-M)); with it x*(1-M) + b*M.
 * rs[njobs] gets the value, NaN for an empty mask. Returns the number of empty
 * masks, or -1 when the evaluator fails (err set). */
int gad_rs(const GadEval *ev, int C, int H, int W, GadRsJob *jobs, int njobs, const float *baseline,
           double *rs);

/* Table 1 counts for one (method, class): images with RC < 1 credit GAD, RC >= 1
 * the original, NaN RC neither. */
typedef struct {
    int gad, orig, undefined;
} GadRcTally;
void gad_tally_rc(GadRcTally *t, double rc);
/* Table 2 running mean for one (method, class, mask kind); empty masks counted. */
typedef struct {
    double sum;
    int n, empty;
} GadRsMean;
void gad_tally_rs(GadRsMean *m, double rs);
double gad_rs_mean(const GadRsMean *m);   /* NaN when no value */

#endif
