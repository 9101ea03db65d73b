/* page: index.html, the page that explains a GAD run to someone who has not read
 * the paper, and the pictures only it shows. In order:
 *   what GAD does (in the paper's terms, citing it) and a glossary of every symbol
 *   and abbreviation; Tables 1 and 2 and the faithfulness curves, each with how to
 *   read it and what it shows on this run (report.c); per model: the support models
 *   and how well they took the distancing (Fig. 1), every step of GAD for a few
 *   images (Fig. 3 and 4: the least and most activated of each class, or
 *   --explain-images), Figures 5 and 6; the time of each phase; the settings,
 *   collapsed, with the command that reproduces the run.
 * The steps and the distancing are recomputed from the run's models, support files
 * and data (gad/explain.h: the pipeline's functions), drawn with gad/figures.h, and
 * every picture is a standalone PNG with its labels. The page is static (no
 * script), works offline, and fits any screen: a viewport meta, and wide tables and
 * pictures scroll inside their own box.
 * Not for: the tables themselves (report.c), computing the run (run.c). */
#include "gad/run.h"
#include "core/err.h"
#include "gad/explain.h"
#include "gad/figures.h"
#include "io/file.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DIST_PER_CLASS 500  /* training images per class for Fig. 1 and the fit */

/* What the page shows of one model beyond the run's results. */
typedef struct {
    int n;                            /* chosen images */
    int idx[GAD_MAX_EXPLAIN];         /* dataset indices */
    int cls[GAD_MAX_EXPLAIN];         /* their classes (the output explained) */
    char why[GAD_MAX_EXPLAIN][96];    /* why chosen, e.g. "the least activated Coat" */
    GadSteps *steps;                  /* [n * nmethods] */
    int pred[GAD_MAX_EXPLAIN];        /* the original's prediction (0/1) */
    float out[GAD_MAX_EXPLAIN];       /* its output for the image's class */
    GadFit fit[GAD_MAX_ALPHAS];
    int ndist;                        /* training images of Fig. 1 (0: none) */
    double seconds;
} PageModel;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define esc gad_html_esc

/* ------------------------------------------------------------------ choosing */

/* The images whose steps the page shows: o->explain_images, else the least and the
 * most activated image of each class (the original's output for the image's class,
 * among the run's images of the data: an image of --images-list from outside the
 * data, index >= nd, has no steps here). */
static void choose(const RunOpts *o, const GadModelResult *r, int nd, PageModel *pm) {
    pm->n = 0;
    if (o->explain_n >= 0) {
        for (int k = 0; k < o->explain_n && pm->n < GAD_MAX_EXPLAIN; k++) {
            int i = -1;
            for (int j = 0; j < r->nimages && i < 0; j++)
                if (r->img[j].index == o->explain_images[k]) i = j;
            pm->idx[pm->n] = o->explain_images[k];
            pm->cls[pm->n] = i >= 0 ? r->img[i].cls : -1;  /* -1: read from the data later */
            snprintf(pm->why[pm->n], sizeof pm->why[0], "chosen with --explain-images");
            pm->n++;
        }
        return;
    }
    for (int a = 0; a < 2; a++) {
        int lo = -1, hi = -1;
        for (int j = 0; j < r->nimages; j++) {
            if (r->img[j].cls != a || r->img[j].index >= nd) continue;
            if (lo < 0 || r->img[j].out[a] < r->img[lo].out[a]) lo = j;
            if (hi < 0 || r->img[j].out[a] > r->img[hi].out[a]) hi = j;
        }
        for (int w = 0; w < 2 && lo >= 0; w++) {
            int j = w ? hi : lo;
            if (w && hi == lo) break;
            pm->idx[pm->n] = r->img[j].index;
            pm->cls[pm->n] = a;
            snprintf(pm->why[pm->n], sizeof pm->why[0], "the %s activated %s of the run", w ? "most" : "least",
                     r->class_name[a]);
            pm->n++;
        }
    }
}

/* ------------------------------------------------------------------ pictures */

static void rel_name(char *buf, size_t len, const GadModelResult *r, const char *kind, int idx, AttrMethod m) {
    char k[96];
    if (idx < 0) snprintf(k, sizeof k, "%s", kind);
    else snprintf(k, sizeof k, "%s-%d-%s", kind, idx, attr_method_name(m));
    gad_fig_name(buf, len, r->name, k);
}

static int out_path(char *buf, size_t len, const RunOpts *o, const char *rel) {
    int n = snprintf(buf, len, "%s/%s", o->out_dir, rel);
    return n > 0 && (size_t)n < len ? 0 : err_set("%s/%s: path too long", o->out_dir, rel);
}

