/* test_attr: attribution methods and heatmaps.
 *  - every method and IG variant against PyTorch re-implementations of Captum's
 *    rules (tools/fixtures/gen_fixtures_attr.py) on width-reduced vgg16 and resnet18;
 *  - the ReLU rules on a two-layer network worked out by hand;
 *  - IG: Captum's alphas/step sizes, Gauss-Legendre vs numpy's leggauss, results
 *    independent of the batch size, completeness error shrinking with the steps;
 *  - SmoothGrad against its definition; bad input;
 *  - heatmap normalisation (by hand and vs Captum's code), colours, PNG, canvas;
 *  - `gad explain` end to end. */
#include "attr/attr.h"
#include "attr/heatmap.h"
#include "cli/cli.h"
#include "core/err.h"
#include "core/rng.h"
#include "io/image.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "nn/model.h"
#include "ops/act.h"
#include "ops/linear.h"
#include "test.h"
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------------ helpers */

/* F32 tensor `name` of f, checked to hold n values; NULL (with a failure) if not. */
static const float *getf(const StFile *f, const char *name, size_t n) {
    const StTensor *t = st_find(f, name);
    if (!t || t->dtype != ST_F32 || t->numel != n) {
        test_fail(__FILE__, __LINE__, "fixture tensor %s missing or wrong size", name);
        return NULL;
    }
    return t->f32;
}

/* float64 values stored as I64 bit patterns (stio has no F64) into out [n]. */
static int getd(const StFile *f, const char *name, size_t n, double *out) {
    const StTensor *t = st_find(f, name);
    if (!t || t->dtype != ST_I64 || t->numel != n) {
        test_fail(__FILE__, __LINE__, "fixture tensor %s missing or wrong size", name);
        return -1;
    }
    memcpy(out, t->i64, n * sizeof(double));
    return 0;
}

static float maxabs(const float *a, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fabsf(a[i]) > m ? fabsf(a[i]) : m;
    return m;
}

/* ------------------------------------------------------------------ IG quadrature */

TEST(attr_leggauss_vs_numpy) {
    StFile f;
    REQUIRE(st_read(fixture("attr/leggauss.safetensors"), &f) == 0);
    static const int ns[] = {1, 2, 3, 4, 5, 8, 13, 50, 64, 100, 200};
    double worst = 0;
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        int n = ns[k];
        double *x = xmalloc(4 * sizeof(double) * n), *w = x + n, *ex = x + 2 * n, *ew = x + 3 * n;
        char nx[16], nw[16];
        snprintf(nx, sizeof nx, "x%d", n);
        snprintf(nw, sizeof nw, "w%d", n);
        if (getd(&f, nx, n, ex) == 0 && getd(&f, nw, n, ew) == 0) {
            attr_leggauss(n, x, w);
            double sw = 0;
            for (int i = 0; i < n; i++) {
                double d = fmax(fabs(x[i] - ex[i]), fabs(w[i] - ew[i]));
                if (d > worst) worst = d;
                CHECKF(d <= 1e-13, "leggauss(%d)[%d]: x %.17g vs %.17g, w %.17g vs %.17g", n, i, x[i], ex[i], w[i],
                       ew[i]);
                sw += w[i];
            }
            CHECK_NEAR(sw, 2.0, 1e-13);
        }
        free(x);
    }
    printf("    leggauss n = 1..200: worst |diff| vs numpy %.3g\n", worst);
    st_free(&f);
}

TEST(attr_ig_alphas_captum) {
    double a[4], w[4];
    /* Captum's riemann_builders with n = 4 */
    static const double left[4] = {0, 0.25, 0.5, 0.75}, right[4] = {0.25, 0.5, 0.75, 1},
                        mid[4] = {0.125, 0.375, 0.625, 0.875}, trap[4] = {0, 1.0 / 3, 2.0 / 3, 1},
                        trapw[4] = {0.125, 0.25, 0.25, 0.125};
    const struct { IgMethod m; const double *a, *w; } cases[] = {
        {IG_RIEMANN_LEFT, left, NULL}, {IG_RIEMANN_RIGHT, right, NULL},
        {IG_RIEMANN_MIDDLE, mid, NULL}, {IG_RIEMANN_TRAPEZOID, trap, trapw}};
    for (int c = 0; c < 4; c++) {
        attr_ig_alphas(cases[c].m, 4, a, w);
        for (int k = 0; k < 4; k++) {
            CHECK_NEAR(a[k], cases[c].a[k], 1e-15);
            CHECK_NEAR(w[k], cases[c].w ? cases[c].w[k] : 0.25, 1e-15);
        }
    }
    /* Gauss-Legendre mapped to [0,1]: n = 2 nodes 1/2 -+ 1/(2 sqrt 3), weights 1/2;
     * n = 3 nodes 1/2 -+ sqrt(3/5)/2 and 1/2, weights 5/18, 4/9, 5/18 */
    attr_ig_alphas(IG_GAUSS_LEGENDRE, 2, a, w);
    CHECK_NEAR(a[0], 0.5 - 0.5 / sqrt(3.0), 1e-15);
    CHECK_NEAR(a[1], 0.5 + 0.5 / sqrt(3.0), 1e-15);
    CHECK_NEAR(w[0], 0.5, 1e-15);
    CHECK_NEAR(w[1], 0.5, 1e-15);
    attr_ig_alphas(IG_GAUSS_LEGENDRE, 3, a, w);
    CHECK_NEAR(a[0], 0.5 - 0.5 * sqrt(0.6), 1e-15);
    CHECK(a[1] == 0.5);
    CHECK_NEAR(a[2], 0.5 + 0.5 * sqrt(0.6), 1e-15);
    CHECK_NEAR(w[0], 5.0 / 18, 1e-15);
    CHECK_NEAR(w[1], 4.0 / 9, 1e-15);
    CHECK_NEAR(w[2], 5.0 / 18, 1e-15);
    /* Gauss-Legendre integrates polynomials of degree 2n-1 exactly on [0,1] */
    double A[7], Wt[7], s = 0;
    attr_ig_alphas(IG_GAUSS_LEGENDRE, 7, A, Wt);
    for (int k = 0; k < 7; k++) s += Wt[k] * pow(A[k], 13);
    CHECK_NEAR(s, 1.0 / 14, 1e-15);
}

