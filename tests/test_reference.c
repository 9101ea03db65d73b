/* test_reference: the reference path (naive kernels, ops/ref.h; the plain executor,
 * plan_new_reference) against the fast one (plan_new), for the bundled models
 * (weights/) and the fixture models (tests/fixtures/model/): every pass (eval forward,
 * the input gradient under each ReLU rule, eval and train-mode backward to the
 * parameters, BN's running statistics) and every attribution method.
 * Bits: the element-wise naive kernels (ReLU and its three rules, add, max and average
 * pooling, and max pool's backward with a ReLU's fused in) give the fast kernels' bits,
 * checked bitwise. Whole passes cannot: the naive convolution and linear layers sum in
 * double, the fast ones in float blocks. They agree within TOL_PASS * max|reference|
 * (measured, Zen 3, gcc 12: eval passes within 1.4e-6 of it); train-mode passes of a
 * model with batch norm within TOL_TRAIN (measured 2.8e-4: BN over few values per
 * channel amplifies rounding, as in test_model.c); parameter gradients relative to the
 * largest gradient of the pass. The attribution maps agree within TOL_ATTR * max|map|
 * (measured 3e-7; looser because a ReLU or a max pool that an input sits on the edge
 * of may decide differently by a rounding: rare, and local). */
#include "test.h"
#include "attr/attr.h"
#include "core/err.h"
#include "core/rng.h"
#include "nn/layers.h"
#include "nn/model.h"
#include "ops/act.h"
#include "ops/pool.h"
#include "ops/ref.h"
#include <stdlib.h>
#include <string.h>

#define TOL_PASS 1e-4f
#define TOL_TRAIN 2e-3f
#define TOL_ATTR 1e-3f

static float maxabs(const float *x, size_t n) {
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
    return m;
}

/* a (the fast path) close to b (the reference) relative to b's largest magnitude. */
static int close_rel(const char *what, const float *a, const float *b, size_t n, float tol, int line) {
    return test_close(what, a, b, n, tol * maxabs(b, n) + 1e-30f, 0.0f, __FILE__, line);
}
#define CLOSE(what, a, b, n, tol) close_rel(what, a, b, n, tol, __LINE__)

static void fill(float *x, size_t n, uint64_t seed, float lo, float hi) {
    Rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * rng_uniform(&r);
}

#define SAME_BITS(what, a, b, n) CHECKF(!memcmp(a, b, (n) * sizeof *(a)), "%s: not the same bits", what)

/* ---- the element-wise kernels: the same bits ---- */

TEST(ref_relu_and_add_bitwise) {
    enum { N = 70001 }; /* above act.c's thread split, and not a whole number of blocks */
    float *x = xmalloc(N * sizeof(float)), *g = xmalloc(N * sizeof(float)), *y = xmalloc(N * sizeof(float));
    float *a = xmalloc(N * sizeof(float)), *b = xmalloc(N * sizeof(float));
    fill(x, N, 1, -1.0f, 1.0f);
    fill(g, N, 2, -1.0f, 1.0f);
    for (int i = 0; i < N; i += 97) x[i] = 0.0f; /* y = 0 exactly: each rule's gate at its edge */
    relu_forward(N, x, a);
    relu_forward_ref(N, x, y);
    SAME_BITS("relu forward", a, y, N);
    for (int rule = RELU_STANDARD; rule <= RELU_GUIDED; rule++) {
        fill(a, N, 3, -1.0f, 1.0f);
        memcpy(b, a, N * sizeof(float));
        relu_backward(N, y, g, a, (ReluRule)rule);
        relu_backward_ref(N, y, g, b, (ReluRule)rule);
        SAME_BITS("relu backward", a, b, N);
        memset(b, 0, N * sizeof(float));
        relu_backward_set(N, y, g, a, (ReluRule)rule); /* the first writer's version: onto zeros */
        relu_backward_ref(N, y, g, b, (ReluRule)rule);
        SAME_BITS("relu backward_set", a, b, N);
    }
    add_forward(N, x, g, a);
    add_forward_ref(N, x, g, b);
    SAME_BITS("add forward", a, b, N);
    memcpy(b, a, N * sizeof(float));
    memcpy(y, a, N * sizeof(float));
    float *c = xmalloc(N * sizeof(float));
    memcpy(c, a, N * sizeof(float));
    add_backward(N, g, a, c);
    add_backward_ref(N, g, b, y);
    SAME_BITS("add backward da", a, b, N);
    SAME_BITS("add backward db", c, y, N);
    free(x); free(g); free(y); free(a); free(b); free(c);
}

