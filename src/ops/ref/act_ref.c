/* act_ref: ReLU and the residual add (ops/act.h's), one element at a time. The ReLU's
 * backward is where the attribution methods differ: each applies its rule
 * (relu_backward_term, written once in ops/act.h) to the gradient arriving at every
 * ReLU. The same operations as ops/act.c, so the same bits.
 * Not for: speed (ops/act.c), dropout (ops/act.c's is already one plain loop). */
#include "ops/ref.h"

void relu_forward_ref(size_t n, const float *x, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* y: the forward's output (y > 0 exactly where its input was). */
void relu_backward_ref(size_t n, const float *y, const float *dy, float *dx, ReluRule rule) {
    if (!dx) return;
    for (size_t i = 0; i < n; i++) dx[i] += relu_backward_term(rule, y[i], dy[i]);
}

void add_forward_ref(size_t n, const float *a, const float *b, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

/* y = a + b passes its gradient to both. */
void add_backward_ref(size_t n, const float *dy, float *da, float *db) {
    for (size_t i = 0; i < n; i++) {
        if (da) da[i] += dy[i];
        if (db) db[i] += dy[i];
    }
}
