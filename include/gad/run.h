/* run: GAD end to end (paper §4-§6): distancing targets, support regression models
 * (trained once, then reused from a key-checked cache), every attribution map of the
 * original and support models, intersections, hulls, RC and RS, and the report
 * (tables, per-image results, figures, index.html).
 *
 * Support model cache: a support model is saved as safetensors named
 *   SUPPORT_DIR/<weights name>-<o1>-<o2>-a<alpha>-<key prefix>.safetensors
 * with metadata "gad_support_key" = a 64-bit FNV-1a hash (hex) of: the original
 * weights file's bytes, the training inputs (the preprocessed floats, which pins the
 * data, the classes, the split and the input size), the two model outputs, alpha
 * and every training hyper-parameter. A file whose key matches is loaded instead
 * of trained; any other is retrained and replaced. SUPPORT_DIR defaults to
 * OUT/support (--support-dir to share a cache between runs); the read-only
 * directory WEIGHTS_DIR/support (or RunOpts.support_ro) is searched first, so
 * support models shipped beside the weights are found.
 * Not for: the geometry and the metrics themselves (gad/gad.h), attribution methods
 * (attr/), argument parsing (cli/). */
#ifndef GAD_GAD_RUN_H
#define GAD_GAD_RUN_H
#include "attr/attr.h"
#include "attr/heatmap.h"
#include "gad/gad.h"
#include "io/dataset.h"
#include "nn/model.h"
#include "train/train.h"
#include <stdint.h>
#include <stdio.h>

#define GAD_MAX_ALPHAS 16
#define GAD_MAX_WEIGHTS 8
#define GAD_MAX_EXPLAIN 16

/* ---- distancing (§4.1) ---- */

/* targets[n,K] = logits[n,K] with, for images of the first class (cls[i] == 0),
 * targets[i,o2] -= alpha and for images of the second (cls[i] == 1), targets[i,o1]
 * -= alpha. targets may alias logits. */
void gad_distance(const float *logits, const int *cls, int n, int K, int o1, int o2, float alpha,
                  float *targets);
/* Logits out[n,K] of m on x[n,3,H,W] in eval mode, batches of the plan's size. */
void gad_logits(Model *m, Plan *p, const float *x, int n, float *out);

/* ---- support models (§4.2) ---- */

typedef struct {
    float alpha;
    int epochs, batch;
    float lr, weight_decay;
    int train_mode;      /* 1: BN batch statistics and dropout while training */
    uint64_t seed;
} SupportOpts;

/* FNV-1a 64 of n bytes, continuing from h (start with GAD_FNV_INIT). */
#define GAD_FNV_INIT 0xcbf29ce484222325ULL
uint64_t gad_hash(uint64_t h, const void *p, size_t n);
/* The same over the bytes of the file at path, read in pieces (a file of any size),
 * continuing from *h. Returns 0, or -1 with err_get() = "PATH: reason". */
int gad_hash_file(const char *path, uint64_t *h);
/* The cache key (16 hex digits + NUL) of a support model. */
void gad_support_key(uint64_t weights_hash, uint64_t data_hash, int o1, int o2, const SupportOpts *o,
                     char key[17]);
/* One support model: its settings, its cache key and its file name
 * (<model>-<o1>-<o2>-a<alpha>-<first 8 key digits>.safetensors). */
typedef struct {
    SupportOpts opts;
    char key[17];
    char file[320];
} SupportId;
void gad_support_id(SupportId *id, const char *model_name, uint64_t weights_hash, uint64_t data_hash, int o1,
                    int o2, const SupportOpts *o);
/* The cache, read side: ro_dir/file (ro_dir may be NULL; never written), then
 * dir/file. A file is taken when its metadata key is id->key and its architecture
 * and sizes are orig's; it is then loaded into out (the caller frees it) and *loss
 * (may be NULL) gets the final training loss stored with it. path [len] gets the
 * file taken, or dir/file when none was (where gad_support_train should write).
 * Returns 1 (found) or 0 (not found; a file that cannot be read is reported on
 * stderr and counts as not found). */