TEST(ref_pool_bitwise) {
    /* (H, W, k, s, p): ResNet's 3x3/2 pad 1, VGG's 2x2/2, a small plane (the fast
     * kernel's interleaved path), odd sizes */
    const int cases[][5] = {{32, 32, 3, 2, 1}, {28, 28, 2, 2, 0}, {8, 8, 2, 2, 0}, {15, 13, 3, 2, 1}, {9, 11, 3, 1, 1}};
    const int N = 2, C = 20;
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const int H = cases[t][0], W = cases[t][1], k = cases[t][2], s = cases[t][3], p = cases[t][4];
        const int Ho = pool_out_size(H, k, s, p), Wo = pool_out_size(W, k, s, p);
        const size_t nx = (size_t)N * C * H * W, ny = (size_t)N * C * Ho * Wo;
        float *x = xmalloc(nx * sizeof(float)), *y = xmalloc(ny * sizeof(float)), *yr = xmalloc(ny * sizeof(float));
        float *dy = xmalloc(ny * sizeof(float)), *dx = xmalloc(nx * sizeof(float)), *dr = xmalloc(nx * sizeof(float));
        int32_t *am = xmalloc(ny * sizeof(int32_t)), *ar = xmalloc(ny * sizeof(int32_t));
        fill(x, nx, 10 + t, -1.0f, 1.0f);
        for (size_t i = 0; i < nx; i += 7) x[i] = 0.5f; /* ties: the first one wins */
        x[5] = NAN;                                     /* a NaN wins */
        fill(dy, ny, 20 + t, -1.0f, 1.0f);
        maxpool_forward(N, C, H, W, k, s, p, x, y, am);
        maxpool_forward_ref(N, C, H, W, k, s, p, x, yr, ar);
        SAME_BITS("maxpool forward", y, yr, ny);
        SAME_BITS("maxpool argmax", am, ar, ny);
        fill(dx, nx, 30 + t, -1.0f, 1.0f);
        memcpy(dr, dx, nx * sizeof(float));
        maxpool_backward(N, C, H, W, k, s, p, am, dy, dx);
        maxpool_backward_ref(N, C, H, W, k, s, p, ar, dy, dr);
        SAME_BITS("maxpool backward", dx, dr, nx);
        /* the backward with the ReLU before it fused in, against the two naive ones apart */
        float *ry = xmalloc(nx * sizeof(float)), *g = xcalloc(nx, sizeof(float));
        relu_forward_ref(nx, x, ry);
        for (int rule = RELU_STANDARD; rule <= RELU_GUIDED; rule++) {
            maxpool_backward_relu(N, C, H, W, k, s, p, am, dy, ry, (ReluRule)rule, dx);
            memset(g, 0, nx * sizeof(float));
            memset(dr, 0, nx * sizeof(float));
            maxpool_backward_ref(N, C, H, W, k, s, p, ar, dy, g);
            relu_backward_ref(nx, ry, g, dr, (ReluRule)rule);
            SAME_BITS("maxpool backward through a ReLU", dx, dr, nx);
        }
        free(x); free(y); free(yr); free(dy); free(dx); free(dr); free(am); free(ar); free(ry); free(g);
    }
    /* adaptive average: the same size, a 1x1 spread over 7x7 (VGG at 224 and at 32), uneven bins */
    const int av[][4] = {{7, 7, 7, 7}, {1, 1, 7, 7}, {5, 6, 3, 4}, {2, 3, 7, 7}};
    for (size_t t = 0; t < sizeof av / sizeof av[0]; t++) {
        const int H = av[t][0], W = av[t][1], Ho = av[t][2], Wo = av[t][3];
        const size_t nx = (size_t)N * C * H * W, ny = (size_t)N * C * Ho * Wo;
        float *x = xmalloc(nx * sizeof(float)), *y = xmalloc(ny * sizeof(float)), *yr = xmalloc(ny * sizeof(float));
        float *dx = xmalloc(nx * sizeof(float)), *dr = xmalloc(nx * sizeof(float));
        fill(x, nx, 40 + t, -1.0f, 1.0f);
        adaptive_avgpool_forward(N, C, H, W, Ho, Wo, x, y);
        adaptive_avgpool_forward_ref(N, C, H, W, Ho, Wo, x, yr);
        SAME_BITS("avgpool forward", y, yr, ny);
        fill(dx, nx, 50 + t, -1.0f, 1.0f);
        memcpy(dr, dx, nx * sizeof(float));
        adaptive_avgpool_backward(N, C, H, W, Ho, Wo, y, dx);
        adaptive_avgpool_backward_ref(N, C, H, W, Ho, Wo, y, dr);
        SAME_BITS("avgpool backward", dx, dr, nx);
        free(x); free(y); free(yr); free(dx); free(dr);
    }
}

