/* run: GAD end to end for one or more models (paper §4-§6), one function per step
 * (run_model calls them in order):
 *   1. data (load_model_and_data, select_images): the two classes, held-out images
 *      to explain with the original's outputs, training images for the supports;
 *   2. original maps (original_maps): every method and both classes, importance =
 *      |channel sum| (gad_importance), and which pixels are present (gad_present);
 *   3. support models (support_maps, support_model): each from the cache or
 *      trained (support.c: gad_support_find, gad_support_train), one in memory at
 *      a time, its maps AND-ed into the presence (gad_present_and);
 *   4. GAD maps (gad_map_of = gad_map_mask of the original and the presence);
 *   5. metrics (metrics, image_metrics, cell_geometry): per image, method and class
 *      both hulls, RC, whether RC <= 1 was forced, the masks (GAD, Sup., the
 *      size-matched controls) and their RS on the original model (occluded images
 *      batched); the faithfulness curves (curves, image_curves; beyond the paper);
 *   6. the images a figure may show (figure_candidates).
 * The tables and the figures (Fig. 5 maps, Fig. 6 hulls) are made from those
 * per-image results by results.c (gad_model_finish), here or after gad merge.
 * Memory: the original's importance maps and the running presence masks of every
 * image (N * methods * 2 * H*W * 5 bytes), one support model at a time.
 * Not for: the geometry and metrics (gad.h), the report files (report.c), flags (cli/). */
#include "gad/run.h"
#include "core/err.h"
#include "io/dataset.h"
#include "io/file.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>  /* isatty */

#define PLAN_BATCH 32   /* images (or IG points) per pass */
#define MAPS_BATCH_MAX 128           /* the maps' passes: up to this many points... */
#define MAPS_BATCH_BYTES (512u << 20) /* ...while the plan's batch-sized part stays in this */
#define MAP_CHUNK 64    /* images whose attributions are computed together (IG: 64 x 50 points, whole batches of 128) */

void run_opts_default(RunOpts *o) {
    memset(o, 0, sizeof *o);
    for (int m = 0; m < ATTR_NMETHODS; m++) o->methods[m] = (AttrMethod)m;
    o->nmethods = ATTR_NMETHODS;
    o->images = 512;
    for (int i = 0; i < 4; i++) o->alphas[i] = 2.0f * (i + 1);
    o->nalphas = 4;
    o->epochs = 10;
    o->batch = 32;
    o->lr = 4e-5f;
    o->weight_decay = 0;
    o->train_mode = 0;
    o->seed = 0;
    o->train_images = 0;
    o->val_frac = -1;
    o->size = 0;
    o->present.rule = PRESENT_FRAC;
    o->present.value = 0.1f;
    o->hull_of = HULL_OF_IMAGE;
    o->hull_keep = 0.5f;
    o->rc_area = RC_AREA_POLYGON;
    o->occlude_black = 0;
    o->control_draws = 4;
    o->curves = 1;
    o->curve_steps = 10;
    o->ig_steps = 50;
    o->out_dir = "gad-report";
    o->support_dir = NULL;
    o->fig_images = 4;
    o->fig_least = 5;
    o->explain_n = -1;
    o->verbose = 1;
}

/* ---- progress with ETA on stderr ---- */

/* The whole run's estimate (gad_run_cost's units x each model's MACs relative to
 * the first model's): total, done so far, and the rate they give. */
typedef struct {
    double t0, total, done;
    double scale;            /* the current model's MACs / the first model's */
} Whole;

typedef struct {
    double t0, last, total, done;
    const char *what;
    int on, tty;
    Whole *whole;            /* NULL: no whole-run estimate (gad support) */
} Progress;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void prog_start(Progress *p, const char *what, double total, int on) {
    p->t0 = p->last = now_s();
    p->total = total;
    p->done = 0;
    p->what = what;
    p->on = on;
    p->tty = isatty(fileno(stderr));
}

/* A line rewritten in place every half second on a terminal; into a log, a line
 * every 15 seconds. `last` ends the line. */
static void prog_add(Progress *p, double units, int last) {
    p->done += units;
    double t = now_s();
    if (!p->on || (!last && t - p->last < (p->tty ? 0.5 : 15))) return;
    p->last = t;
    double el = t - p->t0, frac = p->total > 0 ? p->done / p->total : 1;
    double eta = frac > 0 ? el * (1 - frac) / frac : 0;
    fprintf(stderr, "%s%s: %5.1f%%  %4.0fs elapsed  ETA %dm%02ds", p->tty ? "\r" : "", p->what, 100 * frac, el,
            (int)(eta / 60), (int)eta % 60);
    const Whole *w = p->whole;
    if (w && w->done > 0) {
        double we = (t - w->t0) * (w->total - w->done) / w->done;
        if (we < 0) we = 0;
        fprintf(stderr, "  whole run ETA %dm%02ds", (int)(we / 60), (int)we % 60);
    }
    fprintf(stderr, "   %s", p->tty && !last ? "" : "\n");
    fflush(stderr);
}

/* End a line left open on a terminal (before other output). */
static void prog_break(Progress *p) {
    if (p->on && p->tty) fputc('\n', stderr);
}

/* ---- per-model state ---- */