TEST(attr_parse_names) {
    AttrMethod m;
    IgMethod g;
    static const char *names[] = {"saliency", "deconv", "gxi", "guided", "ig"};
    for (int i = 0; i < 5; i++) {
        CHECK(attr_parse_method(names[i], &m) == 0 && (int)m == i);
        CHECK(!strcmp(attr_method_name(m), names[i]));
    }
    CHECK(attr_parse_method("gradcam", &m) == -1 && strstr(err_get(), "gradcam") && strstr(err_get(), "guided"));
    CHECK(attr_parse_ig_method("riemann_trapezoid", &g) == 0 && g == IG_RIEMANN_TRAPEZOID);
    CHECK(attr_parse_ig_method("gausslegendre", &g) == 0 && g == IG_GAUSS_LEGENDRE);
    CHECK(attr_parse_ig_method("riemann", &g) == -1 && strstr(err_get(), "riemann_left"));
    CHECK(attr_is_absolute(ATTR_SALIENCY) && !attr_is_absolute(ATTR_IG) && !attr_is_absolute(ATTR_GXI));
    AttrOpts o;
    attr_opts_default(&o);
    CHECK(o.method == ATTR_SALIENCY && o.steps == 50 && o.ig_method == IG_GAUSS_LEGENDRE && !o.baseline &&
          o.smooth_n == 0);
}

/* ------------------------------------------------------------------ ReLU rules by hand */

/* y = W3 relu(W2 relu(W1 x)), x = (1, -1), every weight a small integer:
 *   h = W1 x = (-2, 2, -1)     r = relu(h) = (0, 2, 0)
 *   u = W2 r = (-4, 4, 4)      s = relu(u) = (0, 4, 4)      y = W3 s = -4
 * dy/ds = W3 = (2, 1, -2). At the second ReLU (u = (-4, 4, 4)):
 *   standard  ds * 1[u>0]        = (0, 1, -2)
 *   deconv    relu(ds)           = (2, 1,  0)   (passes 2 although u0 < 0)
 *   guided    relu(ds) * 1[u>0]  = (0, 1,  0)
 * dr = W2^T du: standard (-5,-2,4), deconv (-5,-2,4), guided (-1,2,0).
 * At the first ReLU (h = (-2, 2, -1)):
 *   standard  (0,-2,0)   deconv relu(dr) = (0,0,4)   guided relu(dr)*1[h>0] = (0,2,0)
 * dx = W1^T dh: standard (0, 4), deconv (4, 8), guided (0, -4). */
TEST(attr_relu_rules_by_hand) {
    static const float x[2] = {1, -1};
    static const float W1[6] = {-1, 1, 0, -2, 1, 2}, W2[9] = {-2, -2, 2, -1, 2, 0, 2, 2, -2}, W3[3] = {2, 1, -2};
    static const float want[3][2] = {{0, 4}, {4, 8}, {0, -4}};
    static const float want_du[3][3] = {{0, 1, -2}, {2, 1, 0}, {0, 1, 0}};
    static const ReluRule rules[3] = {RELU_STANDARD, RELU_DECONV, RELU_GUIDED};
    float h[3], r[3], u[3], s[3], y, one = 1;
    linear_forward(1, 2, 3, x, W1, NULL, h);
    relu_forward(3, h, r);
    linear_forward(1, 3, 3, r, W2, NULL, u);
    relu_forward(3, u, s);
    linear_forward(1, 3, 1, s, W3, NULL, &y);
    CHECK(y == -4);
    for (int k = 0; k < 3; k++) {
        float ds[3] = {0, 0, 0}, du[3] = {0, 0, 0}, dr[3] = {0, 0, 0}, dh[3] = {0, 0, 0}, dx[2] = {0, 0};
        linear_backward(1, 3, 1, s, W3, &one, ds, NULL, NULL);
        relu_backward(3, s, ds, du, rules[k]);
        linear_backward(1, 3, 3, r, W2, du, dr, NULL, NULL);
        relu_backward(3, r, dr, dh, rules[k]);
        linear_backward(1, 2, 3, x, W1, dh, dx, NULL, NULL);
        for (int i = 0; i < 3; i++) CHECKF(du[i] == want_du[k][i], "rule %d du[%d] = %g", k, i, du[i]);
        CHECKF(dx[0] == want[k][0] && dx[1] == want[k][1], "rule %d: dx = (%g, %g), want (%g, %g)", k, dx[0], dx[1],
               want[k][0], want[k][1]);
    }
}

