/* loss: mean squared error and softmax cross-entropy with mean reduction, forward
 * and gradient, as torch.nn.functional.mse_loss and cross_entropy define them.
 * Sums are accumulated in double; gradients follow PyTorch's own formulas
 * (mse: (y - t) * (2/n); cross-entropy: the backward of log_softmax + nll_loss).
 * Not for: class weights, label smoothing, ignore_index, other reductions. */
#include "train/train.h"
#include "core/err.h"
#include <math.h>

float loss_mse(size_t n, const float *y, const float *t, float *dy) {
    GAD_ASSERT(n > 0);
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)y[i] - (double)t[i];
        s += d * d;
    }
    if (dy) {
        /* torch: grad_input = (input - target) * (2/n * grad_output), scalar in float */
        float norm = (float)(2.0 / (double)n);
        for (size_t i = 0; i < n; i++) dy[i] = (y[i] - t[i]) * norm;
    }
    return (float)(s / (double)n);
}

/* logits, dlogits: [N,K]; labels: [N] in [0,K) */
float loss_xent(int N, int K, const float *logits, const int *labels, float *dlogits) {
    GAD_ASSERT(N > 0 && K > 0);
    double total = 0;
    float invN = (float)(1.0 / (double)N);
    for (int i = 0; i < N; i++) {
        const float *x = logits + (size_t)i * K;
        int c = labels[i];
        GAD_ASSERT(c >= 0 && c < K);
        /* log-sum-exp around the row maximum: no overflow for large logits */
        float mx = x[0];
        for (int j = 1; j < K; j++) if (x[j] > mx) mx = x[j];
        double se = 0;
        for (int j = 0; j < K; j++) se += exp((double)x[j] - mx);
        double lse = mx + log(se);
        total += lse - x[c];
        if (dlogits) {
            /* log_softmax backward of nll's gradient g (g[c] = -1/N, else 0):
             * dx_j = g_j - softmax_j * sum(g) = softmax_j / N - [j == c] / N */
            float *d = dlogits + (size_t)i * K;
            for (int j = 0; j < K; j++) {
                float p = (float)exp((double)x[j] - lse);
                d[j] = p * invN - (j == c ? invN : 0.0f);
            }
        }
    }
    return (float)(total / N);
}
