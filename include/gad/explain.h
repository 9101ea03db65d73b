/* explain: GAD's steps for chosen images of a finished run, and the distancing of
 * its support models (Fig. 1), recomputed from the run's original model, support
 * model files and data with the pipeline's functions (gad/steps.h, gad_run_data):
 * what `gad explain-gad` prints and what the report draws for a few images. Each
 * support model is loaded once, then freed.
 * Not for: training support models (a run does that), choosing the images. */
#ifndef GAD_GAD_EXPLAIN_H
#define GAD_GAD_EXPLAIN_H
#include "gad/run.h"
#include "gad/steps.h"

typedef struct {
    int n;                       /* training images */
    int *cls;                    /* [n] 0 or 1 */
    float *orig;                 /* [n,2] the original's logits of the two classes' outputs */
    float *sup;                  /* [nalphas][n,2] each support model's */
} GadDistancing;
void gad_distancing_free(GadDistancing *d);

typedef struct {
    const RunOpts *o;            /* the run's settings (not owned) */
    const GadModelResult *r;     /* the model's results: weights, outputs, support paths (not owned) */
    Model orig;
    Dataset d;                   /* the run's data, prepared as the run prepares it */
    const float *mean, *std;     /* the model's normalisation, or NULL (for pictures) */
} GadExplainer;

/* Load r's original model and the run's data. Returns 0 or -1 (err set; nothing
 * left to free). The caller ends with gad_explainer_close. */
int gad_explainer_open(GadExplainer *e, const RunOpts *o, const GadModelResult *r);
void gad_explainer_close(GadExplainer *e);
/* For images idx[n] (indices in e->d) explained for outputs cls[n] (0 or 1, the
 * class a), every method of the run: steps[i * nmethods + m] initialised, finished
 * and with RS (the caller frees each with gad_steps_free, also on error: they are
 * zeroed first). When
 * dist is not NULL, also the logits of the first per_class training images of each
 * class under the original and every support model. Returns 0 or -1 (err set). */
int gad_explain(GadExplainer *e, const int *idx, const int *cls, int n, GadSteps *steps, int per_class,
                GadDistancing *dist);
/* The run's hull rule (from o). */
void gad_run_hull(const RunOpts *o, HullRule *h);

#endif