/* ------------------------------------------------------------------ vs PyTorch */

typedef struct {
    Model m;
    StFile f;
    Plan *p;
    const float *x;
    int t[2];
} Fix;

static int fix_open(Fix *fx, const char *arch, int max_batch) {
    char path[256];
    memset(fx, 0, sizeof *fx);
    snprintf(path, sizeof path, "attr/%s_w.safetensors", arch);
    if (model_load(&fx->m, fixture(path)) != 0) {
        test_fail(__FILE__, __LINE__, "%s", err_get());
        return -1;
    }
    snprintf(path, sizeof path, "attr/%s_attr.safetensors", arch);
    if (st_read(fixture(path), &fx->f) != 0) {
        test_fail(__FILE__, __LINE__, "%s", err_get());
        return -1;
    }
    fx->x = getf(&fx->f, "x", 2 * 3 * 32 * 32);
    const StTensor *t = st_find(&fx->f, "targets");
    if (!fx->x || !t || t->dtype != ST_I64 || t->numel != 2) return -1;
    fx->t[0] = (int)t->i64[0];
    fx->t[1] = (int)t->i64[1];
    fx->p = plan_new(&fx->m, max_batch, 32, 32);
    return fx->p ? 0 : -1;
}

static void fix_close(Fix *fx) {
    if (fx->p) plan_free(fx->p);
    st_free(&fx->f);
    model_free(&fx->m);
}

/* Each method and IG variant of the fixture. Tolerance: relative to the map's
 * largest value (float32 sums in another order through ~16 layers). */
static void check_vs_torch(const char *arch) {
    Fix fx;
    /* max batch 3: 2 images in one pass, IG's 100 points in 34 passes (last partial) */
    REQUIRE(fix_open(&fx, arch, 3) == 0);
    enum { N = 2 * 3 * 32 * 32 };
    float *a = xmalloc(N * sizeof(float)), delta[2];
    const float *logits = getf(&fx.f, "logits", 20);
    if (logits) {
        PassMode pm = {0, RELU_STANDARD, 0, 0};
        const float *y = model_forward(&fx.m, fx.p, fx.x, 2, pm);
        CHECK_CLOSE("logits", y, logits, 20, 1e-5f, 1e-4f);
    }
    AttrOpts o;
    static const char *simple[4] = {"saliency", "deconv", "gxi", "guided"};
    for (int k = 0; k < 4; k++) {
        attr_opts_default(&o);
        REQUIRE(attr_parse_method(simple[k], &o.method) == 0);
        const float *want = getf(&fx.f, simple[k], N);
        REQUIRE(want);
        REQUIRE(attr_compute(&fx.m, fx.p, fx.x, 2, fx.t, &o, a, delta) == 0);
        char what[64];
        snprintf(what, sizeof what, "%s %s", arch, simple[k]);
        CHECK_CLOSE(what, a, want, N, 5e-6f * maxabs(want, N), 1e-4f);
        CHECK(delta[0] == 0 && delta[1] == 0);
    }
    static const struct { const char *name; IgMethod m; int steps, black; } ig[] = {
        {"ig_gausslegendre_50", IG_GAUSS_LEGENDRE, 50, 0},
        {"ig_gausslegendre_50_black", IG_GAUSS_LEGENDRE, 50, 1},
        {"ig_gausslegendre_7", IG_GAUSS_LEGENDRE, 7, 0},
        {"ig_riemann_left_20", IG_RIEMANN_LEFT, 20, 0},
        {"ig_riemann_right_20", IG_RIEMANN_RIGHT, 20, 0},
        {"ig_riemann_middle_20", IG_RIEMANN_MIDDLE, 20, 0},
        {"ig_riemann_trapezoid_20_black", IG_RIEMANN_TRAPEZOID, 20, 1}};
    const float *black = getf(&fx.f, "black", 3 * 32 * 32);
    REQUIRE(black);
    for (size_t k = 0; k < sizeof ig / sizeof ig[0]; k++) {
        attr_opts_default(&o);
        o.method = ATTR_IG;
        o.ig_method = ig[k].m;
        o.steps = ig[k].steps;
        o.baseline = ig[k].black ? black : NULL;
        const float *want = getf(&fx.f, ig[k].name, N);
        char dn[64], what[80];
        double wd[2];
        snprintf(dn, sizeof dn, "%s_delta", ig[k].name);
        REQUIRE(want && getd(&fx.f, dn, 2, wd) == 0);
        REQUIRE(attr_compute(&fx.m, fx.p, fx.x, 2, fx.t, &o, a, delta) == 0);
        snprintf(what, sizeof what, "%s %s", arch, ig[k].name);
        CHECK_CLOSE(what, a, want, N, 5e-6f * maxabs(want, N), 1e-4f);
        float wdf[2] = {(float)wd[0], (float)wd[1]};
        snprintf(what, sizeof what, "%s %s delta", arch, ig[k].name);
        CHECK_CLOSE(what, delta, wdf, 2, 5e-5f, 1e-3f);
    }
    free(a);
    fix_close(&fx);
}

TEST(attr_vgg16_vs_torch) { check_vs_torch("vgg16"); }
TEST(attr_resnet18_vs_torch) { check_vs_torch("resnet18"); }

/* IG (and a plain method) give bit-identical results for any max batch: a pass
 * in eval mode does not depend on which images share it. */
