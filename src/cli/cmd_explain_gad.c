/* cmd_explain_gad: `gad explain-gad`: every step of GAD (§4.3, §5) for one image of
 * a finished run, printed and drawn: each model's map, the pixels present in each,
 * their intersection, the GAD map, the hull points, the hulls, RC and RS. It reads
 * the run's settings, models and support models from RUN/results.json and computes
 * the steps with gad/steps.h (the pipeline's functions), so its numbers are the
 * run's; for an image the run explained it prints the run's values beside them.
 * Not for: training support models (`gad run` does), images outside the run's data. */
#include "attr/attr.h"
#include "attr/heatmap.h"
#include "cli/cli.h"
#include "core/err.h"
#include "gad/figures.h"
#include "gad/steps.h"
#include "io/dataset.h"
#include "io/file.h"
#include "io/json.h"
#include "nn/model.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SUP 16
#define BATCH 32

static void help(void) {
    printf("usage: gad explain-gad [--run DIR] [--image N] [flags]\n"
           "Every step of GAD for one image, printed (and drawn with --png): each model's\n"
           "attribution map, the pixels present in each, their intersection, the GAD map,\n"
           "the hull points, the convex hulls, RC and RS. The original model, the support\n"
           "models and the settings are those of a finished `gad run` (DIR/results.json),\n"
           "so the numbers are the run's; for an image the run explained, the run's RC and\n"
           "RS are printed beside them.\n\n"
           "  --run DIR       a finished run (default gad-report, what ./gad leaves)\n"
           "  --model NAME    which of the run's models (default: the first), e.g. resnet18\n"
           "  --image N       the image's index in the data, as in results.json (default:\n"
           "                  the first image the run explained)\n"
           "  --method LIST   saliency,deconv,gxi,guided,ig (default: the run's methods)\n"
           "  --class C       the output explained: 1, 2 or a class name (default: the\n"
           "                  image's own class)\n"
           "  --verbose       every step in full (each map's maximum and counts, the hull\n"
           "                  vertices, the output drops of RS)\n"
           "  --png DIR       write the Fig. 3 (steps) and Fig. 4 (hulls) pictures of each\n"
           "                  method into DIR\n"
           "  -h, --help      this text\n\n"
           "Exit status: 0 success, 1 bad file or data, 2 usage error.\n");
}

/* ---- the run, as results.json describes it ---- */

typedef struct {
    Json root;
    const char *data, *classes;
    AttrMethod methods[ATTR_NMETHODS];
    int nmethods;
    Presence present;
    HullRule hull;
    int count_empty;            /* --empty-gad gad */
    RcArea area;
    int black, ig_steps;
    const Json *model;          /* the chosen model's object */
    const char *name, *weights;
    int H, W, o[2];
    const char *class_name[2];
    int nsup;
    float alpha[MAX_SUP], loss[MAX_SUP];
    const char *sup_path[MAX_SUP];
    int train_per_class;        /* 0: all */
} Run;

static const char *jstr(const Json *o, const char *k) {
    const Json *v = json_get(o, k);
    return v && v->type == JSON_STRING ? v->str : NULL;
}

static int jnum(const Json *o, const char *k, double *out) {
    const Json *v = json_get(o, k);
    if (!v || v->type != JSON_NUMBER) return 0;
    *out = v->num;
    return 1;
}

