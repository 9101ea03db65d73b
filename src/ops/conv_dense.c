/* conv_dense: the dense route, for maps with fewer positions than live taps (a 3x3
 * kernel with padding 1 on a 2x2 map: every output's window is more than half
 * padding). There the convolution is the linear layer it is, from an image's C*H*W
 * input values to its K*Ho*Wo outputs:
 *   y[n] = Wd x[n],  Wd [K*P, C*Q],  Wd[k*P + p][c*Q + q] = w[k, c, i, j]
 *   with i = qi - (pi*sh - ph), j = qj - (pj*sw - pw), 0 where (i, j) is off the kernel
 * (P = Ho*Wo outputs p = (pi, pj), Q = H*W inputs q = (qi, qj)): Q multiply-adds per
 * output and input channel instead of one per live tap (4 instead of 9 on 2x2 maps).
 * The input gradient is dx[n] += Wd^T dy[n], through the same matrix. Both are one
 * gemm over the batch (each element gemm's chain: the same bits whatever the batch
 * and the thread count). Wd is built per call in the workspace, or prepared once
 * (conv.h's prepared weights) where the weights stay fixed over many passes. The
 * weight gradient is the gradient of Wd, sum over n of dy[n] x[n]^T (one gemm, with
 * x's columns taken as (q, c) so that a tap's channels lie side by side), folded back
 * onto the taps: dw[k, c, tap] += the sum over the (p, q) pairs of that tap.
 * Not for: large matrices (conv.c bounds Wd's size). */
#include "ops/conv_route.h"
#include "core/err.h"
#include "core/gemm.h"
#include "core/threads.h"

size_t conv_dense_floats(const ConvShape *s) {
    return (size_t)s->K * s->Ho * s->Wo * (size_t)s->C * s->H * s->W;
}

typedef struct {
    const ConvShape *s;
    const float *w;
    float *wd;
} DenseJob;

/* Rows (k, p) of Wd over threads: for output p, the tap of each input q (or none),
 * then every input channel's Q values through that table. */
static void dense_worker(void *arg, int ith, int nth) {
    const DenseJob *j = arg;
    const ConvShape *s = j->s;
    const int P = s->Ho * s->Wo, Q = s->H * s->W;
    const size_t T = (size_t)s->kh * s->kw;
    int tap[CONV_DENSE_MAX_Q];
    GAD_ASSERT(Q <= CONV_DENSE_MAX_Q);
    long lo, hi;
    par_range((long)s->K * P, ith, nth, &lo, &hi);
    for (long r = lo; r < hi; r++) {
        const int k = (int)(r / P), p = (int)(r % P);
        const int i0 = p / s->Wo * s->sh - s->ph, j0 = p % s->Wo * s->sw - s->pw;
        for (int q = 0; q < Q; q++) {
            const int i = q / s->W - i0, jj = q % s->W - j0;
            tap[q] = i >= 0 && i < s->kh && jj >= 0 && jj < s->kw ? i * s->kw + jj : -1;
        }
        float *d = j->wd + (size_t)r * s->C * Q;
        const float *wk = j->w + (size_t)k * s->C * T;
        for (int c = 0; c < s->C; c++, d += Q, wk += T)
            for (int q = 0; q < Q; q++) d[q] = tap[q] >= 0 ? wk[tap[q]] : 0.0f;
    }
}

void conv_dense_weights(const ConvShape *s, const float *w, float *wd) {
    DenseJob j = {s, w, wd};
    par_run(dense_worker, &j);
}

/* Wd: the prepared one, or built in ws (the caller releases ws). */
static const float *dense_of(const ConvShape *s, const float *w, const float *prep, Workspace *ws) {
    if (prep) return prep;
    float *wd = ws_floats(ws, conv_dense_floats(s));
    conv_dense_weights(s, w, wd);
    return wd;
}

void conv_dense_forward(const ConvShape *s, const float *x, const float *w, const float *prep, const float *b,
                        const float *scale, const float *shift, int relu, float *y, Workspace *ws) {
    const int P = s->Ho * s->Wo, CQ = s->C * s->H * s->W, KP = s->K * P;
    const size_t mark = ws_mark(ws);
    const float *wd = dense_of(s, w, prep, ws);
    gemm(0, 1, s->N, KP, CQ, 1.0f, x, CQ, wd, CQ, 0.0f, y, KP); /* y [N, KP] = x [N, CQ] Wd^T */
    ws_release(ws, mark);
    if (!b && !scale && !relu) return;
    for (int n = 0; n < s->N; n++)
        for (int k = 0; k < s->K; k++) {
            const Epi e = epi_for(b, scale, shift, relu, k);
            float *row = y + (size_t)n * KP + (size_t)k * P;
            epi_row(row, row, P, &e);
        }
}

