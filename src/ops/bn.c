/* bn: BatchNorm2d forward and backward, train and eval mode (see ops/bn.h).
 *   x, y, dy, dx [N,C,HW]; gamma, beta, running_*, save_* [C]
 * Fast versions: statistics summed in double per channel (BLK partial sums, lane =
 * position in the row mod BLK, so the order depends on the shape only), the
 * per-element map in float as y = x*scale + shift (as PyTorch's CPU kernel); rows go
 * in blocks of BLK through local arrays, which compilers vectorise at -O2; channels
 * are spread over the thread pool (each channel is independent, so results never
 * depend on threads).
 * Train forward also accepts NULL running_* or save_* (that output is then skipped).
 * Not for: 1-D/3-D batch norm, momentum = None, gamma/beta absent (affine = False). */
#include "ops/bn.h"
#include "core/err.h"
#include "core/threads.h"
#include <math.h>

#define AT(a, n, c, p) (a)[((size_t)(n) * C + (c)) * HW + (p)]

typedef struct {
    int N, C, HW, train;
    int relu;                    /* forward: y = max(y, 0) as it is written */
    const float *x, *gamma, *beta, *dy;
    float *running_mean, *running_var, momentum, eps; /* train forward: updated in place */
    const float *mean, *invstd;  /* train backward: saved statistics */
    const float *rmean, *rvar;   /* eval: running statistics (read only) */
    float *y, *save_mean, *save_invstd, *dx, *dgamma, *dbeta;
} BnJob;

/* ---- row helpers: blocks of BLK through local arrays (vectorised at -O2), sums in
 * BLK double lanes (lane = position in the row mod BLK), so the order of every sum
 * depends on the shape only ---- */
#define BLK 16

static double lanes_total(const double *acc) {
    double t[BLK / 2];
    for (int k = 0; k < BLK / 2; k++) t[k] = acc[k] + acc[k + BLK / 2];
    for (int h = BLK / 4; h >= 1; h /= 2)
        for (int k = 0; k < h; k++) t[k] += t[k + h];
    return t[0];
}

/* acc += x (first == NULL) or (x - mean)^2 over a row of n. */
static void row_sums(const float *x, int n, double mean, int squares, double *acc) {
    int p = 0;
    for (; p + BLK <= n; p += BLK) {
        double d[BLK];
        for (int k = 0; k < BLK; k++) d[k] = x[p + k];
        if (squares)
            for (int k = 0; k < BLK; k++) { d[k] -= mean; d[k] *= d[k]; }
        for (int k = 0; k < BLK; k++) acc[k] += d[k];
    }
    for (int k = 0; p < n; p++, k++) {
        double d = x[p];
        if (squares) { d -= mean; d *= d; }
        acc[k] += d;
    }
}

/* y = x*scale + shift over a row of n (y may alias x), then max(y, 0) with relu (the
 * same bits as relu_forward afterwards). */
static void row_affine(const float *x, int n, float scale, float shift, int relu, float *y) {
    int p = 0;
    for (; p + BLK <= n; p += BLK) {
        float v[BLK];
        for (int k = 0; k < BLK; k++) v[k] = x[p + k];
        for (int k = 0; k < BLK; k++) v[k] = v[k] * scale + shift;
        if (relu)
            for (int k = 0; k < BLK; k++) v[k] = v[k] > 0.0f ? v[k] : 0.0f;
        for (int k = 0; k < BLK; k++) y[p + k] = v[k];
    }
    for (; p < n; p++) {
        float v = x[p] * scale + shift;
        y[p] = relu ? (v > 0.0f ? v : 0.0f) : v;
    }
}

/* ---- train forward ---- */

static void fwd_train_channel(const BnJob *j, int c) {
    const int N = j->N, C = j->C, HW = j->HW;
    const double cnt = (double)N * HW;
    double acc[BLK] = {0};
    for (int n = 0; n < N; n++) row_sums(&AT(j->x, n, c, 0), HW, 0.0, 0, acc);
    const double mean = lanes_total(acc) / cnt;
    for (int k = 0; k < BLK; k++) acc[k] = 0.0;
    for (int n = 0; n < N; n++) row_sums(&AT(j->x, n, c, 0), HW, mean, 1, acc);
    const double var = lanes_total(acc) / cnt; /* biased: used to normalise */
    const float invstd = (float)(1.0 / sqrt(var + j->eps));
    const float scale = j->gamma[c] * invstd, shift = j->beta[c] - (float)mean * scale;
    for (int n = 0; n < N; n++) row_affine(&AT(j->x, n, c, 0), HW, scale, shift, j->relu, &AT(j->y, n, c, 0));
    if (j->save_mean) j->save_mean[c] = (float)mean;
    if (j->save_invstd) j->save_invstd[c] = invstd;
    const double m = j->momentum;
    if (j->running_mean) j->running_mean[c] = (float)((1.0 - m) * j->running_mean[c] + m * mean);
    if (j->running_var) j->running_var[c] = (float)((1.0 - m) * j->running_var[c] + m * var * cnt / (cnt - 1.0));
}