TEST(attr_batch_independent) {
    enum { N = 2 * 3 * 32 * 32 };
    Fix fx;
    REQUIRE(fix_open(&fx, "resnet18", 1) == 0);
    AttrOpts o;
    attr_opts_default(&o);
    o.method = ATTR_IG;
    o.steps = 13;
    float *a1 = xmalloc(2 * N * sizeof(float)), *a2 = a1 + N, d1[2], d2[2];
    REQUIRE(attr_compute(&fx.m, fx.p, fx.x, 2, fx.t, &o, a1, d1) == 0);
    static const int batches[] = {4, 26, 64, 128};
    for (int b = 0; b < (int)(sizeof batches / sizeof batches[0]); b++) {
        Plan *p = plan_new(&fx.m, batches[b], 32, 32);
        REQUIRE(p);
        REQUIRE(attr_compute(&fx.m, p, fx.x, 2, fx.t, &o, a2, d2) == 0);
        CHECKF(!memcmp(a1, a2, N * sizeof(float)) && d1[0] == d2[0] && d1[1] == d2[1],
               "IG with max batch %d differs from max batch 1", batches[b]);
        plan_free(p);
    }
    fix_close(&fx);
    free(a1);
}

/* Completeness: |sum attr - (F(x) - F(b))| shrinks as the steps grow. */
TEST(attr_ig_completeness_converges) {
    Fix fx;
    REQUIRE(fix_open(&fx, "vgg16", 64) == 0);
    enum { N = 2 * 3 * 32 * 32 };
    float *a = xmalloc(N * sizeof(float)), d[2];
    static const IgMethod ms[2] = {IG_RIEMANN_RIGHT, IG_GAUSS_LEGENDRE};
    static const int steps[3] = {10, 50, 200};
    for (int k = 0; k < 2; k++) {
        double err[3];
        for (int s = 0; s < 3; s++) {
            AttrOpts o;
            attr_opts_default(&o);
            o.method = ATTR_IG;
            o.ig_method = ms[k];
            o.steps = steps[s];
            REQUIRE(attr_compute(&fx.m, fx.p, fx.x, 2, fx.t, &o, a, d) == 0);
            err[s] = fabs(d[0]) + fabs(d[1]);
        }
        printf("    %s: |delta| summed over 2 images: %.3g (10 steps), %.3g (50), %.3g (200)\n",
               attr_ig_method_name(ms[k]), err[0], err[1], err[2]);
        CHECK(err[1] < err[0] && err[2] < err[1]);
        CHECK(err[2] < 0.2 * err[0]);
    }
    free(a);
    fix_close(&fx);
}

/* SmoothGrad = the mean of the method over noisy copies drawn as attr.h says.
 * Reproduced here sample by sample with plain attr_compute calls. */
TEST(attr_smoothgrad_definition) {
    enum { N = 2 * 3 * 32 * 32, S = 3 };
    Fix fx;
    REQUIRE(fix_open(&fx, "resnet18", 2) == 0);
    float *a = xmalloc(4 * N * sizeof(float)), *ref = a + N, *xs = a + 2 * N, *one = a + 3 * N;
    static const AttrMethod ms[3] = {ATTR_SALIENCY, ATTR_GUIDED, ATTR_IG};
    for (int k = 0; k < 3; k++) {
        AttrOpts o, plain;
        attr_opts_default(&o);
        o.method = ms[k];
        o.steps = 8;
        o.smooth_n = S;
        o.smooth_sigma = 0.3f;
        o.seed = 99;
        plain = o;
        plain.smooth_n = 0;
        float d[2], d1[2];
        double dsum[2] = {0, 0};
        REQUIRE(attr_compute(&fx.m, fx.p, fx.x, 2, fx.t, &o, a, d) == 0);
        Rng r;
        rng_seed(&r, 99);
        memset(ref, 0, N * sizeof(float));
        for (int s = 0; s < S; s++) {
            for (int e = 0; e < N; e++) xs[e] = fx.x[e] + 0.3f * rng_normal(&r);
            REQUIRE(attr_compute(&fx.m, fx.p, xs, 2, fx.t, &plain, one, d1) == 0);
            for (int e = 0; e < N; e++) ref[e] += one[e];
            dsum[0] += d1[0];
            dsum[1] += d1[1];
        }
        for (int e = 0; e < N; e++) ref[e] /= S;
        char what[64];
        snprintf(what, sizeof what, "smoothgrad %s", attr_method_name(ms[k]));
        CHECK_CLOSE(what, a, ref, N, 1e-7f * maxabs(ref, N), 1e-6f);
        CHECK_NEAR(d[0], dsum[0] / S, 1e-5);
        CHECK_NEAR(d[1], dsum[1] / S, 1e-5);
        /* the noise matters: not the plain map */
        REQUIRE(attr_compute(&fx.m, fx.p, fx.x, 2, fx.t, &plain, one, NULL) == 0);
        CHECK(memcmp(one, a, N * sizeof(float)) != 0);
        if (ms[k] == ATTR_SALIENCY)
            for (int e = 0; e < N; e++)
                if (a[e] < 0) { CHECKF(0, "smoothed saliency has a negative value"); break; }
    }
    /* sigma 0: every sample is x itself, the mean is the plain map */
    AttrOpts o;
    attr_opts_default(&o);
    o.method = ATTR_GXI;
    o.smooth_n = 2;
    REQUIRE(attr_compute(&fx.m, fx.p, fx.x, 2, fx.t, &o, a, NULL) == 0);
    o.smooth_n = 0;
    REQUIRE(attr_compute(&fx.m, fx.p, fx.x, 2, fx.t, &o, ref, NULL) == 0);
    CHECK_CLOSE("smoothgrad sigma 0 = plain", a, ref, N, 0, 1e-6f);
    free(a);
    fix_close(&fx);
}