void conv_dense_dx(const ConvShape *s, const float *w, const float *prep, const float *dy, float *dx, int fresh,
                   const float *relu_y, ReluRule rule, Workspace *ws) {
    const int P = s->Ho * s->Wo, CQ = s->C * s->H * s->W, KP = s->K * P;
    GAD_ASSERT(!relu_y || fresh);
    const size_t mark = ws_mark(ws);
    const float *wd = dense_of(s, w, prep, ws);
    /* dx [N, CQ] (+)= dy [N, KP] Wd */
    gemm(0, 0, s->N, CQ, KP, 1.0f, dy, KP, wd, CQ, fresh ? 0.0f : 1.0f, dx, CQ);
    ws_release(ws, mark);
    if (fresh)
        for (int n = 0; n < s->N; n++) {
            float *d = dx + (size_t)n * CQ;
            epi_dx_fresh(rule, relu_y ? relu_y + (size_t)n * CQ : NULL, d, d, CQ);
        }
}

size_t conv_dense_dw_floats(const ConvShape *s, int nth) {
    const size_t CQ = (size_t)s->C * s->H * s->W;
    return (ws_round(sizeof(float) * s->N * CQ) + ws_round(sizeof(float) * conv_dense_floats(s)) +
            ws_round(sizeof(float) * nth * s->C)) / sizeof(float);
}

typedef struct {
    const ConvShape *s;
    const float *x, *g; /* x [N, C, Q]; g [K*P, Q*C], the gradient of Wd with columns (q, c) */
    float *xt, *tmp;    /* x as [N, Q, C]; per thread C floats */
    float *dw;
} DwJob;

/* x [N, C, Q] -> xt [N, Q, C], images over threads. */
static void dense_xt_worker(void *arg, int ith, int nth) {
    const DwJob *j = arg;
    const ConvShape *s = j->s;
    const int Q = s->H * s->W, C = s->C;
    long lo, hi;
    par_range(s->N, ith, nth, &lo, &hi);
    for (long n = lo; n < hi; n++) {
        const float *xn = j->x + (size_t)n * C * Q;
        float *d = j->xt + (size_t)n * C * Q;
        for (int q = 0; q < Q; q++)
            for (int c = 0; c < C; c++) d[(size_t)q * C + c] = xn[(size_t)c * Q + q];
    }
}

/* dw[k, c, (i, j)] += sum over outputs p (ascending) whose input q for tap (i, j) is
 * on the map of g[k*P + p][q*C + c]; output channels over threads. */
static void dense_fold_worker(void *arg, int ith, int nth) {
    const DwJob *j = arg;
    const ConvShape *s = j->s;
    const int P = s->Ho * s->Wo, Q = s->H * s->W, C = s->C, T = s->kh * s->kw;
    float *tmp = j->tmp + (size_t)ith * C;
    long lo, hi;
    par_range(s->K, ith, nth, &lo, &hi);
    for (long k = lo; k < hi; k++) {
        float *dwk = j->dw + (size_t)k * C * T;
        for (int i = 0; i < s->kh; i++)
            for (int jj = 0; jj < s->kw; jj++) {
                int any = 0;
                for (int p = 0; p < P; p++) {
                    const int qi = p / s->Wo * s->sh - s->ph + i, qj = p % s->Wo * s->sw - s->pw + jj;
                    if (qi < 0 || qi >= s->H || qj < 0 || qj >= s->W) continue;
                    const float *row = j->g + ((size_t)k * P + p) * Q * C + (size_t)(qi * s->W + qj) * C;
                    if (!any)
                        for (int c = 0; c < C; c++) tmp[c] = row[c];
                    else
                        for (int c = 0; c < C; c++) tmp[c] += row[c];
                    any = 1;
                }
                if (any)
                    for (int c = 0; c < C; c++) dwk[(size_t)c * T + i * s->kw + jj] += tmp[c];
            }
    }
}

void conv_dense_dw(const ConvShape *s, const float *x, const float *dy, float *dw, Workspace *ws) {
    const int P = s->Ho * s->Wo, CQ = s->C * s->H * s->W, KP = s->K * P;
    const size_t mark = ws_mark(ws);
    DwJob j = {s, x, NULL, NULL, NULL, dw};
    j.xt = ws_floats(ws, (size_t)s->N * CQ);
    float *g = ws_floats(ws, conv_dense_floats(s));
    j.tmp = ws_floats(ws, (size_t)par_nthreads() * s->C);
    par_run(dense_xt_worker, &j);
    gemm(1, 0, KP, CQ, s->N, 1.0f, dy, KP, j.xt, CQ, 0.0f, g, CQ); /* g [KP, QC] = dy^T xt */
    j.g = g;
    par_run(dense_fold_worker, &j);
    ws_release(ws, mark);
}