/* Fig. 1, and Fig. 3 and 4 of every chosen image and method. */
static int pictures(const RunOpts *o, const GadModelResult *r, const GadExplainer *e, PageModel *pm,
                    const GadDistancing *dist) {
    char rel[512], path[1200];
    if (dist->n > 0 && o->nalphas > 0) {
        GadDistFig df = {r->name, {r->class_name[0], r->class_name[1]}, dist->n, dist->cls, dist->orig,
                         o->nalphas, o->alphas, dist->sup, r->support_loss, 0};
        rel_name(rel, sizeof rel, r, "fig1", -1, ATTR_SALIENCY);
        if (out_path(path, sizeof path, o, rel) != 0 || gad_fig_distancing(path, &df, pm->fit) != 0) return -1;
        pm->ndist = dist->n;
    }
    HullRule hull;
    gad_run_hull(o, &hull);
    size_t isz = (size_t)3 * r->H * r->W;
    unsigned char *rgb = xmalloc(isz);
    int rc = 0;
    for (int i = 0; i < pm->n && rc == 0; i++) {
        char what[192];
        heatmap_input_rgb(e->d.x + (size_t)pm->idx[i] * isz, r->H, r->W, e->mean, e->std, rgb);
        int own = e->d.y[pm->idx[i]];
        if (pm->pred[i] == own) snprintf(what, sizeof what, "image %d, a %s", pm->idx[i], r->class_name[own]);
        else snprintf(what, sizeof what, "image %d, a %s predicted %s", pm->idx[i], r->class_name[own],
                      r->class_name[pm->pred[i]]);
        for (int m = 0; m < o->nmethods && rc == 0; m++) {
            const GadSteps *s = &pm->steps[i * o->nmethods + m];
            GadStepsInfo info = {r->name, gad_method_title(o->methods[m]), what, r->class_name[pm->cls[i]], o->alphas,
                                 rgb, o->present, hull, heatmap_auto_scale(r->H > r->W ? r->H : r->W)};
            rel_name(rel, sizeof rel, r, "steps", pm->idx[i], o->methods[m]);
            rc = out_path(path, sizeof path, o, rel);
            if (rc == 0) rc = gad_fig_steps(path, s, &info);
            rel_name(rel, sizeof rel, r, "hulls", pm->idx[i], o->methods[m]);
            if (rc == 0) rc = out_path(path, sizeof path, o, rel);
            if (rc == 0) rc = gad_fig_hulls(path, s, &info);
        }
    }
    free(rgb);
    return rc;
}

/* Steps, distancing and pictures of one model. */
static int prepare(const RunOpts *o, const GadModelResult *r, PageModel *pm) {
    double t0 = now_s();
    memset(pm, 0, sizeof *pm);
    GadExplainer e;
    if (gad_explainer_open(&e, o, r) != 0) return -1;
    choose(o, r, e.d.n, pm);
    int rc = 0;
    for (int i = 0; i < pm->n && rc == 0; i++) {
        if (pm->idx[i] < 0 || pm->idx[i] >= e.d.n)
            rc = err_set_usage("--explain-images: %d is not an image of %s (0..%d)", pm->idx[i], o->data, e.d.n - 1);
        else if (pm->cls[i] < 0) pm->cls[i] = e.d.y[pm->idx[i]];
    }
    GadDistancing dist;
    memset(&dist, 0, sizeof dist);
    if (rc == 0) {
        pm->steps = xcalloc((size_t)(pm->n > 0 ? pm->n : 1) * o->nmethods, sizeof(GadSteps));
        rc = gad_explain(&e, pm->idx, pm->cls, pm->n, pm->steps, DIST_PER_CLASS, o->nalphas > 0 ? &dist : NULL);
    }
    if (rc == 0) { /* the chosen images' predictions and outputs */
        Plan *p = plan_new(&e.orig, 1, r->H, r->W);
        if (!p) rc = -1;
        float *y = xmalloc(sizeof(float) * (size_t)e.orig.cfg.num_classes);
        for (int i = 0; i < pm->n && p; i++) {
            gad_logits(&e.orig, p, e.d.x + (size_t)pm->idx[i] * 3 * r->H * r->W, 1, y);
            pm->pred[i] = y[r->o[1]] > y[r->o[0]];
            pm->out[i] = y[r->o[pm->cls[i]]];
        }
        free(y);
        if (p) plan_free(p);
    }
    if (rc == 0) rc = pictures(o, r, &e, pm, &dist);
    gad_distancing_free(&dist);
    gad_explainer_close(&e);
    pm->seconds = now_s() - t0;
    return rc;
}

static void page_model_free(const RunOpts *o, PageModel *pm) {
    if (pm->steps)
        for (int i = 0; i < pm->n * o->nmethods; i++) gad_steps_free(&pm->steps[i]);
    free(pm->steps);
    pm->steps = NULL;
}

/* ------------------------------------------------------------------ the page */

