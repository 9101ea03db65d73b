/* act: ReLU (forward, and backward under the three rules of ops/act.h), residual add,
 * and dropout.  x, y, dy, dx, mask: [n] flat.
 * These are memory bound. Two things keep them at memory speed: arrays of more than
 * PAR_MIN elements are split between the threads (element-wise, so the result never
 * depends on the split), and each loop runs over blocks of BLK elements copied
 * through small local arrays with a fixed trip count, a shape compilers turn into
 * vector code at -O2 (the selects become masks instead of unpredictable branches).
 * Not for: other activations, PyTorch's dropout random stream. */
#include "ops/act.h"
#include "core/err.h"
#include "core/rng.h"
#include "core/threads.h"

#define BLK RELU_BLK
#define PAR_MIN 65536 /* elements below which one thread is faster than waking others */

typedef enum { OP_RELU, OP_RELU_BWD, OP_RELU_BWD_SET, OP_ADD, OP_ADD_RELU, OP_ACC } ActOp;

typedef struct {
    ActOp op;
    ReluRule rule;
    size_t n;
    const float *a, *b; /* inputs: x | y, dy | a, b | dy */
    float *out;         /* y | dx | y | dx (accumulated for OP_RELU_BWD and OP_ACC; OP_RELU_BWD_SET
                         * writes 0 + the term, the bits of accumulating onto zeros) */
} ActJob;


/* Whole blocks of [i, end) with o[k] = EXPR, where EXPR may use a[k] (A), b[k] (B) and
 * c[k] (O's old value): one loop per operation, so that each is a fixed-trip-count
 * body the compiler vectorises (a switch inside the block loop kept them scalar:
 * about 3 cycles per element on data in cache). */
#define BLOCKS(EXPR)                                                                   \
    for (; i < end; i += BLK) {                                                        \
        float a[BLK], b[BLK], c[BLK], o[BLK];                                          \
        for (int k = 0; k < BLK; k++) a[k] = A[i + k];                                 \
        for (int k = 0; k < BLK; k++) b[k] = B ? B[i + k] : 0.0f;                      \
        for (int k = 0; k < BLK; k++) c[k] = O[i + k];                                 \
        for (int k = 0; k < BLK; k++) o[k] = (EXPR);                                   \
        for (int k = 0; k < BLK; k++) O[i + k] = o[k];                                 \
        (void)a, (void)b, (void)c; /* an operation reads only some: the rest is dead */ \
    }

/* Elements [lo, hi): whole blocks, then the rest one by one (same arithmetic). */
static void act_range(const ActJob *j, size_t lo, size_t hi) {
    const float *A = j->a, *B = j->b;
    float *O = j->out;
    size_t i = lo;
    const size_t end = lo + (hi - lo) / BLK * BLK;
    switch (j->op) {
    case OP_RELU: BLOCKS(a[k] > 0.0f ? a[k] : 0.0f) break;
    case OP_ADD: BLOCKS(a[k] + b[k]) break;
    case OP_ADD_RELU: BLOCKS(a[k] + b[k] > 0.0f ? a[k] + b[k] : 0.0f) break;
    case OP_ACC: BLOCKS(c[k] + a[k]) break; /* out += a */
    case OP_RELU_BWD: BLOCKS(c[k] + relu_backward_term(j->rule, a[k], b[k])) break; /* a = y, b = dy */
    case OP_RELU_BWD_SET:
        for (; i < end; i += BLK) relu_backward_set_block(j->rule, A + i, B + i, O + i);
        break;
    }
    for (; i < hi; i++) {
        switch (j->op) {
        case OP_RELU: O[i] = A[i] > 0.0f ? A[i] : 0.0f; break;
        case OP_ADD: O[i] = A[i] + B[i]; break;
        case OP_ADD_RELU: {
            const float v = A[i] + B[i];
            O[i] = v > 0.0f ? v : 0.0f;
            break;
        }
        case OP_ACC: O[i] += A[i]; break;
        case OP_RELU_BWD: O[i] += relu_backward_term(j->rule, A[i], B[i]); break;
        case OP_RELU_BWD_SET: O[i] = 0.0f + relu_backward_term(j->rule, A[i], B[i]); break;
        }
    }
}
#undef BLOCKS

static void act_worker(void *arg, int ith, int nth) {
    const ActJob *j = arg;
    long blocks = (long)((j->n + BLK - 1) / BLK), lo, hi;
    par_range(blocks, ith, nth, &lo, &hi);
    size_t a = (size_t)lo * BLK, b = (size_t)hi * BLK;
    act_range(j, a, b < j->n ? b : j->n);
}

static void act_run(ActJob *j) {
    if (j->n >= PAR_MIN) par_run(act_worker, j);
    else act_range(j, 0, j->n);
}

void relu_forward(size_t n, const float *x, float *y) {
    ActJob j = {OP_RELU, RELU_STANDARD, n, x, NULL, y};
    act_run(&j);
}

void relu_backward(size_t n, const float *y, const float *dy, float *dx, ReluRule rule) {
    if (!dx) return;
    GAD_ASSERT(rule == RELU_STANDARD || rule == RELU_DECONV || rule == RELU_GUIDED);
    ActJob j = {OP_RELU_BWD, rule, n, y, dy, dx};
    act_run(&j);
}

void relu_backward_set(size_t n, const float *y, const float *dy, float *dx, ReluRule rule) {
    if (!dx) return;
    GAD_ASSERT(rule == RELU_STANDARD || rule == RELU_DECONV || rule == RELU_GUIDED);
    ActJob j = {OP_RELU_BWD_SET, rule, n, y, dy, dx};
    act_run(&j);
}

void add_forward(size_t n, const float *a, const float *b, float *y) {
    ActJob j = {OP_ADD, RELU_STANDARD, n, a, b, y};
    act_run(&j);
}

void add_relu_forward(size_t n, const float *a, const float *b, float *y) {
    ActJob j = {OP_ADD_RELU, RELU_STANDARD, n, a, b, y};
    act_run(&j);
}

void add_backward(size_t n, const float *dy, float *da, float *db) {
    ActJob j = {OP_ACC, RELU_STANDARD, n, dy, NULL, da};
    if (da) act_run(&j);
    j.out = db;
    if (db) act_run(&j);
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
        add_backward(n, dy, dx, NULL);
        return;
    }
    const float scale = keep_scale(p);
    for (size_t i = 0; i < n; i++) dx[i] += mask[i] ? dy[i] * scale : 0.0f;
}
