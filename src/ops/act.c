/* act: ReLU (forward, and backward under the three rules of ops/act.h), residual add,
 * and dropout.  x, y, dy, dx, mask: [n] flat.
 * Plain serial loops: these are memory bound and cheap next to the convolutions.
 * Not for: other activations, PyTorch's dropout random stream. */
#include "ops/act.h"
#include "core/err.h"
#include "core/rng.h"

void relu_forward(size_t n, const float *x, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void relu_backward(size_t n, const float *y, const float *dy, float *dx, ReluRule rule) {
    if (!dx) return;
    switch (rule) {
    case RELU_STANDARD: /* the true gradient: pass where the unit was active */
        for (size_t i = 0; i < n; i++) dx[i] += y[i] > 0.0f ? dy[i] : 0.0f;
        break;
    case RELU_DECONV:   /* ReLU applied to the backward signal, ignoring the forward */
        for (size_t i = 0; i < n; i++) dx[i] += dy[i] > 0.0f ? dy[i] : 0.0f;
        break;
    case RELU_GUIDED:   /* both masks */
        for (size_t i = 0; i < n; i++) dx[i] += (y[i] > 0.0f && dy[i] > 0.0f) ? dy[i] : 0.0f;
        break;
    default:
        GAD_ASSERT(!"unknown ReluRule");
    }
}

void add_forward(size_t n, const float *a, const float *b, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void add_backward(size_t n, const float *dy, float *da, float *db) {
    if (da) for (size_t i = 0; i < n; i++) da[i] += dy[i];
    if (db) for (size_t i = 0; i < n; i++) db[i] += dy[i];
}

/* The factor kept units are multiplied by (PyTorch: 1/(1-p) in float). */
static float keep_scale(float p) { return p < 1.0f ? 1.0f / (1.0f - p) : 0.0f; }

void dropout_forward(size_t n, float p, int train, uint64_t seed, const float *x, float *y, uint8_t *mask) {
    GAD_ASSERT(p >= 0.0f && p <= 1.0f);
    if (!train) {
        if (y != x) for (size_t i = 0; i < n; i++) y[i] = x[i];
        return;
    }
    Rng r;
    rng_seed(&r, seed);
    const float scale = keep_scale(p);
    for (size_t i = 0; i < n; i++) {
        uint8_t keep = p < 1.0f && rng_uniform(&r) >= p; /* P(keep) = 1 - p */
        mask[i] = keep;
        y[i] = keep ? x[i] * scale : 0.0f;
    }
}

void dropout_backward(size_t n, float p, int train, const uint8_t *mask, const float *dy, float *dx) {
    if (!dx) return;
    if (!train) {
        for (size_t i = 0; i < n; i++) dx[i] += dy[i];
        return;
    }
    const float scale = keep_scale(p);
    for (size_t i = 0; i < n; i++) dx[i] += mask[i] ? dy[i] * scale : 0.0f;
}
