/* figures: Fig. 1, 3 and 4 style pictures of GAD's steps (see gad/figures.h). Each
 * function lays its figure out with io/figure.h, draws the tiles or points, and
 * writes the PNG; the numbers come from gad/steps.h.
 * Not for: the report's Fig. 5 and 6 grids (report.c), computing. */
#include "gad/figures.h"
#include "core/err.h"
#include "gad/run.h"
#include "io/figure.h"
#include "io/font.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const unsigned char GAD_RGB_ORIG_HULL[3] = {220, 30, 30};
const unsigned char GAD_RGB_GAD_HULL[3] = {20, 190, 40};
const unsigned char GAD_RGB_WARN[3] = {190, 0, 0};
const unsigned char GAD_RGB_WRONG[3] = {150, 40, 200};
const unsigned char GAD_RGB_FORCED[3] = {170, 110, 0};
static const unsigned char BLACK[3] = {0, 0, 0}, WHITE[3] = {255, 255, 255}, GREY[3] = {170, 170, 170};
static const unsigned char CLS_RGB[2][3] = {{31, 119, 180}, {230, 110, 0}};       /* the two classes */
static const unsigned char CLS_DARK[2][3] = {{10, 50, 110}, {140, 60, 0}};

float gad_tile(const float *imp, float thr, int H, int W, HeatRamp r, unsigned char *rgb) {
    size_t n = (size_t)H * W;
    float *norm = xmalloc(sizeof(float) * (n > 0 ? n : 1));
    if (thr <= 0) thr = heatmap_normalize(imp, 1, H, W, 1, norm);
    else
        for (size_t i = 0; i < n; i++) {
            float v = imp[i] / thr;
            norm[i] = v > 1 ? 1 : v;
        }
    heatmap_render_ramp(norm, H, W, r, rgb);
    free(norm);
    return thr;
}

const char *gad_method_title(AttrMethod m) {
    static const char *s[] = {"Saliency", "Deconvolution", "Gradient x Input", "Guided Backprop",
                              "Integrated Gradients"};
    return (unsigned)m < ATTR_NMETHODS ? s[m] : "?";
}

void gad_fig_column_label(const GadModelResult *r, int i, char *buf, size_t len, int *wrong) {
    const GadImageResult *im = &r->img[i];
    int pred = im->out[1] > im->out[0];
    *wrong = pred != im->cls;
    char id[24]; /* the file's name (cut to fit a column), or #i for IDX data and unnamed images */
    const char *nm = im->name, *base = nm ? strrchr(nm, '/') : NULL;
    base = base ? base + 1 : nm;
    if (!base || !*base || base[strlen(base) - 1] == ']') snprintf(id, sizeof id, "#%d", im->index);
    else if (strlen(base) <= 16) snprintf(id, sizeof id, "%s", base);
    else snprintf(id, sizeof id, "%.7s..%s", base, base + strlen(base) - 7);
    if (*wrong)
        snprintf(buf, len, "%s %s\npred. %s \xe2\x9c\x97", id, r->class_name[im->cls], r->class_name[pred]);
    else snprintf(buf, len, "%s %s\nout %.3g", id, r->class_name[im->cls], (double)im->out[im->cls]);
}

void gad_present_text(Presence p, char *buf, size_t len) {
    if (p.rule == PRESENT_FRAC)
        snprintf(buf, len, "importance \xe2\x89\xa5 %g%% of the map's max", 100 * (double)p.value);
    else snprintf(buf, len, "among the top %g%% of the map's non-zero pixels", 100 * (double)p.value);
}

void gad_hull_text(const HullRule *h, char *buf, size_t len) {
    if (h->of == HULL_OF_IMAGE)
        snprintf(buf, len, "the top %g%% of the image's pixels (never one of importance 0)", 100 * (double)h->keep);
    else if (h->of == HULL_OF_NONZERO) snprintf(buf, len, "the top %g%% of each map's non-zero pixels", 100 * (double)h->keep);
    else snprintf(buf, len, "each map's present pixels");
}

/* ------------------------------------------------------------------ Fig. 1 */

#define PANEL 240  /* plot area side, pixels */
#define TS 2       /* text scale */

/* The text of Fig. 1's key entry k: the original outputs, then per class its
 * targets and its support outputs. Static storage, until the next call. */
