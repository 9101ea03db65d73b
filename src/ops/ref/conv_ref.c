/* conv_ref: 2-D convolution (ops/conv.h's) as its definition, one output or gradient
 * element at a time, summed in double:
 *   y[n,k,oh,ow] = b[k] + sum over c, i, j of x[n, c, oh*sh - ph + i, ow*sw - pw + j] w[k,c,i,j]
 * (x is 0 outside the image). The input gradient gathers, for each x element, every
 * output whose window covers it; the weight gradient sums x times dy over the batch.
 * Not for: speed (ops/conv.c's routes), dilation, groups. */
#include "ops/ref.h"
#include <stddef.h>

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