int gad_support_find(const SupportId *id, const char *ro_dir, const char *dir, const Model *orig, Model *out,
                     float *loss, char *path, size_t len);
/* The cache, write side: clone orig into out, fit it to targets [n,K] from
 * x [n,3,H,W] with train_regression, and save it to path atomically (creating the
 * directory) with the key and the settings in its metadata. label names the
 * progress lines (verbose). Returns 0 (out: a model the caller frees; *loss, may
 * be NULL: the final epoch's loss) or -1 (err set, nothing left at path). */
int gad_support_train(const SupportId *id, const Model *orig, const float *x, const float *targets, int n, int H,
                      int W, const char *path, int verbose, const char *label, Model *out, float *loss);

/* ---- the run ---- */

typedef struct {
    const char *weights[GAD_MAX_WEIGHTS];
    int nweights;
    const char *data;        /* data SPEC (io/dataset.h) */
    const char *classes;     /* "a,b" by name or index in the data */
    const char *outputs;     /* "i,j": the model outputs of the classes; NULL: by name */
    AttrMethod methods[ATTR_NMETHODS];
    int nmethods;
    int images;              /* evaluated images, half per class, held-out part */
    const char *images_list; /* or the images named in this file (io/dataset.h's
                              * dataset_images_from_list); NULL: the held-out part */
    float alphas[GAD_MAX_ALPHAS];
    int nalphas;
    int epochs, batch;       /* support training */
    float lr, weight_decay;
    int train_mode;
    uint64_t seed;
    int train_images;        /* training images per class for supports (0: all) */
    float val_frac;          /* held-out fraction of each class; <0: from the weights' metadata or 0.2 */
    int size;                /* input side (0: the model's input size or the data's) */
    int strict;              /* 1: a file of a class folder that is not a readable image is
                              * an error (0: a warning naming it, and the file is skipped) */
    Presence present;
    HullOf hull_of;          /* which pixels the hulls enclose (gad/gad.h) */
    float hull_keep;         /* of the image's pixels or of the non-zero ones */
    RcArea rc_area;
    int count_empty;         /* 1: an empty GAD map counts for GAD in Table 1 (RC = 0);
                              * 0 (default): in neither column, counted apart */
    int occlude_black;       /* RS occlusion by the black image instead of x*(1-M) */
    int control_draws;       /* control masks per image, method and class (0: none) */
    int curves;              /* faithfulness curves: 0 off, 1 deletion, 2 deletion and insertion */
    int curve_steps;         /* points per curve - 1 */
    int ig_steps;
    const char *out_dir;
    const char *support_dir; /* NULL: OUT/support */
    const char *support_ro;  /* a directory searched first and never written (support
                              * models shipped with weights); NULL: WEIGHTS_DIR/support */
    int fig_images;          /* Fig. 5 columns per class */
    int fig_least;           /* Fig. 6 least activated images per class */
    int shard_k, shard_n;    /* n > 0: explain only shard k of n of the images (1 <= k <= n)
                              * and write OUT/shards/k-of-n/ for gad_merge instead of the
                              * report; n = 0: the whole run */
    int explain_n;           /* images whose every step the report shows: -1 (default) the
                              * least and most activated of each class, else explain_images */
    int explain_images[GAD_MAX_EXPLAIN];  /* dataset indices (--explain-images) */
    int verbose;
} RunOpts;

/* The paper's settings: saliency..ig, 512 images, alphas 2,4,6,8, 10 epochs, lr 4e-5,
 * batch 32, eval mode, --present 0.1, hulls of the top half of the image's pixels
 * (--hull-of image --hull-keep 0.5), polygon areas, occlusion by
 * x*(1-M), IG 50 steps, out "gad-report", 4 + 5 figure images per class. */
void run_opts_default(RunOpts *o);
/* Run everything and write the report under o->out_dir (or, with o->shard_n, the
 * shard's results under OUT/shards/). Returns 0 or -1 (err set). */