TEST(attr_bad_input) {
    Fix fx;
    REQUIRE(fix_open(&fx, "vgg16", 2) == 0);
    float *a = xmalloc(2 * 3 * 32 * 32 * sizeof(float));
    AttrOpts o;
    attr_opts_default(&o);
    int t[2] = {0, 10};
    CHECK(attr_compute(&fx.m, fx.p, fx.x, 2, t, &o, a, NULL) == -1 && strstr(err_get(), "out of range"));
    t[1] = -1;
    CHECK(attr_compute(&fx.m, fx.p, fx.x, 2, t, &o, a, NULL) == -1);
    t[1] = 9;
    o.method = ATTR_IG;
    o.ig_method = IG_RIEMANN_LEFT;
    o.steps = 1;
    CHECK(attr_compute(&fx.m, fx.p, fx.x, 2, t, &o, a, NULL) == -1 && strstr(err_get(), "steps"));
    o.ig_method = IG_GAUSS_LEGENDRE; /* one Gauss-Legendre point is allowed, as in Captum */
    CHECK(attr_compute(&fx.m, fx.p, fx.x, 2, t, &o, a, NULL) == 0);
    o.smooth_n = 2;
    o.smooth_sigma = -1;
    CHECK(attr_compute(&fx.m, fx.p, fx.x, 2, t, &o, a, NULL) == -1);
    free(a);
    fix_close(&fx);
}

/* ------------------------------------------------------------------ heatmaps */

/* v = 1..100 with alternating signs, split over two channels (v/2 + 1, v/2 - 1).
 * Sorted |v|: cumulative sums k(k+1)/2 reach 98% of 5050 (4949) at k = 99, so 99
 * maps to 1: pixel p (value p+1) becomes +-(p+1)/99, and 100 is clipped to 1. */
TEST(heatmap_normalize_by_hand) {
    float attr[200], out[100];
    for (int p = 0; p < 100; p++) {
        float v = (float)(p + 1) * (p % 2 ? -1 : 1);
        attr[p] = v / 2 + 1;
        attr[100 + p] = v / 2 - 1;
    }
    for (int absolute = 0; absolute < 2; absolute++) {
        float thr = heatmap_normalize(attr, 2, 10, 10, absolute, out);
        CHECK(thr == 99);
        for (int p = 0; p < 100; p++) {
            double want = p == 99 ? 1 : (p + 1) / 99.0;
            if (!absolute && p % 2) want = -want;
            CHECK_NEAR(out[p], want, 1e-7);
        }
    }
    /* the simple case: the largest value is the threshold */
    float small[4] = {1, -2, 3, -4};
    CHECK(heatmap_normalize(small, 1, 2, 2, 0, out) == 4);
    CHECK(out[0] == 0.25f && out[1] == -0.5f && out[2] == 0.75f && out[3] == -1);
    /* an all-zero map stays zero (Captum would divide by 0) */
    float zero[6] = {0, 0, 0, 0, 0, 0};
    CHECK(heatmap_normalize(zero, 3, 1, 2, 0, out) == 0 && out[0] == 0 && out[1] == 0);
    float vals[5] = {0, 0, 5, 0, 0};
    CHECK(heatmap_cumsum_threshold(vals, 5, 98) == 5);
    CHECK(heatmap_cumsum_threshold(vals, 0, 98) == 0);
}

TEST(heatmap_normalize_vs_captum) {
    StFile f;
    REQUIRE(st_read(fixture("attr/heatmap.safetensors"), &f) == 0);
    static const int hw[2][2] = {{8, 8}, {5, 7}};
    for (int i = 0; i < 2; i++) {
        int H = hw[i][0], W = hw[i][1], n = H * W;
        char name[32];
        snprintf(name, sizeof name, "a%d", i);
        const float *a = getf(&f, name, 3 * n);
        snprintf(name, sizeof name, "signed%d", i);
        const float *s = getf(&f, name, n);
        snprintf(name, sizeof name, "abs%d", i);
        const float *ab = getf(&f, name, n);
        snprintf(name, sizeof name, "thr%d", i);
        const float *thr = getf(&f, name, 2);
        REQUIRE(a && s && ab && thr);
        float out[64], absin[3 * 64];
        float t = heatmap_normalize(a, 3, H, W, 0, out);
        CHECK_NEAR(t, thr[0], 1e-6 * fabs(thr[0]));
        CHECK_CLOSE("captum signed", out, s, n, 1e-6f, 1e-5f);
        for (int e = 0; e < 3 * n; e++) absin[e] = fabsf(a[e]);
        t = heatmap_normalize(absin, 3, H, W, 1, out);
        CHECK_NEAR(t, thr[1], 1e-6 * fabs(thr[1]));
        CHECK_CLOSE("captum absolute", out, ab, n, 1e-6f, 1e-5f);
    }
    st_free(&f);
}

