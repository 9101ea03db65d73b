/* results: the end of a model's run, from its per-image results in run order: the
 * tallies of Tables 1 and 2, the curves' means and paired tests, and the figures
 * (Fig. 5 maps, Fig. 6 hulls) drawn from the candidate images kept with the
 * results. One code path whether the images were explained in this process or by
 * shards merged afterwards (shard.c), so that both give the same bytes.
 * Not for: computing per-image results (run.c), the report files (report.c). */
#include "gad/run.h"
#include "gad/figures.h"
#include "core/err.h"
#include "io/file.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- tables ---- */

/* The curves' means and AUCs over images, in image order. */
static void tally_curves(const RunOpts *o, GadModelResult *r) {
    int nm = o->nmethods, nc = GAD_NCURVES(nm), ndir = o->curves, len = o->curve_steps + 1, n = r->nimages;
    if (ndir == 0) return;
    r->curve_mean = xcalloc((size_t)nc * ndir * len, sizeof(double));
    double *auc = xmalloc(sizeof(double) * (size_t)nc * ndir * (n > 0 ? n : 1));  /* [k][d][i] */
    for (int i = 0; i < n; i++)
        for (int k = 0; k < nc; k++)
            for (int d = 0; d < ndir; d++) {
                const double *cv = r->img[i].curve + ((size_t)k * ndir + d) * len;
                for (int s = 0; s < len; s++) r->curve_mean[((size_t)k * ndir + d) * len + s] += cv[s] / n;
                auc[((size_t)k * ndir + d) * n + i] = gad_auc(cv, o->curve_steps);
            }
    for (int k = 0; k < nc; k++)
        for (int d = 0; d < ndir; d++) {
            double sum = 0;
            for (int i = 0; i < n; i++) sum += auc[((size_t)k * ndir + d) * n + i];
            r->auc_mean[k][d] = n > 0 ? sum / n : NAN;
        }
    for (int m = 0; m < nm; m++)
        for (int v = 0; v < 2; v++)
            for (int d = 0; d < ndir; d++) {
                const double *ag = auc + ((size_t)GAD_CURVE(m, CURVE_GAD) * ndir + d) * n;
                const double *ao = auc + ((size_t)GAD_CURVE(m, v ? CURVE_TOPN : CURVE_ORIG) * ndir + d) * n;
                gad_paired(d == 0 ? ao : ag, d == 0 ? ag : ao, n, &r->auc_vs[m][v][d]);
            }
    free(auc);
}

/* Tables 1 and 2 from the per-image cells, in image order (so the sums, and the
 * bits of the means, depend on the images alone). */
static void tally(const RunOpts *o, GadModelResult *r) {
    double *v = xmalloc(sizeof(double) * 3 * (size_t)r->nimages);
    double *g = v, *s = v + r->nimages, *ct = s + r->nimages;
    for (int m = 0; m < o->nmethods; m++)
        for (int a = 0; a < 2; a++) {
            AttrMethod am = o->methods[m];
            for (int i = 0; i < r->nimages; i++) {
                const GadCell *cell = &r->img[i].cell[m * 2 + a];
                gad_tally_rc(&r->rc[am][a], cell->rc, cell->gad_nnz == 0, cell->forced, o->count_empty);
                gad_tally_rs(&r->rs_gad[am][a], cell->rs_gad);
                gad_tally_rs(&r->rs_sup[am][a], cell->rs_sup);
                gad_tally_rs(&r->rs_ctl[am][a], cell->rs_ctl);
                r->gad_empty[am][a] += cell->gad_nnz == 0;
                g[i] = cell->rs_gad;
                s[i] = cell->rs_sup;
                ct[i] = cell->rs_ctl;
            }
            gad_paired(g, s, r->nimages, &r->vs_sup[am][a]);
            gad_paired(g, ct, r->nimages, &r->vs_ctl[am][a]);
        }
    free(v);
}

/* ---- figures ---- */

void gad_figure_columns(const RunOpts *o, int n, const int *cls, const float *own, int *f5, int *n5, int *f6, int *n6) {
    *n5 = 0;
    for (int a = 0; a < 2; a++)
        for (int i = 0, k = 0; i < n && k < o->fig_images && *n5 < 32; i++)
            if (cls[i] == a) {
                f5[(*n5)++] = i;
                k++;
            }
    *n6 = 0;
    int *ord = xmalloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    for (int a = 0; a < 2; a++) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (cls[i] == a) ord[m++] = i;
        for (int k = 0; k < o->fig_least && k < m && *n6 < 32; k++) {
            int best = k;  /* selection sort */
            for (int j = k + 1; j < m; j++)
                if (own[ord[j]] < own[ord[best]]) best = j;
            int t = ord[k];
            ord[k] = ord[best];
            ord[best] = t;
            f6[(*n6)++] = ord[k];
        }
    }
    free(ord);
}