static int run_load(Run *r, const char *dir, const char *model) {
    char path[1024];
    snprintf(path, sizeof path, "%s/results.json", dir);
    memset(r, 0, sizeof *r);
    if (!file_exists(path))
        return err_set("%s: no finished run here (run ./gad first, or give --run DIR)", path);
    unsigned char *text;
    size_t len;
    if (file_read_all(path, (size_t)1 << 30, &text, &len) != 0) return -1;
    int rc = json_parse((const char *)text, len, &r->root);
    free(text);
    if (rc != 0) return err_prefix(path);
    const Json *s = json_get(&r->root, "settings"), *models = json_get(&r->root, "models");
    if (!s || !models || models->type != JSON_ARRAY || models->n < 1)
        return err_set("%s: not the results of a gad run (no settings or models)", path);
    r->data = jstr(s, "data");
    r->classes = jstr(s, "classes");
    if (r->classes && !*r->classes) r->classes = NULL;
    const Json *m = json_get(s, "methods");
    for (int i = 0; m && m->type == JSON_ARRAY && i < m->n && r->nmethods < ATTR_NMETHODS; i++)
        if (m->kid[i].type == JSON_STRING && attr_parse_method(m->kid[i].str, &r->methods[r->nmethods]) == 0)
            r->nmethods++;
    const Json *p = json_get(s, "present");
    const char *rule = p ? jstr(p, "rule") : NULL;
    double v;
    r->present.rule = rule && !strcmp(rule, "top") ? PRESENT_TOP : PRESENT_FRAC;
    r->present.value = p && jnum(p, "value", &v) ? (float)v : 0.1f;
    const char *hull_of = jstr(s, "hull_of");  /* absent: a run from before --hull-of, nonzero */
    r->hull.of = !hull_of || !strcmp(hull_of, "nonzero") ? HULL_OF_NONZERO
                 : !strcmp(hull_of, "present")           ? HULL_OF_PRESENT
                                                         : HULL_OF_IMAGE;
    r->hull.keep = jnum(s, "hull_keep", &v) ? (float)v : 0.5f;
    r->hull.present = r->present;
    const char *empty = jstr(s, "empty_gad");  /* absent: a run from before --empty-gad, counted for GAD */
    r->count_empty = !empty || !strcmp(empty, "gad");
    const char *area = jstr(s, "rc_area"), *occ = jstr(s, "occlusion");
    r->area = area && !strcmp(area, "pixels") ? RC_AREA_PIXELS : RC_AREA_POLYGON;
    r->black = occ && !strcmp(occ, "black");
    r->ig_steps = jnum(s, "ig_steps", &v) ? (int)v : 50;
    r->train_per_class = jnum(s, "train_images_per_class", &v) ? (int)v : 0;
    if (!r->data || r->nmethods == 0) return err_set("%s: the settings lack the data or the methods", path);
    for (int k = 0; k < models->n && !r->model; k++) {
        const char *name = jstr(&models->kid[k], "name");
        if (!model || (name && !strcmp(name, model))) r->model = &models->kid[k];
    }
    if (!r->model) return err_set_usage("%s: the run has no model named '%s'", path, model);
    r->name = jstr(r->model, "name");
    r->weights = jstr(r->model, "weights");
    const Json *in = json_get(r->model, "input"), *cls = json_get(r->model, "classes");
    const Json *sup = json_get(r->model, "supports");
    if (!r->name || !r->weights || !in || in->type != JSON_ARRAY || in->n != 3 || !cls || cls->type != JSON_ARRAY ||
        cls->n != 2 || !sup || sup->type != JSON_ARRAY)
        return err_set("%s: model %d lacks its name, weights, input, classes or supports", path, 0);
    r->H = (int)in->kid[1].num;
    r->W = (int)in->kid[2].num;
    for (int a = 0; a < 2; a++) {
        r->class_name[a] = jstr(&cls->kid[a], "name");
        r->o[a] = jnum(&cls->kid[a], "output", &v) ? (int)v : a;
        if (!r->class_name[a]) r->class_name[a] = a ? "class 2" : "class 1";
    }
    for (int k = 0; k < sup->n && r->nsup < MAX_SUP; k++) {
        const char *sp = jstr(&sup->kid[k], "path");
        if (!sp || !jnum(&sup->kid[k], "alpha", &v)) return err_set("%s: support %d has no path or alpha", path, k);
        r->alpha[r->nsup] = (float)v;
        r->loss[r->nsup] = jnum(&sup->kid[k], "final_loss", &v) ? (float)v : NAN;
        r->sup_path[r->nsup++] = sp;
    }
    return 0;
}