typedef struct {
    const RunOpts *o;
    int k;                   /* which of o->weights */
    GadModelResult *res;
    Model orig;
    Dataset d;
    int H, W, K, npix, nm;
    HullRule hull;           /* o's hull points */
    const float *mean, *std;
    int ne;                  /* evaluated images */
    float *xe;               /* [ne,3,H,W] */
    int *cls_e;              /* [ne] 0 / 1 */
    float *oute;             /* [ne,K] original outputs */
    int nt;                  /* training images */
    float *xt;               /* [nt,3,H,W] */
    int *cls_t;              /* [nt] */
    float *imp;              /* [ne][nm][2][npix] original importance */
    unsigned char *pres;     /* [ne][nm][2][npix] present in every map so far */
    int pos0, pstep;         /* image i is the run's image pos0 + i * pstep (a shard's share) */
    Progress prog;
} Ctx;

static size_t slot(const Ctx *c, int i, int m, int a) {
    return (((size_t)i * c->nm + m) * 2 + a) * (size_t)c->npix;
}

/* The GAD map of image i, method slot m, class a into g [npix] (§4.3: the
 * original's importance where the pixel is present in every map). */
static int gad_map_of(const Ctx *c, int i, int m, int a, float *g) {
    size_t s = slot(c, i, m, a);
    return gad_map_mask(c->imp + s, c->pres + s, c->npix, g);
}

static double method_cost(const RunOpts *o, AttrMethod m) { return m == ATTR_IG ? o->ig_steps : 1; }

double gad_run_cost(const RunOpts *o, int ne, int nt, int train, GadRunCost *c) {
    double passes = 0;
    for (int m = 0; m < o->nmethods; m++) passes += method_cost(o, o->methods[m]);
    c->train = (double)train * o->epochs * nt * 3;
    c->maps = (1.0 + o->nalphas) * ne * 2 * passes * 3;
    c->metrics = (double)ne * o->nmethods * 2 * (2 + o->control_draws);
    c->curves = o->curves ? (double)ne * GAD_NCURVES(o->nmethods) * o->curves * (o->curve_steps + 1) : 0;
    return c->train + c->maps + c->metrics + c->curves;
}

/* Count units of the current model as done in the whole-run estimate. */
static void whole_add(Whole *w, double units) {
    if (w) w->done += units * w->scale;
}

/* Importance maps of model m for images i0..i0+nb-1, method slot mi, class a:
 * the original (first) sets the importance and the presence, a support ANDs its
 * presence in (gad_present_and). attr: room for nb attributions. */
static int maps_chunk(Ctx *c, Model *m, Plan *p, int first, int i0, int nb, int mi, int a, float *attr,
                      float *imp, const char *label) {
    size_t isz = (size_t)3 * c->npix;
    int targets[MAP_CHUNK];
    AttrOpts ao;
    attr_opts_default(&ao);
    ao.method = c->o->methods[mi];
    ao.steps = c->o->ig_steps;
    for (int j = 0; j < nb; j++) targets[j] = c->res->o[a];
    if (attr_compute(m, p, c->xe + (size_t)i0 * isz, nb, targets, &ao, attr, NULL) != 0) return -1;
    for (int j = 0; j < nb; j++) {
        gad_importance(attr + (size_t)j * isz, 3, c->H, c->W, imp);
        for (int k = 0; k < c->npix; k++)
            if (!isfinite(imp[k]))
                return err_set("%s: %s attributions are not finite (image %d)", label, attr_method_name(ao.method),
                               c->res->img[i0 + j].index);
        size_t s = slot(c, i0 + j, mi, a);
        if (first) {
            memcpy(c->imp + s, imp, sizeof(float) * (size_t)c->npix);
            gad_present(imp, c->npix, c->o->present, c->pres + s);
        } else {
            gad_present_and(imp, c->npix, c->o->present, c->pres + s);
        }
    }
    whole_add(c->prog.whole, nb * method_cost(c->o, ao.method) * 3);
    prog_add(&c->prog, nb * method_cost(c->o, ao.method), 0);
    return 0;
}

int gad_maps_batch(Model *m, int H, int W) {
    Plan *p = plan_new(m, PLAN_BATCH, H, W);
    if (!p) return -1;
    const size_t per = plan_batch_bytes(p) / PLAN_BATCH;
    plan_free(p);
    const size_t fit = per ? MAPS_BATCH_BYTES / per : 0;
    const int nb = fit >= MAPS_BATCH_MAX ? MAPS_BATCH_MAX : (int)fit;
    return nb > PLAN_BATCH ? nb : PLAN_BATCH;
}

/* A plan for the maps of model m: IG's points run through the network in batches
 * larger than PLAN_BATCH where memory allows (gad_maps_batch), because a small
 * input leaves the late layers too few rows per pass to run at full speed. The batch
 * does not change the results' bits (the kernels' contract). */
static Plan *maps_plan(Ctx *c, Model *m) {
    const int nb = gad_maps_batch(m, c->H, c->W);
    return nb < 0 ? NULL : plan_new(m, nb, c->H, c->W);
}

/* Attribution maps of model m for every image, method and class (maps_chunk). */
static int compute_maps(Ctx *c, Model *m, int first, const char *label) {
    Plan *p = maps_plan(c, m);
    if (!p) return -1;
    float *attr = xmalloc(sizeof(float) * (size_t)3 * c->npix * MAP_CHUNK);
    float *imp = xmalloc(sizeof(float) * (size_t)c->npix);
    int rc = 0;
    c->prog.what = label;
    for (int i0 = 0; i0 < c->ne && rc == 0; i0 += MAP_CHUNK) {
        int nb = c->ne - i0 < MAP_CHUNK ? c->ne - i0 : MAP_CHUNK;
        for (int mi = 0; mi < c->nm && rc == 0; mi++)
            for (int a = 0; a < 2 && rc == 0; a++) rc = maps_chunk(c, m, p, first, i0, nb, mi, a, attr, imp, label);
    }
    free(imp);
    free(attr);
    plan_free(p);
    return rc;
}