int gad_run(const RunOpts *o);
/* The batch of gad_run's attribution passes for model m on HxW inputs: IG's points
 * run in batches of up to 128 while the plan's batch-sized part stays within
 * 512 MiB (never below 32). Builds and frees a plan. Returns the batch, or -1 (err set). */
int gad_maps_batch(Model *m, int H, int W);

/* The whole-run estimate's cost model (progress lines only, never in results):
 * one model's work in forward-pass units (a forward+backward pass counts 3) for
 * ne evaluated and nt training images, `train` of the supports to train (cached
 * ones count zero). gad_run weights each model by its forward MACs and turns
 * units into seconds with the rate measured so far. */
typedef struct {
    double train;   /* epochs x nt x 3 per support trained */
    double maps;    /* (1 + nalphas) x ne x 2 classes x sum of methods' passes (IG: ig_steps) x 3 */
    double metrics; /* ne x methods x 2 x (2 + control_draws) RS forwards */
    double curves;  /* ne x curves x directions x (curve_steps + 1) forwards */
} GadRunCost;
double gad_run_cost(const RunOpts *o, int ne, int nt, int train, GadRunCost *c);
/* Only the support models the run o needs, into the cache (the files gad_run
 * looks for): every (model, alpha) pair, or with o->shard_n the pairs j (counted
 * over o->weights, then o->alphas) with j % n == k - 1. A model already cached is
 * left as it is. Two processes training the same model at once write the same
 * bits, each atomically. Returns 0 or -1 (err set). */
int gad_supports(const RunOpts *o);
/* The run's data for original model orig (data.c): o->data's two classes prepared
 * as the run prepares them (size, resize/crop, normalisation, held-out split). The
 * caller frees d with dataset_free. Returns 0 or -1 (err set, nothing allocated). */
int gad_run_data(const RunOpts *o, const Model *orig, Dataset *d);
/* The all-black image [3,H,W] as a model with normalisation mean, std (NULL: none)
 * takes it: (0 - mean) / std per channel. The caller frees it. */
float *gad_black_input(const float *mean, const float *std, int H, int W);

/* ---- results (filled by gad_run, written by report.c) ---- */

typedef struct {             /* one image, method and class a */
    GadHull orig, gad;
    int gad_nnz;             /* non-zero pixels of the GAD map */
    int forced;              /* RC <= 1 forced by the rules (gad_rc_forced) */
    int sup_pixels;          /* pixels of M_orig - M_GAD */
    double rc, rs_gad, rs_sup;   /* NaN when undefined / empty mask */
    double rs_ctl;           /* mean RS of the control masks (NaN: none) */
} GadCell;

typedef struct {
    int index;               /* in the dataset */
    char *name;              /* its path, or FILE[i] for IDX data (Dataset.names; owned) */
    int cls;                 /* 0: first class, 1: second */
    float out[2];            /* original model outputs o1, o2 */
    GadCell *cell;           /* [nmethods * 2]: method m, class a at m*2 + a */
    double *curve;           /* [GAD_NCURVES(nm)][ndir][steps+1] for the image's own class
                              * (curve k below; dir 0 deletion, 1 insertion); NULL with
                              * --curves off */
} GadImageResult;
/* The curves of an image: per method slot m its original map, its GAD map and the
 * original map cut to its n most important pixels (n = the GAD map's non-zero
 * pixels; the same size as the GAD map), then one random order. */
enum { CURVE_ORIG = 0, CURVE_GAD = 1, CURVE_TOPN = 2, CURVES_PER_METHOD = 3 };
#define GAD_CURVE(m, kind) ((m) * CURVES_PER_METHOD + (kind))
#define GAD_CURVE_RANDOM(nm) ((nm) * CURVES_PER_METHOD)
#define GAD_NCURVES(nm) ((nm) * CURVES_PER_METHOD + 1)

/* An image that a figure may show (Fig. 5: the first images of each class; Fig. 6:
 * the least activated), with what drawing it takes: a run (or a shard of one) keeps
 * its own candidates, so that the figures can be drawn after the images' results
 * are put together (gad_model_finish). */