/* The run's cell of image `index`, method m, class a (1-based in the file), or NULL. */
static const Json *run_cell(const Run *r, int index, AttrMethod m, int a) {
    const Json *imgs = json_get(r->model, "images");
    for (int i = 0; imgs && imgs->type == JSON_ARRAY && i < imgs->n; i++) {
        double v;
        if (!jnum(&imgs->kid[i], "index", &v) || (int)v != index) continue;
        const Json *cells = json_get(&imgs->kid[i], "cells");
        for (int k = 0; cells && cells->type == JSON_ARRAY && k < cells->n; k++) {
            const char *meth = jstr(&cells->kid[k], "method");
            double c;
            if (meth && !strcmp(meth, attr_method_name(m)) && jnum(&cells->kid[k], "class", &c) && (int)c == a + 1)
                return &cells->kid[k];
        }
    }
    return NULL;
}

/* The first image the run explained, or -1. */
static int run_first_image(const Run *r) {
    const Json *imgs = json_get(r->model, "images");
    double v;
    if (imgs && imgs->type == JSON_ARRAY && imgs->n > 0 && jnum(&imgs->kid[0], "index", &v)) return (int)v;
    return -1;
}

/* ---- printing ---- */

/* Print s left-aligned in `width` characters (UTF-8 counted by characters). */
static void pad(const char *s, int width) {
    int n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) n += (*p & 0xc0) != 0x80;
    printf("%s%*s", s, width > n ? width - n : 0, "");
}

static const char *long_name(AttrMethod m) {
    static const char *s[] = {"Saliency", "Deconvolution", "Gradient x Input", "Guided Backprop",
                              "Integrated Gradients"};
    return (unsigned)m < ATTR_NMETHODS ? s[m] : "?";
}

static void print_hull(const char *what, const GadSteps *s, int h, int verbose) {
    const GadHull *hu = &s->hull[h];
    printf("    %-9s %d hull points, %d vertices, area %.1f, %d pixels inside or on it\n", what, s->npts[h], hu->nvert,
           hu->area, hu->pixels);
    if (verbose && hu->nvert > 0) {
        printf("              vertices:");
        for (int i = 0; i < hu->nvert; i++) printf("%s(%d,%d)", i % 8 == 0 && i ? "\n                       " : " ",
                                                   s->verts[h][i].x, s->verts[h][i].y);
        printf("\n");
    }
}

static void print_rs(const char *what, const GadSteps *s, int k, int verbose) {
    if (isnan(s->rs[k])) {
        printf("    %-9s empty mask: no RS\n", what);
        return;
    }
    if (verbose)
        printf("    %-9s \xce\xa3M = %d, |N_a(I) - N_a(I\xc2\xb7(1-M))| = %.6g, RS = %.6g (x 10\xc2\xb2: %.4f)\n", what,
               s->mask_pixels[k + 1], s->drop[k], s->rs[k], 100 * s->rs[k]);
    else printf("    %-9s \xce\xa3M = %d, RS x 10\xc2\xb2 = %.4f\n", what, s->mask_pixels[k + 1], 100 * s->rs[k]);
}

static int same(double a, double b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return fabs(a - b) <= 1e-9 * (fabs(b) > 1 ? fabs(b) : 1);
}

/* The run's RC and RS for this cell, and whether ours agree. */
static void print_run(const Json *cell, const GadSteps *s) {
    if (!cell) {
        printf("  (the run did not explain this image: nothing to compare with)\n");
        return;
    }
    double rc = NAN, g = NAN, sp = NAN;
    jnum(cell, "rc", &rc);
    jnum(cell, "rs_gad", &g);
    jnum(cell, "rs_sup", &sp);
    int ok = same(rc, s->rc) && same(g, s->rs[0]) && same(sp, s->rs[1]);
    printf("  the run's values (results.json): RC %.6g, RS GAD %.6g, RS Sup. %.6g: %s\n", rc, g, sp,
           ok ? "the same" : "DIFFERENT (the data, weights or support models changed since the run?)");
}