static const char *CSS =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:0 auto;"
    "padding:0 12px 3em;color:#222;line-height:1.45}"
    "h1{font-size:1.7em;margin:.6em 0 .2em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}"
    ".scroll{overflow-x:auto;max-width:100%;margin:.4em 0}.scroll img{display:block;max-width:none}"
    "@media (min-width:720px){.scroll img.fit{max-width:100%;height:auto}}"
    "table.t{border-collapse:collapse;font-size:.92em}table.t td,table.t th{border:1px solid #bbb;"
    "padding:2px 7px;text-align:right;white-space:nowrap}table.t td.l,table.t th.l{text-align:left}"
    "tr.ours td{background:#fbeaea}"
    "abbr{text-decoration:none;border-bottom:1px dotted #888}p.reading{background:#f4f7fb;padding:.5em .7em;"
    "border-left:3px solid #6b8fc4}.warn{color:#b00000}.forced{color:#aa6e00}.wrong{color:#9628c8}dl.gloss dt{font-weight:bold;margin-top:.4em}"
    "dl.gloss dd{margin:0 0 0 1.5em}details{margin:.6em 0}summary{cursor:pointer;font-weight:bold}"
    ".charts{display:flex;flex-wrap:wrap;gap:6px}.charts svg{max-width:100%;height:auto}"
    "nav ol{padding-left:1.4em}code{font-size:.88em;overflow-wrap:anywhere}cite{font-style:italic}"
    ".key span{display:inline-block;width:1.6em;height:.5em;margin-right:.3em;vertical-align:middle}";

static void head(FILE *f, const GadRunResult *r) {
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>GAD report: ");
    for (int k = 0; k < r->nmodels; k++) {
        if (k) fputs(", ", f);
        esc(f, r->model[k].name);
    }
    fprintf(f, "</title>\n<style>%s</style>\n</head><body>\n", CSS);
}

static void intro(FILE *f, const GadRunResult *r) {
    const RunOpts *o = r->opts;
    const GadModelResult *m0 = &r->model[0];
    fprintf(f, "<h1>GAD report</h1>\n<p>This page is what <code>gad run</code> left after running GAD (Gradient "
               "Artificial Distancing), the method of <cite>Transforming gradient-based techniques into interpretable "
               "methods</cite> by Caroline Mazini Rodrigues, Nicolas Boutry and Laurent Najman, on %d held-out "
               "images of the classes <b>",
            m0->nimages);
    esc(f, m0->class_name[0]);
    fprintf(f, "</b> and <b>");
    esc(f, m0->class_name[1]);
    fprintf(f, "</b> of <code>");
    esc(f, o->data);
    fprintf(f, "</code>, for the model%s ", r->nmodels > 1 ? "s" : "");
    for (int k = 0; k < r->nmodels; k++) {
        fprintf(f, "%s<b>", k == 0 ? "" : k + 1 < r->nmodels ? ", " : " and ");
        esc(f, r->model[k].name);
        fprintf(f, "</b>");
        if (strcmp(r->model[k].name, r->model[k].arch)) fprintf(f, " (%s)", r->model[k].arch);
    }
    fprintf(f, ".</p>\n<h2 id=\"what\">What GAD does</h2>\n"
               "<p>A gradient-based method (Saliency, Deconvolution, Gradient &times; Input, Guided Backprop, "
               "Integrated Gradients) explains a classifier's output for a class by an <i>attribution map</i>: how "
               "much each pixel matters. The maps are noisy: important pixels are scattered over the image (the "
               "paper's &sect;1-3). GAD keeps only the pixels that separate the two classes:</p>\n<ol>\n"
               "<li><b>Distancing</b> (&sect;4.1, Fig. 1): for each value of &alpha;, the training images' logits "
               "(outputs before the softmax) are changed: a %s image's %s logit is lowered by &alpha;, and the other "
               "way round. The classes are pushed apart; images keep their order within a class.</li>\n",
            m0->class_name[0], m0->class_name[1]);
    fprintf(f, "<li><b>Support models</b> (&sect;4.2): a copy of the classifier is fine-tuned as a regression (MSE, "
               "Adam) to output those distanced logits, one support model per &alpha; (here %d).</li>\n"
               "<li><b>Important features</b> (&sect;4.3, Fig. 3): the same method explains the original model and "
               "every support model; a pixel stays in the <i>GAD map</i> only if it is <i>present</i> (important) "
               "in all of those maps.</li>\n"
               "<li><b>Evaluation by regions</b> (&sect;5, Fig. 4): the convex hull of a map's most important "
               "pixels is the region a person would see. <i>Complexity</i>: the ratio RC of the GAD hull's area to "
               "the original's (Table 1; smaller is simpler). <i>Sensitivity</i>: RS, how far occluding a region "
               "moves the model's output per occluded pixel (Table 2; GAD's region should matter more).</li>\n"
               "</ol>\n<p>Figures 5 and 6 show the maps and hulls of a few images, as in the paper. Beyond the paper, "
               "gad says where a result is forced by the rules (<i>structural</i>), compares RS with a region of the "
               "same size chosen at random (<i>control</i>), and draws deletion and insertion curves. Below, every "
               "step is also shown for a few images.</p>\n",
            o->nalphas);
    fprintf(f, "<nav><b>Contents</b><ol><li><a href=\"#glossary\">Symbols and abbreviations</a></li>"
               "<li><a href=\"#table1\">Table 1: complexity</a></li><li><a href=\"#table2\">Table 2: "
               "sensitivity</a></li>");
    for (int k = 0; k < r->nmodels; k++) {
        fprintf(f, "<li><a href=\"#m-");
        esc(f, r->model[k].name);
        fprintf(f, "\">");
        esc(f, r->model[k].name);
        fprintf(f, ": support models, steps, figures%s</a></li>", o->curves ? ", curves" : "");
    }
    fprintf(f, "<li><a href=\"#time\">Time</a></li><li><a href=\"#settings\">Settings</a></li></ol></nav>\n"
               "<p>Files: <a href=\"table1.csv\">table1.csv</a>, <a href=\"table2.csv\">table2.csv</a>, %s"
               "<a href=\"results.json\">results.json</a> (every per-image number); every picture is a PNG of its "
               "own under <code>fig/</code>, with its labels, for slides.</p>\n",
            o->curves ? "<a href=\"curves.csv\">curves.csv</a>, " : "");
}