typedef struct {
    int pos;                 /* place in the run's image order */
    float *x;                /* [3,H,W] the input as the model takes it (owned) */
    float *maps;             /* [nmethods][2][H*W] per method the original map and the GAD
                              * map for the image's own class (owned) */
} GadFigImage;

/* The figures' columns among n images in run order, of classes cls [n] with the
 * original model's outputs for their own class own [n]: Fig. 5 the first
 * o->fig_images of each class, Fig. 6 the o->fig_least least activated of each
 * class (ties: the earlier). f5, f6: room for 32 indices into the n; *n5, *n6 get
 * the counts. The same rule picks a shard's candidates and the run's columns among
 * all shards' candidates (a column of the whole run is a column of its shard). */
void gad_figure_columns(const RunOpts *o, int n, const int *cls, const float *own, int *f5, int *n5, int *f6, int *n6);
/* The phases of a model's run, timed for the report. */
enum {
    GAD_PHASE_DATA = 0,      /* model, data, the original's outputs */
    GAD_PHASE_ORIG_MAPS,     /* the original model's attribution maps */
    GAD_PHASE_TRAIN,         /* training the support models, with the original's logits on
                              * the training images, their targets (0 when all were reused) */
    GAD_PHASE_SUPPORT_MAPS,  /* loading the support models and their maps */
    GAD_PHASE_METRICS,       /* GAD maps, hulls, RC, RS, controls */
    GAD_PHASE_CURVES,        /* faithfulness curves */
    GAD_PHASE_FIGURES,       /* Fig. 5 and 6 */
    GAD_PHASE_REPORT,        /* the report's steps, distancing and their pictures */
    GAD_NPHASES
};
/* "data and outputs", "original maps", ...: the report's names of the phases. */
const char *gad_phase_name(int phase);

typedef struct {
    char name[64];           /* e.g. "vgg16" (file stem, made unique) */
    char weights[512];
    char arch[16];
    int o[2];                /* model outputs of the two classes */
    char class_name[2][64];
    int H, W;
    int nimages;             /* images held: the run's, or a shard's share */
    int run_images;          /* the run's images (all shards) */
    uint64_t weights_fnv;    /* FNV-1a of the weights file's bytes */
    uint64_t data_fnv;       /* FNV-1a of the preprocessed data (both classes, every image) */
    GadImageResult *img;     /* [nimages] */
    float support_loss[GAD_MAX_ALPHAS];  /* final training loss, NaN when reused */
    int support_trained[GAD_MAX_ALPHAS];
    char support_path[GAD_MAX_ALPHAS][1024];
    GadRcTally rc[ATTR_NMETHODS][2];
    GadRsMean rs_gad[ATTR_NMETHODS][2], rs_sup[ATTR_NMETHODS][2], rs_ctl[ATTR_NMETHODS][2];
    GadPaired vs_sup[ATTR_NMETHODS][2];  /* RS(GAD) against RS(Sup.), per image */
    GadPaired vs_ctl[ATTR_NMETHODS][2];  /* RS(GAD) against RS(control), per image */
    int gad_empty[ATTR_NMETHODS][2];     /* images whose GAD map has no pixel */
    /* faithfulness curves (opts->curves), indexed by curve k and direction as above */
    double *curve_mean;                  /* [ncurves][ndir][steps+1]: mean over images */
    double auc_mean[GAD_NCURVES(ATTR_NMETHODS)][2];    /* mean area under each curve */
    GadPaired auc_vs[ATTR_NMETHODS][2][2];  /* [method slot][0: against the original map,
                                          * 1: against its top n][direction], per image:
                                          * wins = images where the GAD map's curve is the
                                          * better (lower deletion, higher insertion AUC) */
    double seconds;
    int has_norm;            /* the model normalises its inputs: mean, std (for pictures) */
    float mean[3], std[3];
    /* the images a figure may show, with what drawing them takes (gad_fig_candidates) */
    GadFigImage *fig;        /* [nfig] by place in the run's image order */
    int nfig;
    /* figure columns (places in img); files are named by gad_fig_name */
    double phase[GAD_NPHASES];           /* seconds of each phase (wall clock; merged: the
                                          * shards' added up, Fig. 5/6 and report the merge's) */
    int shards;                          /* 0: explained in this process; N: merged from N shards */
    int fig5_cols, fig5_img[32];
    int fig6_cols, fig6_img[32];
} GadModelResult;

