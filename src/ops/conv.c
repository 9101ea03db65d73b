/* conv: 2-D convolution, NCHW float32, groups = 1 (see ops/conv.h).
 * Fast path, per image n:
 *   cols [C*kh*kw, Ho*Wo] = im2col(x_n)          (workspace scratch)
 *   y_n  [K, Ho*Wo]       = w [K, C*kh*kw] cols  (+ b)
 *   dw  += dy_n cols^T,   dcols = w^T dy_n,  dx_n += col2im(dcols),  db += sum dy_n
 * A 1x1 stride-1 pad-0 convolution is already a matrix product (cols = x_n): no im2col.
 * Threads: images are spread over the pool (one scratch slice per thread, gemm_st
 * inside the worker); the images left over (all of them with one image or one
 * slice) run in order with gemm itself using the pool. Every y/dx element is produced by the same gemm sums whatever
 * the batch and thread count (gemm's determinism contract), so an image's result is
 * bitwise independent of both. dw and db are reduced over images in batch order
 * (serially, gemm using the pool), so they depend on the batch but not on threads.
 * Not for: dilation, groups, other padding modes, non-float types. */
#include "ops/conv.h"
#include "core/err.h"
#include "core/gemm.h"
#include "core/threads.h"
#include <string.h>

typedef void (*GemmFn)(int, int, int, int, int, float, const float *, int, const float *, int, float,
                       float *, int);

ConvShape conv_shape(int N, int C, int H, int W, int K, int kh, int kw, int sh, int sw, int ph, int pw) {
    ConvShape s;
    GAD_ASSERT(N >= 0 && C > 0 && H > 0 && W > 0 && K > 0 && kh > 0 && kw > 0);
    GAD_ASSERT(sh > 0 && sw > 0 && ph >= 0 && pw >= 0);
    GAD_ASSERT(H + 2 * ph >= kh && W + 2 * pw >= kw);
    s.N = N; s.C = C; s.H = H; s.W = W;
    s.K = K; s.kh = kh; s.kw = kw;
    s.sh = sh; s.sw = sw; s.ph = ph; s.pw = pw;
    s.Ho = (H + 2 * ph - kh) / sh + 1;
    s.Wo = (W + 2 * pw - kw) / sw + 1;
    return s;
}

static int is_pointwise(const ConvShape *s) {
    return s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1 && s->ph == 0 && s->pw == 0;
}

/* Floats of one im2col buffer [C*kh*kw, Ho*Wo]. */
static size_t cols_floats(const ConvShape *s) {
    return (size_t)s->C * s->kh * s->kw * (size_t)s->Ho * s->Wo;
}

/* Scratch slices worth having: one per thread, no more than images. */
static int want_slices(const ConvShape *s) {
    int n = par_nthreads();
    if (n > s->N) n = s->N;
    return n < 1 ? 1 : n;
}

size_t conv_scratch_bytes(const ConvShape *s) {
    if (is_pointwise(s)) return 0;
    return (size_t)want_slices(s) * ws_round(cols_floats(s) * sizeof(float));
}

/* Slices we can take now: as wanted, but no more than fit in the workspace (a caller
 * that reserved for fewer threads still gets the right, identical answer). */
static int take_slices(const ConvShape *s, Workspace *ws, float **base, size_t *slice) {
    *slice = ws_round(cols_floats(s) * sizeof(float)) / sizeof(float);
    size_t avail = (ws->cap - ws->used) / (*slice * sizeof(float));
    GAD_ASSERT(avail >= 1); /* the caller forgot ws_reserve(conv_scratch_bytes()) */
    int n = want_slices(s);
    if ((size_t)n > avail) n = (int)avail;
    *base = ws_floats(ws, (size_t)n * *slice);
    return n;
}