static const char *key_text(const GadDistFig *d, int k) {
    static char buf[160];
    if (k == 0) return "original output";
    snprintf(buf, sizeof buf, k % 2 ? "target (%s)" : "support output (%s)", d->class_name[(k - 1) / 2]);
    return buf;
}

static void fmt_loss(char *buf, size_t len, float loss) {
    if (isnan(loss)) snprintf(buf, len, "unknown");
    else snprintf(buf, len, "%.3g", (double)loss);
}

/* Kept whole: the panels share one set of axes and one key, measured over every
 * point before the first is drawn. */
int gad_fig_distancing(const char *path, const GadDistFig *d, GadFit *fits) {
    GAD_ASSERT(d->n >= 1 && d->nalpha >= 1);
    int per_row = d->nalpha < 4 ? d->nalpha : 4, nrow = (d->nalpha + per_row - 1) / per_row;
    int left = FIG_AXES_LEFT(TS), top = FIG_AXES_TOP(TS), bottom = FIG_AXES_BOTTOM(TS), margin = 12;
    int pw = left + PANEL + 80, ph = top + PANEL + bottom + 8;  /* titles may run past the plot */
    char title[256], note[1024];
    snprintf(title, sizeof title, "Fig. 1, the distancing: %s, %s vs %s", d->model, d->class_name[0],
             d->class_name[1]);
    snprintf(note, sizeof note,
             "Each point is a training image: x = its %s logit, y = its %s logit; the diagonal is "
             "where the two are equal. A support model is fitted (MSE, Adam) to targets that lower a "
             "%s image's %s logit and a %s image's %s logit by \xce\xb1. Shift: how far it moved the "
             "lowered logit, as a share of \xce\xb1. It fits when the shift is at least 50%% and the RMSE of its "
             "two outputs against the targets at most \xce\xb1/2.",
             d->class_name[0], d->class_name[1], d->class_name[0], d->class_name[1], d->class_name[1],
             d->class_name[0]);
    int tw, th, nw, nh;
    char wrapped[1400];
    font_wrap(note, (per_row * pw) / (FONT_ADV * TS) > 60 ? (per_row * pw) / (FONT_ADV * TS) : 60, wrapped,
              sizeof wrapped);
    font_measure(title, TS + 1, &tw, &th);
    font_measure(wrapped, TS, &nw, &nh);
    int key_h = FONT_LINE * TS + 8, key_w = 0;
    for (int k = 0; k < 5; k++) { /* the key's five entries, as drawn below */
        int w, h;
        font_measure(key_text(d, k), TS, &w, &h);
        key_w += 16 + w + 24;
    }
    int cw = margin + per_row * pw + margin, grid_y = margin + th + 16;
    if (cw < 2 * margin + key_w) cw = 2 * margin + key_w;
    if (cw < 2 * margin + tw) cw = 2 * margin + tw;
    if (cw < 2 * margin + nw) cw = 2 * margin + nw;
    int ch = grid_y + nrow * ph + key_h + nh + 2 * margin;
    /* common axes: every point of every panel */
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    float *t = xmalloc(sizeof(float) * 2 * (size_t)d->n);
    for (int k = 0; k <= d->nalpha; k++) {
        const float *v = k == 0 ? d->orig : d->sup + (size_t)(k - 1) * 2 * d->n;
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 1) {
                if (k == 0) continue;
                gad_distance(d->orig, d->cls, d->n, 2, 0, 1, d->alpha[k - 1], t);
                v = t;
            }
            for (int i = 0; i < d->n; i++) {
                double a = v[2 * i], b = v[2 * i + 1];
                if (!isfinite(a) || !isfinite(b)) continue;
                x0 = a < x0 ? a : x0;
                x1 = a > x1 ? a : x1;
                y0 = b < y0 ? b : y0;
                y1 = b > y1 ? b : y1;
            }
        }
    }
    fig_nice_range(&x0, &x1, 5);
    fig_nice_range(&y0, &y1, 5);
    Canvas c;
    canvas_init(&c, cw, ch, NULL);
    canvas_text(&c, margin, margin, title, BLACK, NULL, TS + 1);
    int max_pts = d->max_points > 0 ? d->max_points : 150, count[2] = {0, 0};
    for (int i = 0; i < d->n; i++) count[d->cls[i] != 0]++;
    for (int k = 0; k < d->nalpha; k++) {
        const float *sup = d->sup + (size_t)k * 2 * d->n;
        float alpha = d->alpha[k];
        GadFit fit;
        gad_fit(d->orig, sup, d->cls, d->n, alpha, &fit);
        if (fits) fits[k] = fit;
        gad_distance(d->orig, d->cls, d->n, 2, 0, 1, alpha, t);
        FigAxes a;
        a.x = margin + (k % per_row) * pw + left;
        a.y = grid_y + (k / per_row) * ph + top;
        a.w = a.h = PANEL;
        a.x0 = x0;
        a.x1 = x1;
        a.y0 = y0;
        a.y1 = y1;
        char xl[96], yl[96], l1[96], l2[128], ls[32];
        snprintf(xl, sizeof xl, "%s logit", d->class_name[0]);
        snprintf(yl, sizeof yl, "%s logit", d->class_name[1]);
        fig_axes_draw(&c, &a, NULL, xl, yl, TS);
        double lo = x0 > y0 ? x0 : y0, hi = x1 < y1 ? x1 : y1;
        fig_axes_line(&c, &a, lo, lo, hi, hi, GREY, 1);
        /* every point of the class, evenly thinned to max_pts: original (grey),
         * target (ring), support output (dot) */
        for (int layer = 0; layer < 3; layer++) {
            int seen[2] = {0, 0};
            for (int i = 0; i < d->n; i++) {
                int cl = d->cls[i] != 0, j = seen[cl]++;
                int stride = count[cl] > max_pts ? (count[cl] + max_pts - 1) / max_pts : 1;
                if (j % stride) continue;
                const float *v = layer == 0 ? d->orig : layer == 1 ? t : sup;
                if (layer == 0) fig_axes_mark(&c, &a, v[2 * i], v[2 * i + 1], MARK_DISC, 3, GREY);
                else if (layer == 1) fig_axes_mark(&c, &a, v[2 * i], v[2 * i + 1], MARK_CIRCLE, 9, CLS_RGB[cl]);
                else fig_axes_mark(&c, &a, v[2 * i], v[2 * i + 1], MARK_DISC, 4, CLS_DARK[cl]);
            }
        }
        fmt_loss(ls, sizeof ls, d->loss ? d->loss[k] : NAN);
        snprintf(l1, sizeof l1, "\xce\xb1 = %g   final MSE %s", (double)alpha, ls);
        if (fit.fits) snprintf(l2, sizeof l2, "fits: RMSE %.2g, shift %.0f%%", fit.rmse, 100 * fit.shift);
        else snprintf(l2, sizeof l2, "DID NOT FIT: shift %.0f%%, RMSE %.2g", 100 * fit.shift, fit.rmse);
        canvas_text(&c, a.x, a.y - 4 * TS - 2 * FONT_LINE * TS + 2 * TS, l1, BLACK, NULL, TS);
        canvas_text(&c, a.x, a.y - 4 * TS - FONT_H * TS, l2, fit.fits ? BLACK : GAD_RGB_WARN, NULL, TS);
    }
    free(t);
    /* key */
    int ky = grid_y + nrow * ph, kx = margin, cy = ky + FONT_H * TS / 2;
    for (int k = 0; k < 5; k++) {
        int cl = (k - 1) / 2;
        if (k == 0) canvas_mark(&c, kx + 6, cy, MARK_DISC, 5, GREY);
        else if (k % 2) canvas_mark(&c, kx + 6, cy, MARK_CIRCLE, 11, CLS_RGB[cl]);
        else canvas_mark(&c, kx + 6, cy, MARK_DISC, 6, CLS_DARK[cl]);
        kx += 16 + canvas_text(&c, kx + 16, ky, key_text(d, k), BLACK, NULL, TS) + 24;
    }
    canvas_text(&c, margin, ky + key_h, wrapped, BLACK, NULL, TS);
    int rc = canvas_write_png(&c, path);
    canvas_free(&c);
    return rc;
}