TEST(heatmap_colours) {
    unsigned char c[3];
    heatmap_colour(0, 0, c); /* signed 0: near white */
    CHECK(c[0] > 240 && c[1] > 240 && c[2] > 240);
    heatmap_colour(1, 0, c); /* +1 dark red */
    CHECK(c[0] > 2 * c[2] && c[0] > 2 * c[1]);
    heatmap_colour(-1, 0, c); /* -1 dark blue */
    CHECK(c[2] > 2 * c[0]);
    heatmap_colour(0, 1, c); /* absolute 0: white */
    CHECK(c[0] == 255 && c[1] == 255 && c[2] == 255);
    unsigned char d[3];
    heatmap_colour(1, 1, d); /* absolute 1: dark */
    CHECK(d[0] + d[1] + d[2] < 200);
    heatmap_colour(0.5f, 1, c); /* monotone in between */
    CHECK(c[0] + c[1] + c[2] < 765 && c[0] + c[1] + c[2] > d[0] + d[1] + d[2]);
    heatmap_colour(5, 0, c); /* out of range: clipped */
    heatmap_colour(1, 0, d);
    CHECK(!memcmp(c, d, 3));
}

/* The PNG of two 4x3 maps at scale 2 reads back with the layout and colours
 * heatmap.h describes. */
TEST(heatmap_png_layout) {
    enum { H = 3, W = 4, HW = H * W };
    float attr[2 * 3 * HW], x[2 * 3 * HW];
    memset(attr, 0, sizeof attr);
    for (int e = 0; e < 2 * 3 * HW; e++) x[e] = (float)(e % 7) / 7;
    attr[0] = 5;          /* image 0, pixel (0,0): the top value -> +1 */
    attr[HW + 5] = -5;    /* image 0, pixel (1,1): -1 */
    attr[3 * HW + 2] = 1; /* image 1 has one non-zero pixel */
    char path[512];
    snprintf(path, sizeof path, "%s/map.png", test_tmpdir());
    REQUIRE(heatmap_write_png(path, attr, x, 2, H, W, 0, NULL, NULL, 2) == 0);
    Image img;
    REQUIRE(image_load(path, &img) == 0);
    /* 2 pairs in one row: 4 + (8+2+8) + 10 + (8+2+8) + 4 = 54 wide, 4 + 6 + 4 high */
    CHECK(img.w == 54 && img.h == 14 && img.c == 3);
    if (img.w == 54 && img.h == 14) {
        const unsigned char *px = img.data;
#define PX(X, Y) (px + 3 * ((Y) * img.w + (X)))
        unsigned char red[3], blue[3], white[3];
        heatmap_colour(1, 0, red);
        heatmap_colour(-1, 0, blue);
        heatmap_colour(0, 0, white);
        CHECK(!memcmp(PX(4, 4), red, 3) && !memcmp(PX(5, 5), red, 3)); /* 2x2 block */
        CHECK(!memcmp(PX(6, 6), blue, 3) && !memcmp(PX(7, 7), blue, 3));
        CHECK(!memcmp(PX(8, 4), white, 3));
        CHECK(PX(0, 0)[0] == 255 && PX(0, 0)[1] == 255); /* margin */
        /* overlay of image 0 starts at x = 4 + 8 + 2: its (0,0) leans to red */
        CHECK(PX(14, 4)[0] > PX(14, 4)[2]);
        /* second pair at x = 4 + 18 + 10 = 32: pixel (0,2) of image 1 is +1 */
        CHECK(!memcmp(PX(32 + 4, 4), red, 3));
#undef PX
    }
    image_free(&img);
    CHECK(heatmap_auto_scale(28) == 4 && heatmap_auto_scale(224) == 1 && heatmap_auto_scale(32) == 4);
}

TEST(heatmap_canvas_polygon) {
    Canvas c;
    static const unsigned char black[3] = {0, 0, 0}, green[3] = {0, 200, 0};
    canvas_init(&c, 40, 30, black);
    unsigned char tile[2 * 2 * 3];
    memset(tile, 128, sizeof tile);
    canvas_blit(&c, 38, 28, tile, 2, 2, 2); /* clipped at the border */
    CHECK(c.rgb[3 * (29 * 40 + 39)] == 128 && c.rgb[3 * (27 * 40 + 37)] == 0);
    /* a square through pixel centres (1,1)-(5,1)-(5,5)-(1,5) of a tile at (0,0),
     * scale 4: canvas corners at (6,6) and (22,22) */
    int sq[8] = {1, 1, 5, 1, 5, 5, 1, 5};
    canvas_polygon(&c, sq, 4, 0, 0, 4, green, 1);
    const unsigned char *p = c.rgb;
    CHECK(p[3 * (6 * 40 + 14) + 1] == 200);  /* top edge */
    CHECK(p[3 * (22 * 40 + 10) + 1] == 200); /* bottom edge */
    CHECK(p[3 * (14 * 40 + 6) + 1] == 200);  /* left edge */
    CHECK(p[3 * (14 * 40 + 22) + 1] == 200); /* right edge */
    CHECK(p[3 * (14 * 40 + 14) + 1] == 0);   /* inside untouched */
    CHECK(p[3 * (3 * 40 + 14) + 1] == 0);    /* outside untouched */
    char path[512];
    snprintf(path, sizeof path, "%s/canvas.png", test_tmpdir());
    REQUIRE(canvas_write_png(&c, path) == 0);
    Image img;
    REQUIRE(image_load(path, &img) == 0);
    CHECK(img.w == 40 && img.h == 30 && img.c == 3 && !memcmp(img.data, c.rgb, 40 * 30 * 3));
    image_free(&img);
    canvas_free(&c);
}

