/* pool_ref: max pooling and adaptive average pooling (ops/pool.h's), one output at a
 * time.
 *   max: the window's largest element, padding counting as -inf; on a tie the first in
 *        row-major order wins, and a NaN wins (as PyTorch); argmax records where it is,
 *        and the backward sends each output's gradient there.
 *   adaptive average: bin i covers input rows [floor(i*H/Ho), ceil((i+1)*H/Ho)), and
 *        likewise columns; the bin's sum divided by its height, then by its width.
 * The same operations in the same order as ops/pool.c, so the same bits.
 * Not for: speed (ops/pool.c), ceil_mode, dilation. */
#include "ops/pool.h"
#include "ops/ref.h"
#include <math.h>
#include <stddef.h>

void maxpool_forward_ref(int N, int C, int H, int W, int k, int s, int p, const float *x, float *y,
                         int32_t *argmax) {
    const int Ho = pool_out_size(H, k, s, p), Wo = pool_out_size(W, k, s, p);
    for (size_t nc = 0; nc < (size_t)N * C; nc++) {
        const float *xp = x + nc * H * W;
        for (int oh = 0; oh < Ho; oh++)
            for (int ow = 0; ow < Wo; ow++) {
                /* the window, clipped to the plane (what lies outside is -inf: it never wins) */
                const int h0 = oh * s - p > 0 ? oh * s - p : 0, h1 = oh * s - p + k < H ? oh * s - p + k : H;
                const int w0 = ow * s - p > 0 ? ow * s - p : 0, w1 = ow * s - p + k < W ? ow * s - p + k : W;
                float m = -INFINITY;
                int32_t am = h0 * W + w0;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) {
                        const float v = xp[ih * W + iw];
                        if (v > m || isnan(v)) { m = v; am = ih * W + iw; }
                    }
                y[(nc * Ho + oh) * Wo + ow] = m;
                argmax[(nc * Ho + oh) * Wo + ow] = am;
            }
    }
}

void maxpool_backward_ref(int N, int C, int H, int W, int k, int s, int p, const int32_t *argmax,
                          const float *dy, float *dx) {
    const size_t HWo = (size_t)pool_out_size(H, k, s, p) * pool_out_size(W, k, s, p);
    if (!dx) return;
    for (size_t nc = 0; nc < (size_t)N * C; nc++)
        for (size_t o = 0; o < HWo; o++) dx[nc * H * W + argmax[nc * HWo + o]] += dy[nc * HWo + o];
}

static int bin_start(int i, int in, int out) { return (int)((long)i * in / out); }
static int bin_end(int i, int in, int out) { return (int)(((long)(i + 1) * in + out - 1) / out); }

void adaptive_avgpool_forward_ref(int N, int C, int H, int W, int Ho, int Wo, const float *x, float *y) {
    for (size_t nc = 0; nc < (size_t)N * C; nc++)
        for (int oh = 0; oh < Ho; oh++)
            for (int ow = 0; ow < Wo; ow++) {
                const int h0 = bin_start(oh, H, Ho), h1 = bin_end(oh, H, Ho);
                const int w0 = bin_start(ow, W, Wo), w1 = bin_end(ow, W, Wo);
                float sum = 0.0f;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) sum += x[(nc * H + ih) * W + iw];
                y[(nc * Ho + oh) * Wo + ow] = sum / (float)(h1 - h0) / (float)(w1 - w0);
            }
}

/* Each output's gradient, divided as its value was, goes to every input of its bin. */
void adaptive_avgpool_backward_ref(int N, int C, int H, int W, int Ho, int Wo, const float *dy, float *dx) {
    if (!dx) return;
    for (size_t nc = 0; nc < (size_t)N * C; nc++)
        for (int oh = 0; oh < Ho; oh++)
            for (int ow = 0; ow < Wo; ow++) {
                const int h0 = bin_start(oh, H, Ho), h1 = bin_end(oh, H, Ho);
                const int w0 = bin_start(ow, W, Wo), w1 = bin_end(ow, W, Wo);
                const float g = dy[(nc * Ho + oh) * Wo + ow] / (float)(h1 - h0) / (float)(w1 - w0);
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) dx[(nc * H + ih) * W + iw] += g;
            }
}