static void print_steps(const Run *r, AttrMethod m, const GadSteps *s, int a, int verbose, const Json *cell) {
    char pres[96];
    gad_present_text(r->present, pres, sizeof pres);
    printf("\n%s, output %d (%s)\n", long_name(m), r->o[a], r->class_name[a]);
    printf("  1. maps: |channel sum| of each model's attribution; present = %s\n", pres);
    for (int k = 0; k < s->nmaps; k++) {
        const float *imp = s->imp + (size_t)k * s->npix;
        int nnz = 0;
        for (int i = 0; i < s->npix; i++) nnz += imp[i] > 0;
        char lab[32];
        if (k == 0) snprintf(lab, sizeof lab, "original");
        else snprintf(lab, sizeof lab, "\xce\xb1 = %g", (double)r->alpha[k - 1]);
        printf("    ");
        pad(lab, 10);
        if (verbose) printf("max %-11.4g non-zero %5d  present %5d\n", (double)s->maxima[k], nnz, s->npresent[k]);
        else printf("present %5d\n", s->npresent[k]);
    }
    printf("  2. intersection: %d pixels present in all %d maps\n", s->nall, s->nmaps);
    printf("  3. GAD map: the original's importance on them, 0 elsewhere: %d non-zero pixels%s\n", s->gad_nnz,
           s->gad_nnz == 0 ? " (EMPTY: no pixel is present in every map)" : "");
    char hulltext[96];
    gad_hull_text(&r->hull, hulltext, sizeof hulltext);
    printf("  4-5. hull points (%s) and convex hulls:\n", hulltext);
    print_hull("original", s, 0, verbose);
    print_hull("GAD", s, 1, verbose);
    static const char *why[4] = {"< 1: counts for GAD in Table 1", "\xe2\x89\xa5 1: counts for the original in Table 1",
                                 "the GAD map is empty: counted in neither column",
                                 "undefined: the original hull has no area; counted in neither column"};
    int forced = gad_rc_forced(s->imp, s->gad, s->H, s->W, &r->hull);
    printf("  6. RC = A(CH_GAD) / A(CH_orig) = %.6g (%s)%s\n", s->rc,
           why[gad_rc_count(s->rc, s->gad_nnz == 0, r->count_empty)],
           forced ? "; forced: the GAD hull points are among the original's, RC <= 1 whatever the model" : "");
    printf("  7. RS on the original model, output %s, N_a(I) = %.6g:\n", r->class_name[a], (double)s->y0);
    print_rs("GAD", s, 0, verbose);
    print_rs("Sup.", s, 1, verbose);
    print_run(cell, s);
}

/* ---- the distancing (Fig. 1): logits of training images ---- */

#define DIST_PER_CLASS 1000  /* training images per class for the fit and Fig. 1 */

typedef struct {
    int n;
    float *x;                   /* [n,3,H,W] */
    int *cls;                   /* [n] */
    float *orig;                /* [n,2] original logits of the two outputs */
    float *sup;                 /* [nsup][n,2] the support models' */
} Dist;

/* The first DIST_PER_CLASS (or the run's --train-images) training images of each class. */
static void dist_init(Dist *t, const Dataset *d, const Run *r) {
    int per = r->train_per_class > 0 && r->train_per_class < DIST_PER_CLASS ? r->train_per_class : DIST_PER_CLASS;
    int *idx[2], cnt[2];
    size_t isz = (size_t)3 * r->H * r->W;
    memset(t, 0, sizeof *t);
    for (int a = 0; a < 2; a++) {
        cnt[a] = dataset_select(d, 0, a, per, &idx[a]);
        t->n += cnt[a];
    }
    t->x = xmalloc(sizeof(float) * isz * (size_t)(t->n > 0 ? t->n : 1));
    t->cls = xmalloc(sizeof(int) * (size_t)(t->n > 0 ? t->n : 1));
    t->orig = xmalloc(sizeof(float) * 2 * (size_t)(t->n > 0 ? t->n : 1));
    t->sup = xmalloc(sizeof(float) * 2 * (size_t)(t->n > 0 ? t->n : 1) * (size_t)(r->nsup > 0 ? r->nsup : 1));
    int k = 0;
    for (int a = 0; a < 2; a++) {
        for (int j = 0; j < cnt[a]; j++, k++) {
            memcpy(t->x + (size_t)k * isz, d->x + (size_t)idx[a][j] * isz, sizeof(float) * isz);
            t->cls[k] = a;
        }
        free(idx[a]);
    }
}