static void term(FILE *f, const char *dt, const char *dd) { fprintf(f, "<dt>%s</dt><dd>%s</dd>\n", dt, dd); }

static void glossary(FILE *f, const GadRunResult *r) {
    const RunOpts *o = r->opts;
    char pres[128], hull[128], buf[512];
    HullRule h;
    gad_run_hull(o, &h);
    gad_present_text(o->present, pres, sizeof pres);
    gad_hull_text(&h, hull, sizeof hull);
    fprintf(f, "<h2 id=\"glossary\">Symbols and abbreviations</h2>\n<dl class=\"gloss\">\n");
    term(f, "S, D, GxI, GB, IG",
         "the five gradient-based methods: <b>S</b>aliency (|&part;N<sub>a</sub>/&part;x|), <b>D</b>econvolution "
         "(the backward pass lets only positive gradients through each ReLU), <b>G</b>radient <b>x</b> <b>I</b>nput "
         "(x &middot; &part;N<sub>a</sub>/&part;x), <b>G</b>uided <b>B</b>ackprop (only positive gradients, and only "
         "through units that were on), <b>I</b>ntegrated <b>G</b>radients ((x &minus; b) times the mean gradient on "
         "the straight path from the zero input b to x; b is a black image when the model does not normalise its "
         "inputs). A map's importance per pixel is |sum over the colour channels|.");
    term(f, "N<sub>a</sub>(I)", "the model's output for class <i>a</i> on image I: the logit, before the softmax.");
    term(f, "class 1, class 2; a", "the two classes compared, in the order given; <i>a</i> is the class whose output "
                                   "a map explains (each image's own class in the figures).");
    term(f, "&alpha; (alpha)", "how much the distancing lowers a training image's logit of the other class (&sect;4.1); "
                               "one support model per &alpha;.");
    term(f, "support model", "the classifier fine-tuned (MSE, Adam) to output the distanced logits (&sect;4.2). "
                             "<i>Fits</i>: it moved the lowered logit by at least half of &alpha; and its outputs are "
                             "on average within &alpha;/2 of the targets.");
    snprintf(buf, sizeof buf, "a pixel is present in a map when its %s.", pres);
    term(f, "present", buf);
    term(f, "GAD map", "the original map where the pixel is present in the original map and in every support "
                       "model's map, 0 elsewhere (&sect;4.3). <i>Empty</i>: no pixel is present in all of them.");
    snprintf(buf, sizeof buf, "the pixels a hull encloses: %s.", hull);
    term(f, "hull points", buf);
    term(f, "CH, A(CH)", "the convex hull of the hull points (through pixel centres, Andrew's monotone chain) and "
                         "its area; CH<sub>orig</sub> of the original map, CH<sub>GAD</sub> of the GAD map.");
    term(f, "RC", "A(CH<sub>GAD</sub>) / A(CH<sub>orig</sub>), eq. 1: below 1, GAD's region is the smaller "
                  "(counted for GAD in Table 1), 1 or more for the original. <i>No RC</i>: the original hull has no "
                  "area (one point, or points on a line).");
    term(f, "M<sub>orig</sub>, M<sub>GAD</sub>, &Sigma;M", "masks of the pixels inside or on each hull, and a mask's "
                                                             "number of pixels.");
    term(f, "RS", "|N<sub>a</sub>(I) &minus; N<sub>a</sub>(I&middot;(1&minus;M))| / &Sigma;M, eq. 2: how far "
                  "occluding mask M (setting its pixels to 0) moves the output, per occluded pixel. Table 2 shows "
                  "means &times; 10<sup>2</sup>.");
    term(f, "Sup.", "the supplementary mask M<sub>orig</sub> &minus; M<sub>GAD</sub>: the original's region without "
                    "GAD's.");
    term(f, "control", "a compact region of exactly M<sub>GAD</sub>'s size drawn at random inside M<sub>orig</sub> "
                       "&cup; M<sub>GAD</sub> (not in the paper): does GAD's region matter more than any region of "
                       "its size?");
    term(f, "Orig.1, GAD 1, Orig.2, GAD 2", "Table 1's rows: images where the original's, or GAD's, hull is the "
                                            "smaller, for class 1 and class 2 (Table 2: Sup.1, GAD 1, ...).");
    term(f, "forced, structural", "RC &le; 1 is <i>forced</i> when the GAD hull points are among the original's: "
                                  "then GAD's hull cannot be larger, whatever the model. A <i>structural</i> column "
                                  "was forced in every counted image: it says nothing about the model.");
    term(f, "ties, empty GAD", "RC = 1 exactly (counted for the original); images whose GAD map is empty (their "
                               "own row, in neither column unless --empty-gad gad).");
    term(f, "share, median ratio, sign test p, Bonferroni",
         "per image: the share of images where RS(GAD) is the larger, the median of RS(GAD)/RS(other), and the exact "
         "two-sided sign test of those wins and losses; a p is significant below 0.05 divided by the number of "
         "tests (Bonferroni).");
    term(f, "deletion, insertion, AUC, top-n", "the model's output as pixels are removed (or restored) in a map's "
                                               "order, its area under the curve, and the original map cut to the "
                                               "GAD map's number of pixels.");
    term(f, "misclassified, empty", "in the pictures, a purple frame marks an image the original model gets wrong; "
                                    "&ldquo;empty&rdquo; marks an empty GAD map.");
    fprintf(f, "</dl>\n");
}

