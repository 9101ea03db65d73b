/* pool: max pooling (with argmax for the backward) and adaptive average pooling,
 * NCHW float32 (see ops/pool.h).
 *   x, dx [N,C,H,W]; y, dy, argmax [N,C,Ho,Wo]
 * Both follow PyTorch's CPU kernels: maxpool treats padding as -inf, keeps the first
 * maximum (a NaN wins, as in PyTorch) and starts the argmax at the window's first
 * in-bounds element; adaptive average divides the bin sum by kh then by kw.
 * Planes (n, c) are independent: large jobs are split between threads by plane;
 * small planes are pooled 16 at a time, interleaved, to vectorise across planes.
 * Not for: ceil_mode, dilation, average pooling with a fixed kernel. */
#include "ops/pool.h"
#include "core/err.h"
#include "core/threads.h"
#include <math.h>

int pool_out_size(int in, int k, int s, int p) {
    GAD_ASSERT(k > 0 && s > 0 && p >= 0 && in + 2 * p >= k);
    return (in + 2 * p - k) / s + 1;
}

typedef struct {
    int NC, H, W, k, s, p, Ho, Wo;
    const float *x, *dy;
    float *y, *dx;
    int32_t *argmax;
    const int32_t *am_in;
    const float *relu_y; /* maxpool_backward_relu: the ReLU's output [NC,H,W] */
    ReluRule rule;
} PoolJob;

/* Output (oh, ow) of a plane: the window scanned in row-major order, the first
 * maximum kept and a NaN taking over, with selects rather than branches (random data
 * would mispredict them). */
/* Window of output (oh, ow) clipped to the plane: rows [h0, h1), columns [w0, w1). */
typedef struct { int h0, h1, w0, w1; } Window;

static Window window_of(const PoolJob *j, int oh, int ow) {
    Window w = {oh * j->s - j->p, 0, ow * j->s - j->p, 0};
    w.h1 = w.h0 + j->k < j->H ? w.h0 + j->k : j->H;
    w.w1 = w.w0 + j->k < j->W ? w.w0 + j->k : j->W;
    if (w.h0 < 0) w.h0 = 0;
    if (w.w0 < 0) w.w0 = 0;
    return w;
}

static void maxpool_one(const PoolJob *j, const float *xp, int oh, int ow, float *y, int32_t *a) {
    const int W = j->W;
    const Window win = window_of(j, oh, ow);
    const int h0 = win.h0, h1 = win.h1, w0 = win.w0, w1 = win.w1;
    float m = -INFINITY;
    int32_t am = h0 * W + w0;
    for (int ih = h0; ih < h1; ih++)
        for (int iw = w0; iw < w1; iw++) {
            const float v = xp[ih * W + iw];
            const int take = (v > m) | (v != v);
            m = take ? v : m;
            am = take ? ih * W + iw : am;
        }
    *y = m;
    *a = am;
}

/* Stride 2 with k = 2 (p = 0) or k = 3 (p = 1), B outputs at a time (16, 8, then 4):
 * each window row is loaded as its even and odd columns (e[t] = column c0 + 2t,
 * o[t] = c0 + 2t + 1, and for k = 3 e[t + 1] = c0 + 2t + 2), compared in the same
 * order as maxpool_one; the compiler vectorises it. Clipped windows take maxpool_one. */