/* ---- whole passes ---- */

typedef struct {
    Model fast, ref;   /* the same weights: the two paths each update their own BN statistics */
    Plan *pf, *pr;
    int n, H, W;
    float *x;
} Pair;

static int pair_open(Pair *t, const char *path, int n, int H, int W) {
    memset(t, 0, sizeof *t);
    if (model_load(&t->fast, path)) { test_fail(__FILE__, __LINE__, "%s", err_get()); return -1; }
    model_clone(&t->ref, &t->fast);
    t->pf = plan_new(&t->fast, n, H, W);
    t->pr = plan_new_reference(&t->ref, n, H, W);
    if (!t->pf || !t->pr) { test_fail(__FILE__, __LINE__, "plan: %s", err_get()); return -1; }
    t->n = n; t->H = H; t->W = W;
    t->x = xmalloc((size_t)n * 3 * H * W * sizeof(float));
    fill(t->x, (size_t)n * 3 * H * W, 7, 0.0f, 1.0f);
    return 0;
}

static void pair_close(Pair *t) {
    plan_free(t->pf);
    plan_free(t->pr);
    model_free(&t->fast);
    model_free(&t->ref);
    free(t->x);
}

/* One pass on both paths: forward (logits compared), then with dlogits a backward to
 * the input (and the parameters when param_grads), compared. */
static void both_passes(Pair *t, const char *name, PassMode mode, int param_grads, float tol) {
    const int K = t->fast.cfg.num_classes;
    const size_t nx = (size_t)t->n * 3 * t->H * t->W, nl = (size_t)t->n * K;
    char what[200];
    const float *yf = model_forward(&t->fast, t->pf, t->x, t->n, mode);
    const float *yr = model_forward(&t->ref, t->pr, t->x, t->n, mode);
    snprintf(what, sizeof what, "%s logits", name);
    CLOSE(what, yf, yr, nl, tol);
    float *dl = xmalloc(nl * sizeof(float)), *dxf = xcalloc(nx, sizeof(float)), *dxr = xcalloc(nx, sizeof(float));
    fill(dl, nl, 11, -1.0f, 1.0f);
    if (param_grads) {
        model_alloc_grads(&t->fast);
        model_alloc_grads(&t->ref);
        model_zero_grads(&t->fast);
        model_zero_grads(&t->ref);
    }
    model_backward(&t->fast, t->pf, dl, dxf, param_grads, mode);
    model_backward(&t->ref, t->pr, dl, dxr, param_grads, mode);
    snprintf(what, sizeof what, "%s dx", name);
    CLOSE(what, dxf, dxr, nx, tol);
    /* parameter gradients relative to the largest of the pass (a bias's gradient, a sum
     * over every position, may cancel down to far below the terms it sums) */
    const float gmax = param_grads ? maxabs(t->ref.grads, t->ref.n_params) : 0.0f;
    for (int i = 0; param_grads && i < t->fast.nparams; i++) {
        const Param *a = &t->fast.params_info[i], *b = &t->ref.params_info[i];
        snprintf(what, sizeof what, "%s %s %s", name, a->is_buffer ? "after" : "d", a->name);
        if (a->is_buffer) CLOSE(what, a->data, b->data, a->numel, tol);
        else test_close(what, a->grad, b->grad, a->numel, tol * gmax, tol, __FILE__, __LINE__);
    }
    free(dl); free(dxf); free(dxr);
}