/* ---- classes and model outputs ---- */

static int parse_pair(const char *s, int *a, int *b) {
    char *e;
    long x = strtol(s, &e, 10);
    if (e == s || *e != ',') return -1;
    const char *t = e + 1;
    long y = strtol(t, &e, 10);
    if (e == t || *e) return -1;
    *a = (int)x;
    *b = (int)y;
    return 0;
}

/* The model outputs of the two data classes: --outputs, else by class name, else
 * the two outputs of a two-output model, else the class indices given. */
static int resolve_outputs(Ctx *c) {
    const RunOpts *o = c->o;
    const char *w = c->res->weights;
    int *out = c->res->o;
    if (o->outputs) {
        if (parse_pair(o->outputs, &out[0], &out[1]) != 0)
            return err_set_usage("--outputs: expected two output indices 'i,j', got '%s'", o->outputs);
    } else if (c->orig.cfg.class_names) {
        for (int a = 0; a < 2; a++) {
            out[a] = -1;
            for (int k = 0; k < c->K; k++)
                if (!strcmp(c->orig.cfg.class_names[k], c->d.class_names[a])) out[a] = k;
            if (out[a] < 0)
                return err_set("%s: the model has no output named '%s' (give --outputs i,j)", w,
                               c->d.class_names[a]);
        }
    } else if (c->K == 2) {
        out[0] = 0;
        out[1] = 1;
    } else if (!o->classes || parse_pair(o->classes, &out[0], &out[1]) != 0) {
        return err_set("%s: the model has %d outputs and no class names: give --outputs i,j", w, c->K);
    }
    for (int a = 0; a < 2; a++)
        if (out[a] < 0 || out[a] >= c->K)
            return err_set_usage("%s: output %d out of range (the model has %d outputs)", w, out[a], c->K);
    if (out[0] == out[1]) return err_set_usage("%s: both classes map to output %d", w, out[0]);
    return 0;
}

/* ---- data ---- */

static int take(Ctx *c, int held_out, int per_class, float **x, int **cls, int **index) {
    int n = 0, *idx[2], cnt[2];
    size_t isz = (size_t)3 * c->npix;
    for (int a = 0; a < 2; a++) {
        cnt[a] = dataset_select(&c->d, held_out, a, per_class, &idx[a]);
        n += cnt[a];
    }
    *x = xmalloc(sizeof(float) * isz * (size_t)(n > 0 ? n : 1));
    *cls = xmalloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    if (index) *index = xmalloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    int k = 0;
    for (int a = 0; a < 2; a++) {
        for (int j = 0; j < cnt[a]; j++, k++) {
            memcpy(*x + (size_t)k * isz, c->d.x + (size_t)idx[a][j] * isz, sizeof(float) * isz);
            (*cls)[k] = a;
            if (index) (*index)[k] = idx[a][j];
        }
        free(idx[a]);
    }
    for (int a = 0; a < 2; a++)
        if (cnt[a] == 0)
            return err_set("%s: no %s images of class '%s'", c->o->data, held_out ? "held-out" : "training",
                           c->d.class_names[a]);
    return n;
}

static void model_label(const RunOpts *o, int k, char *name, size_t len) {
    const char *w = o->weights[k], *s = strrchr(w, '/');
    snprintf(name, len, "%s", s ? s + 1 : w);
    char *dot = strstr(name, ".safetensors");
    if (dot) *dot = 0;
    for (char *q = name; *q; q++)
        if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '-' ||
              *q == '_'))
            *q = '_';
    for (int j = 0; j < k; j++) {  /* unique among the run's models */
        char other[64];
        model_label(o, j, other, sizeof other);
        if (!strcmp(other, name)) {
            char suffix[16];
            snprintf(suffix, sizeof suffix, "-%d", k + 1);
            size_t l = strlen(name), ls = strlen(suffix);
            if (l + ls >= len) l = len - 1 - ls;
            memcpy(name + l, suffix, ls + 1);
        }
    }
}

/* ---- metrics per image ---- */

/* A random stream of its own for one image (dataset index), method and class, the
 * same whichever images a run holds: seed mixed with the numbers by splitmix64's
 * finaliser (portable: arithmetic, not bytes). */
static void cell_rng(Rng *r, uint64_t seed, int index, int method, int a, uint64_t salt) {
    uint64_t v[5] = {seed, (uint64_t)index, (uint64_t)method, (uint64_t)a, salt}, h = 0x9e3779b97f4a7c15ULL;
    for (int k = 0; k < 5; k++) {
        h ^= v[k];
        h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
        h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
        h ^= h >> 31;
    }
    rng_seed(r, h);
}

#define SALT_CONTROL 1
#define SALT_CURVE 2

/* Per image: the GAD map, both hulls, RC and the masks of every method and class
 * (M_GAD, M_orig - M_GAD, the control draws), then RS of all of them on the
 * original model in one gad_rs call. */
typedef struct {
    int per;                 /* masks per cell: 2 + control draws */
    unsigned char *masks;    /* [nm*2][per][npix] */
    unsigned char *mo;       /* [npix] M_orig */
    unsigned char *region;   /* [npix] M_orig OR M_GAD, where the controls are drawn */
    float *g;                /* [npix] GAD map */
    GadRsJob *jobs;          /* [nm*2*per] */
    double *rs;              /* [nm*2*per] */
    float *base;             /* [3,H,W] occlusion baseline or NULL */
} MetricBufs;