/* Everything report.c writes. Paths are relative to the output directory. */
typedef struct {
    const RunOpts *opts;
    int nmodels;
    GadModelResult *model;   /* [nmodels] */
    double seconds;
} GadRunResult;

/* ---- the end of a model's run (results.c) ---- */

/* From r's per-image results in run order (r->img, r->fig): Tables 1 and 2, the
 * curves' means and tests, the figures' columns and their files under o->out_dir.
 * The same for a run in one process and for shards merged. Returns 0 or -1. */
int gad_model_finish(const RunOpts *o, GadModelResult *r);
/* Free what r owns (images, cells, curves, candidates). */
void gad_model_free(GadModelResult *r);

/* ---- shards (shard.c) ----
 * A run split over its images: `gad run --shard K/N` explains the run's images j
 * with j % N == K - 1 (in the run's order: the held-out images of the first class,
 * then of the second, in file order) and writes OUT/shards/K-of-N/: shard.json (the
 * settings, the inputs' hashes and every per-image result) and fig-MODEL.npy (its
 * figure candidates), atomically, shard.json last, so that a shard killed half-way
 * leaves no shard.json. gad_merge then checks that every shard of the split is
 * there and that all were made with the same settings, weights and data, and
 * writes what `gad run` writes, byte for byte (timings aside). */

/* "K/N" (1 <= K <= N), or "auto": from Slurm's job array (K = SLURM_ARRAY_TASK_ID,
 * N = shards, or the array's size when it is exactly 1-N), else Kubernetes'
 * JOB_COMPLETION_INDEX (0-based) or GNU parallel's PARALLEL_SEQ (1-based) with
 * shards = N (> 0; 0: not given). Returns
 * 0 with *k, *n set, or -1 with a usage error set. */
int gad_shard_parse(const char *spec, int shards, int *k, int *n);
/* Write shard rr->opts->shard_k of _n under rr->opts->out_dir. Returns 0 or -1. */
int gad_shard_write(const GadRunResult *rr);
/* Merge the shards under out_dir: check, then print the tables on stdout and write
 * the report into out_dir. Returns 0 or -1 (err set: the missing shards, or the
 * setting that differs and where). */
int gad_merge(const char *out_dir, int verbose);

/* ---- the report (report.c) ---- */

/* A figure's file name relative to the output directory: fig/MODEL/KIND.png, KIND
 * e.g. "fig5", "fig6" (the drawings are gad/figures.h's). */
void gad_fig_name(char *buf, size_t len, const char *model, const char *kind);

/* Tables 1 and 2 as the paper lays them out (rows Orig./GAD per class per model,
 * columns the methods), on f. */
void gad_print_tables(FILE *f, const GadRunResult *r);
/* table1.csv, table2.csv, results.json and index.html under r->opts->out_dir.
 * Returns 0 or -1 (err set). */
int gad_write_report(const GadRunResult *r);
/* Pieces of index.html that report.c writes beside the other tables' formats:
 * Tables 1 and 2 and a model's curves, each with how to read it and what it shows
 * on this run; text with <, >, & and " escaped. */
void gad_html_table1(FILE *f, const GadRunResult *r);
void gad_html_table2(FILE *f, const GadRunResult *r);
void gad_html_curves(FILE *f, const RunOpts *o, const GadModelResult *mr);
void gad_html_esc(FILE *f, const char *s);
/* index.html (page.c): the page that explains the run, with the steps of a few
 * images and the distancing recomputed (gad/explain.h) and drawn. Returns 0 or -1. */
int gad_write_page(const GadRunResult *r);

#endif