/* ------------------------------------------------------------------ Fig. 3 */

/* tile of a 0/1 mask: col where set, white elsewhere */
static void mask_tile(const unsigned char *m, int n, const unsigned char col[3], unsigned char *rgb) {
    for (int i = 0; i < n; i++) memcpy(rgb + 3 * i, m[i] ? col : WHITE, 3);
}

/* Small text in the top-left corner of a tile, on white. */
static void corner_text(Figure *f, int row, int col, const char *text, const unsigned char fg[3]) {
    int x, y;
    fig_cell(f, row, col, &x, &y);
    canvas_text(&f->canvas, x + 2, y + 2, text, fg, WHITE, 1);
}

static void ramp_bar(FigBar *b, unsigned char *tab, HeatRamp r, const char *label) {
    heatmap_ramp_table(r, 64, tab);
    b->ramp = tab;
    b->n = 64;
    b->lo = "0";
    b->hi = "98%";
    b->label = label;
}

int gad_fig_steps(const char *path, const GadSteps *s, const GadStepsInfo *info) {
    int cols = s->nmaps + 2, H = s->H, W = s->W, sc = info->scale > 0 ? info->scale : 1, rc;
    char **labels = xcalloc((size_t)cols, sizeof(char *));
    labels[0] = xstrdup("input");
    labels[1] = xstrdup("original");
    for (int k = 1; k < s->nmaps; k++) {
        char buf[32];
        snprintf(buf, sizeof buf, "\xce\xb1 = %g", (double)info->alpha[k - 1]);
        labels[k + 1] = xstrdup(buf);
    }
    labels[cols - 1] = xstrdup("GAD");
    static const char *rows[] = {"importance\nmap", "present\npixels"};
    char title[512], note[1024], pres[96];
    gad_present_text(info->present, pres, sizeof pres);
    snprintf(title, sizeof title, "Fig. 3, the steps: %s, %s\n%s; output %s", info->model, info->method,
             info->image, info->target);
    snprintf(note, sizeof note,
             "Top row: each model's map, |channel sum| of the attribution, on its own scale (1 = Captum's 98%% "
             "point). Bottom row: the pixels present in each map (%s), with their count; under GAD, the %d pixels "
             "present in all %d maps. The GAD map keeps the original's importance there and is 0 elsewhere (drawn "
             "on the original's scale).",
             pres, s->nall, s->nmaps);
    unsigned char blue[64 * 3], red[64 * 3];
    FigSpec spec;
    memset(&spec, 0, sizeof spec);
    spec.title = title;
    spec.note = note;
    spec.rows = 2;
    spec.cols = cols;
    spec.tile_w = W * sc;
    spec.tile_h = H * sc;
    spec.col_labels = (const char *const *)labels;
    spec.row_labels = rows;
    spec.nbars = 2;
    ramp_bar(&spec.bar[0], blue, HEAT_BLUES, "map importance");
    ramp_bar(&spec.bar[1], red, HEAT_REDS, "GAD importance");
    Figure f;
    rc = fig_init(&f, &spec);
    if (rc == 0) {
        size_t n = (size_t)s->npix;
        unsigned char *rgb = xmalloc(3 * n);
        static const unsigned char NAVY[3] = {8, 48, 107}, DARKRED[3] = {150, 0, 20};
        fig_tile(&f, 0, 0, info->input, W, H, sc);
        float thr = 0;
        for (int k = 0; k < s->nmaps; k++) {
            float t = gad_tile(s->imp + k * n, 0, H, W, HEAT_BLUES, rgb);
            if (k == 0) thr = t;
            fig_tile(&f, 0, k + 1, rgb, W, H, sc);
            mask_tile(s->present + k * n, (int)n, NAVY, rgb);
            fig_tile(&f, 1, k + 1, rgb, W, H, sc);
            char buf[32];
            snprintf(buf, sizeof buf, "%d", s->npresent[k]);
            corner_text(&f, 1, k + 1, buf, BLACK);
            if (s->maxima[k] == 0) fig_badge(&f, 0, k + 1, "all zero", BLACK, WHITE);
        }
        gad_tile(s->gad, thr > 0 ? thr : 1, H, W, HEAT_REDS, rgb);
        fig_tile(&f, 0, cols - 1, rgb, W, H, sc);
        mask_tile(s->all, (int)n, DARKRED, rgb);
        fig_tile(&f, 1, cols - 1, rgb, W, H, sc);
        char buf[32];
        snprintf(buf, sizeof buf, "%d in all", s->nall);
        corner_text(&f, 1, cols - 1, buf, BLACK);
        if (s->gad_nnz == 0) fig_badge(&f, 0, cols - 1, "empty", GAD_RGB_WARN, WHITE);
        free(rgb);
        rc = fig_write(&f, path);
    }
    for (int k = 0; k < cols; k++) free(labels[k]);
    free(labels);
    return rc;
}

