/* image: loading by magic bytes, and the float model input of an image (RGB
 * conversion, resize, crop, scaling, normalisation), see io/image.h.
 * Two resizes:
 *   image_resize_pil follows Pillow 9's libImaging/Resample.c (precompute_coeffs,
 *     normalize_coeffs_8bpc, ImagingResampleHorizontal/Vertical_8bpc) for the
 *     bilinear filter: the same doubles, the same 22-bit integer coefficients, the
 *     same rounding of the intermediate rows to 8 bits, hence Pillow's bytes;
 *   image_resize_bilinear follows PyTorch 1.13's CPU kernel (UpSampleKernel.cpp)
 *     step by step, scale = in / out (float); src = scale * (dst + 0.5) - 0.5
 *     (double), clamped at 0; i0 = floor(src), i1 = min(i0 + 1, in - 1),
 *     w1 = src - i0, w0 = 1 - w1 (float); out = (x[h0][w0]*ww0 + x[h0][w1]*ww1) *
 *     wh0 + (x[h1][w0]*ww0 + x[h1][w1]*ww1) * wh1; a dimension whose size does not
 *     change is copied (torch does the same).
 * Not for: other interpolation modes (bicubic, Lanczos), torchvision's tensor
 * (antialias=True) resize, augmentation. */
#include "core/err.h"
#include "io/file.h"
#include "io/image.h"
#include "io/jpeg.h"
#include <math.h>
#include <stdint.h>
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

static void normalise(float *out, int h, int w, const float *mean, const float *std) {
    if (!mean && !std) return;
    size_t n = (size_t)h * w;
    for (int k = 0; k < 3; k++) {
        float m = mean ? mean[k] : 0.0f, s = std ? std[k] : 1.0f;
        for (size_t i = 0; i < n; i++) out[k * n + i] = (out[k * n + i] - m) / s;
    }
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
    normalise(out, h, w, mean, std);
}

/* ---- Pillow's bilinear resize ------------------------------------------------------ */

#define PIL_PRECISION 22 /* Pillow's PRECISION_BITS for 8-bit images: 32 - 8 - 2 */

/* Pillow's precompute_coeffs (bilinear filter, support 1, box 0..in) followed by
 * normalize_coeffs_8bpc: output i reads inputs bounds[2i] .. bounds[2i] +
 * bounds[2i+1] - 1 with the weights k[i * ksize ...]. Returns ksize. */
static int pil_coeffs(int in, int out, int **bounds, int32_t **kk) {
    double scale = (double)(float)in / out, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = filterscale, ss = 1.0 / filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    int *b = xmalloc(sizeof(int) * 2 * (size_t)out);
    int32_t *k = xmalloc(sizeof(int32_t) * (size_t)out * (size_t)ksize);
    double *w = xmalloc(sizeof(double) * (size_t)ksize);
    for (int i = 0; i < out; i++) {
        double center = (i + 0.5) * scale, ww = 0.0;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in) xmax = in;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            double t = fabs((x + xmin - center + 0.5) * ss);
            w[x] = t < 1.0 ? 1.0 - t : 0.0;
            ww += w[x];
        }
        for (int x = 0; x < ksize; x++) {
            double v = x < xmax ? (ww != 0.0 ? w[x] / ww : w[x]) : 0.0;
            k[(size_t)i * ksize + x] = (int32_t)(v < 0 ? -0.5 + v * (1 << PIL_PRECISION) : 0.5 + v * (1 << PIL_PRECISION));
        }
        b[2 * i] = xmin;
        b[2 * i + 1] = xmax;
    }
    free(w);
    *bounds = b;
    *kk = k;
    return ksize;
}

static unsigned char pil_clip8(int32_t v) {
    int32_t q = v >= 0 ? v >> PIL_PRECISION : -((-v + (1 << PIL_PRECISION) - 1) >> PIL_PRECISION);
    return (unsigned char)(q < 0 ? 0 : q > 255 ? 255 : q);
}

void image_resize_pil(const Image *src, int ow, int oh, Image *dst) {
    GAD_ASSERT((src->c == 1 || src->c == 3) && ow >= 1 && oh >= 1 && src->w >= 1 && src->h >= 1);
    int c = src->c, iw = src->w, ih = src->h;
    int *bx, *by;
    int32_t *kx, *ky;
    int kxs = pil_coeffs(iw, ow, &bx, &kx), kys = pil_coeffs(ih, oh, &by, &ky);
    /* the rows the vertical pass reads: the horizontal pass makes only those */
    int y0 = by[0], y1 = by[2 * (oh - 1)] + by[2 * (oh - 1) + 1];
    const unsigned char *rows = src->data + (size_t)y0 * iw * c;
    unsigned char *tmp = NULL;
    int tw = iw;
    if (ow != iw) {
        tw = ow;
        tmp = xmalloc((size_t)(y1 - y0) * ow * c);
        for (int y = y0; y < y1; y++) {
            const unsigned char *r = src->data + (size_t)y * iw * c;
            unsigned char *o = tmp + (size_t)(y - y0) * ow * c;
            for (int x = 0; x < ow; x++) {
                const int32_t *k = kx + (size_t)x * kxs;
                const unsigned char *p = r + (size_t)bx[2 * x] * c;
                for (int ch = 0; ch < c; ch++) {
                    int32_t ss = 1 << (PIL_PRECISION - 1);
                    for (int j = 0; j < bx[2 * x + 1]; j++) ss += p[(size_t)j * c + ch] * k[j];
                    o[(size_t)x * c + ch] = pil_clip8(ss);
                }
            }
        }
        rows = tmp;
    }
    dst->w = ow;
    dst->h = oh;
    dst->c = c;
    dst->data = xmalloc((size_t)ow * oh * c);
    if (oh != ih) {
        for (int y = 0; y < oh; y++) {
            const int32_t *k = ky + (size_t)y * kys;
            const unsigned char *base = rows + (size_t)(by[2 * y] - y0) * tw * c;
            unsigned char *o = dst->data + (size_t)y * ow * c;
            for (int x = 0; x < ow * c; x++) {
                int32_t ss = 1 << (PIL_PRECISION - 1);
                for (int j = 0; j < by[2 * y + 1]; j++) ss += base[(size_t)j * tw * c + x] * k[j];
                o[x] = pil_clip8(ss);
            }
        }
    } else {
        memcpy(dst->data, rows, (size_t)ow * oh * c); /* y0 = 0 and y1 = ih here */
    }
    free(tmp);
    free(bx);
    free(by);
    free(kx);
    free(ky);
}

