/* gad: the computations of GAD after the attributions exist (paper §4.3 and §5):
 * importance maps, the intersection of the original map with the support models'
 * maps, convex hulls of the most important pixels (Andrew's monotone chain, exact
 * integer arithmetic), hull areas and masks, the RC / RS metrics and Table 1's
 * counts (which results the rules forced); and three checks the paper does not
 * have: size-matched control masks for RS, paired statistics over images (sign
 * test), deletion and insertion curves.
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
 *     NON-ZERO pixels (a pixel of importance 0 is never present).
 *   The GAD map keeps the original's importance on the pixels present in every map
 *   (Fig. 3: "filtered attribution maps"), 0 elsewhere.
 *
 * Hull points (which pixels of a map the convex hull encloses, §5 and §6), HullRule:
 *   HULL_OF_IMAGE (default, --hull-of image --hull-keep 0.5): the top
 *     ceil(keep * H * W) pixels of the map by importance, never a pixel of
 *     importance 0 (a map with fewer non-zero pixels keeps all of them). §6: "To
 *     create the convex hull, we filtered out 50% of the pixels, retaining only the
 *     most important half": half of the image's pixels.
 *   HULL_OF_NONZERO (--hull-of nonzero): the top ceil(keep * nnz) of the map's
 *     non-zero pixels: "the pixels" read as those the map gives any importance.
 *   HULL_OF_PRESENT (--hull-of present): the map's own present pixels under the
 *     presence rule, e.g. >= 10% of its maximum. Fig. 4: "We involve with the
 *     convex-hull the pixels reaching more than 10% of the highest importance
 *     according to the GAD - Guided Propagation attribution map".
 *   Forced results. When the GAD map's hull points are a subset of the original's,
 *   CH_GAD lies inside CH_orig and RC <= 1 whatever the model: the rules decided,
 *   not the model (gad_rc_forced tells such a cell). It happens whenever the
 *   original's present pixels are among its own hull points, since the GAD map's
 *   non-zero pixels are among the original's present ones and the hull points of
 *   both are prefixes of one ranking: always under --hull-of present, and under the
 *   other budgets for maps whose present pixels fit the budget (sparse maps:
 *   Gradient x Input and IG on black backgrounds, Guided Backprop); with
 *   --present-top F --hull-of nonzero --hull-keep F in every cell. RC > 1 needs an
 *   original map with more present pixels than hull points and supports that drop
 *   some of its top pixels (a test builds one).
 *
 * RC (eq. 1) = A(CH_GAD) / A(CH_orig) with a chosen area measure:
 *   RC_AREA_POLYGON (default): shoelace area through pixel centres, as the paper.
 *     A(CH_orig) = 0 (empty, one point, collinear points) leaves RC undefined (NaN):
 *     such images are counted apart, in neither Table 1 column.
 *   RC_AREA_PIXELS: pixels inside or on the hull; defined whenever the original
 *     map has a non-zero pixel.
 *   An empty GAD map (no pixel present in every map) has area 0, so RC = 0; Table 1
 *   counts it in neither column (gad_tally_rc) unless asked to count it for GAD.
 * RS (eq. 2) = |N_a(I) - N_a(occluded I)| / ΣM, occlusion x*(1-M) on every channel
 *   (or x*(1-M) + b*M with a baseline image b). An empty mask gives no RS (NaN),
 *   never a division by zero.
 *
 * Not for: attributions (attr/), training support models, files or figures. */
#ifndef GAD_GAD_GAD_H
#define GAD_GAD_GAD_H
#include "core/rng.h"
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
/* The same with ties (equal importance, notably 0) in the order of tiebreak [npix]
 * (distinct keys, smaller first; e.g. a random permutation), NULL: by index. */
int gad_rank_ties(const float *imp, int npix, const int *tiebreak, int *order);
/* Count of "fraction f of n" (see conventions). */
int gad_frac_count(double f, int n);
/* Which pixels of a map the hull encloses (see "Hull points" above). */
typedef enum { HULL_OF_IMAGE = 0, HULL_OF_NONZERO = 1, HULL_OF_PRESENT = 2 } HullOf;
typedef struct {
    HullOf of;
    float keep;          /* IMAGE, NONZERO: the fraction kept (of H*W, of nnz) */
    Presence present;    /* PRESENT: the rule whose present pixels are the points */
} HullRule;
/* Hull points of map imp [H,W] under rule r, in ranking order (most important
 * first). pts: room for H*W points. Returns the count (0 for an all-zero map). */
int gad_hull_points(const float *imp, int H, int W, const HullRule *r, GadPoint *pts);
/* Is RC <= 1 forced (see above)? 1 when every hull point of the GAD map gad is a
 * hull point of the original map orig (both [H,W], rule r); an empty GAD map is. */
int gad_rc_forced(const float *orig, const float *gad, int H, int W, const HullRule *r);
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
    int npoints;         /* hull points (gad_hull_points) */
    int nvert;           /* hull vertices */
    double area;         /* polygon area through pixel centres */
    int pixels;          /* pixels inside or on the hull (= sum of mask) */
} GadHull;
/* Points, hull, area and mask of map imp [H,W]. verts (may be NULL): room for
 * H*W + 1 points, gets the vertices. mask (may be NULL): [H*W]. */