static void fwd_train_worker(void *p, int ith, int nth) {
    const BnJob *j = p;
    long lo, hi;
    par_range(j->C, ith, nth, &lo, &hi);
    for (long c = lo; c < hi; c++) fwd_train_channel(j, (int)c);
}

void bn_forward_train(int N, int C, int HW, const float *x, const float *gamma, const float *beta,
                      float *running_mean, float *running_var, float momentum, float eps,
                      float *y, float *save_mean, float *save_invstd) {
    bn_forward_train_act(N, C, HW, x, gamma, beta, running_mean, running_var, momentum, eps, y, save_mean,
                         save_invstd, 0);
}

void bn_forward_train_act(int N, int C, int HW, const float *x, const float *gamma, const float *beta,
                          float *running_mean, float *running_var, float momentum, float eps,
                          float *y, float *save_mean, float *save_invstd, int relu) {
    GAD_ASSERT((long)N * HW > 1); /* PyTorch: "Expected more than 1 value per channel" */
    BnJob j = {0};
    j.N = N; j.C = C; j.HW = HW; j.train = 1;
    j.x = x; j.gamma = gamma; j.beta = beta;
    j.running_mean = running_mean; j.running_var = running_var; j.momentum = momentum; j.eps = eps;
    j.y = y; j.save_mean = save_mean; j.save_invstd = save_invstd;
    j.relu = relu;
    par_run(fwd_train_worker, &j);
}

/* ---- backward (train: through the batch statistics; eval: a fixed affine map) ---- */

/* acc_dy += dy, acc_dyx += dy * (x - mean) over a row of n. */
static void row_bwd_sums(const float *x, const float *dy, int n, double mean, double *acc_dy, double *acc_dyx) {
    int p = 0;
    for (; p + BLK <= n; p += BLK) {
        double g[BLK], d[BLK];
        for (int k = 0; k < BLK; k++) { g[k] = dy[p + k]; d[k] = x[p + k]; }
        for (int k = 0; k < BLK; k++) { acc_dy[k] += g[k]; acc_dyx[k] += g[k] * (d[k] - mean); }
    }
    for (int k = 0; p < n; p++, k++) {
        double g = dy[p];
        acc_dy[k] += g;
        acc_dyx[k] += g * ((double)x[p] - mean);
    }
}

/* Train: dx += (dy - mdy - (x - mean) * kk) * gi over a row; eval (x == NULL):
 * dx += dy * gi. */
static void row_bwd_dx(const float *x, const float *dy, int n, float mean, float mdy, float kk, float gi,
                       float *dx) {
    int p = 0;
    for (; p + BLK <= n; p += BLK) {
        float g[BLK], v[BLK], o[BLK];
        for (int k = 0; k < BLK; k++) { g[k] = dy[p + k]; o[k] = dx[p + k]; }
        if (x) {
            for (int k = 0; k < BLK; k++) v[k] = x[p + k];
            for (int k = 0; k < BLK; k++) o[k] += (g[k] - mdy - (v[k] - mean) * kk) * gi;
        } else {
            for (int k = 0; k < BLK; k++) o[k] += g[k] * gi;
        }
        for (int k = 0; k < BLK; k++) dx[p + k] = o[k];
    }
    for (; p < n; p++) dx[p] += x ? (dy[p] - mdy - (x[p] - mean) * kk) * gi : dy[p] * gi;
}