/* Hulls, RC, forced, masks and RS jobs of image i, method slot m, class a. */
static void cell_geometry(Ctx *c, MetricBufs *b, int i, int m, int a) {
    int npix = c->npix, per = b->per, q = m * 2 + a;
    GadCell *cell = &c->res->img[i].cell[q];
    const float *orig = c->imp + slot(c, i, m, a);
    unsigned char *mg = b->masks + (size_t)q * per * npix, *ms = mg + npix;
    cell->gad_nnz = gad_map_of(c, i, m, a, b->g);
    gad_map_hull(orig, c->H, c->W, &c->hull, &cell->orig, NULL, b->mo);
    gad_map_hull(b->g, c->H, c->W, &c->hull, &cell->gad, NULL, mg);
    cell->rc = gad_rc(&cell->gad, &cell->orig, c->o->rc_area);
    cell->forced = gad_rc_forced(orig, b->g, c->H, c->W, &c->hull);
    cell->sup_pixels = gad_sup_mask(b->mo, mg, npix, ms);
    Rng r;
    cell_rng(&r, c->o->seed, c->res->img[i].index, c->o->methods[m], a, SALT_CONTROL);
    int nreg = 0;
    for (int k = 0; k < npix; k++) nreg += b->region[k] = b->mo[k] | mg[k];
    for (int d = 2; d < per; d++) {
        unsigned char *ctl = mg + (size_t)d * npix;
        if (nreg > cell->gad.pixels) gad_control_mask(b->region, c->H, c->W, cell->gad.pixels, &r, ctl);
        else memset(ctl, 0, (size_t)npix);  /* no room: the control could only be M_GAD (no RS) */
    }
    for (int k = 0; k < per; k++) {
        GadRsJob *j = &b->jobs[q * per + k];
        j->x = c->xe + (size_t)i * 3 * npix;
        j->mask = mg + (size_t)k * npix;
        j->target = c->res->o[a];
        j->y0 = c->oute[(size_t)i * c->K + c->res->o[a]];
    }
}

static int image_metrics(Ctx *c, const GadEval *ev, MetricBufs *b, int i) {
    int per = b->per, ncell = c->nm * 2;
    for (int m = 0; m < c->nm; m++)
        for (int a = 0; a < 2; a++) cell_geometry(c, b, i, m, a);
    if (gad_rs(ev, 3, c->H, c->W, b->jobs, ncell * per, b->base, b->rs) < 0) return -1;
    for (int q = 0; q < ncell; q++) {
        GadCell *cell = &c->res->img[i].cell[q];
        const double *rs = b->rs + (size_t)q * per;
        cell->rs_gad = rs[0];
        cell->rs_sup = rs[1];
        double sum = 0;  /* the controls: all empty or none empty (same size as M_GAD) */
        for (int d = 2; d < per; d++) sum += rs[d];
        cell->rs_ctl = per > 2 ? sum / (per - 2) : NAN;
    }
    return 0;
}

/* Steps 4 and 5a: every image's GAD maps, hulls, RC and masks, and RS (image_metrics). */
static int metrics(Ctx *c) {
    const RunOpts *o = c->o;
    int npix = c->npix, per = 2 + o->control_draws, njob = c->nm * 2 * per;
    MetricBufs b;
    b.per = per;
    b.masks = xmalloc((size_t)njob * npix);
    b.mo = xmalloc((size_t)npix);
    b.region = xmalloc((size_t)npix);
    b.g = xmalloc(sizeof(float) * (size_t)npix);
    b.jobs = xmalloc(sizeof(GadRsJob) * (size_t)njob);
    b.rs = xmalloc(sizeof(double) * (size_t)njob);
    b.base = NULL;
    if (o->occlude_black) b.base = gad_black_input(c->mean, c->std, c->H, c->W);
    Plan *p = plan_new(&c->orig, PLAN_BATCH, c->H, c->W);
    int rc = p ? 0 : -1;
    GadEval ev;
    GadModelCtx mc;
    if (p) gad_eval_model(&ev, &mc, &c->orig, p, PLAN_BATCH);
    prog_start(&c->prog, "RC/RS", c->ne, o->verbose);
    for (int i = 0; i < c->ne && rc == 0; i++) {
        rc = image_metrics(c, &ev, &b, i);
        whole_add(c->prog.whole, (double)c->nm * 2 * (2 + o->control_draws));
        if (rc == 0) prog_add(&c->prog, 1, i == c->ne - 1);
    }
    if (p) plan_free(p);
    free(b.base);
    free(b.rs);
    free(b.jobs);
    free(b.g);
    free(b.region);
    free(b.mo);
    free(b.masks);
    return rc;
}

/* ---- faithfulness curves (beyond the paper) ---- */

/* Step 5b: deletion (and insertion) curves of image i for its own class: every
 * method's original map, GAD map and original map cut to the GAD map's size, and a
 * random order. Ties (the zeros of sparse maps) follow one random permutation per
 * image, the random curve's order. */