static void dist_free(Dist *t) {
    free(t->x);
    free(t->cls);
    free(t->orig);
    free(t->sup);
}

/* out [n,2] = the logits of the run's two outputs under m. */
static int logits2(Model *m, const Run *r, const float *x, int n, float *out) {
    Plan *p = plan_new(m, BATCH, r->H, r->W);
    if (!p) return -1;
    PassMode eval = {0, RELU_STANDARD, 0, 0};
    size_t isz = (size_t)3 * r->H * r->W;
    int K = m->cfg.num_classes;
    for (int i = 0; i < n; i += BATCH) {
        int nb = n - i < BATCH ? n - i : BATCH;
        const float *y = model_forward(m, p, x + (size_t)i * isz, nb, eval);
        for (int j = 0; j < nb; j++) {
            out[2 * (i + j)] = y[(size_t)j * K + r->o[0]];
            out[2 * (i + j) + 1] = y[(size_t)j * K + r->o[1]];
        }
    }
    plan_free(p);
    return 0;
}

static void print_dist(const Run *r, const Dist *t, GadFit *fits) {
    printf("\n0. distancing (Fig. 1), on %d training images: each support model was fitted to the original\n"
           "   logits with the other class's logit lowered by alpha (a %s image's %s logit, a %s image's %s logit)\n",
           t->n, r->class_name[0], r->class_name[1], r->class_name[1], r->class_name[0]);
    for (int k = 0; k < r->nsup; k++) {
        gad_fit(t->orig, t->sup + (size_t)k * 2 * t->n, t->cls, t->n, r->alpha[k], &fits[k]);
        printf("   alpha %-4g final training MSE %-9.4g RMSE against the targets %-8.3g shift %3.0f%% of alpha: %s\n",
               (double)r->alpha[k], (double)r->loss[k], fits[k].rmse, 100 * fits[k].shift,
               fits[k].fits ? "fits" : "DID NOT FIT (RMSE > alpha/2): its map says little about this alpha");
    }
}

/* ---- the command ---- */

static int parse_methods(const char *list, AttrMethod *out) {
    char *buf = xstrdup(list), *save = buf;
    int n = 0;
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
        if (n == ATTR_NMETHODS || attr_parse_method(t, &out[n]) != 0) {
            free(save);
            return -1;
        }
        n++;
    }
    free(save);
    return n;
}

/* Attributions of model m on image x for every method, into map k of each steps. */
static int maps_of(Model *m, const Run *r, const float *x, int target, GadSteps *steps, const AttrMethod *meth,
                   int nm, int k) {
    Plan *p = plan_new(m, BATCH, r->H, r->W);
    if (!p) return -1;
    float *attr = xmalloc(sizeof(float) * 3 * (size_t)r->H * r->W);
    int rc = 0;
    for (int i = 0; i < nm && rc == 0; i++) {
        AttrOpts o;
        attr_opts_default(&o);
        o.method = meth[i];
        o.steps = r->ig_steps;
        if ((rc = attr_compute(m, p, x, 1, &target, &o, attr, NULL)) == 0) gad_steps_set(&steps[i], k, attr);
    }
    free(attr);
    plan_free(p);
    return rc;
}