static void bwd_channel(const BnJob *j, int c) {
    const int N = j->N, C = j->C, HW = j->HW;
    const double cnt = (double)N * HW;
    const float mean = j->train ? j->mean[c] : j->rmean[c];
    const float invstd = j->train ? j->invstd[c] : (float)(1.0 / sqrt((double)j->rvar[c] + j->eps));
    double acc_dy[BLK] = {0}, acc_dyx[BLK] = {0};
    if (j->dgamma || j->dbeta || (j->dx && j->train))
        for (int n = 0; n < N; n++) row_bwd_sums(&AT(j->x, n, c, 0), &AT(j->dy, n, c, 0), HW, mean, acc_dy, acc_dyx);
    const double sdy = lanes_total(acc_dy), sdyx = lanes_total(acc_dyx); /* sum dy, sum dy*(x - mean) */
    if (j->dgamma) j->dgamma[c] += (float)(sdyx * invstd);
    if (j->dbeta) j->dbeta[c] += (float)sdy;
    if (!j->dx) return;
    const float gi = j->gamma[c] * invstd;
    /* train: dx = gamma*invstd * (dy - mean(dy) - (x - mean) * invstd^2 * mean(dy*(x - mean)));
     * eval: dx = dy * gamma * invstd */
    const float mdy = (float)(sdy / cnt), kk = (float)(sdyx / cnt * (double)invstd * invstd);
    for (int n = 0; n < N; n++)
        row_bwd_dx(j->train ? &AT(j->x, n, c, 0) : NULL, &AT(j->dy, n, c, 0), HW, mean, mdy, kk, gi,
                   &AT(j->dx, n, c, 0));
}

static void bwd_worker(void *p, int ith, int nth) {
    const BnJob *j = p;
    long lo, hi;
    par_range(j->C, ith, nth, &lo, &hi);
    for (long c = lo; c < hi; c++) bwd_channel(j, (int)c);
}

void bn_backward_train(int N, int C, int HW, const float *x, const float *gamma,
                       const float *save_mean, const float *save_invstd, const float *dy,
                       float *dx, float *dgamma, float *dbeta) {
    BnJob j = {0};
    j.N = N; j.C = C; j.HW = HW; j.train = 1;
    j.x = x; j.gamma = gamma; j.dy = dy; j.mean = save_mean; j.invstd = save_invstd;
    j.dx = dx; j.dgamma = dgamma; j.dbeta = dbeta;
    par_run(bwd_worker, &j);
}

/* ---- eval ---- */

static void fwd_eval_worker(void *p, int ith, int nth) {
    const BnJob *j = p;
    const int N = j->N, C = j->C, HW = j->HW;
    long lo, hi;
    par_range(C, ith, nth, &lo, &hi);
    for (long c = lo; c < hi; c++) {
        float scale, shift;
        bn_eval_affine(1, j->gamma + c, j->beta + c, j->rmean + c, j->rvar + c, j->eps, &scale, &shift);
        for (int n = 0; n < N; n++) row_affine(&AT(j->x, n, c, 0), HW, scale, shift, j->relu, &AT(j->y, n, c, 0));
    }
}

void bn_eval_affine(int C, const float *gamma, const float *beta, const float *running_mean,
                    const float *running_var, float eps, float *scale, float *shift) {
    for (int c = 0; c < C; c++) {
        const float invstd = (float)(1.0 / sqrt((double)running_var[c] + eps));
        scale[c] = gamma[c] * invstd;
        shift[c] = beta[c] - running_mean[c] * scale[c];
    }
}

void bn_forward_eval(int N, int C, int HW, const float *x, const float *gamma, const float *beta,
                     const float *running_mean, const float *running_var, float eps, float *y) {
    bn_forward_eval_act(N, C, HW, x, gamma, beta, running_mean, running_var, eps, y, 0);
}

void bn_forward_eval_act(int N, int C, int HW, const float *x, const float *gamma, const float *beta,
                         const float *running_mean, const float *running_var, float eps, float *y, int relu) {
    BnJob j = {0};
    j.N = N; j.C = C; j.HW = HW;
    j.x = x; j.gamma = gamma; j.beta = beta; j.rmean = running_mean; j.rvar = running_var; j.eps = eps;
    j.y = y;
    j.relu = relu;
    par_run(fwd_eval_worker, &j);
}

void bn_backward_eval(int N, int C, int HW, const float *x, const float *gamma,
                      const float *running_mean, const float *running_var, float eps, const float *dy,
                      float *dx, float *dgamma, float *dbeta) {
    BnJob j = {0};
    j.N = N; j.C = C; j.HW = HW;
    j.x = x; j.gamma = gamma; j.dy = dy; j.rmean = running_mean; j.rvar = running_var; j.eps = eps;
    j.dx = dx; j.dgamma = dgamma; j.dbeta = dbeta;
    par_run(bwd_worker, &j);
}