static int image_curves(Ctx *c, const GadEval *ev, int i, const float *base, int *tie, int *orders, float *g,
                        GadCurveJob *jobs) {
    const RunOpts *o = c->o;
    GadImageResult *im = &c->res->img[i];
    int npix = c->npix, a = c->cls_e[i], nc = GAD_NCURVES(c->nm), len = o->curve_steps + 1;
    Rng r;
    cell_rng(&r, o->seed, im->index, -1, a, SALT_CURVE);
    for (int k = 0; k < npix; k++) orders[k] = k;
    rng_shuffle(&r, orders, npix);
    for (int k = 0; k < npix; k++) tie[orders[k]] = k;  /* each pixel's place */
    for (int m = 0; m < c->nm; m++) {
        const float *orig = c->imp + slot(c, i, m, a);
        int *oo = orders + (size_t)GAD_CURVE(m, CURVE_ORIG) * npix;
        gad_curve_order(orig, npix, tie, oo);
        int n = gad_map_of(c, i, m, a, g);
        gad_curve_order(g, npix, tie, orders + (size_t)GAD_CURVE(m, CURVE_GAD) * npix);
        memset(g, 0, sizeof(float) * (size_t)npix);  /* the original's top n */
        for (int k = 0; k < n; k++) g[oo[k]] = orig[oo[k]];
        gad_curve_order(g, npix, tie, orders + (size_t)GAD_CURVE(m, CURVE_TOPN) * npix);
    }
    memset(g, 0, sizeof(float) * (size_t)npix);
    gad_curve_order(g, npix, tie, orders + (size_t)GAD_CURVE_RANDOM(c->nm) * npix);
    for (int k = 0; k < nc; k++) {
        jobs[k].x = c->xe + (size_t)i * 3 * npix;
        jobs[k].order = orders + (size_t)k * npix;
        jobs[k].target = c->res->o[a];
    }
    int ndir = o->curves;
    double *buf = xmalloc(sizeof(double) * (size_t)nc * len);
    im->curve = xmalloc(sizeof(double) * (size_t)nc * ndir * len);
    int rc = 0;
    for (int d = 0; d < ndir && rc == 0; d++) {
        rc = gad_curves(ev, 3, c->H, c->W, jobs, nc, o->curve_steps, d, base, buf);
        for (int k = 0; k < nc && rc == 0; k++)
            memcpy(im->curve + ((size_t)k * ndir + d) * len, buf + (size_t)k * len, sizeof(double) * len);
    }
    free(buf);
    return rc;
}

static int curves(Ctx *c) {
    if (c->o->curves == 0) return 0;
    int npix = c->npix, nc = GAD_NCURVES(c->nm);
    Plan *p = plan_new(&c->orig, PLAN_BATCH, c->H, c->W);
    if (!p) return -1;
    GadEval ev;
    GadModelCtx mc;
    gad_eval_model(&ev, &mc, &c->orig, p, PLAN_BATCH);
    float *base = NULL, *g = xmalloc(sizeof(float) * (size_t)npix);
    if (c->o->occlude_black) base = gad_black_input(c->mean, c->std, c->H, c->W);
    int *tie = xmalloc(sizeof(int) * (size_t)npix), *orders = xmalloc(sizeof(int) * (size_t)nc * npix);
    GadCurveJob *jobs = xmalloc(sizeof(GadCurveJob) * (size_t)nc);
    prog_start(&c->prog, "curves", c->ne, c->o->verbose);
    int rc = 0;
    for (int i = 0; i < c->ne && rc == 0; i++) {
        rc = image_curves(c, &ev, i, base, tie, orders, g, jobs);
        whole_add(c->prog.whole, (double)nc * c->o->curves * (c->o->curve_steps + 1));
        if (rc == 0) prog_add(&c->prog, 1, i == c->ne - 1);
    }
    free(jobs);
    free(orders);
    free(tie);
    free(g);
    free(base);
    plan_free(p);
    return rc;
}

/* ---- figure candidates ---- */

/* Step 6a: the images of this run that a figure may show (gad_figure_columns on
 * its own images), with their inputs and maps; the figures themselves are drawn
 * from them at the end (gad_model_finish). */
static void figure_candidates(Ctx *c) {
    GadModelResult *r = c->res;
    int ne = c->ne, npix = c->npix, f5[32], f6[32], n5, n6;
    float *own = xmalloc(sizeof(float) * (size_t)(ne > 0 ? ne : 1));
    unsigned char *pick = xcalloc((size_t)(ne > 0 ? ne : 1), 1);
    for (int i = 0; i < ne; i++) own[i] = r->img[i].out[r->img[i].cls];
    gad_figure_columns(c->o, ne, c->cls_e, own, f5, &n5, f6, &n6);
    for (int k = 0; k < n5; k++) pick[f5[k]] = 1;
    for (int k = 0; k < n6; k++) pick[f6[k]] = 1;
    r->nfig = 0;
    for (int i = 0; i < ne; i++) r->nfig += pick[i];
    r->fig = xcalloc((size_t)(r->nfig > 0 ? r->nfig : 1), sizeof(GadFigImage));
    for (int i = 0, j = 0; i < ne; i++) {
        if (!pick[i]) continue;
        GadFigImage *fi = &r->fig[j++];
        fi->pos = c->pos0 + i * c->pstep;
        fi->x = xmalloc(sizeof(float) * 3 * (size_t)npix);
        memcpy(fi->x, c->xe + (size_t)i * 3 * npix, sizeof(float) * 3 * (size_t)npix);
        fi->maps = xmalloc(sizeof(float) * (size_t)c->nm * 2 * npix);
        for (int m = 0; m < c->nm; m++) {
            float *om = fi->maps + (size_t)(m * 2) * npix;
            memcpy(om, c->imp + slot(c, i, m, c->cls_e[i]), sizeof(float) * (size_t)npix);
            gad_map_of(c, i, m, c->cls_e[i], om + npix);
        }
    }
    free(pick);
    free(own);
}

/* ---- one model: the steps ---- */

static void ctx_free(Ctx *c) {
    free(c->pres);
    free(c->imp);
    free(c->cls_t);
    free(c->xt);
    free(c->oute);
    free(c->cls_e);
    free(c->xe);
    dataset_free(&c->d);
    model_free(&c->orig);
}