void gad_map_hull(const float *imp, int H, int W, const HullRule *r, GadHull *h, GadPoint *verts,
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

/* Table 1 counts for one (method, class). A cell (an image's RC) goes to one of:
 * GAD (RC < 1), Orig. (RC >= 1, the paper's "RC >= 1.0 ... in favor of the original
 * visualization"), empty (the GAD map has no pixel: in neither column unless
 * count_empty, then RC = 0 counts for GAD as in the paper's rule), undefined (the
 * original's hull has no area, RC = NaN: in neither column). */
typedef enum { RC_COUNT_GAD = 0, RC_COUNT_ORIG, RC_COUNT_EMPTY, RC_COUNT_UNDEFINED } RcCount;
RcCount gad_rc_count(double rc, int gad_empty, int count_empty);
typedef struct {
    int gad, orig;       /* the two columns */
    int tie;             /* of orig: RC = 1 exactly */
    int forced;          /* of gad + orig: RC <= 1 forced by the rules (gad_rc_forced) */
    int empty;           /* empty GAD maps left out (RC_COUNT_EMPTY) */
    int undefined;       /* RC_COUNT_UNDEFINED */
} GadRcTally;
void gad_tally_rc(GadRcTally *t, double rc, int gad_empty, int forced, int count_empty);
/* A Table 1 column (one method of one model) is structural when every cell counted
 * in it, over the n tallies (its classes), was forced: then it says nothing about
 * the model. 0 when nothing was counted. */
int gad_rc_structural(const GadRcTally *t, int n);
/* ---- a size-matched control for Table 2 (control.c; not in the paper) ----
 * RS is per pixel and falls steeply with the mask's size, so RS(GAD) > RS(Sup.)
 * partly says which mask is smaller. The control asks whether GAD's region matters
 * more than any region of its size among the pixels the explanations call
 * important: a compact region of exactly |M_GAD| pixels, the pixels of the region
 * M_orig OR M_GAD nearest to a seed pixel drawn uniformly from it (distance between
 * pixel centres, ties by index): a disc clipped to the region. The region is the
 * original's hull whenever GAD's lies inside it, and always holds |M_GAD| pixels;
 * when it holds no more (M_orig inside M_GAD, so that Sup. is empty too) the
 * control could only be M_GAD itself and the pipeline leaves it out.
 * Compact, like a hull, because occluding a scatter of single pixels acts on a CNN
 * differently from occluding a blob of the same size. */
/* mask [H*W] gets k pixels of region [H*W] (0/1) as above; 0 <= k <= |region|.
 * Draws one number from rng. Returns k. */
int gad_control_mask(const unsigned char *region, int H, int W, int k, Rng *rng, unsigned char *mask);

/* ---- paired comparisons over images (stats.c; not in the paper) ---- */
typedef struct {
    int n;               /* pairs with both values (NaN in either: left out) */
    int wins, losses;    /* a > b, a < b (the rest are ties) */
    double median_ratio; /* median of a/b (a = b: 1, b = 0 < a: +inf) */
    double p;            /* two-sided sign test of wins against losses; NaN when none */
} GadPaired;
void gad_paired(const double *a, const double *b, int n, GadPaired *out);
/* Two-sided exact sign test: P(a split at least this uneven | each side 1/2),
 * min(1, 2 P(X <= min(wins, losses))) for X ~ Bin(wins + losses, 1/2). NaN for 0 0. */
double gad_sign_test(int wins, int losses);

/* ---- deletion and insertion curves (curves.c; not in the paper) ----
 * Petsiuk et al. (RISE, 2018): remove a map's pixels from the image in order of
 * importance (deletion: x -> baseline) or restore them onto the baseline
 * (insertion), in `steps` equal steps (step s changes the first
 * round(s * H*W / steps) pixels), and record N_target at each of the steps + 1
 * points. The area under the curve (x from 0 to 1) sums it up: a faithful map makes
 * the deletion curve fall early (low AUC) and the insertion curve rise early (high
 * AUC). Ties in a map, notably the zeros of a sparse map such as a GAD map, have no
 * order of their own: gad_curve_order breaks them by a given permutation, the same
 * for the maps compared, so that only the maps' orders differ. */
typedef struct {
    const float *x;      /* [C,H,W] */
    const int *order;    /* [H*W] pixel indices, most important first */
    int target;          /* output recorded */
} GadCurveJob;
/* order [npix]: pixels of imp by importance descending, ties by tiebreak (a
 * permutation of 0..npix-1 giving each pixel's place). */
void gad_curve_order(const float *imp, int npix, const int *tiebreak, int *order);
/* curves [njobs][steps+1] of every job, insertion 0 (deletion) or 1, baseline
 * [C,H,W] or NULL (zeros); images evaluated in batches of ev->max_batch; a job
 * with the same x (pointer) and target as the one before it takes that one's two
 * ends (nothing or everything changed) instead of evaluating them again. Returns 0
 * or -1 (the evaluator failed, err set). */
int gad_curves(const GadEval *ev, int C, int H, int W, const GadCurveJob *jobs, int njobs, int steps, int insertion,
               const float *baseline, double *curves);
/* Area under curve [steps+1] on [0, 1] (trapezoid rule). */
double gad_auc(const double *curve, int steps);

/* Table 2 running mean for one (method, class, mask kind); empty masks counted. */
typedef struct {
    double sum;
    int n, empty;
} GadRsMean;
void gad_tally_rs(GadRsMean *m, double rs);
double gad_rs_mean(const GadRsMean *m);   /* NaN when no value */

#endif