/* Output columns [lo, hi) whose input coordinate o*stride - pad + k lies in [0, in). */
static void valid_range(int out, int in, int stride, int pad, int k, int *lo, int *hi) {
    int a = pad - k, b = in + pad - k; /* need a <= o*stride < b */
    int l = a > 0 ? (a + stride - 1) / stride : 0;
    int h = b > 0 ? (b + stride - 1) / stride : 0;
    if (h > out) h = out;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* xn [C,H,W] -> cols [C*kh*kw, Ho*Wo]; row (c*kh + i)*kw + j, column oh*Wo + ow. */
static void im2col(const ConvShape *s, const float *xn, float *cols) {
    const int P = s->Ho * s->Wo;
    for (int c = 0; c < s->C; c++)
        for (int i = 0; i < s->kh; i++)
            for (int j = 0; j < s->kw; j++) {
                float *row = cols + ((size_t)(c * s->kh + i) * s->kw + j) * P;
                int lo, hi;
                valid_range(s->Wo, s->W, s->sw, s->pw, j, &lo, &hi);
                for (int oh = 0; oh < s->Ho; oh++) {
                    float *r = row + (size_t)oh * s->Wo;
                    int ih = oh * s->sh - s->ph + i;
                    if (ih < 0 || ih >= s->H) { memset(r, 0, sizeof(float) * s->Wo); continue; }
                    const float *xr = xn + ((size_t)c * s->H + ih) * s->W;
                    const int off = j - s->pw;
                    for (int ow = 0; ow < lo; ow++) r[ow] = 0.0f;
                    for (int ow = lo; ow < hi; ow++) r[ow] = xr[ow * s->sw + off];
                    for (int ow = hi; ow < s->Wo; ow++) r[ow] = 0.0f;
                }
            }
}

/* dxn [C,H,W] += col2im(dcols [C*kh*kw, Ho*Wo]), rows in a fixed order. */
static void col2im_add(const ConvShape *s, const float *dcols, float *dxn) {
    const int P = s->Ho * s->Wo;
    for (int c = 0; c < s->C; c++)
        for (int i = 0; i < s->kh; i++)
            for (int j = 0; j < s->kw; j++) {
                const float *row = dcols + ((size_t)(c * s->kh + i) * s->kw + j) * P;
                int lo, hi;
                valid_range(s->Wo, s->W, s->sw, s->pw, j, &lo, &hi);
                for (int oh = 0; oh < s->Ho; oh++) {
                    int ih = oh * s->sh - s->ph + i;
                    if (ih < 0 || ih >= s->H) continue;
                    const float *r = row + (size_t)oh * s->Wo;
                    float *xr = dxn + ((size_t)c * s->H + ih) * s->W;
                    const int off = j - s->pw;
                    for (int ow = lo; ow < hi; ow++) xr[ow * s->sw + off] += r[ow];
                }
            }
}

/* ---- forward ---- */

/* One image: xn [C,H,W] -> yn [K,Ho*Wo]; cols is a scratch slice (unused if pointwise). */
static void forward_image(const ConvShape *s, const float *xn, const float *w, const float *b, float *yn,
                          float *cols, GemmFn mm) {
    const int P = s->Ho * s->Wo, CKK = s->C * s->kh * s->kw;
    const float *B = xn;
    if (!is_pointwise(s)) { im2col(s, xn, cols); B = cols; }
    mm(0, 0, s->K, P, CKK, 1.0f, w, CKK, B, P, 0.0f, yn, P);
    if (b)
        for (int k = 0; k < s->K; k++) {
            float *r = yn + (size_t)k * P;
            for (int p = 0; p < P; p++) r[p] += b[k];
        }
}

typedef struct {
    const ConvShape *s;
    const float *x, *w, *b, *dy;
    float *y, *dx;
    float *scratch;   /* [nslices, slice] */
    size_t slice;     /* floats per slice */
    int nslices;
    int count;        /* images [0, count) are spread over the workers */
} ConvJob;

static float *slice_of(const ConvJob *j, int ith) {
    return j->scratch ? j->scratch + (size_t)ith * j->slice : NULL;
}

static void forward_worker(void *p, int ith, int nth) {
    ConvJob *j = p;
    const ConvShape *s = j->s;
    int use = nth < j->nslices ? nth : j->nslices;
    if (ith >= use) return;
    long lo, hi;
    par_range(j->count, ith, use, &lo, &hi);
    size_t xs = (size_t)s->C * s->H * s->W, ys = (size_t)s->K * s->Ho * s->Wo;
    for (long n = lo; n < hi; n++)
        forward_image(s, j->x + n * xs, j->w, j->b, j->y + n * ys, slice_of(j, ith), gemm_st);
}

/* Images [0, full) go one per worker (full = N rounded down to a multiple of the
 * slices, so no worker idles), the rest one at a time with the threaded gemm. */
static int spread_count(const ConvShape *s, int nslices) {
    return nslices >= 2 ? s->N - s->N % nslices : 0;
}

void conv2d_forward(const ConvShape *s, const float *x, const float *w, const float *b, float *y, Workspace *ws) {
    if (s->N == 0) return;
    const size_t xs = (size_t)s->C * s->H * s->W, ys = (size_t)s->K * s->Ho * s->Wo;
    size_t mark = ws_mark(ws), slice = 0;
    float *scratch = NULL;
    int nslices = is_pointwise(s) ? want_slices(s) : take_slices(s, ws, &scratch, &slice);
    ConvJob j = {s, x, w, b, NULL, y, NULL, scratch, slice, nslices, spread_count(s, nslices)};
    if (j.count > 0) par_run(forward_worker, &j);
    for (int n = j.count; n < s->N; n++) forward_image(s, x + n * xs, w, b, y + n * ys, scratch, gemm);
    ws_release(ws, mark);
}

/* ---- backward ---- */

/* One image: dxn [C,H,W] += w^T dyn, through col2im unless pointwise. */
static void backward_dx_image(const ConvShape *s, const float *w, const float *dyn, float *dxn, float *dcols,
                              GemmFn mm) {
    const int P = s->Ho * s->Wo, CKK = s->C * s->kh * s->kw;
    if (is_pointwise(s)) {
        mm(1, 0, CKK, P, s->K, 1.0f, w, CKK, dyn, P, 1.0f, dxn, P);
        return;
    }
    mm(1, 0, CKK, P, s->K, 1.0f, w, CKK, dyn, P, 0.0f, dcols, P);
    col2im_add(s, dcols, dxn);
}

static void backward_dx_worker(void *p, int ith, int nth) {
    ConvJob *j = p;
    const ConvShape *s = j->s;
    int use = nth < j->nslices ? nth : j->nslices;
    if (ith >= use) return;
    long lo, hi;
    par_range(j->count, ith, use, &lo, &hi);
    size_t xs = (size_t)s->C * s->H * s->W, ys = (size_t)s->K * s->Ho * s->Wo;
    for (long n = lo; n < hi; n++)
        backward_dx_image(s, j->w, j->dy + n * ys, j->dx + n * xs, slice_of(j, ith), gemm_st);
}

void conv2d_backward(const ConvShape *s, const float *x, const float *w, const float *dy,
                     float *dx, float *dw, float *db, Workspace *ws) {
    if (s->N == 0) return;
    const int P = s->Ho * s->Wo, CKK = s->C * s->kh * s->kw;
    const size_t xs = (size_t)s->C * s->H * s->W, ys = (size_t)s->K * P;
    size_t mark = ws_mark(ws), slice = 0;
    float *scratch = NULL;
    int nslices = is_pointwise(s) ? want_slices(s) : take_slices(s, ws, &scratch, &slice);

    if (dx) { /* per image, independent: spread over threads as in the forward */
        ConvJob j = {s, x, w, NULL, dy, NULL, dx, scratch, slice, nslices, spread_count(s, nslices)};
        if (j.count > 0) par_run(backward_dx_worker, &j);
        for (int n = j.count; n < s->N; n++) backward_dx_image(s, w, dy + n * ys, dx + n * xs, scratch, gemm);
    }
    if (dw) /* dw [K, CKK] += dy_n [K,P] cols_n^T [P,CKK], images in batch order */
        for (int n = 0; n < s->N; n++) {
            const float *B = x + n * xs;
            if (!is_pointwise(s)) { im2col(s, B, scratch); B = scratch; }
            gemm(0, 1, s->K, CKK, P, 1.0f, dy + n * ys, P, B, P, 1.0f, dw, CKK);
        }
    if (db)
        for (int k = 0; k < s->K; k++) {
            double sum = 0.0;
            for (int n = 0; n < s->N; n++) {
                const float *r = dy + n * ys + (size_t)k * P;
                for (int p = 0; p < P; p++) sum += r[p];
            }
            db[k] += (float)sum;
        }
    ws_release(ws, mark);
}

/* ---- naive references: direct loops, double accumulation ---- */

void conv2d_forward_ref(const ConvShape *s, const float *x, const float *w, const float *b, float *y) {
    for (int n = 0; n < s->N; n++)
        for (int k = 0; k < s->K; k++)
            for (int oh = 0; oh < s->Ho; oh++)
                for (int ow = 0; ow < s->Wo; ow++) {
                    double sum = b ? b[k] : 0.0;
                    for (int c = 0; c < s->C; c++)
                        for (int i = 0; i < s->kh; i++)
                            for (int j = 0; j < s->kw; j++) {
                                int ih = oh * s->sh - s->ph + i, iw = ow * s->sw - s->pw + j;
                                if (ih < 0 || ih >= s->H || iw < 0 || iw >= s->W) continue;
                                sum += (double)x[(((size_t)n * s->C + c) * s->H + ih) * s->W + iw] *
                                       w[(((size_t)k * s->C + c) * s->kh + i) * s->kw + j];
                            }
                    y[(((size_t)n * s->K + k) * s->Ho + oh) * s->Wo + ow] = (float)sum;
                }
}

void conv2d_backward_ref(const ConvShape *s, const float *x, const float *w, const float *dy,
                         float *dx, float *dw, float *db) {
#define DY(n, k, oh, ow) dy[(((size_t)(n) * s->K + (k)) * s->Ho + (oh)) * s->Wo + (ow)]
    if (dx) /* gather: every output (oh, ow) whose window covers (ih, iw) */
        for (int n = 0; n < s->N; n++)
            for (int c = 0; c < s->C; c++)
                for (int ih = 0; ih < s->H; ih++)
                    for (int iw = 0; iw < s->W; iw++) {
                        double sum = 0.0;
                        for (int k = 0; k < s->K; k++)
                            for (int i = 0; i < s->kh; i++)
                                for (int j = 0; j < s->kw; j++) {
                                    int th = ih + s->ph - i, tw = iw + s->pw - j;
                                    if (th < 0 || tw < 0 || th % s->sh || tw % s->sw) continue;
                                    int oh = th / s->sh, ow = tw / s->sw;
                                    if (oh >= s->Ho || ow >= s->Wo) continue;
                                    sum += (double)w[(((size_t)k * s->C + c) * s->kh + i) * s->kw + j] *
                                           DY(n, k, oh, ow);
                                }
                        dx[(((size_t)n * s->C + c) * s->H + ih) * s->W + iw] += (float)sum;
                    }
    if (dw)
        for (int k = 0; k < s->K; k++)
            for (int c = 0; c < s->C; c++)
                for (int i = 0; i < s->kh; i++)
                    for (int j = 0; j < s->kw; j++) {
                        double sum = 0.0;
                        for (int n = 0; n < s->N; n++)
                            for (int oh = 0; oh < s->Ho; oh++)
                                for (int ow = 0; ow < s->Wo; ow++) {
                                    int ih = oh * s->sh - s->ph + i, iw = ow * s->sw - s->pw + j;
                                    if (ih < 0 || ih >= s->H || iw < 0 || iw >= s->W) continue;
                                    sum += (double)x[(((size_t)n * s->C + c) * s->H + ih) * s->W + iw] *
                                           DY(n, k, oh, ow);
                                }
                        dw[(((size_t)k * s->C + c) * s->kh + i) * s->kw + j] += (float)sum;
                    }
    if (db)
        for (int k = 0; k < s->K; k++) {
            double sum = 0.0;
            for (int n = 0; n < s->N; n++)
                for (int oh = 0; oh < s->Ho; oh++)
                    for (int ow = 0; ow < s->Wo; ow++) sum += DY(n, k, oh, ow);
            db[k] += (float)sum;
        }
#undef DY
}
