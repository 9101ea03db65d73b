/* heatmap: Captum-style normalisation of attribution maps, colour maps, overlays,
 * the [heatmap | overlay] PNG of `gad explain`, and a small RGB canvas for figures
 * (see attr/heatmap.h). The PNG encoding itself is io/image.h's.
 * Not for: computing attributions (attr.c), text rendering. */
#include "attr/heatmap.h"
#include "core/err.h"
#include "io/image.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

float heatmap_cumsum_threshold(const float *v, size_t n, double percent) {
    if (n == 0) return 0;
    float *s = xmalloc(n * sizeof(float));
    memcpy(s, v, n * sizeof(float));
    qsort(s, n, sizeof(float), cmp_float);
    /* float32 running sums, as np.cumsum over a float32 array */
    float total = 0;
    for (size_t i = 0; i < n; i++) total += s[i];
    float goal = (float)((double)total * 0.01 * percent), cs = 0, thr = s[n - 1];
    for (size_t i = 0; i < n; i++) {
        cs += s[i];
        if (cs >= goal) { thr = s[i]; break; }
    }
    free(s);
    return total > 0 ? thr : 0;
}

float heatmap_normalize(const float *attr, int C, int H, int W, int absolute, float *out) {
    size_t n = (size_t)H * W;
    float *a = xmalloc(n * sizeof(float));
    for (size_t p = 0; p < n; p++) {
        float s = 0;
        for (int c = 0; c < C; c++) s += attr[(size_t)c * n + p];
        out[p] = absolute ? fabsf(s) : s;
        a[p] = fabsf(s);
    }
    float thr = heatmap_cumsum_threshold(a, n, 98.0);
    free(a);
    for (size_t p = 0; p < n; p++) {
        float v = thr > 0 ? out[p] / thr : 0.0f;
        out[p] = v > 1 ? 1 : v < -1 ? -1 : v;
    }
    return thr;
}

/* Piecewise-linear colour maps through evenly spaced control points. */
static const unsigned char diverging[7][3] = {/* RdBu reversed: -1 .. +1 */
                                              {5, 48, 97},    {33, 102, 172}, {146, 197, 222}, {247, 247, 247},
                                              {244, 165, 130}, {178, 24, 43}, {103, 0, 31}};
static const unsigned char sequential[5][3] = {/* white to dark blue: 0 .. 1 */
                                               {255, 255, 255}, {198, 219, 239}, {107, 174, 214},
                                               {33, 113, 181}, {8, 48, 107}};

static void ramp(const unsigned char (*cp)[3], int ncp, float t, unsigned char rgb[3]) {
    if (!(t > 0)) t = 0; /* NaN too */
    if (t > 1) t = 1;
    float f = t * (ncp - 1);
    int i = (int)f;
    if (i >= ncp - 1) i = ncp - 2;
    f -= i;
    for (int k = 0; k < 3; k++) rgb[k] = (unsigned char)lrintf(cp[i][k] + f * (cp[i + 1][k] - cp[i][k]));
}

void heatmap_colour(float v, int absolute, unsigned char rgb[3]) {
    if (absolute) ramp(sequential, 5, v, rgb);
    else ramp(diverging, 7, (v + 1) * 0.5f, rgb);
}

void heatmap_input_rgb(const float *x, int H, int W, const float *mean, const float *std, unsigned char *rgb) {
    size_t n = (size_t)H * W;
    float lo = 0, hi = 1;
    if (!mean || !std) {
        lo = hi = x[0];
        for (size_t e = 0; e < 3 * n; e++) {
            if (x[e] < lo) lo = x[e];
            if (x[e] > hi) hi = x[e];
        }
    }
    for (int c = 0; c < 3; c++)
        for (size_t p = 0; p < n; p++) {
            float v = x[c * n + p];
            if (mean && std) v = v * std[c] + mean[c];
            else v = hi > lo ? (v - lo) / (hi - lo) : 0.5f;
            if (!(v > 0)) v = 0;
            if (v > 1) v = 1;
            rgb[p * 3 + c] = (unsigned char)lrintf(v * 255);
        }
}

void heatmap_render(const float *norm, int H, int W, int absolute, unsigned char *rgb) {
    for (size_t p = 0; p < (size_t)H * W; p++) heatmap_colour(norm[p], absolute, rgb + 3 * p);
}

void heatmap_overlay(const float *norm, const unsigned char *img, int H, int W, int absolute,
                     unsigned char *rgb) {
    for (size_t p = 0; p < (size_t)H * W; p++) {
        const unsigned char *s = img + 3 * p;
        float g = 0.299f * s[0] + 0.587f * s[1] + 0.114f * s[2];
        float a = norm[p] < 0 ? -norm[p] : norm[p];
        if (!(a <= 1)) a = a > 1 ? 1 : 0;
        a *= 0.8f;
        unsigned char col[3];
        heatmap_colour(norm[p], absolute, col);
        for (int k = 0; k < 3; k++) rgb[3 * p + k] = (unsigned char)lrintf((1 - a) * g + a * col[k]);
    }
}

int heatmap_auto_scale(int side) {
    if (side <= 0) return 1;
    int s = (112 + side - 1) / side;
    return s < 1 ? 1 : s;
}