/* ---- the model input ---------------------------------------------------------------- */

int image_prep_torchvision(const ImagePrep *p) {
    return p && (p->resize_short > 0 || p->resize_h > 0 || p->crop_h > 0);
}

/* The size Resize makes of iw x ih (torchvision's _compute_resized_output_size). */
static void resize_size(const ImagePrep *p, int iw, int ih, int *ow, int *oh) {
    *ow = iw;
    *oh = ih;
    if (p->resize_h > 0) {
        *ow = p->resize_w;
        *oh = p->resize_h;
    } else if (p->resize_short > 0) {
        int n = p->resize_short, sh = iw <= ih ? iw : ih, lg = iw <= ih ? ih : iw;
        double l = (double)n * lg / sh;
        int nl = l > 1e9 ? 1000000000 : (int)l;
        *ow = iw <= ih ? n : nl;
        *oh = iw <= ih ? nl : n;
    }
}

void image_prep_size(const ImagePrep *p, int iw, int ih, int *ow, int *oh) {
    if (!image_prep_torchvision(p)) {
        *ow = iw;
        *oh = ih;
        return;
    }
    resize_size(p, iw, ih, ow, oh);
    if (p->crop_h > 0) {
        *ow = p->crop_w;
        *oh = p->crop_h;
    }
}

/* CenterCrop's first row (or column) of a crop of `crop` out of `size`: padding
 * (negative) when the crop is larger, else round((size - crop) / 2) half to even. */
static int crop_offset(int size, int crop) {
    if (crop > size) return -((crop - size) / 2);
    int d = size - crop, k = d / 2;
    return d % 2 == 0 || k % 2 == 0 ? k : k + 1;
}

int image_prepare(const Image *img, const ImagePrep *p, int h, int w, const char *name, float *out) {
    GAD_ASSERT(img->c >= 1 && img->c <= 4 && h >= 1 && w >= 1);
    if (!image_prep_torchvision(p)) {
        image_to_input(img, h, w, p ? p->mean : NULL, p ? p->std : NULL, out);
        return 0;
    }
    int rw, rh, fw, fh;
    resize_size(p, img->w, img->h, &rw, &rh);
    image_prep_size(p, img->w, img->h, &fw, &fh);
    if (fw != w || fh != h)
        return err_set("%s: a %dx%d image is %dx%d after the resize%s, not the model's %dx%d (give a crop)", name,
                       img->w, img->h, fw, fh, p->crop_h > 0 ? " and crop" : "", w, h);
    if (rw < 1 || rh < 1 || rw > IMAGE_MAX_DIM || rh > IMAGE_MAX_DIM || (long)rw * rh > IMAGE_MAX_PIXELS)
        return err_set("%s: resizing a %dx%d image to %dx%d is over the image limit", name, img->w, img->h, rw, rh);
    /* convert('RGB') first; a gray image stays one channel (the three would be equal) */
    Image g = *img, r;
    int gc = img->c >= 3 ? 3 : 1;
    unsigned char *own = NULL;
    if (img->c != gc) {
        size_t n = (size_t)img->w * img->h;
        own = xmalloc(n * gc);
        for (size_t i = 0; i < n; i++)
            for (int k = 0; k < gc; k++) own[i * gc + k] = img->data[i * img->c + k];
        g.c = gc;
        g.data = own;
    }
    if (rw != g.w || rh != g.h) image_resize_pil(&g, rw, rh, &r);
    else r = g;
    int ox = crop_offset(rw, w), oy = crop_offset(rh, h);
    size_t hw = (size_t)h * w;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int sy = y + oy, sx = x + ox, in = sy >= 0 && sy < rh && sx >= 0 && sx < rw;
            const unsigned char *px = in ? r.data + ((size_t)sy * rw + sx) * gc : NULL;
            for (int k = 0; k < 3; k++)
                out[k * hw + (size_t)y * w + x] = in ? (float)px[gc == 3 ? k : 0] / 255.0f : 0.0f;
        }
    if (r.data != g.data) image_free(&r);
    free(own);
    normalise(out, h, w, p->mean, p->std);
    return 0;
}
