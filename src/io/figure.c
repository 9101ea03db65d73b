/* figure: labelled grids of tiles and scatter-plot axes (see io/figure.h).
 * A grid is laid out from the outside in: margin, title, column-label band, then
 * the row-label column, the tiles (with a gap around each, where fig_frame draws),
 * the colour bars, and under the tiles the key and the note. fig_init measures
 * every text first, so the canvas is made once at its final size.
 * Not for: colours of data (the caller's), text wrapping (callers put '\n'). */
#include "io/figure.h"
#include "core/err.h"
#include "io/font.h"
#include "io/image.h"
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static const unsigned char BLACK[3] = {0, 0, 0}, GREY[3] = {120, 120, 120}, LIGHT[3] = {225, 225, 225};

static int max_i(int a, int b) { return a > b ? a : b; }

static void measure(const char *t, int scale, int *w, int *h) {
    if (!t) { *w = *h = 0; return; }
    font_measure(t, scale, w, h);
}

/* Scale of the column labels: the figure's, or 1 when one of them is wider than a
 * column at that scale (one scale for all, so that the labels read as a row). */
static int col_scale(const FigSpec *s, int ls, int gap) {
    for (int j = 0; s->col_labels && j < s->cols; j++) {
        int w, h;
        measure(s->col_labels[j], ls, &w, &h);
        if (w > s->tile_w + gap - 2) return 1;
    }
    return ls;
}

/* Geometry of the colour bars: strip width, bar height, and each bar's width. */
typedef struct {
    int strip, height, w[FIG_MAX_BARS], total;
} Bars;

static void bars_layout(const FigSpec *s, int ls, int gap, int grid_h, Bars *b) {
    memset(b, 0, sizeof *b);
    if (s->nbars <= 0) return;
    b->strip = 10 * ls;
    b->height = grid_h < 80 * ls ? 80 * ls : grid_h > 400 ? max_i(400, 80 * ls) : grid_h;
    for (int k = 0; k < s->nbars; k++) {
        const FigBar *bar = &s->bar[k];
        int w1, h1, w2, h2, wl, hl;
        measure(bar->lo, ls, &w1, &h1);
        measure(bar->hi, ls, &w2, &h2);
        measure(bar->label, ls, &wl, &hl);
        if (wl + 2 * gap > b->height) b->height = wl + 2 * gap;  /* the turned label fits beside the bar */
        b->w[k] = 8 * ls + b->strip + 3 * ls + max_i(w1, w2) + (hl ? 4 * ls + hl : 0);
        b->total += b->w[k];
    }
}

/* A copy of text (NULL: NULL) wrapped to max(width, least) characters; the caller frees it. */
static char *wrap(const char *text, int width, int least) {
    if (!text) return NULL;
    size_t len = 2 * strlen(text) + 16;
    char *out = xmalloc(len);
    font_wrap(text, width > least ? width : least, out, len);
    return out;
}

static int keys_width(const FigSpec *s, int ls) {
    int w = 0;
    for (int k = 0; k < s->nkeys; k++) {
        int tw, th;
        measure(s->key[k].text, ls, &tw, &th);
        w += (k ? 12 * ls : 0) + 16 * ls + 4 * ls + tw;
    }
    return w;
}

/* Kept whole: the layout measures every part (labels, bars, title and note wrapped
 * to the body's width, key) before the canvas exists, then draws them where it put
 * them; one function keeps the measuring and the drawing of each part side by side. */
