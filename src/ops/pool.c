/* pool: max pooling (with argmax for the backward) and adaptive average pooling,
 * NCHW float32 (see ops/pool.h).
 *   x, dx [N,C,H,W]; y, dy, argmax [N,C,Ho,Wo]
 * Both follow PyTorch's CPU kernels: maxpool treats padding as -inf, keeps the first
 * maximum (a NaN wins, as in PyTorch) and starts the argmax at the window's first
 * in-bounds element; adaptive average divides the bin sum by kh then by kw.
 * Not for: ceil_mode, dilation, average pooling with a fixed kernel. */
#include "ops/pool.h"
#include "core/err.h"
#include <math.h>

int pool_out_size(int in, int k, int s, int p) {
    GAD_ASSERT(k > 0 && s > 0 && p >= 0 && in + 2 * p >= k);
    return (in + 2 * p - k) / s + 1;
}

void maxpool_forward(int N, int C, int H, int W, int k, int s, int p, const float *x, float *y, int32_t *argmax) {
    GAD_ASSERT(2 * p <= k); /* PyTorch's rule: every window then holds a real element */
    const int Ho = pool_out_size(H, k, s, p), Wo = pool_out_size(W, k, s, p);
    for (long nc = 0; nc < (long)N * C; nc++) {
        const float *xp = x + (size_t)nc * H * W;
        float *yp = y + (size_t)nc * Ho * Wo;
        int32_t *ap = argmax + (size_t)nc * Ho * Wo;
        for (int oh = 0; oh < Ho; oh++) {
            int h0 = oh * s - p, h1 = h0 + k < H ? h0 + k : H;
            if (h0 < 0) h0 = 0;
            for (int ow = 0; ow < Wo; ow++) {
                int w0 = ow * s - p, w1 = w0 + k < W ? w0 + k : W;
                if (w0 < 0) w0 = 0;
                float m = -INFINITY;
                int32_t am = h0 * W + w0;
                for (int ih = h0; ih < h1; ih++)
                    for (int iw = w0; iw < w1; iw++) {
                        float v = xp[ih * W + iw];
                        if (v > m || isnan(v)) { m = v; am = ih * W + iw; }
                    }
                yp[oh * Wo + ow] = m;
                ap[oh * Wo + ow] = am;
            }
        }
    }
}

void maxpool_backward(int N, int C, int H, int W, int k, int s, int p, const int32_t *argmax,
                      const float *dy, float *dx) {
    if (!dx) return;
    const int Ho = pool_out_size(H, k, s, p), Wo = pool_out_size(W, k, s, p);
    for (long nc = 0; nc < (long)N * C; nc++) {
        float *dp = dx + (size_t)nc * H * W;
        const float *gp = dy + (size_t)nc * Ho * Wo;
        const int32_t *ap = argmax + (size_t)nc * Ho * Wo;
        for (int i = 0; i < Ho * Wo; i++) {
            GAD_ASSERT(ap[i] >= 0 && ap[i] < H * W);
            dp[ap[i]] += gp[i];
        }
    }
}

/* Bin i of `out` over `in`: [floor(i*in/out), ceil((i+1)*in/out)). */
static int bin_start(int i, int in, int out) { return (int)((long)i * in / out); }
static int bin_end(int i, int in, int out) { return (int)(((long)(i + 1) * in + out - 1) / out); }

void adaptive_avgpool_forward(int N, int C, int H, int W, int Ho, int Wo, const float *x, float *y) {
    GAD_ASSERT(H > 0 && W > 0 && Ho > 0 && Wo > 0);
    for (long nc = 0; nc < (long)N * C; nc++) {
        const float *xp = x + (size_t)nc * H * W;
        float *yp = y + (size_t)nc * Ho * Wo;
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
    }
}

void adaptive_avgpool_backward(int N, int C, int H, int W, int Ho, int Wo, const float *dy, float *dx) {
    if (!dx) return;
    for (long nc = 0; nc < (long)N * C; nc++) {
        float *dp = dx + (size_t)nc * H * W;
        const float *gp = dy + (size_t)nc * Ho * Wo;
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