/* The columns among the candidates (which come in run order). */
static void figure_columns(const RunOpts *o, GadModelResult *r) {
    int n = r->nfig, *cls = xmalloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    float *own = xmalloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int j = 0; j < n; j++) {
        const GadImageResult *im = &r->img[r->fig[j].pos];
        cls[j] = im->cls;
        own[j] = im->out[im->cls];
    }
    gad_figure_columns(o, n, cls, own, r->fig5_img, &r->fig5_cols, r->fig6_img, &r->fig6_cols);
    for (int k = 0; k < r->fig5_cols; k++) r->fig5_img[k] = r->fig[r->fig5_img[k]].pos;
    for (int k = 0; k < r->fig6_cols; k++) r->fig6_img[k] = r->fig[r->fig6_img[k]].pos;
    free(own);
    free(cls);
}

static const GadFigImage *candidate(const GadModelResult *r, int pos) {
    for (int j = 0; j < r->nfig; j++)
        if (r->fig[j].pos == pos) return &r->fig[j];
    GAD_ASSERT(!"a figure column without its candidate");
    return NULL;
}

static void fig_path(const RunOpts *o, const GadModelResult *r, char *path, size_t len, const char *kind) {
    char rel[256];
    gad_fig_name(rel, sizeof rel, r->name, kind);
    snprintf(path, len, "%s/%s", o->out_dir, rel);
}

/* The columns of a figure: each image's input and label (gad/figures.h). inputs:
 * room for n images' RGB. */
static void figure_cols(const GadModelResult *r, const int *img, int n, GadFigColumn *col, unsigned char *inputs,
                        char (*lab)[96]) {
    size_t npix = (size_t)r->H * r->W;
    const float *mean = r->has_norm ? r->mean : NULL, *std = r->has_norm ? r->std : NULL;
    for (int j = 0; j < n; j++) {
        heatmap_input_rgb(candidate(r, img[j])->x, r->H, r->W, mean, std, inputs + (size_t)j * 3 * npix);
        gad_fig_column_label(r, img[j], lab[j], sizeof lab[j], &col[j].misclassified);
        col[j].input = inputs + (size_t)j * 3 * npix;
        col[j].label = lab[j];
    }
}

/* Fig. 5: per column an input and, per method, its original and GAD maps for the
 * image's own class, the GAD map on the original's colour scale. */
static int figure5(const RunOpts *o, const GadModelResult *r, int scale) {
    int n = r->fig5_cols, nm = o->nmethods, rc;
    size_t npix = (size_t)r->H * r->W;
    GadFigColumn *col = xcalloc((size_t)n, sizeof *col);
    unsigned char *inputs = xmalloc(3 * npix * (size_t)n);
    char (*lab)[96] = xmalloc(sizeof *lab * (size_t)n);
    const float **po = xmalloc(sizeof *po * (size_t)(nm * n)), **pg = xmalloc(sizeof *pg * (size_t)(nm * n));
    const char *names[ATTR_NMETHODS];
    figure_cols(r, r->fig5_img, n, col, inputs, lab);
    for (int m = 0; m < nm; m++) {
        names[m] = gad_method_title(o->methods[m]);
        for (int j = 0; j < n; j++) {
            po[m * n + j] = candidate(r, r->fig5_img[j])->maps + (size_t)(m * 2) * npix;
            pg[m * n + j] = po[m * n + j] + npix;
        }
    }
    char title[256], note[512], path[1024];
    snprintf(title, sizeof title, "Figure 5: %s, original maps (blue) and GAD maps (red) of each image's own class",
             r->name);
    snprintf(note, sizeof note,
             "Maps: |channel sum| of each attribution, Captum's 98%% normalisation; a GAD map is drawn on its "
             "original's scale. Purple frame: a misclassified image. \"empty\": no pixel present in all %d maps.",
             1 + o->nalphas);
    GadGridFig f = {title, note, r->H, r->W, scale, n, col, nm, names, po, pg, NULL, NULL, NULL, NULL, NULL, NULL};
    fig_path(o, r, path, sizeof path, "fig5");
    rc = gad_fig_maps(path, &f);
    free(po);
    free(pg);
    free(lab);
    free(inputs);
    free(col);
    return rc;
}