int fig_init(Figure *f, const FigSpec *s) {
    GAD_ASSERT(s->rows >= 1 && s->cols >= 1 && s->tile_w >= 1 && s->tile_h >= 1);
    GAD_ASSERT(s->nbars >= 0 && s->nbars <= FIG_MAX_BARS && s->nkeys >= 0 && s->nkeys <= FIG_MAX_KEYS);
    memset(f, 0, sizeof *f);
    int ls = s->text_scale > 0 ? s->text_scale : s->tile_w >= 96 ? 2 : 1, ts = ls + 1;
    int gap = s->tile_w >= 64 ? 6 : 4, margin = 6 * ls, w, h;
    long grid_w = (long)s->cols * s->tile_w + (long)(s->cols + 1) * gap;
    long grid_h = (long)s->rows * s->tile_h + (long)(s->rows + 1) * gap;
    if (grid_w > IMAGE_MAX_DIM || grid_h > IMAGE_MAX_DIM)
        return err_set("a figure of %d x %d tiles of %dx%d pixels is too large", s->rows, s->cols, s->tile_w,
                       s->tile_h);
    int title_w, title_h, note_w, note_h, band = 0, rl_w = 0;
    int cs = col_scale(s, ls, gap);
    for (int j = 0; s->col_labels && j < s->cols; j++) {
        measure(s->col_labels[j], cs, &w, &h);
        band = max_i(band, h);
    }
    if (band) band += 3 * ls;
    for (int i = 0; s->row_labels && i < s->rows; i++) {
        measure(s->row_labels[i], ls, &w, &h);
        rl_w = max_i(rl_w, w);
    }
    if (rl_w) rl_w += 4 * ls;
    Bars b;
    bars_layout(s, ls, gap, (int)grid_h, &b);
    /* the title and the note wrapped to the width of what they describe */
    int body_w = rl_w + (int)grid_w + b.total;
    char *title = wrap(s->title, body_w / (FONT_ADV * ts), 32), *note = wrap(s->note, body_w / (FONT_ADV * ls), 48);
    measure(title, ts, &title_w, &title_h);
    measure(note, ls, &note_w, &note_h);
    int key_w = keys_width(s, ls), key_h = s->nkeys ? FONT_H * ls + 6 * ls : 0;
    long cw = margin + rl_w + grid_w + b.total + margin;
    cw = max_i((int)cw, margin + title_w + margin);
    cw = max_i((int)cw, margin + key_w + margin);
    cw = max_i((int)cw, margin + note_w + margin);
    int top = margin + (title_h ? title_h + 5 * ls : 0) + band;
    long body = grid_h > b.height ? grid_h : b.height;
    long ch = top + body + (key_h ? key_h + 2 * ls : 0) + (note_h ? note_h + 4 * ls : 0) + margin;
    if (cw > IMAGE_MAX_DIM || ch > IMAGE_MAX_DIM || cw * ch > IMAGE_MAX_PIXELS) {
        free(title);
        free(note);
        return err_set("a %ld x %ld figure is too large", cw, ch);
    }

    f->rows = s->rows;
    f->cols = s->cols;
    f->tile_w = s->tile_w;
    f->tile_h = s->tile_h;
    f->gap = gap;
    f->scale = ls;
    f->gx = margin + rl_w + gap;
    f->gy = top + gap;
    canvas_init(&f->canvas, (int)cw, (int)ch, NULL);
    Canvas *c = &f->canvas;
    if (title) canvas_text(c, margin, margin, title, BLACK, NULL, ts);
    for (int j = 0; s->col_labels && j < s->cols; j++) {
        if (!s->col_labels[j]) continue;
        int x, y;
        measure(s->col_labels[j], cs, &w, &h);
        fig_cell(f, 0, j, &x, &y);
        x += (s->tile_w - w) / 2;
        if (x < 0) x = 0;
        const unsigned char *fg = s->col_label_rgb ? s->col_label_rgb + 3 * j : BLACK;
        canvas_text(c, x, top - 2 * ls - h, s->col_labels[j], fg, NULL, cs);
    }
    for (int i = 0; s->row_labels && i < s->rows; i++) {
        if (!s->row_labels[i]) continue;
        int x, y;
        measure(s->row_labels[i], ls, &w, &h);
        fig_cell(f, i, 0, &x, &y);
        canvas_text(c, margin, y + (s->tile_h - h) / 2, s->row_labels[i], BLACK, NULL, ls);
    }
    int bx = margin + rl_w + (int)grid_w, by = top + gap;
    for (int k = 0; k < s->nbars; k++) {
        const FigBar *bar = &s->bar[k];
        GAD_ASSERT(bar->n >= 2 && bar->ramp);
        int x = bx + 8 * ls, hh = b.height - 2 * gap;
        for (int r = 0; r < hh; r++) {
            int idx = (int)lround((double)(hh - 1 - r) * (bar->n - 1) / (hh > 1 ? hh - 1 : 1));
            canvas_fill_rect(c, x, by + r, b.strip, 1, bar->ramp + 3 * idx);
        }
        canvas_rect(c, x - 1, by - 1, b.strip + 2, hh + 2, GREY, 1);
        int lx = x + b.strip + 3 * ls, w1 = 0, h1, w2 = 0, h2;
        if (bar->hi) canvas_text(c, lx, by, bar->hi, BLACK, NULL, ls);
        measure(bar->lo, ls, &w1, &h1);
        if (bar->lo) canvas_text(c, lx, by + hh - h1, bar->lo, BLACK, NULL, ls);
        measure(bar->hi, ls, &w2, &h2);
        if (bar->label) {
            int wl, hl;
            measure(bar->label, ls, &wl, &hl);
            canvas_text_up(c, lx + max_i(w1, w2) + 4 * ls, by + (hh - wl) / 2, bar->label, BLACK, ls);
        }
        bx += b.w[k];
    }
    int y = top + (int)body + 2 * ls, x = margin;
    for (int k = 0; k < s->nkeys; k++) {
        const FigKey *key = &s->key[k];
        int cy = y + FONT_H * ls / 2;
        if (key->line) canvas_fill_rect(c, x, cy - ls, 16 * ls, 2 * ls + (ls == 1), key->rgb);
        else canvas_mark(c, x + 8 * ls, cy, key->mark, 7 * ls, key->rgb);
        x += 20 * ls;
        x += canvas_text(c, x, y, key->text ? key->text : "", BLACK, NULL, ls) + 12 * ls;
    }
    if (note) canvas_text(c, margin, y + key_h, note, BLACK, NULL, ls);
    free(title);
    free(note);
    return 0;
}