/* ------------------------------------------------------------------ Fig. 4 */

static void draw_points(Figure *f, int col, const GadPoint *p, int n, int sc) {
    int x, y, d = sc >= 4 ? sc / 2 : 1;
    fig_cell(f, 0, col, &x, &y);
    for (int i = 0; i < n; i++)
        canvas_fill_rect(&f->canvas, x + p[i].x * sc + (sc - d) / 2, y + p[i].y * sc + (sc - d) / 2, d, d, BLACK);
}

static void draw_hull(Figure *f, int col, const GadPoint *v, int n, int sc, const unsigned char rgb[3]) {
    if (n <= 0) return;
    int x, y, *xy = xmalloc(sizeof(int) * 2 * (size_t)n);
    for (int i = 0; i < n; i++) {
        xy[2 * i] = v[i].x;
        xy[2 * i + 1] = v[i].y;
    }
    fig_cell(f, 0, col, &x, &y);
    canvas_polygon(&f->canvas, xy, n, x, y, sc, rgb, sc >= 4 ? 2 : 1);
    free(xy);
}

static void fmt_num(char *buf, size_t len, double v, const char *fmt) {
    if (isnan(v)) snprintf(buf, len, "none");
    else snprintf(buf, len, fmt, v);
}

int gad_fig_hulls(const char *path, const GadSteps *s, const GadStepsInfo *info) {
    int H = s->H, W = s->W, side = H > W ? H : W, sc = info->scale > 0 ? info->scale : 1;
    if (sc * side < 192) sc = (192 + side - 1) / side;  /* three tiles: room for bigger ones */
    static const char *cols[] = {"original map\n+ its hull", "GAD map\n+ its hull", "input\n+ both hulls"};
    char title[512], note[1400], rc_s[32], rs0[32], rs1[32], pres[96];
    gad_present_text(info->present, pres, sizeof pres);
    snprintf(title, sizeof title, "Fig. 4, the hulls: %s, %s\n%s; output %s", info->model, info->method,
             info->image, info->target);
    fmt_num(rc_s, sizeof rc_s, s->rc, "%.3f");
    fmt_num(rs0, sizeof rs0, s->rs[0] * 100, "%.4f");
    fmt_num(rs1, sizeof rs1, s->rs[1] * 100, "%.4f");
    const char *verdict = isnan(s->rc) ? "undefined: the original hull has no area"
                          : s->rc < 1   ? "< 1: GAD's region is the smaller"
                                        : "\xe2\x89\xa5 1: the original's region is the smaller";
    char hulltext[96];
    gad_hull_text(&info->hull, hulltext, sizeof hulltext);
    snprintf(note, sizeof note,
             "Hull points (black): %s: original %d, GAD %d.\n"
             "Convex hulls by Andrew's monotone chain through pixel centres: original %d vertices, "
             "area %.1f, %d pixels inside; GAD %d vertices, area %.1f, %d pixels inside.\n"
             "RC = A(CH_GAD) / A(CH_orig) = %s (%s)%s.\n"
             "RS = |N_a(I) - N_a(I\xc2\xb7(1-M))| / \xce\xa3M on output %s (N_a(I) = %.4g), \xc3\x97 10\xc2\xb2: "
             "GAD mask %s (\xce\xa3M = %d), supplementary mask (original minus GAD) %s (\xce\xa3M = %d).",
             hulltext, s->npts[0], s->npts[1], s->hull[0].nvert, s->hull[0].area, s->hull[0].pixels,
             s->hull[1].nvert, s->hull[1].area, s->hull[1].pixels, rc_s, verdict,
             s->forced ? "; FORCED: the GAD hull points are among the original's, so RC \xe2\x89\xa4 1 whatever the model: "
                         "not a finding"
                       : "",
             info->target, (double)s->y0, rs0,
             s->mask_pixels[1], rs1, s->mask_pixels[2]);
    unsigned char blue[64 * 3], red[64 * 3];
    FigSpec spec;
    memset(&spec, 0, sizeof spec);
    spec.title = title;
    spec.note = note;
    spec.rows = 1;
    spec.cols = 3;
    spec.tile_w = W * sc;
    spec.tile_h = H * sc;
    spec.col_labels = cols;
    spec.nbars = 2;
    ramp_bar(&spec.bar[0], blue, HEAT_BLUES, "original");
    ramp_bar(&spec.bar[1], red, HEAT_REDS, "GAD");
    spec.nkeys = 3;
    spec.key[0] = (FigKey){{220, 30, 30}, 1, MARK_DISC, "original hull"};
    spec.key[1] = (FigKey){{20, 190, 40}, 1, MARK_DISC, "GAD hull"};
    spec.key[2] = (FigKey){{0, 0, 0}, 0, MARK_SQUARE, "hull point"};
    Figure f;
    if (fig_init(&f, &spec) != 0) return -1;
    size_t n = (size_t)s->npix;
    unsigned char *rgb = xmalloc(3 * n);
    float thr = gad_tile(s->imp, 0, H, W, HEAT_BLUES, rgb);
    fig_tile(&f, 0, 0, rgb, W, H, sc);
    draw_points(&f, 0, s->pts[0], s->npts[0], sc);
    draw_hull(&f, 0, s->verts[0], s->hull[0].nvert, sc, GAD_RGB_ORIG_HULL);
    gad_tile(s->gad, thr > 0 ? thr : 1, H, W, HEAT_REDS, rgb);
    fig_tile(&f, 0, 1, rgb, W, H, sc);
    draw_points(&f, 1, s->pts[1], s->npts[1], sc);
    draw_hull(&f, 1, s->verts[1], s->hull[1].nvert, sc, GAD_RGB_GAD_HULL);
    if (s->gad_nnz == 0) fig_badge(&f, 0, 1, "empty", GAD_RGB_WARN, WHITE);
    fig_tile(&f, 0, 2, info->input, W, H, sc);
    draw_hull(&f, 2, s->verts[0], s->hull[0].nvert, sc, GAD_RGB_ORIG_HULL);
    draw_hull(&f, 2, s->verts[1], s->hull[1].nvert, sc, GAD_RGB_GAD_HULL);
    free(rgb);
    return fig_write(&f, path);
}