/* ------------------------------------------------------------------ gad explain */

static int argcount(char **argv) {
    int argc = 0;
    while (argv[argc]) argc++;
    return argc;
}

/* A usage error exits: run cmd_explain in a child process and return its exit
 * code. Only for argument errors, which end before any thread is started (a
 * forked child has no thread pool workers). */
static int explain_usage(char **argv) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr)) _exit(99);
        _exit(cmd_explain(argcount(argv), argv));
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Everything else returns: run it here. */
static int explain(char **argv) {
    fflush(stdout);
    int rc = cmd_explain(argcount(argv), argv);
    fflush(stdout);
    return rc;
}

TEST(explain_cli) {
    Fix fx;
    REQUIRE(fix_open(&fx, "vgg16", 8) == 0);
    char xin[512], out[512], png[512], w[512], bad[512], tiny[512];
    const char *dir = test_tmpdir();
    snprintf(xin, sizeof xin, "%s/x.npy", dir);
    snprintf(out, sizeof out, "%s/a.npy", dir);
    snprintf(png, sizeof png, "%s/a.png", dir);
    snprintf(bad, sizeof bad, "%s/bad.npy", dir);
    snprintf(tiny, sizeof tiny, "%s/tiny.npy", dir);
    snprintf(w, sizeof w, "%s", fixture("attr/vgg16_w.safetensors"));
    int64_t dim[4] = {2, 3, 32, 32};
    REQUIRE(npy_write_data(xin, fx.x, 4, dim) == 0);
    char *a1[] = {"explain", "--weights", w, "--input", xin, "--method", "ig", "--steps", "9",
                  "--ig-method", "riemann_middle", "--target", "4", "--out", out, "--png", png, NULL};
    CHECK(explain(a1) == 0);
    Tensor t;
    REQUIRE(npy_read(out, &t) == 0);
    CHECK(t.ndim == 4 && t.dim[0] == 2 && t.dim[1] == 3 && t.dim[2] == 32 && t.dim[3] == 32);
    float *ref = xmalloc(2 * 3 * 32 * 32 * sizeof(float));
    AttrOpts o;
    attr_opts_default(&o);
    o.method = ATTR_IG;
    o.steps = 9;
    o.ig_method = IG_RIEMANN_MIDDLE;
    int t4[2] = {4, 4};
    REQUIRE(attr_compute(&fx.m, fx.p, fx.x, 2, t4, &o, ref, NULL) == 0);
    CHECK_CLOSE("explain --out = attr_compute", t.data, ref, 2 * 3 * 32 * 32, 0, 0);
    tensor_free(&t);
    Image img;
    REQUIRE(image_load(png, &img) == 0);
    CHECK(img.c == 3 && img.w > 2 * 2 * 32 * 4 && img.h >= 32 * 4);
    image_free(&img);

    /* default target: the predicted class; saliency */
    char *a2[] = {"explain", "--weights", w, "--input", xin, "--method", "saliency", "--out", out, NULL};
    CHECK(explain(a2) == 0);
    REQUIRE(npy_read(out, &t) == 0);
    PassMode pm = {0, RELU_STANDARD, 0, 0};
    const float *y = model_forward(&fx.m, fx.p, fx.x, 2, pm);
    int pred[2];
    for (int i = 0; i < 2; i++) {
        pred[i] = 0;
        for (int k = 1; k < 10; k++)
            if (y[i * 10 + k] > y[i * 10 + pred[i]]) pred[i] = k;
    }
    attr_opts_default(&o);
    REQUIRE(attr_compute(&fx.m, fx.p, fx.x, 2, pred, &o, ref, NULL) == 0);
    CHECK_CLOSE("explain default target", t.data, ref, 2 * 3 * 32 * 32, 0, 0);
    tensor_free(&t);

    /* usage errors: exit 2 */
    char *u1[] = {"explain", "--weights", w, "--input", xin, "--method", "gradcam", NULL};
    CHECK(explain_usage(u1) == 2);
    char *u2[] = {"explain", "--weights", w, "--input", xin, "--method", "ig", "--ig-method", "simpson", NULL};
    CHECK(explain_usage(u2) == 2);
    char *u3[] = {"explain", "--weights", w, "--input", xin, "--method", "gxi", "--smooth", "4", NULL};
    CHECK(explain_usage(u3) == 2);
    char *u4[] = {"explain", "--weights", w, "--input", xin, "--method", "gxi", "--smooth", "4,x", NULL};
    CHECK(explain_usage(u4) == 2);
    char *u5[] = {"explain", "--weights", w, "--input", xin, NULL}; /* no --method */
    CHECK(explain_usage(u5) == 2);
    char *u6[] = {"explain", "--weights", w, "--input", xin, "--method", "ig", "--baseline", "grey", NULL};
    CHECK(explain_usage(u6) == 2);
    /* bad input: exit 1 */
    char *b1[] = {"explain", "--weights", w, "--input", xin, "--method", "gxi", "--target", "10", NULL};
    CHECK(explain(b1) == 2); /* a target the model lacks is a usage error (issue 7) */
    int64_t d3[4] = {1, 1, 32, 32};
    REQUIRE(npy_write_data(bad, fx.x, 4, d3) == 0);
    char *b2[] = {"explain", "--weights", w, "--input", bad, "--method", "gxi", NULL};
    CHECK(explain(b2) == 1);
    int64_t d4[4] = {1, 3, 8, 8};
    REQUIRE(npy_write_data(tiny, fx.x, 4, d4) == 0);
    char *b3[] = {"explain", "--weights", w, "--input", tiny, "--method", "gxi", NULL};
    CHECK(explain(b3) == 1);
    char *b4[] = {"explain", "--weights", w, "--input", "/nonexistent.npy", "--method", "gxi", NULL};
    CHECK(explain(b4) == 1);
    /* SmoothGrad and the black baseline run */
    char *s1[] = {"explain", "--weights", w, "--input", xin, "--method", "ig", "--steps", "4", "--baseline",
                  "black", "--smooth", "2,0.1", "--batch", "3", "--out", out, NULL};
    CHECK(explain(s1) == 0);

    /* weights with ImageNet mean/std in their metadata: --baseline black is then
     * (0 - mean) / std, the fixture's "black" made by PyTorch; and an image file
     * input is normalised with them */
    char wn[512], pngin[512];
    snprintf(wn, sizeof wn, "%s/norm.safetensors", dir);
    snprintf(pngin, sizeof pngin, "%s/in.png", dir);
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
    fx.m.cfg.has_norm = 1;
    memcpy(fx.m.cfg.mean, mean, sizeof mean);
    memcpy(fx.m.cfg.std, sd, sizeof sd);
    REQUIRE(model_save(&fx.m, wn) == 0);
    char *n1[] = {"explain", "--weights", wn, "--input", xin, "--method", "ig", "--steps", "6", "--baseline",
                  "black", "--target", "3", "--out", out, NULL};
    CHECK(explain(n1) == 0);
    REQUIRE(npy_read(out, &t) == 0);
    attr_opts_default(&o);
    o.method = ATTR_IG;
    o.steps = 6;
    o.baseline = getf(&fx.f, "black", 3 * 32 * 32);
    int t3[2] = {3, 3};
    REQUIRE(o.baseline && attr_compute(&fx.m, fx.p, fx.x, 2, t3, &o, ref, NULL) == 0);
    CHECK_CLOSE("explain --baseline black", t.data, ref, 2 * 3 * 32 * 32, 0, 0);
    tensor_free(&t);
    Image im = {32, 32, 3, xmalloc(32 * 32 * 3)};
    for (int e = 0; e < 32 * 32 * 3; e++) im.data[e] = (unsigned char)(e * 37 % 251);
    REQUIRE(png_write(pngin, &im) == 0);
    char *i1[] = {"explain", "--weights", wn, "--input", pngin, "--method", "guided", "--target", "2", "--out", out,
                  "--png", png, NULL};
    CHECK(explain(i1) == 0);
    REQUIRE(npy_read(out, &t) == 0);
    CHECK(t.ndim == 4 && t.dim[0] == 1 && t.dim[1] == 3 && t.dim[2] == 32 && t.dim[3] == 32);
    float *xi = xmalloc(3 * 32 * 32 * sizeof(float));
    image_to_input(&im, 32, 32, mean, sd, xi);
    attr_opts_default(&o);
    o.method = ATTR_GUIDED;
    int t2 = 2;
    REQUIRE(attr_compute(&fx.m, fx.p, xi, 1, &t2, &o, ref, NULL) == 0);
    CHECK_CLOSE("explain image input", t.data, ref, 3 * 32 * 32, 0, 0);
    tensor_free(&t);
    free(xi);
    free(im.data);
    free(ref);
    fix_close(&fx);
}

