/* cmd_explain_gad: `gad explain-gad`: every step of GAD (§4.1-4.3, §5) for one image
 * of a finished run, printed and drawn: how far each support model moved the logits
 * (the distancing), each model's map, the pixels present in each, their
 * intersection, the GAD map, the hull points, the hulls, RC and RS. It rebuilds the
 * run's settings and model from RUN/results.json and computes the steps with
 * gad/explain.h (the pipeline's functions), so its numbers are the run's; for an
 * image the run explained it prints the run's values beside them.
 * Not for: training support models (`gad run` does). */
#include "attr/heatmap.h"
#include "cli/cli.h"
#include "core/err.h"
#include "gad/explain.h"
#include "gad/figures.h"
#include "io/file.h"
#include "io/json.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIST_PER_CLASS 1000  /* training images per class for the fit and Fig. 1 */

static void help(void) {
    printf("usage: gad explain-gad [--run DIR] [--image N] [flags]\n"
           "Every step of GAD for one image, printed (and drawn with --png): how far each\n"
           "support model moved the logits, each model's attribution map, the pixels\n"
           "present in each, their intersection, the GAD map, the hull points, the convex\n"
           "hulls, RC and RS. The original model, the support models, the data and the\n"
           "settings are those of a finished `gad run` (DIR/results.json), so the numbers\n"
           "are the run's; for an image the run explained, the run's RC and RS are printed\n"
           "beside them.\n\n"
           "  --run DIR       a finished run (default gad-report, what ./gad leaves)\n"
           "  --model NAME    which of the run's models (default: the first), e.g. resnet18\n"
           "  --image N       the image's index in the data, as in results.json (default:\n"
           "                  the first image the run explained)\n"
           "  --method LIST   saliency,deconv,gxi,guided,ig (default: the run's methods)\n"
           "  --class C       the output explained: 1, 2 or a class name (default: the\n"
           "                  image's own class)\n"
           "  --verbose       every step in full (each map's maximum and counts, the hull\n"
           "                  vertices, the output drops of RS)\n"
           "  --png DIR       write the pictures into DIR: the distancing (Fig. 1 style) and,\n"
           "                  per method, the steps (Fig. 3 style) and the hulls (Fig. 4 style)\n"
           "  -h, --help      this text\n\n"
           "Exit status: 0 success, 1 bad file or data, 2 usage error.\n");
}

/* ---- the run, as results.json describes it ---- */