#define S2_BLOCK(B)                                                                        \
    for (; ow + (B) - 1 <= last && ow + (B) <= j->Wo; ow += (B)) {                        \
        float m[B], e[(B) + 1], o[B];                                                      \
        int32_t am[B];                                                                     \
        const int c0 = 2 * ow - p; /* first window column of the block's first output */ \
        for (int t = 0; t < (B); t++) { m[t] = -INFINITY; am[t] = h0 * W + c0 + 2 * t; } \
        for (int ih = h0; ih < h1; ih++) {                                                 \
            const float *r = xp + (size_t)ih * W + c0;                                     \
            const int32_t base = ih * W + c0;                                              \
            for (int t = 0; t < (B); t++) { e[t] = r[2 * t]; o[t] = r[2 * t + 1]; }        \
            e[B] = k == 3 ? r[2 * (B)] : 0.0f;                                             \
            for (int dc = 0; dc < k; dc++) {                                               \
                const float *v = dc == 1 ? o : e + dc / 2;                                 \
                for (int t = 0; t < (B); t++) {                                            \
                    const int take = (v[t] > m[t]) | (v[t] != v[t]);                       \
                    m[t] = take ? v[t] : m[t];                                             \
                    am[t] = take ? base + dc + 2 * t : am[t];                              \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
        for (int t = 0; t < (B); t++) { yr[ow + t] = m[t]; ar[ow + t] = am[t]; }          \
    }
static void maxpool_row_s2(const PoolJob *j, const float *xp, int oh, float *yr, int32_t *ar) {
    const int W = j->W, k = j->k, p = j->p;
    int h0 = 2 * oh - p, h1 = h0 + k < j->H ? h0 + k : j->H;
    if (h0 < 0) h0 = 0;
    const int first = p, last = (W - k + p) / 2; /* ow in [first, last]: whole windows */
    int ow = 0;
    for (; ow < first && ow < j->Wo; ow++) maxpool_one(j, xp, oh, ow, yr + ow, ar + ow);
    S2_BLOCK(16)
    S2_BLOCK(8)
    S2_BLOCK(4)
    for (; ow < j->Wo; ow++) maxpool_one(j, xp, oh, ow, yr + ow, ar + ow);
}
#undef S2_BLOCK

/* Small planes, LANES at a time: the planes are interleaved into a local buffer
 * (element q of plane l at X[q*LANES + l]) and every window is then scanned once for
 * all of them, in maxpool_one's order and with its rule, as selects on LANES-wide
 * rows that the compiler vectorises (a small plane's rows are too short to vectorise
 * along). Same values and argmax as maxpool_one, bit for bit. */
#define LANES 16
#define SMALL_PLANE 256 /* H*W at most: X is 16 KiB */
#if defined(__GNUC__)
#define NO_INLINE __attribute__((noinline)) /* gcc inlined, it no longer vectorises the loop */
#else
#define NO_INLINE
#endif
NO_INLINE static void take_lanes(const float *restrict v, int32_t idx, float *restrict m, int32_t *restrict am) {
    for (int l = 0; l < LANES; l++) {
        const int take = (v[l] > m[l]) | (v[l] != v[l]);
        m[l] = take ? v[l] : m[l];
        am[l] = take ? idx : am[l];
    }
}

static void maxpool_small(const PoolJob *j, long nc0, int np) {
    const int W = j->W, HW = j->H * W, HWo = j->Ho * j->Wo;
    float X[SMALL_PLANE * LANES], m[LANES];
    int32_t am[LANES];
    for (int l = 0; l < LANES; l++) {
        const float *xp = j->x + (size_t)(nc0 + (l < np ? l : 0)) * HW; /* spare lanes: a copy */
        for (int q = 0; q < HW; q++) X[q * LANES + l] = xp[q];
    }
    for (int oh = 0; oh < j->Ho; oh++)
        for (int ow = 0; ow < j->Wo; ow++) {
            const Window win = window_of(j, oh, ow);
            for (int l = 0; l < LANES; l++) {
                m[l] = -INFINITY;
                am[l] = win.h0 * W + win.w0;
            }
            for (int ih = win.h0; ih < win.h1; ih++)
                for (int iw = win.w0; iw < win.w1; iw++) take_lanes(X + (size_t)(ih * W + iw) * LANES, ih * W + iw, m, am);
            const int o = oh * j->Wo + ow;
            for (int l = 0; l < np; l++) {
                j->y[(size_t)(nc0 + l) * HWo + o] = m[l];
                j->argmax[(size_t)(nc0 + l) * HWo + o] = am[l];
            }
        }
}

static void maxpool_fwd_worker(void *arg, int ith, int nth) {
    const PoolJob *j = arg;
    const int s2 = j->s == 2 && ((j->k == 2 && j->p == 0) || (j->k == 3 && j->p == 1));
    long lo, hi;
    par_range(j->NC, ith, nth, &lo, &hi);
    if (j->H * j->W <= SMALL_PLANE && j->Wo < 16) { /* wider rows: maxpool_row_s2 vectorises along them */
        for (long nc = lo; nc < hi; nc += LANES) maxpool_small(j, nc, hi - nc < LANES ? (int)(hi - nc) : LANES);
        return;
    }
    for (long nc = lo; nc < hi; nc++) {
        const float *xp = j->x + (size_t)nc * j->H * j->W;
        float *yp = j->y + (size_t)nc * j->Ho * j->Wo;
        int32_t *ap = j->argmax + (size_t)nc * j->Ho * j->Wo;
        for (int oh = 0; oh < j->Ho; oh++) {
            if (s2) maxpool_row_s2(j, xp, oh, yp + (size_t)oh * j->Wo, ap + (size_t)oh * j->Wo);
            else
                for (int ow = 0; ow < j->Wo; ow++)
                    maxpool_one(j, xp, oh, ow, yp + (size_t)oh * j->Wo + ow, ap + (size_t)oh * j->Wo + ow);
        }
    }
}

/* Planes are independent: threads take whole planes when there is enough work. */
static void pool_run(par_fn fn, PoolJob *j, size_t work) {
    if (work >= 65536) par_run(fn, j);
    else fn(j, 0, 1);
}

void maxpool_forward(int N, int C, int H, int W, int k, int s, int p, const float *x, float *y, int32_t *argmax) {
    GAD_ASSERT(2 * p <= k); /* PyTorch's rule: every window then holds a real element */
    PoolJob j = {N * C, H, W, k, s, p, pool_out_size(H, k, s, p), pool_out_size(W, k, s, p), x, NULL, y, NULL,
                 argmax, NULL, NULL, RELU_STANDARD};
    pool_run(maxpool_fwd_worker, &j, (size_t)N * C * j.Ho * j.Wo * k * k);
}

static void maxpool_bwd_worker(void *arg, int ith, int nth) {
    const PoolJob *j = arg;
    const int H = j->H, W = j->W, HWo = j->Ho * j->Wo;
    long lo, hi;
    par_range(j->NC, ith, nth, &lo, &hi);
    for (long nc = lo; nc < hi; nc++) {
        float *dp = j->dx + (size_t)nc * H * W;
        const float *gp = j->dy + (size_t)nc * HWo;
        const int32_t *ap = j->am_in + (size_t)nc * HWo;
        for (int i = 0; i < HWo; i++) {
            GAD_ASSERT(ap[i] >= 0 && ap[i] < H * W);
            dp[ap[i]] += gp[i];
        }
    }
}

void maxpool_backward(int N, int C, int H, int W, int k, int s, int p, const int32_t *argmax,
                      const float *dy, float *dx) {
    if (!dx) return;
    PoolJob j = {N * C, H, W, k, s, p, pool_out_size(H, k, s, p), pool_out_size(W, k, s, p), NULL, dy, NULL, dx,
                 NULL, argmax, NULL, RELU_STANDARD};
    pool_run(maxpool_bwd_worker, &j, (size_t)N * C * j.Ho * j.Wo);
}

/* Plane by plane, while it is in cache: zeros, the routed gradient added, then the
 * ReLU's backward set in place (0 + term), block by block. */
static void maxpool_bwd_relu_worker(void *arg, int ith, int nth) {
    const PoolJob *j = arg;
    const int HW = j->H * j->W, HWo = j->Ho * j->Wo;
    long lo, hi;
    par_range(j->NC, ith, nth, &lo, &hi);
    for (long nc = lo; nc < hi; nc++) {
        float *dp = j->dx + (size_t)nc * HW;
        const float *gp = j->dy + (size_t)nc * HWo, *yp = j->relu_y + (size_t)nc * HW;
        const int32_t *ap = j->am_in + (size_t)nc * HWo;
        for (int i = 0; i < HW; i++) dp[i] = 0.0f;
        for (int i = 0; i < HWo; i++) {
            GAD_ASSERT(ap[i] >= 0 && ap[i] < HW);
            dp[ap[i]] += gp[i];
        }
        int i = 0;
        for (; i + RELU_BLK <= HW; i += RELU_BLK) relu_backward_set_block(j->rule, yp + i, dp + i, dp + i);
        for (; i < HW; i++) dp[i] = 0.0f + relu_backward_term(j->rule, yp[i], dp[i]);
    }
}

void maxpool_backward_relu(int N, int C, int H, int W, int k, int s, int p, const int32_t *argmax,
                           const float *dy, const float *relu_y, ReluRule rule, float *dx) {
    if (!dx) return;
    GAD_ASSERT(rule == RELU_STANDARD || rule == RELU_DECONV || rule == RELU_GUIDED);
    PoolJob j = {N * C, H, W, k, s, p, pool_out_size(H, k, s, p), pool_out_size(W, k, s, p), NULL, dy, NULL, dx,
                 NULL, argmax, relu_y, rule};
    pool_run(maxpool_bwd_relu_worker, &j, (size_t)N * C * H * W);
}

/* Bin i of `out` over `in`: [floor(i*in/out), ceil((i+1)*in/out)). */
static int bin_start(int i, int in, int out) { return (int)((long)i * in / out); }
static int bin_end(int i, int in, int out) { return (int)(((long)(i + 1) * in + out - 1) / out); }

/* Planes [lo, hi): forward (dx == NULL) or backward. Two common cases are plain
 * copies with the same arithmetic as the general loop (a bin of one element is
 * (0 + x) / 1 / 1 = 0 + x): the output size equals the input's (VGG at 224x224), and a 1x1
 * input spread over every bin (VGG at 32x32). */
static void avgpool_planes(const PoolJob *j, long lo, long hi) {
    const int H = j->H, W = j->W, Ho = j->Ho, Wo = j->Wo, HWo = Ho * Wo;
    const int same = H == Ho && W == Wo, one = H == 1 && W == 1;
    for (long nc = lo; nc < hi; nc++) {
        const size_t xi = (size_t)nc * H * W, yi = (size_t)nc * HWo;
        if (!j->dx) {
            const float *xp = j->x + xi;
            float *yp = j->y + yi;
            if (same) { for (int q = 0; q < HWo; q++) yp[q] = 0.0f + xp[q]; continue; }
            if (one) { for (int q = 0; q < HWo; q++) yp[q] = 0.0f + xp[0]; continue; }
            for (int oh = 0; oh < Ho; oh++) {
                int h0 = bin_start(oh, H, Ho), h1 = bin_end(oh, H, Ho);
                for (int ow = 0; ow < Wo; ow++) {
                    int w0 = bin_start(ow, W, Wo), w1 = bin_end(ow, W, Wo);
                    float sum = 0.0f;
                    for (int ih = h0; ih < h1; ih++)
                        for (int iw = w0; iw < w1; iw++) sum += xp[ih * W + iw];
                    yp[oh * Wo + ow] = sum / (float)(h1 - h0) / (float)(w1 - w0);
                }
            }
        } else {
            float *dp = j->dx + xi;
            const float *gp = j->dy + yi;
            if (same) { for (int q = 0; q < HWo; q++) dp[q] += gp[q]; continue; }
            if (one) { for (int q = 0; q < HWo; q++) dp[0] += gp[q]; continue; }
            for (int oh = 0; oh < Ho; oh++) {
                int h0 = bin_start(oh, H, Ho), h1 = bin_end(oh, H, Ho);
                for (int ow = 0; ow < Wo; ow++) {
                    int w0 = bin_start(ow, W, Wo), w1 = bin_end(ow, W, Wo);
                    float g = gp[oh * Wo + ow] / (float)(h1 - h0) / (float)(w1 - w0);
                    for (int ih = h0; ih < h1; ih++)
                        for (int iw = w0; iw < w1; iw++) dp[ih * W + iw] += g;
                }
            }
        }
    }
}

static void avgpool_worker(void *arg, int ith, int nth) {
    const PoolJob *j = arg;
    long lo, hi;
    par_range(j->NC, ith, nth, &lo, &hi);
    avgpool_planes(j, lo, hi);
}

void adaptive_avgpool_forward(int N, int C, int H, int W, int Ho, int Wo, const float *x, float *y) {
    GAD_ASSERT(H > 0 && W > 0 && Ho > 0 && Wo > 0);
    PoolJob j = {N * C, H, W, 0, 0, 0, Ho, Wo, x, NULL, y, NULL, NULL, NULL, NULL, RELU_STANDARD};
    pool_run(avgpool_worker, &j, (size_t)N * C * (H * W + Ho * Wo));
}

void adaptive_avgpool_backward(int N, int C, int H, int W, int Ho, int Wo, const float *dy, float *dx) {
    if (!dx) return;
    PoolJob j = {N * C, H, W, 0, 0, 0, Ho, Wo, NULL, dy, NULL, dx, NULL, NULL, NULL, RELU_STANDARD};
    pool_run(avgpool_worker, &j, (size_t)N * C * (H * W + Ho * Wo));
}