static void check_passes(const char *path, int n, int H, int W) {
    Pair t;
    if (pair_open(&t, path, n, H, W)) return;
    const int bn = t.fast.cfg.arch == ARCH_RESNET18;
    const char *rules[] = {"standard", "deconv", "guided"};
    char name[200];
    for (int rule = RELU_STANDARD; rule <= RELU_GUIDED; rule++) {
        PassMode mode = {0, (ReluRule)rule, 0, 0}; /* attribution's: eval, the input's gradient only */
        snprintf(name, sizeof name, "%s %dx%d eval %s", path, H, W, rules[rule]);
        both_passes(&t, name, mode, 0, TOL_PASS);
    }
    PassMode eval = {0, RELU_STANDARD, 0, 1}; /* fine-tuning in eval mode */
    snprintf(name, sizeof name, "%s %dx%d eval params", path, H, W);
    both_passes(&t, name, eval, 1, TOL_PASS);
    PassMode train = {1, RELU_STANDARD, 99, 1}; /* a training step's pass: dropout on, BN's batch statistics */
    snprintf(name, sizeof name, "%s %dx%d train", path, H, W);
    both_passes(&t, name, train, 1, bn ? TOL_TRAIN : TOL_PASS);
    CHECK(t.fast.bn_batches == t.ref.bn_batches);
    pair_close(&t);
}

TEST(ref_path_bundled_vgg16) { check_passes("weights/vgg16.safetensors", 3, 32, 32); }
TEST(ref_path_bundled_resnet18) { check_passes("weights/resnet18.safetensors", 3, 32, 32); }
TEST(ref_path_fixture_vgg16) {
    check_passes(fixture("model/vgg16_w.safetensors"), 2, 32, 32);
    check_passes(fixture("model/vgg16_w.safetensors"), 2, 40, 48);
}
TEST(ref_path_fixture_resnet18) {
    check_passes(fixture("model/resnet18_w.safetensors"), 2, 32, 32);
    check_passes(fixture("model/resnet18_w.safetensors"), 2, 40, 48);
}

/* Every attribution method (Integrated Gradients with few steps, and SmoothGrad over
 * guided backprop) through both paths. */
static void check_methods(const char *path) {
    Pair t;
    if (pair_open(&t, path, 4, 32, 32)) return;
    const int targets[4] = {0, 1, t.fast.cfg.num_classes - 1, 0};
    const size_t nx = (size_t)4 * 3 * 32 * 32;
    float *af = xmalloc(nx * sizeof(float)), *ar = xmalloc(nx * sizeof(float));
    for (int m = 0; m <= ATTR_NMETHODS; m++) {
        AttrOpts o;
        attr_opts_default(&o);
        o.method = m < ATTR_NMETHODS ? (AttrMethod)m : ATTR_GUIDED;
        o.steps = 8;
        if (m == ATTR_NMETHODS) { o.smooth_n = 3; o.smooth_sigma = 0.1f; o.seed = 5; }
        REQUIRE(attr_compute(&t.fast, t.pf, t.x, 4, targets, &o, af, NULL) == 0);
        REQUIRE(attr_compute(&t.ref, t.pr, t.x, 4, targets, &o, ar, NULL) == 0);
        char what[200];
        snprintf(what, sizeof what, "%s %s%s", path, attr_method_name(o.method), o.smooth_n ? " smoothgrad" : "");
        CLOSE(what, af, ar, nx, TOL_ATTR);
    }
    free(af); free(ar);
    pair_close(&t);
}

TEST(ref_path_methods_vgg16) { check_methods("weights/vgg16.safetensors"); }
TEST(ref_path_methods_resnet18) { check_methods("weights/resnet18.safetensors"); }
