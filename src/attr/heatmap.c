/* heatmap: Captum-style normalisation of attribution maps, colour maps, overlays,
 * and the [heatmap | overlay] PNG of `gad explain` (see attr/heatmap.h). Drawing
 * is io/canvas.h's, the PNG encoding io/image.h's.
 * Not for: computing attributions (attr.c), text and layout (io/). */
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
static const unsigned char blues[5][3] = {/* white to dark blue: 0 .. 1 */
                                          {255, 255, 255}, {198, 219, 239}, {107, 174, 214},
                                          {33, 113, 181}, {8, 48, 107}};
static const unsigned char reds[5][3] = {/* white to dark red: 0 .. 1 */
                                         {255, 255, 255}, {252, 187, 161}, {251, 106, 74},
                                         {203, 24, 29}, {103, 0, 13}};

static void ramp(const unsigned char (*cp)[3], int ncp, float t, unsigned char rgb[3]) {
    if (!(t > 0)) t = 0; /* NaN too */
    if (t > 1) t = 1;
    float f = t * (ncp - 1);
    int i = (int)f;
    if (i >= ncp - 1) i = ncp - 2;
    f -= i;
    for (int k = 0; k < 3; k++) rgb[k] = (unsigned char)lrintf(cp[i][k] + f * (cp[i + 1][k] - cp[i][k]));
}

void heatmap_ramp(HeatRamp r, float v, unsigned char rgb[3]) {
    switch (r) {
    case HEAT_BLUES: ramp(blues, 5, v, rgb); break;
    case HEAT_REDS: ramp(reds, 5, v, rgb); break;
    default: ramp(diverging, 7, (v + 1) * 0.5f, rgb); break;
    }
}

void heatmap_ramp_table(HeatRamp r, int n, unsigned char *rgb) {
    GAD_ASSERT(n >= 2);
    float lo = r == HEAT_DIVERGING ? -1.0f : 0.0f;
    for (int i = 0; i < n; i++) heatmap_ramp(r, lo + (1.0f - lo) * (float)i / (float)(n - 1), rgb + 3 * i);
}

void heatmap_colour(float v, int absolute, unsigned char rgb[3]) {
    heatmap_ramp(absolute ? HEAT_BLUES : HEAT_DIVERGING, v, rgb);
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
    heatmap_render_ramp(norm, H, W, absolute ? HEAT_BLUES : HEAT_DIVERGING, rgb);
}

void heatmap_render_ramp(const float *norm, int H, int W, HeatRamp r, unsigned char *rgb) {
    for (size_t p = 0; p < (size_t)H * W; p++) heatmap_ramp(r, norm[p], rgb + 3 * p);
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
