/* act: element-wise ops: ReLU with the three backward rules that attribution needs,
 * residual add, and dropout. Flatten is a no-op on NCHW memory and has no kernel.
 *   x, y, dy, dx: [n] flat
 * Backward accumulates (+=) into dx (and da, db for add), each skipped when NULL. */
#ifndef GAD_OPS_ACT_H
#define GAD_OPS_ACT_H
#include <stddef.h>
#include <stdint.h>

typedef enum {
    RELU_STANDARD = 0, /* dx = dy * 1[x > 0]              (the true gradient) */
    RELU_DECONV = 1,   /* dx = relu(dy)                    (Zeiler & Fergus)   */
    RELU_GUIDED = 2    /* dx = relu(dy) * 1[x > 0]         (Springenberg)      */
} ReluRule;

/* y may alias x (in place). */
void relu_forward(size_t n, const float *x, float *y);
/* y: the forward output (y > 0 exactly where x > 0). */
void relu_backward(size_t n, const float *y, const float *dy, float *dx, ReluRule rule);
/* THE ReLU backward rule, the one place it is written: the gradient g arriving at a
 * ReLU passes where the rule's gates are open, else 0. The true gradient gates by the
 * forward's sign (y > 0, y the ReLU's output), deconvolution by the gradient's own
 * sign (g > 0), guided backprop by both. relu_backward adds this term; the kernels
 * that do a following ReLU's backward in their own pass (conv's input gradient, max
 * pool's, through relu_backward_set_block) call it too. Branch-free (& and |), so a
 * loop over it is one vector body. */
static inline float relu_backward_term(ReluRule rule, float y, float g) {
    const int gate_y = rule != RELU_DECONV, gate_g = rule != RELU_STANDARD;
    return ((y > 0.0f) | !gate_y) & ((g > 0.0f) | !gate_g) ? g : 0.0f;
}
/* The same, writing dx instead of adding to it: the bits of relu_backward onto a zeroed
 * dx, without the zeroing pass (for a gradient's first writer). */
void relu_backward_set(size_t n, const float *y, const float *dy, float *dx, ReluRule rule);
/* relu_backward_set on one block of RELU_BLK elements: d[t] = 0 + term(y[t], g[t]) (d
 * may be g), a fixed-trip-count loop that compilers vectorise at -O2: the block body of
 * relu_backward_set and of the kernels that fuse a ReLU's backward into their own pass. */
#define RELU_BLK 16
static inline void relu_backward_set_block(ReluRule rule, const float *y, const float *g, float *d) {
    float a[RELU_BLK], b[RELU_BLK], o[RELU_BLK]; /* copied in: d may be g */
    for (int t = 0; t < RELU_BLK; t++) a[t] = y[t];
    for (int t = 0; t < RELU_BLK; t++) b[t] = g[t];
    /* the rule as a constant in each loop: the compiler drops the gate it leaves open */
    if (rule == RELU_STANDARD)
        for (int t = 0; t < RELU_BLK; t++) o[t] = relu_backward_term(RELU_STANDARD, a[t], b[t]);
    else if (rule == RELU_DECONV)
        for (int t = 0; t < RELU_BLK; t++) o[t] = relu_backward_term(RELU_DECONV, a[t], b[t]);
    else
        for (int t = 0; t < RELU_BLK; t++) o[t] = relu_backward_term(RELU_GUIDED, a[t], b[t]);
    for (int t = 0; t < RELU_BLK; t++) d[t] = 0.0f + o[t];
}

/* y = a + b (y may alias a or b). Backward: da += dy, db += dy. */
void add_forward(size_t n, const float *a, const float *b, float *y);
void add_backward(size_t n, const float *dy, float *da, float *db);
/* y = relu(a + b): the same bits as add_forward then relu_forward. */
void add_relu_forward(size_t n, const float *a, const float *b, float *y);

/* Dropout with probability p. Train: keep with prob 1-p, scale kept by 1/(1-p);
 * mask [n] (1 = kept) drawn from a generator seeded by `seed` (reproducible, not
 * PyTorch's stream). Eval: y = x and mask is not touched (may be NULL). */
void dropout_forward(size_t n, float p, int train, uint64_t seed, const float *x, float *y, uint8_t *mask);
void dropout_backward(size_t n, float p, int train, const uint8_t *mask, const float *dy, float *dx);

#endif
