/* pnm: PGM / PPM reader (P2, P3 ASCII; P5, P6 binary), see io/image.h.
 * A maxval other than 255 is scaled like Pillow does: round(v / maxval * 255),
 * half to even; binary samples above maxval are clipped to 255, ASCII ones refused
 * (Pillow does the same).
 * Limits (each a one-line error, checked before the pixel buffer is allocated):
 * header numbers above 10^9 are malformed; width and height <= IMAGE_MAX_DIM,
 * width x height <= IMAGE_MAX_PIXELS; binary data must hold every sample.
 * Not for: P1/P4 bitmaps, 16-bit samples (maxval > 255), PAM (P7), writing. */
#include "core/err.h"
#include "io/image.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int is_space(int ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f'; }

/* Skip whitespace and '#' comments (to the end of the line). */
static void skip_space(const unsigned char *b, size_t n, size_t *p) {
    while (*p < n) {
        if (is_space(b[*p])) (*p)++;
        else if (b[*p] == '#') { while (*p < n && b[*p] != '\n' && b[*p] != '\r') (*p)++; }
        else break;
    }
}

/* A decimal number; 0 on success, -1 (no err set) if there is none. */
static int read_uint(const unsigned char *b, size_t n, size_t *p, long *v) {
    skip_space(b, n, p);
    if (*p >= n || b[*p] < '0' || b[*p] > '9') return -1;
    long x = 0;
    while (*p < n && b[*p] >= '0' && b[*p] <= '9') {
        if (x > 100000000) return -1; /* far beyond every limit: treat as malformed */
        x = 10 * x + (b[(*p)++] - '0');
    }
    if (*p < n && !is_space(b[*p]) && b[*p] != '#') return -1; /* "28x28" */
    *v = x;
    return 0;
}

int pnm_decode(const unsigned char *buf, size_t n, const char *name, Image *img) {
    memset(img, 0, sizeof *img);
    if (n < 2 || buf[0] != 'P') return err_set("%s: not a PGM/PPM file (bad magic)", name);
    int kind = buf[1];
    if (kind == '1' || kind == '4') return err_set("%s: PBM bitmaps (P%c) are not supported", name, kind);
    if (kind != '2' && kind != '3' && kind != '5' && kind != '6')
        return err_set("%s: not a PGM/PPM file (magic P%c)", name, kind >= 32 && kind < 127 ? kind : '?');
    size_t p = 2;
    long w, h, maxval;
    if (p < n && !is_space(buf[p])) return err_set("%s: corrupt PNM header", name);
    if (read_uint(buf, n, &p, &w) || read_uint(buf, n, &p, &h) || read_uint(buf, n, &p, &maxval))
        return err_set("%s: corrupt or truncated PNM header", name);
    if (w < 1 || h < 1) return err_set("%s: PNM has zero width or height", name);
    if (w > IMAGE_MAX_DIM || h > IMAGE_MAX_DIM || w * h > IMAGE_MAX_PIXELS)
        return err_set("%s: PNM is %ldx%ld, larger than the limit (%d per side, %ld pixels)", name, w, h,
                       IMAGE_MAX_DIM, IMAGE_MAX_PIXELS);
    if (maxval < 1) return err_set("%s: PNM maxval is 0", name);
    if (maxval > 255) return err_set("%s: 16-bit PNM (maxval %ld) is not supported", name, maxval);
    int c = (kind == '3' || kind == '6') ? 3 : 1;
    size_t count = (size_t)w * (size_t)h * (size_t)c;
    unsigned char lut[256];
    for (int v = 0; v < 256; v++) {
        double s = nearbyint((double)v / (double)maxval * 255.0); /* Python's round(): half to even */
        lut[v] = (unsigned char)(s > 255 ? 255 : s);
    }
    img->w = (int)w;
    img->h = (int)h;
    img->c = c;
    if (kind == '5' || kind == '6') {
        if (p >= n) return err_set("%s: truncated PNM (no pixel data)", name);
        if (!is_space(buf[p])) return err_set("%s: corrupt PNM header", name);
        p++; /* exactly one whitespace byte after maxval */
        if (n - p < count) return err_set("%s: truncated PNM (%zu of %zu pixel bytes)", name, n - p, count);
        img->data = xmalloc(count);
        for (size_t i = 0; i < count; i++) img->data[i] = lut[buf[p + i]];
        return 0;
    }
    img->data = xmalloc(count);
    for (size_t i = 0; i < count; i++) {
        long v;
        if (read_uint(buf, n, &p, &v)) {
            image_free(img);
            skip_space(buf, n, &p);
            if (p >= n) return err_set("%s: truncated PNM (%zu of %zu samples)", name, i, count);
            return err_set("%s: corrupt PNM: bad sample %zu", name, i);
        }
        if (v > maxval) {
            image_free(img);
            return err_set("%s: corrupt PNM: sample %ld above maxval %ld", name, v, maxval);
        }
        img->data[i] = lut[v];
    }
    return 0;
}