/* The three ramps: their ends, monotone darkening, the table a colour bar draws,
 * and the old entry point (heatmap_colour) giving the same colours. */
TEST(heatmap_ramps) {
    unsigned char c[3], d[3], tab[5 * 3];
    heatmap_ramp(HEAT_REDS, 0, c);
    CHECK(c[0] == 255 && c[1] == 255 && c[2] == 255);
    heatmap_ramp(HEAT_REDS, 1, c);
    CHECK(c[0] > 3 * c[1] && c[0] > 3 * c[2]);
    heatmap_ramp(HEAT_BLUES, 1, c);
    CHECK(c[2] > 2 * c[0]);
    for (int r = HEAT_BLUES; r <= HEAT_REDS; r++) {
        int last = 3 * 255 + 1;
        for (int i = 0; i <= 20; i++) {
            heatmap_ramp((HeatRamp)r, i / 20.0f, c);
            int sum = c[0] + c[1] + c[2];
            CHECKF(sum < last, "ramp %d not darkening at %d", r, i);
            last = sum;
        }
    }
    heatmap_ramp(HEAT_REDS, NAN, c);
    heatmap_ramp(HEAT_REDS, -3, d);
    CHECK(!memcmp(c, d, 3) && c[0] == 255);
    heatmap_ramp_table(HEAT_DIVERGING, 5, tab);
    heatmap_colour(-1, 0, c);
    CHECK(!memcmp(tab, c, 3));
    heatmap_colour(1, 0, c);
    CHECK(!memcmp(tab + 12, c, 3));
    heatmap_ramp(HEAT_DIVERGING, 0, c);
    CHECK(!memcmp(tab + 6, c, 3));
    heatmap_ramp_table(HEAT_BLUES, 5, tab);
    heatmap_colour(0.5f, 1, c);
    CHECK(!memcmp(tab + 6, c, 3));
}