typedef struct {
    Json root;
    RunOpts o;                  /* the run's settings, rebuilt */
    GadModelResult r;           /* the chosen model: name, weights, sizes, outputs, supports */
    const Json *model;          /* its object in results.json */
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

/* The settings that the steps and the data's preparation depend on. Older runs lack
 * some: hull_of (then nonzero), empty_gad (counted), size and val_frac (the weights'). */
static void run_settings(Run *r, const Json *s) {
    RunOpts *o = &r->o;
    run_opts_default(o);
    double v;
    o->data = jstr(s, "data");
    o->classes = jstr(s, "classes");
    if (o->classes && !*o->classes) o->classes = NULL;
    const Json *m = json_get(s, "methods");
    o->nmethods = 0;
    for (int i = 0; m && m->type == JSON_ARRAY && i < m->n && o->nmethods < ATTR_NMETHODS; i++)
        if (m->kid[i].type == JSON_STRING && attr_parse_method(m->kid[i].str, &o->methods[o->nmethods]) == 0)
            o->nmethods++;
    const Json *p = json_get(s, "present");
    const char *rule = p ? jstr(p, "rule") : NULL, *hull_of = jstr(s, "hull_of"), *empty = jstr(s, "empty_gad");
    o->present.rule = rule && !strcmp(rule, "top") ? PRESENT_TOP : PRESENT_FRAC;
    o->present.value = p && jnum(p, "value", &v) ? (float)v : 0.1f;
    o->hull_of = !hull_of || !strcmp(hull_of, "nonzero") ? HULL_OF_NONZERO
                 : !strcmp(hull_of, "present")           ? HULL_OF_PRESENT
                                                         : HULL_OF_IMAGE;
    o->hull_keep = jnum(s, "hull_keep", &v) ? (float)v : 0.5f;
    o->count_empty = !empty || !strcmp(empty, "gad");
    const char *area = jstr(s, "rc_area"), *occ = jstr(s, "occlusion");
    o->rc_area = area && !strcmp(area, "pixels") ? RC_AREA_PIXELS : RC_AREA_POLYGON;
    o->occlude_black = occ && !strcmp(occ, "black");
    o->ig_steps = jnum(s, "ig_steps", &v) ? (int)v : 50;
    o->train_images = jnum(s, "train_images_per_class", &v) ? (int)v : 0;
    o->size = jnum(s, "size", &v) ? (int)v : 0;
    o->val_frac = jnum(s, "val_frac", &v) ? (float)v : -1;
    o->images_list = jstr(s, "images_list"); /* NULL: the held-out part (or an older run) */
}

static int run_load(Run *r, const char *dir, const char *model) {
    char path[1024];
    snprintf(path, sizeof path, "%s/results.json", dir);
    memset(r, 0, sizeof *r);
    if (!file_exists(path)) return err_set("%s: no finished run here (run ./gad first, or give --run DIR)", path);
    unsigned char *text;
    size_t len;
    if (file_read_all(path, (size_t)1 << 30, &text, &len) != 0) return -1;
    int rc = json_parse((const char *)text, len, &r->root);
    free(text);
    if (rc != 0) return err_prefix(path);
    const Json *s = json_get(&r->root, "settings"), *models = json_get(&r->root, "models");
    if (!s || !models || models->type != JSON_ARRAY || models->n < 1)
        return err_set("%s: not the results of a gad run (no settings or models)", path);
    run_settings(r, s);
    if (!r->o.data || r->o.nmethods == 0) return err_set("%s: the settings lack the data or the methods", path);
    for (int k = 0; k < models->n && !r->model; k++) {
        const char *name = jstr(&models->kid[k], "name");
        if (!model || (name && !strcmp(name, model))) r->model = &models->kid[k];
    }
    if (!r->model) return err_set_usage("%s: the run has no model named '%s'", path, model);
    GadModelResult *m = &r->r;
    const char *name = jstr(r->model, "name"), *w = jstr(r->model, "weights");
    const Json *in = json_get(r->model, "input"), *cls = json_get(r->model, "classes");
    const Json *sup = json_get(r->model, "supports");
    if (!name || !w || !in || in->type != JSON_ARRAY || in->n != 3 || !cls || cls->type != JSON_ARRAY || cls->n != 2 ||
        !sup || sup->type != JSON_ARRAY)
        return err_set("%s: a model lacks its name, weights, input, classes or supports", path);
    snprintf(m->name, sizeof m->name, "%s", name);
    snprintf(m->weights, sizeof m->weights, "%s", w);
    m->H = (int)in->kid[1].num;
    m->W = (int)in->kid[2].num;
    double v;
    for (int a = 0; a < 2; a++) {
        const char *cn = jstr(&cls->kid[a], "name");
        snprintf(m->class_name[a], sizeof m->class_name[a], "%s", cn ? cn : a ? "class 2" : "class 1");
        m->o[a] = jnum(&cls->kid[a], "output", &v) ? (int)v : a;
    }
    r->o.nalphas = 0;
    for (int k = 0; k < sup->n && k < GAD_MAX_ALPHAS; k++) {
        const char *sp = jstr(&sup->kid[k], "path");
        if (!sp || !jnum(&sup->kid[k], "alpha", &v)) return err_set("%s: support %d has no path or alpha", path, k);
        r->o.alphas[k] = (float)v;
        m->support_loss[k] = jnum(&sup->kid[k], "final_loss", &v) ? (float)v : NAN;
        snprintf(m->support_path[k], sizeof m->support_path[k], "%s", sp);
        r->o.nalphas++;
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

/* The first image of the data (index < nd) the run explained, or -1 (an image of
 * --images-list from outside the data has an index >= nd). */
static int run_first_image(const Run *r, int nd) {
    const Json *imgs = json_get(r->model, "images");
    double v;
    for (int i = 0; imgs && imgs->type == JSON_ARRAY && i < imgs->n; i++)
        if (jnum(&imgs->kid[i], "index", &v) && v >= 0 && v < nd) return (int)v;
    return -1;
}

/* ---- printing ---- */

/* Print s left-aligned in `width` characters (UTF-8 counted by characters). */
static void pad(const char *s, int width) {
    int n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) n += (*p & 0xc0) != 0x80;
    printf("%s%*s", s, width > n ? width - n : 0, "");
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
    const RunOpts *o = &r->o;
    char pres[96], hulltext[96];
    HullRule hull;
    gad_run_hull(o, &hull);
    gad_present_text(o->present, pres, sizeof pres);
    printf("\n%s, output %d (%s)\n", gad_method_title(m), r->r.o[a], r->r.class_name[a]);
    printf("  1. maps: |channel sum| of each model's attribution; present = %s\n", pres);
    for (int k = 0; k < s->nmaps; k++) {
        const float *imp = s->imp + (size_t)k * s->npix;
        int nnz = 0;
        for (int i = 0; i < s->npix; i++) nnz += imp[i] > 0;
        char lab[32];
        if (k == 0) snprintf(lab, sizeof lab, "original");
        else snprintf(lab, sizeof lab, "\xce\xb1 = %g", (double)o->alphas[k - 1]);
        printf("    ");
        pad(lab, 10);
        if (verbose) printf("max %-11.4g non-zero %5d  present %5d\n", (double)s->maxima[k], nnz, s->npresent[k]);
        else printf("present %5d\n", s->npresent[k]);
    }
    printf("  2. intersection: %d pixels present in all %d maps\n", s->nall, s->nmaps);
    printf("  3. GAD map: the original's importance on them, 0 elsewhere: %d non-zero pixels%s\n", s->gad_nnz,
           s->gad_nnz == 0 ? " (EMPTY: no pixel is present in every map)" : "");
    gad_hull_text(&hull, hulltext, sizeof hulltext);
    printf("  4-5. hull points (%s) and convex hulls:\n", hulltext);
    print_hull("original", s, 0, verbose);
    print_hull("GAD", s, 1, verbose);
    static const char *why[4] = {"< 1: counts for GAD in Table 1", "\xe2\x89\xa5 1: counts for the original in Table 1",
                                 "the GAD map is empty: counted in neither column",
                                 "undefined: the original hull has no area; counted in neither column"};
    int forced = gad_rc_forced(s->imp, s->gad, s->H, s->W, &hull);
    printf("  6. RC = A(CH_GAD) / A(CH_orig) = %.6g (%s)%s\n", s->rc, why[gad_rc_count(s->rc, s->gad_nnz == 0, o->count_empty)],
           forced ? "; forced: the GAD hull points are among the original's, RC <= 1 whatever the model" : "");
    printf("  7. RS on the original model, output %s, N_a(I) = %.6g:\n", r->r.class_name[a], (double)s->y0);
    print_rs("GAD", s, 0, verbose);
    print_rs("Sup.", s, 1, verbose);
    print_run(cell, s);
}

static void print_dist(const Run *r, const GadDistancing *t, GadFit *fits) {
    const char *c1 = r->r.class_name[0], *c2 = r->r.class_name[1];
    printf("\n0. distancing (Fig. 1), on %d training images: each support model was fitted to the original\n"
           "   logits with the other class's logit lowered by alpha (a %s image's %s logit, a %s image's %s logit)\n",
           t->n, c1, c2, c2, c1);
    for (int k = 0; k < r->o.nalphas; k++) {
        gad_fit(t->orig, t->sup + (size_t)k * 2 * t->n, t->cls, t->n, r->o.alphas[k], &fits[k]);
        printf("   alpha %-4g final training MSE %-9.4g RMSE against the targets %-8.3g shift %3.0f%% of alpha: %s\n",
               (double)r->o.alphas[k], (double)r->r.support_loss[k], fits[k].rmse, 100 * fits[k].shift,
               fits[k].fits ? "fits" : "DID NOT FIT: its map says little about this alpha");
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

/* The three pictures of --png. */
static int pictures(const char *dir, const Run *r, const GadExplainer *e, int image, int a, const GadSteps *steps,
                    const GadDistancing *dist) {
    const RunOpts *o = &r->o;
    const GadModelResult *m = &r->r;
    char path[1024], what[256];
    if (file_mkdirs(dir) != 0) return -1;
    if (dist->n > 0 && o->nalphas > 0) {
        GadDistFig df = {m->name, {m->class_name[0], m->class_name[1]}, dist->n, dist->cls, dist->orig, o->nalphas,
                         o->alphas, dist->sup, m->support_loss, 0};
        snprintf(path, sizeof path, "%s/%s-distancing.png", dir, m->name);
        if (gad_fig_distancing(path, &df, NULL) != 0) return -1;
        printf("wrote %s\n", path);
    }
    size_t isz = (size_t)3 * m->H * m->W;
    unsigned char *rgb = xmalloc(isz);
    heatmap_input_rgb(e->d.x + (size_t)image * isz, m->H, m->W, e->mean, e->std, rgb);
    snprintf(what, sizeof what, "image %d, a %s", image, m->class_name[e->d.y[image]]);
    HullRule hull;
    gad_run_hull(o, &hull);
    int rc = 0;
    for (int i = 0; i < o->nmethods && rc == 0; i++) {
        GadStepsInfo info = {m->name, gad_method_title(o->methods[i]), what, m->class_name[a], o->alphas, rgb,
                             o->present, hull, heatmap_auto_scale(m->H > m->W ? m->H : m->W)};
        snprintf(path, sizeof path, "%s/%s-%d-%s-steps.png", dir, m->name, image, attr_method_name(o->methods[i]));
        if ((rc = gad_fig_steps(path, &steps[i], &info)) != 0) break;
        printf("wrote %s\n", path);
        snprintf(path, sizeof path, "%s/%s-%d-%s-hulls.png", dir, m->name, image, attr_method_name(o->methods[i]));
        if ((rc = gad_fig_hulls(path, &steps[i], &info)) == 0) printf("wrote %s\n", path);
    }
    free(rgb);
    return rc;
}

/* Kept whole: the command read top to bottom (flags, the finished run, the image, its
 * steps recomputed, the printout, the pictures) with one exit that frees them. */
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
    GadExplainer e;
    GadSteps steps[ATTR_NMETHODS];
    GadDistancing dist;
    GadFit fits[GAD_MAX_ALPHAS];
    memset(&e, 0, sizeof e);
    memset(&dist, 0, sizeof dist);
    int nsteps = 0, opened = 0, rc = 1;
    if (run_load(&r, dir, model) != 0) goto done;
    if (methods) {
        r.o.nmethods = nm;
        memcpy(r.o.methods, meth, sizeof(AttrMethod) * (size_t)nm);
    }
    if (gad_explainer_open(&e, &r.o, &r.r) != 0) goto done;
    opened = 1;
    if (image < 0) image = run_first_image(&r, e.d.n);
    if (image < 0) image = 0;
    if (image >= e.d.n) {
        err_set_usage("--image %d: %s has %d images of these classes (0..%d)%s", image, r.o.data, e.d.n, e.d.n - 1,
                      r.o.images_list ? "; the run's images of --images-list from outside the data are not explained "
                                        "step by step"
                                      : "");
        goto done;
    }
    int a = e.d.y[image];
    if (cls) {
        if (!strcmp(cls, "1") || !strcmp(cls, r.r.class_name[0])) a = 0;
        else if (!strcmp(cls, "2") || !strcmp(cls, r.r.class_name[1])) a = 1;
        else {
            err_set_usage("--class '%s': the run's classes are 1 (%s) and 2 (%s)", cls, r.r.class_name[0],
                          r.r.class_name[1]);
            goto done;
        }
    }
    nsteps = r.o.nmethods;
    if (gad_explain(&e, &image, &a, 1, steps, DIST_PER_CLASS, &dist) != 0) goto done;
    float out[2]; /* the image's logits under the original model */
    {
        Plan *p = plan_new(&e.orig, 1, r.r.H, r.r.W);
        if (!p) goto done;
        float *y = xmalloc(sizeof(float) * (size_t)e.orig.cfg.num_classes);
        gad_logits(&e.orig, p, e.d.x + (size_t)image * 3 * r.r.H * r.r.W, 1, y);
        out[0] = y[r.r.o[0]];
        out[1] = y[r.r.o[1]];
        free(y);
        plan_free(p);
    }
    int pred = out[1] > out[0], own = e.d.y[image];
    printf("%s (run %s): image %d of %s, a %s, predicted %s%s\n", r.r.name, dir, image, r.o.data,
           r.r.class_name[own], r.r.class_name[pred], pred != own ? " (MISCLASSIFIED)" : "");
    printf("  logits: %s %.6g, %s %.6g\n", r.r.class_name[0], (double)out[0], r.r.class_name[1], (double)out[1]);
    printf("  maps of the original model (%s) and %d support models (alpha", r.r.weights, r.o.nalphas);
    for (int k = 0; k < r.o.nalphas; k++) printf("%s%g", k ? ", " : " ", (double)r.o.alphas[k]);
    printf(")\n");
    if (verbose)
        for (int k = 0; k < r.o.nalphas; k++) printf("    alpha %g: %s\n", (double)r.o.alphas[k], r.r.support_path[k]);
    if (dist.n > 0 && r.o.nalphas > 0) print_dist(&r, &dist, fits);
    for (int i = 0; i < r.o.nmethods; i++)
        print_steps(&r, r.o.methods[i], &steps[i], a, verbose, run_cell(&r, image, r.o.methods[i], a));
    if (png && pictures(png, &r, &e, image, a, steps, &dist) != 0) goto done;
    rc = 0;
done:
    if (rc) rc = cli_fail();
    for (int i = 0; i < nsteps; i++) gad_steps_free(&steps[i]);
    gad_distancing_free(&dist);
    if (opened) gad_explainer_close(&e);
    json_free(&r.root);
    return rc;
}