/* ------------------------------------------------------------------ Fig. 5 and 6 */

/* The column labels and their colours (red for a misclassified image). */
static void grid_columns(const GadGridFig *g, FigSpec *spec, const char **labels, unsigned char *rgb) {
    for (int j = 0; j < g->ncols; j++) {
        labels[j] = g->col[j].label;
        memcpy(rgb + 3 * j, g->col[j].misclassified ? GAD_RGB_WRONG : BLACK, 3);
    }
    spec->col_labels = labels;
    spec->col_label_rgb = rgb;
}

static void frame_misclassified(Figure *f, const GadGridFig *g, int row) {
    for (int j = 0; j < g->ncols; j++)
        if (g->col[j].misclassified) fig_frame(f, row, j, GAD_RGB_WRONG);
}

int gad_fig_maps(const char *path, const GadGridFig *g) {
    GAD_ASSERT(g->ncols >= 1 && g->nrows >= 1 && g->orig && g->gad);
    int rows = 1 + 2 * g->nrows, H = g->H, W = g->W, sc = g->scale > 0 ? g->scale : 1, rc;
    const char **labels = xcalloc((size_t)g->ncols, sizeof(char *));
    unsigned char *lab_rgb = xmalloc(3 * (size_t)g->ncols);
    char **rl = xcalloc((size_t)rows, sizeof(char *));
    rl[0] = xstrdup("input");
    for (int m = 0; m < g->nrows; m++)
        for (int k = 0; k < 2; k++) {
            size_t len = strlen(g->row_name[m]) + 16;
            rl[1 + 2 * m + k] = xmalloc(len);
            snprintf(rl[1 + 2 * m + k], len, "%s\n%s", g->row_name[m], k ? "GAD" : "original");
        }
    unsigned char blue[64 * 3], red[64 * 3];
    FigSpec spec;
    memset(&spec, 0, sizeof spec);
    spec.title = g->title;
    spec.note = g->note;
    spec.rows = rows;
    spec.cols = g->ncols;
    spec.tile_w = W * sc;
    spec.tile_h = H * sc;
    spec.row_labels = (const char *const *)rl;
    grid_columns(g, &spec, labels, lab_rgb);
    spec.nbars = 2;
    ramp_bar(&spec.bar[0], blue, HEAT_BLUES, "original map");
    ramp_bar(&spec.bar[1], red, HEAT_REDS, "GAD map (original's scale)");
    Figure f;
    if ((rc = fig_init(&f, &spec)) == 0) {
        unsigned char *rgb = xmalloc(3 * (size_t)H * W);
        for (int j = 0; j < g->ncols; j++) {
            fig_tile(&f, 0, j, g->col[j].input, W, H, sc);
            for (int m = 0; m < g->nrows; m++) {
                size_t c = (size_t)m * g->ncols + j;
                float thr = gad_tile(g->orig[c], 0, H, W, HEAT_BLUES, rgb);
                fig_tile(&f, 1 + 2 * m, j, rgb, W, H, sc);
                gad_tile(g->gad[c], thr > 0 ? thr : 1, H, W, HEAT_REDS, rgb);
                fig_tile(&f, 2 + 2 * m, j, rgb, W, H, sc);
                int empty = 1;
                for (int i = 0; i < H * W && empty; i++) empty = !(g->gad[c][i] > 0);
                if (thr <= 0) fig_badge(&f, 1 + 2 * m, j, "all zero", BLACK, WHITE);
                if (empty) fig_badge(&f, 2 + 2 * m, j, "empty", GAD_RGB_WARN, WHITE);
            }
        }
        frame_misclassified(&f, g, 0);
        free(rgb);
        rc = fig_write(&f, path);
    }
    for (int r = 0; r < rows; r++) free(rl[r]);
    free(rl);
    free(labels);
    free(lab_rgb);
    return rc;
}

