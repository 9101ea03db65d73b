/* bn_ref: batch normalisation (ops/bn.h's) as its textbook formulas, every step in
 * double:
 *   train: y = gamma (x - mean) / sqrt(var + eps) + beta, mean and (biased) var of the
 *          batch per channel; running = (1 - momentum) running + momentum stat, the
 *          variance unbiased (times n / (n - 1), n = N*HW)
 *   eval:  the same with the running mean and variance, a fixed affine map per channel
 * Not for: speed (ops/bn.c). */
#include "ops/ref.h"
#include <math.h>
#include <stddef.h>

#define AT(a, n, c, p) (a)[((size_t)(n) * C + (c)) * HW + (p)]

void bn_forward_train_ref(int N, int C, int HW, const float *x, const float *gamma, const float *beta,
                          float *running_mean, float *running_var, float momentum, float eps,
                          float *y, float *save_mean, float *save_invstd) {
    const double cnt = (double)N * HW;
    for (int c = 0; c < C; c++) {
        double mean = 0.0, var = 0.0;
        for (int n = 0; n < N; n++)
            for (int p = 0; p < HW; p++) mean += AT(x, n, c, p);
        mean /= cnt;
        for (int n = 0; n < N; n++)
            for (int p = 0; p < HW; p++) var += (AT(x, n, c, p) - mean) * (AT(x, n, c, p) - mean);
        var /= cnt;
        double invstd = 1.0 / sqrt(var + eps);
        for (int n = 0; n < N; n++)
            for (int p = 0; p < HW; p++)
                AT(y, n, c, p) = (float)((AT(x, n, c, p) - mean) * invstd * gamma[c] + beta[c]);
        if (save_mean) save_mean[c] = (float)mean;
        if (save_invstd) save_invstd[c] = (float)invstd;
        if (running_mean) running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * mean);
        if (running_var) running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * var * cnt / (cnt - 1.0));
    }
}

void bn_backward_train_ref(int N, int C, int HW, const float *x, const float *gamma,
                           const float *save_mean, const float *save_invstd, const float *dy,
                           float *dx, float *dgamma, float *dbeta) {
    const double cnt = (double)N * HW;
    for (int c = 0; c < C; c++) {
        /* xhat = (x - mean) * invstd;  y = gamma * xhat + beta
         * dx = gamma * invstd / cnt * (cnt * dy - sum(dy) - xhat * sum(dy * xhat)) */
        double sdy = 0.0, sdyxh = 0.0, invstd = save_invstd[c];
        for (int n = 0; n < N; n++)
            for (int p = 0; p < HW; p++) {
                double xh = (AT(x, n, c, p) - (double)save_mean[c]) * invstd;
                sdy += AT(dy, n, c, p);
                sdyxh += AT(dy, n, c, p) * xh;
            }
        if (dgamma) dgamma[c] += (float)sdyxh;
        if (dbeta) dbeta[c] += (float)sdy;
        if (dx)
            for (int n = 0; n < N; n++)
                for (int p = 0; p < HW; p++) {
                    double xh = (AT(x, n, c, p) - (double)save_mean[c]) * invstd;
                    AT(dx, n, c, p) += (float)(gamma[c] * invstd / cnt * (cnt * AT(dy, n, c, p) - sdy - xh * sdyxh));
                }
    }
}

void bn_forward_eval_ref(int N, int C, int HW, const float *x, const float *gamma, const float *beta,
                         const float *running_mean, const float *running_var, float eps, float *y) {
    for (int c = 0; c < C; c++) {
        const double invstd = 1.0 / sqrt((double)running_var[c] + eps);
        for (int n = 0; n < N; n++)
            for (int p = 0; p < HW; p++)
                AT(y, n, c, p) = (float)((AT(x, n, c, p) - (double)running_mean[c]) * invstd * gamma[c] + beta[c]);
    }
}

/* y = gamma xhat + beta with xhat = (x - running_mean) invstd fixed: dx = gamma invstd dy,
 * dgamma = sum dy xhat, dbeta = sum dy. */
void bn_backward_eval_ref(int N, int C, int HW, const float *x, const float *gamma,
                          const float *running_mean, const float *running_var, float eps, const float *dy,
                          float *dx, float *dgamma, float *dbeta) {
    for (int c = 0; c < C; c++) {
        const double invstd = 1.0 / sqrt((double)running_var[c] + eps);
        double sdy = 0.0, sdyxh = 0.0;
        for (int n = 0; n < N; n++)
            for (int p = 0; p < HW; p++) {
                sdy += AT(dy, n, c, p);
                sdyxh += AT(dy, n, c, p) * (AT(x, n, c, p) - (double)running_mean[c]) * invstd;
                if (dx) AT(dx, n, c, p) += (float)(gamma[c] * invstd * AT(dy, n, c, p));
            }
        if (dgamma) dgamma[c] += (float)sdyxh;
        if (dbeta) dbeta[c] += (float)sdy;
    }
}