int heatmap_write_png(const char *path, const float *attr, const float *x, int n, int H, int W, int absolute,
                      const float *mean, const float *std, int scale) {
    enum { MARGIN = 4, GAP_IN = 2, GAP_OUT = 10 };
    GAD_ASSERT(n >= 1 && H >= 1 && W >= 1 && scale >= 1);
    int cols = (int)ceil(sqrt((double)n)), rows = (n + cols - 1) / cols;
    while (cols > 1 && (cols - 1) * rows >= n) cols--; /* no empty column */
    long tw = (long)W * scale, th = (long)H * scale, pw = 2 * tw + GAP_IN;
    long cw = 2 * MARGIN + cols * pw + (cols - 1) * GAP_OUT, ch = 2 * MARGIN + rows * th + (rows - 1) * GAP_OUT;
    if (cw > IMAGE_MAX_DIM || ch > IMAGE_MAX_DIM || cw * ch > IMAGE_MAX_PIXELS)
        return err_set("%s: a %ld x %ld picture is too large (use a smaller scale or fewer images)", path, cw, ch);
    size_t hw = (size_t)H * W;
    float *norm = xmalloc(hw * sizeof(float));
    unsigned char *img = xmalloc(hw * 3), *tile = xmalloc(hw * 3);
    Canvas c;
    canvas_init(&c, (int)cw, (int)ch, NULL);
    for (int i = 0; i < n; i++) {
        int x0 = MARGIN + (int)((i % cols) * (pw + GAP_OUT)), y0 = MARGIN + (int)((i / cols) * (th + GAP_OUT));
        heatmap_normalize(attr + (size_t)i * 3 * hw, 3, H, W, absolute, norm);
        heatmap_render(norm, H, W, absolute, tile);
        canvas_blit(&c, x0, y0, tile, W, H, scale);
        heatmap_input_rgb(x + (size_t)i * 3 * hw, H, W, mean, std, img);
        heatmap_overlay(norm, img, H, W, absolute, tile);
        canvas_blit(&c, x0 + (int)(tw + GAP_IN), y0, tile, W, H, scale);
    }
    int rc = canvas_write_png(&c, path);
    canvas_free(&c);
    free(norm);
    free(img);
    free(tile);
    return rc;
}

/* ------------------------------------------------------------------ canvas */

void canvas_init(Canvas *c, int w, int h, const unsigned char *bg) {
    static const unsigned char white[3] = {255, 255, 255};
    GAD_ASSERT(w >= 1 && h >= 1);
    if (!bg) bg = white;
    c->w = w;
    c->h = h;
    c->rgb = xmalloc((size_t)w * h * 3);
    for (size_t p = 0; p < (size_t)w * h; p++) memcpy(c->rgb + 3 * p, bg, 3);
}

void canvas_free(Canvas *c) {
    free(c->rgb);
    c->rgb = NULL;
    c->w = c->h = 0;
}

static void put(Canvas *c, int x, int y, const unsigned char col[3]) {
    if (x >= 0 && y >= 0 && x < c->w && y < c->h) memcpy(c->rgb + 3 * ((size_t)y * c->w + x), col, 3);
}

void canvas_blit(Canvas *c, int x, int y, const unsigned char *rgb, int tw, int th, int scale) {
    for (int r = 0; r < th * scale; r++)
        for (int q = 0; q < tw * scale; q++) put(c, x + q, y + r, rgb + 3 * ((size_t)(r / scale) * tw + q / scale));
}

void canvas_fill_rect(Canvas *c, int x, int y, int w, int h, const unsigned char col[3]) {
    for (int r = y; r < y + h; r++)
        for (int q = x; q < x + w; q++) put(c, q, r, col);
}

void canvas_line(Canvas *c, double x0, double y0, double x1, double y1, const unsigned char col[3], int thick) {
    if (thick < 1) thick = 1;
    double len = hypot(x1 - x0, y1 - y0);
    int steps = (int)ceil(len * 2) + 1;
    for (int i = 0; i <= steps; i++) {
        double t = (double)i / steps;
        /* pixel (q, r) covers [q, q+1): a point at x falls in pixel floor(x) */
        int cx = (int)floor(x0 + t * (x1 - x0) - (thick - 1) * 0.5);
        int cy = (int)floor(y0 + t * (y1 - y0) - (thick - 1) * 0.5);
        canvas_fill_rect(c, cx, cy, thick, thick, col);
    }
}

void canvas_polygon(Canvas *c, const int *xy, int n, int ox, int oy, int scale, const unsigned char col[3],
                    int thick) {
    for (int i = 0; i < n; i++) {
        int j = (i + 1) % n;
        canvas_line(c, ox + (xy[2 * i] + 0.5) * scale, oy + (xy[2 * i + 1] + 0.5) * scale,
                    ox + (xy[2 * j] + 0.5) * scale, oy + (xy[2 * j + 1] + 0.5) * scale, col, thick);
    }
}

int canvas_write_png(const Canvas *c, const char *path) {
    Image img;
    img.w = c->w;
    img.h = c->h;
    img.c = 3;
    img.data = c->rgb;
    return png_write(path, &img);
}