static void fmt(FILE *f, const char *spec, double v) {
    if (isnan(v)) fprintf(f, "&ndash;");
    else fprintf(f, spec, v);
}

/* A picture in a box that scrolls sideways on a narrow screen; on a wide one it is
 * scaled to the page, and a click opens it at full size. */
static void picture(FILE *f, const char *rel, const char *alt) {
    fprintf(f, "<div class=\"scroll\"><a href=\"%s\"><img class=\"fit\" src=\"%s\" alt=\"", rel, rel);
    esc(f, alt);
    fprintf(f, "\"></a></div>\n");
}

static void model_head(FILE *f, const GadModelResult *mr) {
    fprintf(f, "<h2 id=\"m-");
    esc(f, mr->name);
    fprintf(f, "\">");
    esc(f, mr->name);
    fprintf(f, " (%s, inputs 3&times;%d&times;%d)</h2>\n<p>Weights <code>", mr->arch, mr->H, mr->W);
    esc(f, mr->weights);
    fprintf(f, "</code>; class 1 = ");
    esc(f, mr->class_name[0]);
    fprintf(f, " (output %d), class 2 = ", mr->o[0]);
    esc(f, mr->class_name[1]);
    fprintf(f, " (output %d); %d images; %.0f s%s.</p>\n", mr->o[1], mr->nimages, mr->seconds,
            mr->shards ? " (its shards' times added up)" : "");
    fprintf(f, "<details><summary>The images, by path (IDX data: FILE[index])</summary>\n<ol start=\"0\">\n");
    for (int i = 0; i < mr->nimages; i++) { /* numbered as in results.json */
        fprintf(f, "<li><code>");
        esc(f, mr->img[i].name ? mr->img[i].name : "?");
        fprintf(f, "</code> (");
        esc(f, mr->class_name[mr->img[i].cls]);
        fprintf(f, ")</li>\n");
    }
    fprintf(f, "</ol></details>\n");
}

static void supports(FILE *f, const RunOpts *o, const GadModelResult *mr, const PageModel *pm) {
    char rel[512];
    fprintf(f, "<h3>Support models and the distancing (Fig. 1)</h3>\n<p><b>How to read it:</b> each support model "
               "was fitted to the original logits of the training images with the other class's logit lowered by "
               "&alpha;. <i>Shift</i>: how far it moved that logit, as a share of &alpha; (100%% = the distancing "
               "asked for); <i>RMSE</i>: its outputs' distance to the targets; it <i>fits</i> when the shift is at "
               "least 50%% and the RMSE at most &alpha;/2 (measured on %d training images). In the picture, each point "
               "is a training image: rings are the targets, dots the support model's outputs.</p>\n",
            pm->ndist);
    int bad = 0;
    fprintf(f, "<div class=\"scroll\"><table class=\"t\"><tr><th>&alpha;</th><th>model</th><th>final MSE</th>"
               "<th>shift</th><th>RMSE</th><th>fits</th><th class=\"l\">file</th></tr>\n");
    for (int i = 0; i < o->nalphas; i++) {
        const GadFit *ft = &pm->fit[i];
        fprintf(f, "<tr><td>%g</td><td class=\"l\">%s</td><td>", (double)o->alphas[i],
                mr->support_trained[i] ? "trained" : "reused");
        fmt(f, "%.4g", mr->support_loss[i]);
        fprintf(f, "</td><td>");
        if (pm->ndist) fmt(f, "%.0f%%", 100 * ft->shift);
        fprintf(f, "</td><td>");
        if (pm->ndist) fmt(f, "%.3g", ft->rmse);
        fprintf(f, "</td><td>%s</td><td class=\"l\"><code>", !pm->ndist ? "" : ft->fits ? "yes" : "<b class=\"warn\">no</b>");
        esc(f, mr->support_path[i]);
        fprintf(f, "</code></td></tr>\n");
        bad += pm->ndist && !ft->fits;
    }
    fprintf(f, "</table></div>\n");
    if (bad)
        fprintf(f, "<p class=\"warn\"><b>Warning:</b> %d support model%s did not fit %s targets: %s map%s say%s little "
                   "about the distancing it was asked for, and the GAD maps rest on it. More epochs, a larger learning "
                   "rate or more training images (--epochs, --lr, --train-images) may help.</p>\n",
                bad, bad > 1 ? "s" : "", bad > 1 ? "their" : "its", bad > 1 ? "their" : "its", bad > 1 ? "s" : "",
                bad > 1 ? "" : "s");
    if (pm->ndist) {
        rel_name(rel, sizeof rel, mr, "fig1", -1, ATTR_SALIENCY);
        char alt[128];
        snprintf(alt, sizeof alt, "the distancing of %s's support models", mr->name);
        picture(f, rel, alt);
    }
}