/* Fig. 6: the least activated images, per method both hulls over the input. */
static int figure6(const RunOpts *o, const GadModelResult *r, int scale) {
    int n = r->fig6_cols, nm = o->nmethods, cells = nm * n, rc;
    size_t npix = (size_t)r->H * r->W;
    HullRule hull = {o->hull_of, o->hull_keep, o->present};
    GadFigColumn *col = xcalloc((size_t)n, sizeof *col);
    unsigned char *inputs = xmalloc(3 * npix * (size_t)n);
    char (*lab)[96] = xmalloc(sizeof *lab * (size_t)n);
    GadPoint *verts = xmalloc(sizeof(GadPoint) * (npix + 1) * 2 * (size_t)cells);
    const GadPoint **vo = xmalloc(sizeof *vo * (size_t)cells), **vg = xmalloc(sizeof *vg * (size_t)cells);
    int *no = xmalloc(sizeof(int) * (size_t)cells), *ng = xmalloc(sizeof(int) * (size_t)cells);
    int *empty = xmalloc(sizeof(int) * (size_t)cells), *forced = xmalloc(sizeof(int) * (size_t)cells), nforced = 0;
    const char *names[ATTR_NMETHODS];
    figure_cols(r, r->fig6_img, n, col, inputs, lab);
    for (int m = 0; m < nm; m++) {
        names[m] = gad_method_title(o->methods[m]);
        for (int j = 0; j < n; j++) {
            int k = m * n + j;
            const float *orig = candidate(r, r->fig6_img[j])->maps + (size_t)(m * 2) * npix, *g = orig + npix;
            GadHull ho, hg;
            GadPoint *v = verts + (size_t)k * 2 * (npix + 1);
            empty[k] = 1;
            for (size_t i = 0; i < npix && empty[k]; i++) empty[k] = !(g[i] > 0.0f);
            forced[k] = !empty[k] && gad_rc_forced(orig, g, r->H, r->W, &hull);
            nforced += forced[k];
            gad_map_hull(orig, r->H, r->W, &hull, &ho, v, NULL);
            gad_map_hull(g, r->H, r->W, &hull, &hg, v + npix + 1, NULL);
            vo[k] = v;
            vg[k] = v + npix + 1;
            no[k] = ho.nvert;
            ng[k] = hg.nvert;
        }
    }
    char title[256], note[768], path[1024], pts[128];
    snprintf(title, sizeof title, "Figure 6: %s, hulls of the %d least activated images of each class", r->name,
             o->fig_least);
    gad_hull_text(&hull, pts, sizeof pts);
    snprintf(note, sizeof note,
             "Least activated: the original model's lowest outputs for the image's own class. Hulls enclose "
             "each map's hull points: %s. Purple frame: a misclassified image.%s",
             pts,
             nforced ? " \"forced\": the GAD hull points are among the original's, so the GAD hull cannot be the "
                       "larger whatever the model: not a finding." : "");
    GadGridFig f = {title, note, r->H, r->W, scale, n, col, nm, names, NULL, NULL, vo, vg, no, ng, empty, forced};
    fig_path(o, r, path, sizeof path, "fig6");
    rc = gad_fig_hull_grid(path, &f);
    free(forced);
    free(empty);
    free(ng);
    free(no);
    free(vg);
    free(vo);
    free(verts);
    free(lab);
    free(inputs);
    free(col);
    return rc;
}

static int figures(const RunOpts *o, GadModelResult *r) {
    char path[1024];
    figure_columns(o, r);
    snprintf(path, sizeof path, "%s/fig/%s", o->out_dir, r->name);
    if (file_mkdirs(path) != 0) return -1;
    int scale = heatmap_auto_scale(r->H > r->W ? r->H : r->W), rc = 0;
    if (r->fig5_cols > 0) rc = figure5(o, r, scale);
    if (rc == 0 && r->fig6_cols > 0) rc = figure6(o, r, scale);
    return rc;
}

/* ---- the end of a model ---- */

int gad_model_finish(const RunOpts *o, GadModelResult *r) {
    tally(o, r);
    tally_curves(o, r);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = figures(o, r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    r->phase[GAD_PHASE_FIGURES] = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    return rc;
}

void gad_model_free(GadModelResult *r) {
    for (int i = 0; i < r->nimages; i++) {
        free(r->img[i].cell);
        free(r->img[i].curve);
        free(r->img[i].name);
    }
    free(r->img);
    free(r->curve_mean);
    for (int j = 0; j < r->nfig; j++) {
        free(r->fig[j].x);
        free(r->fig[j].maps);
    }
    free(r->fig);
    r->img = NULL;
    r->fig = NULL;
    r->curve_mean = NULL;
    r->nimages = r->nfig = 0;
}