void fig_cell(const Figure *f, int row, int col, int *x, int *y) {
    *x = f->gx + col * (f->tile_w + f->gap);
    *y = f->gy + row * (f->tile_h + f->gap);
}

void fig_tile(Figure *f, int row, int col, const unsigned char *rgb, int w, int h, int scale) {
    int x, y;
    fig_cell(f, row, col, &x, &y);
    canvas_rect(&f->canvas, x - 1, y - 1, f->tile_w + 2, f->tile_h + 2, LIGHT, 1);  /* white tiles stay visible */
    canvas_blit(&f->canvas, x, y, rgb, w, h, scale);
}

void fig_frame(Figure *f, int row, int col, const unsigned char rgb[3]) {
    int x, y, t = f->gap / 2;
    fig_cell(f, row, col, &x, &y);
    canvas_rect(&f->canvas, x - t, y - t, f->tile_w + 2 * t, f->tile_h + 2 * t, rgb, t);
}

void fig_badge(Figure *f, int row, int col, const char *text, const unsigned char fg[3], const unsigned char bg[3]) {
    int x, y, w, h, sc = f->scale;
    fig_cell(f, row, col, &x, &y);
    font_measure(text, sc, &w, &h);
    if (w + 4 * sc > f->tile_w && sc > 1) {
        sc = 1;
        font_measure(text, sc, &w, &h);
    }
    canvas_text(&f->canvas, x + (f->tile_w - w) / 2, y + (f->tile_h - h) / 2, text, fg, bg, sc);
}

int fig_write(Figure *f, const char *path) {
    int rc = canvas_write_png(&f->canvas, path);
    fig_free(f);
    return rc;
}

void fig_free(Figure *f) { canvas_free(&f->canvas); }

/* ------------------------------------------------------------------ axes */

double fig_tick_step(double lo, double hi, int ticks) {
    double range = hi - lo;
    if (!(range > 0) || !isfinite(range)) return 1;
    if (ticks < 1) ticks = 1;
    double raw = range / ticks, mag = pow(10, floor(log10(raw))), n = raw / mag;
    return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * mag;
}

void fig_nice_range(double *lo, double *hi, int ticks) {
    if (!isfinite(*lo) || !isfinite(*hi)) {
        *lo = 0;
        *hi = 1;
    }
    if (!(*hi > *lo)) {
        *lo -= 0.5;
        *hi = *lo + 1;
    }
    double step = fig_tick_step(*lo, *hi, ticks);
    *lo = floor(*lo / step + 1e-9) * step;
    *hi = ceil(*hi / step - 1e-9) * step;
}

void fig_axes_px(const FigAxes *a, double x, double y, double *px, double *py) {
    *px = a->x + (x - a->x0) / (a->x1 - a->x0) * (a->w - 1);
    *py = a->y + (a->y1 - y) / (a->y1 - a->y0) * (a->h - 1);
}

static void tick_label(char *buf, size_t len, double v, double step) {
    int dec = (int)-floor(log10(step) + 1e-9);
    if (dec < 0) dec = 0;
    if (fabs(v) < step * 1e-6) v = 0;  /* no "-0" */
    snprintf(buf, len, "%.*f", dec, v);
}