/* Step 1a: the original model and the two classes of the data at its input size. */
static int load_model_and_data(Ctx *c) {
    const RunOpts *o = c->o;
    GadModelResult *r = c->res;
    snprintf(r->weights, sizeof r->weights, "%s", o->weights[c->k]);
    model_label(o, c->k, r->name, sizeof r->name);
    if (model_load(&c->orig, o->weights[c->k]) != 0) return -1;
    model_warn_norm(&c->orig, o->weights[c->k]);
    snprintf(r->arch, sizeof r->arch, "%s", model_arch_name(c->orig.cfg.arch));
    c->K = c->orig.cfg.num_classes;
    if (c->orig.cfg.has_norm) {
        c->mean = c->orig.cfg.mean;
        c->std = c->orig.cfg.std;
        r->has_norm = 1;
        memcpy(r->mean, c->mean, sizeof r->mean);
        memcpy(r->std, c->std, sizeof r->std);
    }
    if (gad_run_data(o, &c->orig, &c->d) != 0) return -1;
    uint64_t dh = gad_hash(GAD_FNV_INIT, c->d.x, sizeof(float) * (size_t)c->d.n * 3 * c->d.h * c->d.w);
    r->data_fnv = gad_hash(dh, c->d.y, sizeof(int) * (size_t)c->d.n);
    c->H = c->d.h;
    c->W = c->d.w;
    c->npix = c->H * c->W;
    if (c->H < model_min_input(&c->orig) || c->W < model_min_input(&c->orig))
        return err_set("%s: images are %dx%d, %s takes at least %d: give --size", o->data, c->H, c->W, r->arch,
                       model_min_input(&c->orig));
    r->H = c->H;
    r->W = c->W;
    for (int a = 0; a < 2; a++) snprintf(r->class_name[a], sizeof r->class_name[a], "%s", c->d.class_names[a]);
    return resolve_outputs(c);
}

static void free_names(char **names, int n) {
    for (int i = 0; names && i < n; i++) free(names[i]);
    free(names);
}

/* A shard keeps the run's images j with j % n == k - 1 (round robin: both classes
 * and the costs spread evenly), in the run's order (and their names, when listed). */
static void keep_shard(Ctx *c, int *index, char **names) {
    int k = c->o->shard_k, n = c->o->shard_n, ne = 0;
    size_t isz = (size_t)3 * c->npix;
    for (int j = 0; names && j < c->ne; j++)
        if (j % n != k - 1) free(names[j]);
    for (int j = k - 1; j < c->ne; j += n, ne++) {
        memmove(c->xe + (size_t)ne * isz, c->xe + (size_t)j * isz, sizeof(float) * isz);
        c->cls_e[ne] = c->cls_e[j];
        index[ne] = index[j];
        if (names) names[ne] = names[j];
    }
    c->ne = ne;
    c->pos0 = k - 1;
    c->pstep = n;
}

/* Step 1b: the images to explain (held out, or those of --images-list) with the
 * original's outputs, and the supports' training images. */
static int select_images(Ctx *c) {
    const RunOpts *o = c->o;
    GadModelResult *r = c->res;
    int *index = NULL;
    char **names = NULL; /* --images-list: its paths (owned); else the data's names */
    if (o->images_list) c->ne = dataset_images_from_list(&c->d, o->images_list, &c->xe, &c->cls_e, &index, &names);
    else c->ne = take(c, 1, o->images / 2, &c->xe, &c->cls_e, &index);
    if (c->ne < 0) {
        free(index);
        return -1;
    }
    if ((c->nt = take(c, 0, o->train_images, &c->xt, &c->cls_t, NULL)) < 0) {
        free(index);
        free_names(names, c->ne);
        return -1;
    }
    r->run_images = c->ne;
    if (o->shard_n > 0) keep_shard(c, index, names);
    if (o->verbose)
        fprintf(stderr, "%s: %s, %dx%d inputs, classes '%s' (output %d) and '%s' (output %d); %d images to explain, "
                        "%d to train the supports\n",
                r->name, r->arch, c->H, c->W, r->class_name[0], r->o[0], r->class_name[1], r->o[1], c->ne, c->nt);
    r->nimages = c->ne;
    r->img = xcalloc((size_t)c->ne, sizeof(GadImageResult));
    c->oute = xmalloc(sizeof(float) * (size_t)c->ne * c->K);
    Plan *p = plan_new(&c->orig, PLAN_BATCH, c->H, c->W);
    if (!p) {
        free(index);
        free_names(names, c->ne);
        return -1;
    }
    gad_logits(&c->orig, p, c->xe, c->ne, c->oute);
    plan_free(p);
    for (int i = 0; i < c->ne; i++) {
        r->img[i].index = index[i];
        r->img[i].name = names ? names[i] : xstrdup(c->d.names[index[i]]);
        r->img[i].cls = c->cls_e[i];
        r->img[i].out[0] = c->oute[(size_t)i * c->K + r->o[0]];
        r->img[i].out[1] = c->oute[(size_t)i * c->K + r->o[1]];
        r->img[i].cell = xcalloc((size_t)c->nm * 2, sizeof(GadCell));
    }
    free(index);
    free(names); /* the strings now belong to r->img */
    return 0;
}

/* Step 2: the original's maps; starts the maps' progress line for all models. */
static int original_maps(Ctx *c) {
    size_t nslots = size_mul(size_mul((size_t)c->ne, (size_t)c->nm * 2), (size_t)c->npix);
    c->imp = xmalloc(size_mul(sizeof(float), nslots));
    c->pres = xmalloc(nslots);
    double per_model = 0;
    for (int m = 0; m < c->nm; m++) per_model += 2.0 * c->ne * method_cost(c->o, c->o->methods[m]);
    prog_start(&c->prog, "maps", per_model * (1 + c->o->nalphas), c->o->verbose);
    char label[128];
    snprintf(label, sizeof label, "%s maps (original)", c->res->name);
    return compute_maps(c, &c->orig, 1, label);
}