static void steps_table(FILE *f, const RunOpts *o, const PageModel *pm, int i) {
    int nforced = 0;
    fprintf(f, "<div class=\"scroll\"><table class=\"t\"><tr><th class=\"l\">method</th><th>present in all maps</th>"
               "<th>GAD pixels</th><th>hull points orig. / GAD</th><th>area orig. / GAD</th><th>RC</th>"
               "<th>RS GAD &times;10<sup>2</sup></th><th>RS Sup. &times;10<sup>2</sup></th></tr>\n");
    for (int m = 0; m < o->nmethods; m++) {
        const GadSteps *s = &pm->steps[i * o->nmethods + m];
        fprintf(f, "<tr><td class=\"l\">%s</td><td>%d</td><td>%d%s</td><td>%d / %d</td><td>%.1f / %.1f</td><td>",
                gad_method_title(o->methods[m]), s->nall, s->gad_nnz,
                s->gad_nnz ? "" : " <b class=\"warn\">empty</b>", s->npts[0], s->npts[1], s->hull[0].area,
                s->hull[1].area);
        fmt(f, "%.3f", s->rc);
        if (s->forced && s->gad_nnz) fprintf(f, " <b class=\"forced\">forced</b>");
        nforced += s->forced && s->gad_nnz;
        fprintf(f, "</td><td>");
        fmt(f, "%.4f", 100 * s->rs[0]);
        fprintf(f, "</td><td>");
        fmt(f, "%.4f", 100 * s->rs[1]);
        fprintf(f, "</td></tr>\n");
    }
    fprintf(f, "</table></div>\n");
    if (nforced)
        fprintf(f, "<p><b class=\"forced\">forced</b>: the GAD hull points are among the original's, so the GAD "
                   "hull cannot be the larger and RC &le; 1 whatever the model: %s not a finding.</p>\n",
                nforced > 1 ? "these RCs are" : "this RC is");
}

static void steps(FILE *f, const RunOpts *o, const GadModelResult *mr, const PageModel *pm) {
    if (pm->n == 0) return;
    char rel[512];
    fprintf(f, "<h3>Every step for a few images (Fig. 3 and 4)</h3>\n<p><b>How to read it:</b> for each image, "
               "one row per method: how many pixels were present in all %d maps, the GAD map's pixels, the hull "
               "points and hull areas, RC and RS, for the image's own class. The first picture of a method is the "
               "paper's Fig. 3: the input, the original map and each support model's map (blue), the pixels present "
               "in each, the pixels present in all and the GAD map (red). The second is Fig. 4: the hull points "
               "(black) and hulls, the original's in red and GAD's in green. The same numbers for any image: "
               "<code>gad explain-gad --run DIR --image N</code>.</p>\n",
            1 + o->nalphas);
    for (int i = 0; i < pm->n; i++) {
        int own = pm->cls[i];
        fprintf(f, "<details%s><summary>Image %d, a ", i == 0 ? " open" : "", pm->idx[i]);
        esc(f, mr->class_name[own]);
        fprintf(f, " (%s), output %.3g, predicted ", pm->why[i], (double)pm->out[i]);
        esc(f, mr->class_name[pm->pred[i]]);
        fprintf(f, "%s</summary>\n", pm->pred[i] != own ? " <b class=\"wrong\">(misclassified)</b>" : "");
        steps_table(f, o, pm, i);
        for (int m = 0; m < o->nmethods; m++) {
            fprintf(f, "<p><b>%s</b></p>\n", gad_method_title(o->methods[m]));
            rel_name(rel, sizeof rel, mr, "steps", pm->idx[i], o->methods[m]);
            char alt[128];
            snprintf(alt, sizeof alt, "the steps of GAD for image %d, %s", pm->idx[i], gad_method_title(o->methods[m]));
            picture(f, rel, alt);
            rel_name(rel, sizeof rel, mr, "hulls", pm->idx[i], o->methods[m]);
            snprintf(alt, sizeof alt, "the hulls of image %d, %s", pm->idx[i], gad_method_title(o->methods[m]));
            picture(f, rel, alt);
        }
        fprintf(f, "</details>\n");
    }
}

/* Does Fig. 6 show a hull whose RC <= 1 was forced (its images' own class)? */
static int fig6_forced(const RunOpts *o, const GadModelResult *mr) {
    for (int j = 0; j < mr->fig6_cols; j++) {
        const GadImageResult *im = &mr->img[mr->fig6_img[j]];
        for (int m = 0; m < o->nmethods; m++)
            if (im->cell[m * 2 + im->cls].forced && im->cell[m * 2 + im->cls].gad_nnz) return 1;
    }
    return 0;
}