int cmd_explain_gad(int argc, char **argv) {
    const char *dir = "gad-report", *model = NULL, *methods = NULL, *cls = NULL, *png = NULL;
    int image = -1, verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (arg_is_help(argv[i])) { help(); return 0; }
        if (arg_str(argc, argv, &i, "--run", &dir) || arg_str(argc, argv, &i, "--model", &model) ||
            arg_int(argc, argv, &i, "--image", &image, 0, 1 << 30) ||
            arg_str(argc, argv, &i, "--method", &methods) || arg_str(argc, argv, &i, "--class", &cls) ||
            arg_flag(argv, &i, "--verbose", &verbose) || arg_str(argc, argv, &i, "--png", &png))
            continue;
        arg_usage_error("explain-gad", "unknown argument '%s'", argv[i]);
    }
    AttrMethod meth[ATTR_NMETHODS];
    int nm = 0;
    if (methods && (nm = parse_methods(methods, meth)) <= 0)
        arg_usage_error("explain-gad", "--method takes a list of saliency, deconv, gxi, guided, ig, not '%s'", methods);

    Run r;
    Model orig;
    Dataset d;
    memset(&orig, 0, sizeof orig);
    memset(&d, 0, sizeof d);
    GadSteps steps[ATTR_NMETHODS];
    GadFit fits[MAX_SUP];
    Dist dist;
    memset(&dist, 0, sizeof dist);
    int nsteps = 0, rc = 1;
    float *base = NULL;
    Plan *ep = NULL;
    if (run_load(&r, dir, model) != 0) goto done;
    if (!methods) {
        nm = r.nmethods;
        memcpy(meth, r.methods, sizeof(AttrMethod) * (size_t)nm);
    }
    if (model_load(&orig, r.weights) != 0) goto done;
    const float *mean = orig.cfg.has_norm ? orig.cfg.mean : NULL, *std = orig.cfg.has_norm ? orig.cfg.std : NULL;
    if (dataset_load(&d, r.data, r.classes, r.H, r.W, mean, std, 0.2f) != 0) goto done;
    if (image < 0) image = run_first_image(&r);
    if (image < 0) image = 0;
    if (image >= d.n) {
        err_set_usage("--image %d: %s has %d images of these classes (0..%d)", image, r.data, d.n, d.n - 1);
        goto done;
    }
    int a = d.y[image];
    if (cls) {
        if (!strcmp(cls, "1") || !strcmp(cls, r.class_name[0])) a = 0;
        else if (!strcmp(cls, "2") || !strcmp(cls, r.class_name[1])) a = 1;
        else {
            err_set_usage("--class '%s': the run's classes are 1 (%s) and 2 (%s)", cls, r.class_name[0],
                          r.class_name[1]);
            goto done;
        }
    }
    const float *x = d.x + (size_t)image * 3 * r.H * r.W;
    ep = plan_new(&orig, BATCH, r.H, r.W);
    if (!ep) goto done;
    PassMode eval = {0, RELU_STANDARD, 0, 0};
    const float *y = model_forward(&orig, ep, x, 1, eval);
    float out[2] = {y[r.o[0]], y[r.o[1]]};
    int pred = out[1] > out[0];
    printf("%s (run %s): image %d of %s, a %s, predicted %s%s\n", r.name, dir, image, r.data,
           r.class_name[d.y[image]], r.class_name[pred], pred != d.y[image] ? " (MISCLASSIFIED)" : "");
    printf("  logits: %s %.6g, %s %.6g\n", r.class_name[0], (double)out[0], r.class_name[1], (double)out[1]);
    printf("  maps of the original model (%s) and %d support models (alpha", r.weights, r.nsup);
    for (int k = 0; k < r.nsup; k++) printf("%s%g", k ? ", " : " ", (double)r.alpha[k]);
    printf(")\n");
    if (verbose)
        for (int k = 0; k < r.nsup; k++) printf("    alpha %g: %s\n", (double)r.alpha[k], r.sup_path[k]);

    for (nsteps = 0; nsteps < nm; nsteps++) gad_steps_init(&steps[nsteps], 1 + r.nsup, r.H, r.W);
    dist_init(&dist, &d, &r);
    if (maps_of(&orig, &r, x, r.o[a], steps, meth, nm, 0) != 0 || logits2(&orig, &r, dist.x, dist.n, dist.orig) != 0)
        goto done;
    for (int k = 0; k < r.nsup; k++) {
        Model sup;
        if (model_load(&sup, r.sup_path[k]) != 0) goto done;
        int e = maps_of(&sup, &r, x, r.o[a], steps, meth, nm, k + 1);
        if (e == 0) e = logits2(&sup, &r, dist.x, dist.n, dist.sup + (size_t)k * 2 * dist.n);
        model_free(&sup);
        if (e != 0) goto done;
    }
    if (dist.n > 0 && r.nsup > 0) print_dist(&r, &dist, fits);
    if (r.black) {
        base = xmalloc(sizeof(float) * 3 * (size_t)r.H * r.W);
        for (int ch = 0; ch < 3; ch++)
            for (int i = 0; i < r.H * r.W; i++) base[ch * r.H * r.W + i] = mean ? (0.0f - mean[ch]) / std[ch] : 0.0f;
    }
    GadEval ev;
    GadModelCtx ctx;
    gad_eval_model(&ev, &ctx, &orig, ep, BATCH);
    for (int i = 0; i < nm; i++) {
        gad_steps_finish(&steps[i], r.present, &r.hull, r.area);
        if (gad_steps_rs(&steps[i], &ev, x, r.o[a], NAN, base) != 0) goto done;
        print_steps(&r, meth[i], &steps[i], a, verbose, run_cell(&r, image, meth[i], a));
    }
    if (png) {
        if (file_mkdirs(png) != 0) goto done;
        unsigned char *rgb = xmalloc(3 * (size_t)r.H * r.W);
        heatmap_input_rgb(x, r.H, r.W, mean, std, rgb);
        char what[160];
        snprintf(what, sizeof what, "image %d (a %s, predicted %s)", image, r.class_name[d.y[image]],
                 r.class_name[pred]);
        int e = 0;
        if (dist.n > 0 && r.nsup > 0) {
            char path[1024];
            GadDistFig df = {r.name, {r.class_name[0], r.class_name[1]}, dist.n, dist.cls, dist.orig, r.nsup, r.alpha,
                             dist.sup, r.loss, 0};
            snprintf(path, sizeof path, "%s/%s-distancing.png", png, r.name);
            if ((e = gad_fig_distancing(path, &df, NULL)) == 0) printf("wrote %s\n", path);
        }
        for (int i = 0; i < nm && e == 0; i++) {
            GadStepsInfo info = {r.name, long_name(meth[i]), what, r.class_name[a], r.alpha, rgb, r.present, r.hull,
                                 heatmap_auto_scale(r.H > r.W ? r.H : r.W)};
            char path[1024];
            snprintf(path, sizeof path, "%s/%s-%d-%s-steps.png", png, r.name, image, attr_method_name(meth[i]));
            e = gad_fig_steps(path, &steps[i], &info);
            if (e == 0) {
                printf("wrote %s\n", path);
                snprintf(path, sizeof path, "%s/%s-%d-%s-hulls.png", png, r.name, image, attr_method_name(meth[i]));
                if ((e = gad_fig_hulls(path, &steps[i], &info)) == 0) printf("wrote %s\n", path);
            }
        }
        free(rgb);
        if (e != 0) goto done;
    }
    rc = 0;
done:
    if (rc) rc = cli_fail();
    for (int i = 0; i < nsteps; i++) gad_steps_free(&steps[i]);
    dist_free(&dist);
    if (ep) plan_free(ep);
    free(base);
    dataset_free(&d);
    model_free(&orig);
    json_free(&r.root);
    return rc;
}