/* The support model of alpha number ai: from the cache, or trained (the original's
 * logits on the training images computed once, into *logits). */
static int support_model(Ctx *c, int ai, uint64_t wh, uint64_t dh, float **logits, Model *sup) {
    const RunOpts *o = c->o;
    GadModelResult *r = c->res;
    float alpha = o->alphas[ai];
    SupportOpts so = {alpha, o->epochs, o->batch, o->lr, o->weight_decay, o->train_mode, o->seed};
    SupportId id;
    gad_support_id(&id, r->name, wh, dh, r->o[0], r->o[1], &so);
    char sdir[700], ro[700], label[128];
    if (o->support_dir) snprintf(sdir, sizeof sdir, "%s", o->support_dir);
    else snprintf(sdir, sizeof sdir, "%s/support", o->out_dir);
    if (o->support_ro) snprintf(ro, sizeof ro, "%s", o->support_ro);
    else {  /* default: a "support" folder beside the weights */
        const char *w = o->weights[c->k], *sl = strrchr(w, '/');
        int dl = sl ? (int)(sl - w) : 1;
        snprintf(ro, sizeof ro, "%.*s/support", dl > 600 ? 600 : dl, sl ? w : ".");
    }
    char *path = r->support_path[ai];
    size_t plen = sizeof r->support_path[ai];
    snprintf(label, sizeof label, "%s support alpha=%g", r->name, (double)alpha);
    r->support_trained[ai] = 0;
    if (gad_support_find(&id, ro, sdir, &c->orig, sup, &r->support_loss[ai], path, plen)) {
        if (o->verbose) {
            prog_break(&c->prog);
            fprintf(stderr, "%s: reused %s\n", label, path);
        }
        if (c->prog.whole) c->prog.whole->total -= c->prog.whole->scale * o->epochs * c->nt * 3.0;  /* cached: zero */
        return 0;
    }
    double tt = now_s(); /* the training phase includes the targets' logits */
    if (!*logits) {
        *logits = xmalloc(sizeof(float) * (size_t)c->nt * c->K);
        const int nb = gad_maps_batch(&c->orig, c->H, c->W); /* the maps' larger batches */
        Plan *tp = nb < 0 ? NULL : plan_new(&c->orig, nb, c->H, c->W);
        if (!tp) return -1;
        gad_logits(&c->orig, tp, c->xt, c->nt, *logits);
        plan_free(tp);
    }
    float *tg = xmalloc(sizeof(float) * (size_t)c->nt * c->K);
    gad_distance(*logits, c->cls_t, c->nt, c->K, r->o[0], r->o[1], alpha, tg);
    prog_break(&c->prog);
    int rc = gad_support_train(&id, &c->orig, c->xt, tg, c->nt, c->H, c->W, path, o->verbose, label, sup,
                               &r->support_loss[ai]);
    free(tg);
    whole_add(c->prog.whole, o->epochs * c->nt * 3.0);
    c->prog.t0 += now_s() - tt;  /* training time is not map time (ETA) */
    r->phase[GAD_PHASE_TRAIN] += now_s() - tt;
    r->support_trained[ai] = rc == 0;
    return rc;
}

/* The cache keys' hashes: of the weights file and of the training images. */
static int support_hashes(Ctx *c, uint64_t *wh, uint64_t *dh) {
    *wh = GAD_FNV_INIT;
    if (gad_hash_file(c->o->weights[c->k], wh) != 0) return -1;
    c->res->weights_fnv = *wh;
    *dh = gad_hash(GAD_FNV_INIT, c->xt, sizeof(float) * (size_t)c->nt * 3 * c->npix);
    *dh = gad_hash(*dh, c->cls_t, sizeof(int) * (size_t)c->nt);
    return 0;
}

/* Step 3: every support model (one in memory at a time) and its maps, AND-ed into
 * the presence (which step 4, gad_map_of, turns into the GAD maps). */
static int support_maps(Ctx *c) {
    const RunOpts *o = c->o;
    uint64_t wh, dh;
    if (support_hashes(c, &wh, &dh) != 0) return -1;
    float *logits = NULL;
    int rc = 0;
    for (int ai = 0; ai < o->nalphas && rc == 0; ai++) {
        Model sup;
        memset(&sup, 0, sizeof sup);
        if ((rc = support_model(c, ai, wh, dh, &logits, &sup)) != 0) break;
        char label[128];
        snprintf(label, sizeof label, "%s maps (alpha=%g)", c->res->name, (double)o->alphas[ai]);
        rc = compute_maps(c, &sup, 0, label);
        model_free(&sup);
    }
    free(logits);
    if (rc == 0) prog_add(&c->prog, 0, 1);
    return rc;
}

static void ctx_init(Ctx *c, const RunOpts *o, int k, GadModelResult *r) {
    memset(c, 0, sizeof *c);
    c->o = o;
    c->k = k;
    c->res = r;
    c->nm = o->nmethods;
    c->pos0 = 0;
    c->pstep = 1;
    c->hull.of = o->hull_of;
    c->hull.keep = o->hull_keep;
    c->hull.present = o->present;
}

/* The whole-run estimate once model k's images are known: its first guess
 * (the options' image counts, the first model's cost) becomes its own units x its
 * MACs relative to the first model's. */
static double model_guess(const RunOpts *o) {
    GadRunCost g;
    int ne = o->shard_n > 0 ? (o->images + o->shard_n - 1) / o->shard_n : o->images;
    return gad_run_cost(o, ne, 2 * o->train_images, o->nalphas, &g);
}