static void figures56(FILE *f, const RunOpts *o, const GadModelResult *mr) {
    char rel[256], alt[128];
    if (mr->fig5_cols > 0) {
        gad_fig_name(rel, sizeof rel, mr->name, "fig5");
        fprintf(f, "<h3>Figure 5: original and GAD maps</h3>\n<p><b>How to read it:</b> a column is an image (its "
                   "class and the original model's output, or its wrong prediction in purple); per method, the "
                   "original map in blue, then the GAD map in red on the original's colour scale (Captum's 98%% "
                   "normalisation). GAD should keep the regions that separate the classes and drop the rest; "
                   "&ldquo;empty&rdquo; marks a GAD map with no pixel.</p>\n");
        snprintf(alt, sizeof alt, "Figure 5 of %s", mr->name);
        picture(f, rel, alt);
    }
    if (mr->fig6_cols > 0) {
        gad_fig_name(rel, sizeof rel, mr->name, "fig6");
        fprintf(f, "<h3>Figure 6: hulls of the least activated images</h3>\n<p><b>How to read it:</b> the %d images "
                   "of each class with the original model's lowest output for their own class (the paper looks "
                   "there for what confuses the model), with the original map's hull in <span style=\"color:#dc1e1e\">"
                   "red</span> and the GAD map's in <span style=\"color:#14be28\">green</span>, per method. A small "
                   "green hull inside the red one is what GAD is for%s</p>\n",
                o->fig_least,
                fig6_forced(o, mr) ? ", except where a picture says <b class=\"forced\">forced</b>: there the GAD "
                                     "hull points are among the original's, so the green hull cannot be the larger "
                                     "whatever the model, and being inside says nothing about it."
                                   : ".");
        snprintf(alt, sizeof alt, "Figure 6 of %s", mr->name);
        picture(f, rel, alt);
    }
}

static void timing(FILE *f, const GadRunResult *r, const PageModel *pm) {
    int shards = r->model[0].shards;
    if (shards)
        fprintf(f, "<h2 id=\"time\">Time</h2>\n<p>This run was merged from %d shards (<code>gad run --shard K/%d</code>, "
                   "then <code>gad merge</code>). Seconds of each phase: up to the faithfulness curves, the shards' "
                   "wall-clock times added up (%.0f s in all; shards that ran side by side took less time than that); "
                   "Figures 5 and 6 and the report's pictures were made by the merge. A cached support model is "
                   "loaded, not trained.</p>\n",
                shards, shards, r->seconds);
    else
        fprintf(f, "<h2 id=\"time\">Time</h2>\n<p>Wall-clock seconds of each phase (the whole run: %.0f s; a cached "
                   "support model is loaded, not trained).</p>\n",
                r->seconds);
    fprintf(f, "<div class=\"scroll\"><table class=\"t\"><tr><th class=\"l\">phase</th>");
    for (int k = 0; k < r->nmodels; k++) {
        fprintf(f, "<th>");
        esc(f, r->model[k].name);
        fprintf(f, "</th>");
    }
    fprintf(f, "</tr>\n");
    for (int p = 0; p < GAD_NPHASES; p++) {
        fprintf(f, "<tr><td class=\"l\">%s%s</td>", gad_phase_name(p),
                shards && p < GAD_PHASE_FIGURES ? " (shards)" : shards ? " (merge)" : "");
        for (int k = 0; k < r->nmodels; k++)
            fprintf(f, "<td>%.1f</td>", p == GAD_PHASE_REPORT ? pm[k].seconds : r->model[k].phase[p]);
        fprintf(f, "</tr>\n");
    }
    fprintf(f, "</table></div>\n");
}

/* One row of the settings' table: name, then the printf-style value (escaped). */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void setting(FILE *f, const char *name, const char *fmt_, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt_);
    vsnprintf(buf, sizeof buf, fmt_, ap);
    va_end(ap);
    fprintf(f, "<tr><td class=\"l\">%s</td><td class=\"l\">", name);
    esc(f, buf);
    fprintf(f, "</td></tr>\n");
}

