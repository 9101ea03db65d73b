/* figures: pictures of GAD's steps that stand alone on a slide (title, column and
 * row labels, colour bars, keys and notes drawn into the PNG by io/figure.h):
 *   Fig. 1 style (§4.1-4.2): the distancing. One panel per alpha: the two logits
 *     of the training images under the original model, the targets the support
 *     model was fitted to, and the support model's outputs, with its final MSE and
 *     a warning in red when it did not fit (gad/steps.h's GadFit).
 *   Fig. 3 style (§4.3): for one image, method and class, the original map and each
 *     support model's map (blue), the pixels present in each, the pixels present in
 *     all of them and the GAD map (red).
 *   Fig. 4 style (§5): the hull points and the convex hull drawn on the original
 *     map (hull in red) and on the GAD map (hull in green), then both hulls on the
 *     input, with the areas, RC and RS in the note.
 *   Fig. 5 and Fig. 6 of the paper: original and GAD maps of a few images per
 *     method, and both hulls on the least activated images, labelled, with colour
 *     bars, misclassified images framed in purple and empty GAD maps labelled.
 * Colours are the paper's: original maps blue, GAD maps red (Fig. 5); original
 * hulls red, GAD hulls green (Fig. 6).
 * Not for: computing anything (gad/steps.h does), the report's page (report.c). */
#ifndef GAD_GAD_FIGURES_H
#define GAD_GAD_FIGURES_H
#include "attr/heatmap.h"
#include "gad/run.h"
#include "gad/steps.h"

/* Colours shared by the figures and the report's page. */
extern const unsigned char GAD_RGB_ORIG_HULL[3];  /* red */
extern const unsigned char GAD_RGB_GAD_HULL[3];   /* green */
extern const unsigned char GAD_RGB_WARN[3];       /* dark red: warnings ("did not fit", "empty") */
extern const unsigned char GAD_RGB_WRONG[3];      /* purple: a misclassified image (not a hull's red) */
extern const unsigned char GAD_RGB_FORCED[3];     /* amber: RC <= 1 forced by the rules, not a finding */

/* tile rgb [H*W*3] of importance map imp [H*W] under ramp r: Captum's 98%
 * cumulative-sum normalisation with threshold thr (<= 0: the map's own), values
 * above it at the ramp's top. Returns the threshold used, so that a GAD map can
 * be drawn on its original's scale. */
float gad_tile(const float *imp, float thr, int H, int W, HeatRamp r, unsigned char *rgb);

typedef struct {
    const char *model;           /* e.g. "vgg16" */
    const char *class_name[2];   /* the two classes (outputs o1, o2) */
    int n;                       /* training images */
    const int *cls;              /* [n] 0 or 1 */
    const float *orig;           /* [n,2] original logits of outputs o1, o2 */
    int nalpha;                  /* >= 1 */
    const float *alpha;          /* [nalpha] */
    const float *sup;            /* [nalpha][n,2] the support models' outputs */
    const float *loss;           /* [nalpha] final training MSE (NaN: unknown), or NULL */
    int max_points;              /* points drawn per class and panel (evenly spaced); 0: 150 */
} GadDistFig;
/* Write the Fig. 1 style PNG. fits [nalpha] (may be NULL) gets each panel's fit,
 * measured on all n images. Returns 0 or -1 (err set). */
int gad_fig_distancing(const char *path, const GadDistFig *d, GadFit *fits);

typedef struct {
    const char *model;           /* e.g. "resnet18" */
    const char *method;          /* e.g. "Integrated Gradients" */
    const char *image;           /* e.g. "image 2374 (Coat, predicted Coat)" */
    const char *target;          /* the class whose output is explained, e.g. "Coat" */
    const float *alpha;          /* [s->nmaps - 1] the support models' alphas */
    const unsigned char *input;  /* [H*W*3] the image as a person sees it */
    Presence present;            /* the rules used, for the labels */
    HullRule hull;
    int scale;                   /* tile upscaling (>= 1) */
} GadStepsInfo;
/* Fig. 3 style: 2 rows (maps; present pixels) x (input, original, each support,
 * GAD). Returns 0 or -1 (err set). */
int gad_fig_steps(const char *path, const GadSteps *s, const GadStepsInfo *info);
/* Fig. 4 style: original map + hull points + hull, GAD map + hull points + hull,
 * input + both hulls; the note gives the hull points, areas, RC and RS. Returns 0
 * or -1 (err set). */
int gad_fig_hulls(const char *path, const GadSteps *s, const GadStepsInfo *info);

/* ---- the paper's Fig. 5 and Fig. 6 ---- */

typedef struct {                 /* one image, a column of Fig. 5 or 6 */
    const unsigned char *input;  /* [H*W*3] the image as a person sees it */
    const char *label;           /* column label, e.g. "#2374 Coat\nout 3.66" ('\n' allowed) */
    int misclassified;           /* 1: framed and labelled in purple (GAD_RGB_WRONG) */
} GadFigColumn;

typedef struct {
    const char *title;           /* e.g. "Figure 5: vgg16, original (blue) and GAD (red) maps" */
    const char *note;            /* may be NULL */
    int H, W, scale;
    int ncols;
    const GadFigColumn *col;     /* [ncols] */
    int nrows;                   /* methods */
    const char *const *row_name; /* [nrows] e.g. "Saliency" */
    /* Fig. 5: importance maps [nrows*ncols][H*W], row-major by method then column */
    const float *const *orig, *const *gad;
    /* Fig. 6: hull vertices (x, y) of the original and GAD maps per cell, with counts
     * (0: none), and whether the GAD map is empty */
    const GadPoint *const *hull_orig, *const *hull_gad;
    const int *nhull_orig, *nhull_gad;
    const int *gad_empty;        /* [nrows*ncols] or NULL */
    const int *forced;           /* [nrows*ncols] RC <= 1 forced (gad_rc_forced), or NULL */
} GadGridFig;
/* Fig. 5: a row of inputs, then per method a row of original maps (blue, own
 * scale) and a row of GAD maps (red, on the original's scale), colour bars for
 * both, misclassified columns framed in purple, empty GAD maps labelled "empty".
 * Returns 0 or -1 (err set). */
int gad_fig_maps(const char *path, const GadGridFig *f);
/* Fig. 6: per method a row of inputs with the original's hull (red) and GAD's hull
 * (green); empty GAD maps labelled, and hulls whose RC <= 1 the rules forced
 * labelled "forced" (amber). Returns 0 or -1 (err set). */
int gad_fig_hull_grid(const char *path, const GadGridFig *f);

/* "Saliency", "Deconvolution", "Gradient x Input", "Guided Backprop",
 * "Integrated Gradients": the names the paper uses. */
const char *gad_method_title(AttrMethod m);
/* The label of image i of r as a figure's column: "#index Class" and, on a second
 * line, "pred. Other ✗" for a misclassified image (*wrong = 1), else "out V" (the
 * original model's output for its class). */
void gad_fig_column_label(const GadModelResult *r, int i, char *buf, size_t len, int *wrong);

/* Describe the presence rule for labels: "importance >= 10% of the map's max" or
 * "top 50% of the map's non-zero pixels". */
void gad_present_text(Presence p, char *buf, size_t len);
/* Describe the hull points: "the top 50% of the image's pixels (never one of
 * importance 0)", "the top 50% of each map's non-zero pixels" or "each map's
 * present pixels". */
void gad_hull_text(const HullRule *h, char *buf, size_t len);

#endif