static void whole_model(Ctx *c, Whole *w, double *macs0) {
    GadRunCost g;
    double macs = model_forward_macs(&c->orig, c->H, c->W);
    if (c->k == 0) *macs0 = macs;
    w->scale = *macs0 > 0 ? macs / *macs0 : 1;
    w->total += w->scale * gad_run_cost(c->o, c->ne, c->nt, c->o->nalphas, &g) - model_guess(c->o);
}

/* One model through the paper's steps: data, original maps, support models and
 * their maps, then per image the GAD maps (step 4) and metrics (step 5), and the
 * figures' candidate images (step 6); each step's time goes to r->phase. */
static int run_model(const RunOpts *o, int k, GadModelResult *r, Whole *w, double *macs0) {
    Ctx c;
    ctx_init(&c, o, k, r);
    c.prog.whole = w;
    double t0 = now_s(), t = t0, *ph = r->phase;
    int rc = load_model_and_data(&c);
    if (rc == 0) rc = select_images(&c);
    ph[GAD_PHASE_DATA] = now_s() - t;
    if (rc == 0) whole_model(&c, w, macs0);
    if (rc == 0) rc = original_maps(&c);
    if (rc == 0 && k == 0 && o->verbose && w->done > 0) {
        double s = (now_s() - w->t0) * w->total / w->done;
        prog_break(&c.prog);
        if (s < 120) fprintf(stderr, "whole run: about %.0f s\n", s);
        else fprintf(stderr, "whole run: about %.0f min\n", s / 60);
    }
    ph[GAD_PHASE_ORIG_MAPS] = now_s() - (t += ph[GAD_PHASE_DATA]);
    if (rc == 0) rc = support_maps(&c);  /* GAD_PHASE_TRAIN is timed inside */
    ph[GAD_PHASE_SUPPORT_MAPS] = now_s() - (t += ph[GAD_PHASE_ORIG_MAPS]) - ph[GAD_PHASE_TRAIN];
    t = now_s();
    if (rc == 0) rc = metrics(&c);
    ph[GAD_PHASE_METRICS] = now_s() - t;
    if (rc == 0) rc = curves(&c);
    ph[GAD_PHASE_CURVES] = now_s() - (t += ph[GAD_PHASE_METRICS]);
    if (rc == 0) figure_candidates(&c);
    r->seconds = now_s() - t0;
    ctx_free(&c);
    return rc;
}

static void free_results(GadRunResult *rr) {
    for (int k = 0; k < rr->nmodels; k++) gad_model_free(&rr->model[k]);
    free(rr->model);
}

int gad_run(const RunOpts *o) {
    if (o->nweights < 1) return err_set("gad run: no weights given");
    if (o->nmethods < 1) return err_set("gad run: no attribution method given");
    if (o->images < 2) return err_set("gad run: --images must be at least 2 (half per class)");
    if (o->shard_n > 0 && (o->shard_k < 1 || o->shard_k > o->shard_n))
        return err_set_usage("gad run: shard %d of %d does not exist", o->shard_k, o->shard_n);
    if (file_mkdirs(o->out_dir) != 0) return -1;
    double t0 = now_s();
    GadRunResult rr;
    rr.opts = o;
    rr.nmodels = o->nweights;
    rr.model = xcalloc((size_t)o->nweights, sizeof(GadModelResult));
    int rc = 0;
    Whole w = {t0, o->nweights * model_guess(o), 0, 1};
    double macs0 = 0;
    for (int k = 0; k < o->nweights && rc == 0; k++) {
        for (int a = 0; a < GAD_MAX_ALPHAS; a++) rr.model[k].support_loss[a] = NAN;
        rc = run_model(o, k, &rr.model[k], &w, &macs0);
        if (rc == 0 && o->shard_n == 0) rc = gad_model_finish(o, &rr.model[k]);
    }
    rr.seconds = now_s() - t0;
    if (rc == 0 && o->shard_n > 0) {  /* a shard: its results, for gad merge */
        rc = gad_shard_write(&rr);
    } else if (rc == 0) {
        gad_print_tables(stdout, &rr);
        rc = gad_write_report(&rr);
    }
    free_results(&rr);
    return rc;
}

/* ---- the support models alone (gad support) ---- */

int gad_supports(const RunOpts *o) {
    int pair = 0, rc = 0, done = 0;
    for (int k = 0; k < o->nweights && rc == 0; k++) {
        GadModelResult r;
        memset(&r, 0, sizeof r);
        Ctx c;
        ctx_init(&c, o, k, &r);
        uint64_t wh, dh;
        float *logits = NULL;
        rc = load_model_and_data(&c);
        if (rc == 0 && (c.nt = take(&c, 0, o->train_images, &c.xt, &c.cls_t, NULL)) < 0) rc = -1;
        if (rc == 0) rc = support_hashes(&c, &wh, &dh);
        for (int ai = 0; ai < o->nalphas && rc == 0; ai++, pair++) {
            if (o->shard_n > 0 && pair % o->shard_n != o->shard_k - 1) continue;
            Model sup;
            memset(&sup, 0, sizeof sup);
            if ((rc = support_model(&c, ai, wh, dh, &logits, &sup)) == 0) {
                if (o->verbose && r.support_trained[ai]) fprintf(stderr, "%s: trained %s\n", r.name, r.support_path[ai]);
                done++;
                model_free(&sup);
            }
        }
        free(logits);
        ctx_free(&c);
    }
    if (rc == 0 && o->verbose && done == 0) fprintf(stderr, "gad support: no support model in this share\n");
    return rc;
}
