/* image: loading by magic bytes, and the float model input of an image (RGB
 * conversion, bilinear resize, scaling, normalisation), see io/image.h.
 * The resize follows PyTorch 1.13's CPU kernel (UpSampleKernel.cpp) step by step,
 * scale = in / out (float); src = scale * (dst + 0.5) - 0.5 (double), clamped at 0;
 * i0 = floor(src), i1 = min(i0 + 1, in - 1), w1 = src - i0, w0 = 1 - w1 (float);
 * out = (x[h0][w0]*ww0 + x[h0][w1]*ww1) * wh0 + (x[h1][w0]*ww0 + x[h1][w1]*ww1) * wh1;
 * a dimension whose size does not change is copied (torch does the same).
 * Not for: antialiased downscaling, other interpolation modes. */
#include "core/err.h"
#include "io/file.h"
#include "io/image.h"
#include "io/jpeg.h"
#include <stdlib.h>
#include <string.h>

int image_decode(const unsigned char *buf, size_t n, const char *name, Image *img) {
    memset(img, 0, sizeof *img);
    if (n >= 8 && buf[0] == 0x89 && !memcmp(buf + 1, "PNG", 3)) return png_decode(buf, n, name, img);
    if (n >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF) return jpeg_decode(buf, n, name, img);
    if (n >= 2 && buf[0] == 'P' && buf[1] >= '1' && buf[1] <= '7') return pnm_decode(buf, n, name, img);
    return err_set("%s: not a PNG, JPEG, PPM or PGM image (unknown magic bytes)", name);
}

int image_load(const char *path, Image *img) {
    unsigned char *buf;
    size_t n;
    memset(img, 0, sizeof *img);
    if (file_read_all(path, IMAGE_MAX_FILE, &buf, &n)) return -1;
    int r = image_decode(buf, n, path, img);
    free(buf);
    return r;
}

void image_free(Image *img) {
    free(img->data);
    memset(img, 0, sizeof *img);
}

/* Source indices and weights along one dimension, as torch 1.13 computes them
 * (probed with one-hot inputs, they match bit for bit): the ratio in float, the
 * source position in double, lambda1 rounded to float, lambda0 = 1 - lambda1. */
static void linear_coeffs(int in, int out, int *i0, int *i1, float *w0, float *w1) {
    float scale = (float)in / (float)out;
    for (int i = 0; i < out; i++) {
        if (in == out) {
            i0[i] = i1[i] = i;
            w0[i] = 1.0f;
            w1[i] = 0.0f;
            continue;
        }
        double src = (double)scale * (i + 0.5) - 0.5;
        if (src < 0) src = 0;
        int k = (int)src;
        double l1 = src - k;
        i0[i] = k;
        i1[i] = k < in - 1 ? k + 1 : k;
        w1[i] = (float)(l1 < 0 ? 0 : l1 > 1 ? 1 : l1);
        w0[i] = 1.0f - w1[i];
    }
}

void image_resize_bilinear(const float *src, int c, int ih, int iw, float *dst, int oh, int ow) {
    GAD_ASSERT(c >= 1 && ih >= 1 && iw >= 1 && oh >= 1 && ow >= 1);
    int *y0 = xmalloc(sizeof(int) * (size_t)(2 * oh + 2 * ow)), *y1 = y0 + oh, *x0 = y1 + oh, *x1 = x0 + ow;
    float *wy0 = xmalloc(sizeof(float) * (size_t)(2 * oh + 2 * ow)), *wy1 = wy0 + oh, *wx0 = wy1 + oh, *wx1 = wx0 + ow;
    linear_coeffs(ih, oh, y0, y1, wy0, wy1);
    linear_coeffs(iw, ow, x0, x1, wx0, wx1);
    for (int k = 0; k < c; k++) {
        const float *s = src + (size_t)k * ih * iw;
        float *d = dst + (size_t)k * oh * ow;
        for (int y = 0; y < oh; y++) {
            const float *r0 = s + (size_t)y0[y] * iw, *r1 = s + (size_t)y1[y] * iw;
            for (int x = 0; x < ow; x++) {
                float t0 = r0[x0[x]] * wx0[x] + r0[x1[x]] * wx1[x];
                float t1 = r1[x0[x]] * wx0[x] + r1[x1[x]] * wx1[x];
                d[(size_t)y * ow + x] = t0 * wy0[y] + t1 * wy1[y];
            }
        }
    }
    free(y0);
    free(wy0);
}

void image_to_input(const Image *img, int h, int w, const float *mean, const float *std, float *out) {
    GAD_ASSERT(img->c >= 1 && img->c <= 4 && h >= 1 && w >= 1);
    size_t hw = (size_t)img->h * img->w;
    int same = img->h == h && img->w == w;
    float *rgb = same ? out : xmalloc(3 * hw * sizeof(float));
    for (size_t i = 0; i < hw; i++) {
        const unsigned char *p = img->data + i * img->c;
        for (int k = 0; k < 3; k++) rgb[k * hw + i] = (float)p[img->c >= 3 ? k : 0] / 255.0f; /* convert('RGB') */
    }
    if (!same) {
        image_resize_bilinear(rgb, 3, img->h, img->w, out, h, w);
        free(rgb);
    }
    if (mean || std) {
        size_t n = (size_t)h * w;
        for (int k = 0; k < 3; k++) {
            float m = mean ? mean[k] : 0.0f, s = std ? std[k] : 1.0f;
            for (size_t i = 0; i < n; i++) out[k * n + i] = (out[k * n + i] - m) / s;
        }
    }
}