static void hull_on(Figure *f, int row, int col, const GadPoint *v, int n, int sc, const unsigned char rgb[3]) {
    if (!v || n <= 0) return;
    int x, y, *xy = xmalloc(sizeof(int) * 2 * (size_t)n);
    for (int i = 0; i < n; i++) {
        xy[2 * i] = v[i].x;
        xy[2 * i + 1] = v[i].y;
    }
    fig_cell(f, row, col, &x, &y);
    canvas_polygon(&f->canvas, xy, n, x, y, sc, rgb, sc >= 4 ? 2 : 1);
    free(xy);
}

int gad_fig_hull_grid(const char *path, const GadGridFig *g) {
    GAD_ASSERT(g->ncols >= 1 && g->nrows >= 1 && g->hull_orig && g->hull_gad);
    int H = g->H, W = g->W, sc = g->scale > 0 ? g->scale : 1, rc;
    const char **labels = xcalloc((size_t)g->ncols, sizeof(char *));
    unsigned char *lab_rgb = xmalloc(3 * (size_t)g->ncols);
    FigSpec spec;
    memset(&spec, 0, sizeof spec);
    spec.title = g->title;
    spec.note = g->note;
    spec.rows = g->nrows;
    spec.cols = g->ncols;
    spec.tile_w = W * sc;
    spec.tile_h = H * sc;
    spec.row_labels = g->row_name;
    grid_columns(g, &spec, labels, lab_rgb);
    spec.nkeys = 2;
    spec.key[0] = (FigKey){{220, 30, 30}, 1, MARK_DISC, "original hull"};
    spec.key[1] = (FigKey){{20, 190, 40}, 1, MARK_DISC, "GAD hull"};
    Figure f;
    if ((rc = fig_init(&f, &spec)) == 0) {
        for (int m = 0; m < g->nrows; m++)
            for (int j = 0; j < g->ncols; j++) {
                size_t c = (size_t)m * g->ncols + j;
                fig_tile(&f, m, j, g->col[j].input, W, H, sc);
                hull_on(&f, m, j, g->hull_orig[c], g->nhull_orig[c], sc, GAD_RGB_ORIG_HULL);
                hull_on(&f, m, j, g->hull_gad[c], g->nhull_gad[c], sc, GAD_RGB_GAD_HULL);
                if (g->gad_empty && g->gad_empty[c]) fig_badge(&f, m, j, "empty GAD", GAD_RGB_WARN, WHITE);
                else if (g->forced && g->forced[c]) fig_badge(&f, m, j, "forced", GAD_RGB_FORCED, WHITE);
            }
        for (int m = 0; m < g->nrows; m++) frame_misclassified(&f, g, m);
        rc = fig_write(&f, path);
    }
    free(labels);
    free(lab_rgb);
    return rc;
}