void fig_axes_draw(Canvas *c, const FigAxes *a, const char *title, const char *xlabel, const char *ylabel,
                   int scale) {
    char buf[32];
    int w, h;
    double sx = fig_tick_step(a->x0, a->x1, 5), sy = fig_tick_step(a->y0, a->y1, 5);
    for (double v = ceil(a->x0 / sx - 1e-9) * sx; v <= a->x1 + sx * 1e-9; v += sx) {
        double px, py;
        fig_axes_px(a, v, a->y0, &px, &py);
        canvas_fill_rect(c, (int)lround(px), a->y, 1, a->h, LIGHT);
        canvas_fill_rect(c, (int)lround(px), a->y + a->h, 1, 3 * scale, GREY);
        tick_label(buf, sizeof buf, v, sx);
        font_measure(buf, scale, &w, &h);
        canvas_text(c, (int)lround(px) - w / 2, a->y + a->h + 4 * scale, buf, BLACK, NULL, scale);
    }
    for (double v = ceil(a->y0 / sy - 1e-9) * sy; v <= a->y1 + sy * 1e-9; v += sy) {
        double px, py;
        fig_axes_px(a, a->x0, v, &px, &py);
        canvas_fill_rect(c, a->x, (int)lround(py), a->w, 1, LIGHT);
        canvas_fill_rect(c, a->x - 3 * scale, (int)lround(py), 3 * scale, 1, GREY);
        tick_label(buf, sizeof buf, v, sy);
        font_measure(buf, scale, &w, &h);
        canvas_text(c, a->x - 5 * scale - w, (int)lround(py) - h / 2 + scale, buf, BLACK, NULL, scale);
    }
    canvas_rect(c, a->x - 1, a->y - 1, a->w + 2, a->h + 2, GREY, 1);
    if (title) {
        font_measure(title, scale, &w, &h);
        canvas_text(c, a->x, a->y - 4 * scale - h, title, BLACK, NULL, scale);
    }
    if (xlabel) {
        font_measure(xlabel, scale, &w, &h);
        canvas_text(c, a->x + (a->w - w) / 2, a->y + a->h + 15 * scale, xlabel, BLACK, NULL, scale);
    }
    if (ylabel) {
        font_measure(ylabel, scale, &w, &h);
        canvas_text_up(c, a->x - FIG_AXES_LEFT(scale) + 2, a->y + (a->h - w) / 2, ylabel, BLACK, scale);
    }
}

static int inside(const FigAxes *a, double x, double y) {
    return x >= a->x0 && x <= a->x1 && y >= a->y0 && y <= a->y1;
}

void fig_axes_mark(Canvas *c, const FigAxes *a, double x, double y, CanvasMark m, int size,
                   const unsigned char rgb[3]) {
    if (!inside(a, x, y)) return;
    double px, py;
    fig_axes_px(a, x, y, &px, &py);
    canvas_mark(c, px, py, m, size, rgb);
}

/* Liang-Barsky: clip the segment to the data range; 0 when nothing is left. */
static int clip(const FigAxes *a, double *x0, double *y0, double *x1, double *y1) {
    double t0 = 0, t1 = 1, dx = *x1 - *x0, dy = *y1 - *y0;
    double p[4] = {-dx, dx, -dy, dy}, q[4] = {*x0 - a->x0, a->x1 - *x0, *y0 - a->y0, a->y1 - *y0};
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0) {
            if (q[i] < 0) return 0;
            continue;
        }
        double t = q[i] / p[i];
        if (p[i] < 0) { if (t > t0) t0 = t; }
        else if (t < t1) t1 = t;
    }
    if (t0 > t1) return 0;
    double ox = *x0, oy = *y0;
    *x0 = ox + t0 * dx;
    *y0 = oy + t0 * dy;
    *x1 = ox + t1 * dx;
    *y1 = oy + t1 * dy;
    return 1;
}

void fig_axes_line(Canvas *c, const FigAxes *a, double x0, double y0, double x1, double y1,
                   const unsigned char rgb[3], int thick) {
    if (!(isfinite(x0) && isfinite(y0) && isfinite(x1) && isfinite(y1))) return;
    if (!clip(a, &x0, &y0, &x1, &y1)) return;
    double px0, py0, px1, py1;
    fig_axes_px(a, x0, y0, &px0, &py0);
    fig_axes_px(a, x1, y1, &px1, &py1);
    canvas_line(c, px0 + 0.5, py0 + 0.5, px1 + 0.5, py1 + 0.5, rgb, thick);
}