static void settings(FILE *f, const GadRunResult *r) {
    const RunOpts *o = r->opts;
    char list[512] = "", hull[128], pres[128];
    HullRule h;
    gad_run_hull(o, &h);
    gad_hull_text(&h, hull, sizeof hull);
    gad_present_text(o->present, pres, sizeof pres);
    fprintf(f, "<h2 id=\"settings\">Settings</h2>\n<details><summary>Every setting of this run</summary>\n"
               "<div class=\"scroll\"><table class=\"t\">\n");
    for (int k = 0; k < o->nweights; k++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? "," : "", o->weights[k]);
    setting(f, "weights", "%s", list);
    setting(f, "data", "%s", o->data);
    setting(f, "classes", "%s", o->classes ? o->classes : "(all)");
    setting(f, "outputs", "%s", o->outputs ? o->outputs : "by class name");
    list[0] = 0;
    for (int m = 0; m < o->nmethods; m++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", m ? "," : "", attr_method_name(o->methods[m]));
    setting(f, "methods", "%s", list);
    setting(f, "images", "%d (half per class, held-out part)", o->images);
    list[0] = 0;
    for (int i = 0; i < o->nalphas; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%g", i ? "," : "", (double)o->alphas[i]);
    setting(f, "alphas", "%s", list);
    setting(f, "support training", "%d epochs, Adam lr %g, batch %d, weight decay %g, batch norm and dropout in %s "
                                   "mode, seed %llu, %s training images per class",
            o->epochs, (double)o->lr, o->batch, (double)o->weight_decay, o->train_mode ? "train" : "eval",
            (unsigned long long)o->seed, o->train_images ? "at most" : "all");
    if (o->train_images) setting(f, "training images per class", "%d", o->train_images);
    if (o->val_frac < 0) setting(f, "held-out fraction", "the weights' metadata (or 0.2)");
    else setting(f, "held-out fraction", "%g", (double)o->val_frac);
    if (o->size) setting(f, "input size", "%d (images resized to it)", o->size);
    else setting(f, "input size", "the weights' (and their resize and crop)");
    setting(f, "present", "%s", pres);
    setting(f, "hull points", "%s", hull);
    setting(f, "RC area", "%s", o->rc_area == RC_AREA_POLYGON ? "polygon through pixel centres" : "pixels in the hull");
    setting(f, "empty GAD maps", "%s", o->count_empty ? "counted for GAD (RC = 0)" : "in neither column");
    setting(f, "occlusion", "%s", o->occlude_black ? "the black image" : "x(1-M)");
    setting(f, "control draws", "%d", o->control_draws);
    setting(f, "curves", "%s, %d steps", o->curves == 0 ? "off" : o->curves == 1 ? "deletion" : "deletion and insertion",
            o->curve_steps);
    setting(f, "IG steps", "%d (Gauss-Legendre, zero baseline)", o->ig_steps);
    setting(f, "figures", "Fig. 5: %d images per class; Fig. 6: %d least activated per class", o->fig_images,
            o->fig_least);
    fprintf(f, "</table></div>\n<p>The same run again (support models are reused from the cache):</p>\n"
               "<div class=\"scroll\"><pre>gad run --weights ");
    for (int k = 0; k < o->nweights; k++) {
        if (k) fputc(',', f);
        esc(f, o->weights[k]);
    }
    fprintf(f, " --data ");
    esc(f, o->data);
    if (o->classes) {
        fprintf(f, " --classes ");
        esc(f, o->classes);
    }
    fprintf(f, " --images %d --alphas ", o->images);
    for (int i = 0; i < o->nalphas; i++) fprintf(f, "%s%g", i ? "," : "", (double)o->alphas[i]);
    fprintf(f, " --epochs %d --lr %g --batch %d --hull-of %s --hull-keep %g --ig-steps %d", o->epochs, (double)o->lr,
            o->batch, o->hull_of == HULL_OF_IMAGE ? "image" : o->hull_of == HULL_OF_NONZERO ? "nonzero" : "present",
            (double)o->hull_keep, o->ig_steps);
    if (o->present.rule == PRESENT_FRAC) fprintf(f, " --present %g", (double)o->present.value);
    else fprintf(f, " --present-top %g", (double)o->present.value);
    if (o->train_images) fprintf(f, " --train-images %d", o->train_images);
    if (o->explain_n == 0) fprintf(f, " --explain-images none");
    for (int k = 0; k < o->explain_n; k++) fprintf(f, "%s%d", k ? "," : " --explain-images ", o->explain_images[k]);
    fprintf(f, " --out ");
    esc(f, o->out_dir);
    fprintf(f, "</pre></div>\n</details>\n");
}

int gad_write_page(const GadRunResult *r) {
    const RunOpts *o = r->opts;
    PageModel *pm = xcalloc((size_t)r->nmodels, sizeof *pm);
    int rc = 0;
    for (int k = 0; k < r->nmodels && rc == 0; k++) rc = prepare(o, &r->model[k], &pm[k]);
    char path[1024];
    snprintf(path, sizeof path, "%s/index.html", o->out_dir);
    AtomicFile af;
    if (rc == 0 && afile_open(&af, path) != 0) rc = -1;
    if (rc == 0) {
        FILE *f = af.f;
        head(f, r);
        intro(f, r);
        glossary(f, r);
        gad_html_table1(f, r);
        gad_html_table2(f, r);
        for (int k = 0; k < r->nmodels; k++) {
            const GadModelResult *mr = &r->model[k];
            model_head(f, mr);
            supports(f, o, mr, &pm[k]);
            steps(f, o, mr, &pm[k]);
            figures56(f, o, mr);
            gad_html_curves(f, o, mr);
        }
        timing(f, r, pm);
        settings(f, r);
        fprintf(f, "</body></html>\n");
        rc = afile_commit(&af);
    }
    for (int k = 0; k < r->nmodels; k++) page_model_free(o, &pm[k]);
    free(pm);
    return rc;
}
