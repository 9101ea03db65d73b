/* cmd_tour: `gad tour relu` and `gad tour ig`, the printed steps of two walks of
 * docs/tour.md.
 *   relu: a network of three inputs, two hidden ReLU layers and one logit, small
 *     enough to follow by hand, run through the real kernels (ops/linear.h,
 *     ops/act.h) with each backward rule: Saliency, Deconvolution and Guided
 *     Backprop differ only in what a ReLU lets through on the way back, and on
 *     this network the three give three different answers.
 *   ig: Integrated Gradients of one image under a bundled model: the logit along
 *     the straight path from the baseline to the image, the quadrature's points
 *     and weights, and the completeness check (the attributions sum to
 *     F(x) - F(baseline)) for several step counts and quadrature rules.
 * Not for: anything the other commands compute for real data (gad explain). */
#include "attr/attr.h"
#include "cli/cli.h"
#include "core/err.h"
#include "io/dataset.h"
#include "nn/model.h"
#include "ops/act.h"
#include "ops/linear.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUNDLED_DATA "data/fashion-pc-images-idx3-ubyte.gz"
#define BUNDLED_CLASSES "2,4"
#define BUNDLED_RESNET "weights/resnet18.safetensors"

static void help(void) {
    printf("usage: gad tour relu | gad tour ig [--weights W] [--image N]\n"
           "The printed steps of the walks in docs/tour.md.\n\n"
           "  relu   a tiny network (3 inputs, ReLU layers of 4 and 3 units, one logit)\n"
           "         through the real kernels: the gradient at each ReLU under the\n"
           "         standard, deconv and guided rules, and the five attributions of x\n"
           "  ig     Integrated Gradients of one image: the logit along the path from the\n"
           "         baseline, the quadrature, and the completeness check for several\n"
           "         step counts and rules\n"
           "         --weights W   a vgg16/resnet18 model (default " BUNDLED_RESNET ")\n"
           "         --data SPEC   its data (default " BUNDLED_DATA ", classes " BUNDLED_CLASSES ")\n"
           "         --image N     the image's index in the data (default: the first\n"
           "                       held-out image)\n"
           "  -h, --help\n\n"
           "Exit status: 0 success, 1 bad file or data, 2 usage error.\n");
}

/* ------------------------------------------------------------------ relu */

enum { NI = 3, N1 = 4, N2 = 3 };
static const float X[NI] = {1.0f, -0.5f, 2.0f};
static const float W1[N1 * NI] = {0.5f, -1.0f, 0.25f, -0.5f, 0.5f, -0.25f, 1.0f, 0.5f, -0.25f, 0.25f, 1.0f, 0.5f};
static const float B1[N1] = {0.0f, 0.25f, -0.5f, 0.0f};
static const float W2[N2 * N1] = {1.0f, -0.5f, 0.5f, 1.0f, 0.5f, 1.0f, -1.0f, 0.5f, -1.0f, 0.5f, 1.0f, -0.5f};
static const float B2[N2] = {-0.5f, 0.0f, 0.25f};
static const float W3[N2] = {1.0f, -1.0f, 0.5f};

static void vec(const char *name, const float *v, int n) {
    printf("%s[", name);
    for (int i = 0; i < n; i++) printf("%s%+.4g", i ? " " : "", (double)v[i]);
    printf("]");
}

/* Forward of x [NI] into the activations; returns the logit. */
static float tiny_forward(const float *x, float *a1, float *r1, float *a2, float *r2) {
    float y;
    linear_forward(1, NI, N1, x, W1, B1, a1);
    relu_forward(N1, a1, r1);
    linear_forward(1, N1, N2, r1, W2, B2, a2);
    relu_forward(N2, a2, r2);
    linear_forward(1, N2, 1, r2, W3, NULL, &y);
    return y;
}

/* A lecture printed in order (forward, then each rule's backward): kept as one page
 * so that it reads like the text it prints. */
static int tour_relu(void) {
    float a1[N1], r1[N1], a2[N2], r2[N2];
    float y = tiny_forward(X, a1, r1, a2, r2);
    printf("A tiny network: x (3 inputs) -> linear 3->4 -> ReLU 1 -> linear 4->3 -> ReLU 2 -> linear 3->1 = y\n"
           "(the weights are in src/cli/cmd_tour.c; the kernels are gad's own: ops/linear.h, ops/act.h)\n\n");
    printf("forward\n  ");
    vec("x  = ", X, NI);
    printf("\n  ");
    vec("a1 = ", a1, N1);
    printf("   ReLU 1 -> ");
    vec("", r1, N1);
    printf("   (units 2 and 3 are off: a1 <= 0)\n  ");
    vec("a2 = ", a2, N2);
    printf("   ReLU 2 -> ");
    vec("", r2, N2);
    printf("   (unit 3 is off)\n  y  = %.4g  (the logit every method explains)\n\n", (double)y);

    static const ReluRule rules[3] = {RELU_STANDARD, RELU_DECONV, RELU_GUIDED};
    static const char *names[3] = {"standard", "deconv", "guided"};
    static const char *what[3] = {"dx = g * 1[forward > 0]   (the true gradient: Saliency, Gradient x Input, IG)",
                                  "dx = max(g, 0)            (Deconvolution: ignores the forward pass)",
                                  "dx = max(g, 0) * 1[forward > 0]   (Guided Backprop: both conditions)"};
    float gx[3][NI];
    printf("backward: the gradient g arriving at each ReLU, and what the rule lets through\n");
    for (int k = 0; k < 3; k++) {
        float g2[N2], o2[N2] = {0}, g1[N1] = {0}, o1[N1] = {0};
        float one = 1.0f;
        memset(g2, 0, sizeof g2);
        /* y = W3 r2: dy/dr2 = W3 (linear_backward accumulates into zeroed buffers) */
        linear_backward(1, N2, 1, r2, W3, &one, g2, NULL, NULL);
        relu_backward(N2, r2, g2, o2, rules[k]);
        linear_backward(1, N1, N2, r1, W2, o2, g1, NULL, NULL);
        relu_backward(N1, r1, g1, o1, rules[k]);
        memset(gx[k], 0, sizeof gx[k]);
        linear_backward(1, NI, N1, X, W1, o1, gx[k], NULL, NULL);
        printf("  %-8s %s\n", names[k], what[k]);
        printf("           ReLU 2: ");
        vec("g ", g2, N2);
        printf(" -> ");
        vec("", o2, N2);
        printf("\n           ReLU 1: ");
        vec("g ", g1, N1);
        printf(" -> ");
        vec("", o1, N1);
        printf("\n           ");
        vec("d/dx ", gx[k], NI);
        printf("\n");
    }
    printf("\n  At ReLU 2, unit 2 is on (a2 = %+.4g) and receives g = %+.4g: the standard rule passes it,\n"
           "  deconv and guided drop it (negative). Unit 3 is off (a2 = %+.4g) and receives g = %+.4g:\n"
           "  deconv passes it (it looks only at g), standard and guided block it (off in the forward).\n"
           "  So the three rules send different gradients down to ReLU 1 and to x.\n\n",
           (double)a2[1], (double)W3[1], (double)a2[2], (double)W3[2]);

    printf("attributions of y to x (Captum's definitions)\n");
    printf("  %-6s %12s %12s %12s %14s %12s\n", "input", "Saliency", "Grad x Input", "Deconv", "Guided Backprop",
           "IG");
    /* IG from the zero baseline, 1000 midpoint steps of the standard gradient (the
     * network is piecewise linear along the path: enough for the digits printed) */
    float ig[NI] = {0};
    enum { STEPS = 1000 };
    for (int s = 0; s < STEPS; s++) {
        float al = (s + 0.5f) / STEPS, xs[NI], b1[N1], c1[N1], b2[N2], c2[N2], g2[N2] = {0}, o2[N2] = {0},
              g1[N1] = {0}, o1[N1] = {0}, g[NI] = {0}, one = 1.0f;
        for (int i = 0; i < NI; i++) xs[i] = al * X[i];
        tiny_forward(xs, b1, c1, b2, c2);
        linear_backward(1, N2, 1, c2, W3, &one, g2, NULL, NULL);
        relu_backward(N2, c2, g2, o2, RELU_STANDARD);
        linear_backward(1, N1, N2, c1, W2, o2, g1, NULL, NULL);
        relu_backward(N1, c1, g1, o1, RELU_STANDARD);
        linear_backward(1, NI, N1, xs, W1, o1, g, NULL, NULL);
        for (int i = 0; i < NI; i++) ig[i] += X[i] * g[i] / STEPS;
    }
    float yb, t1[N1], t2[N1], t3[N2], t4[N2], zero[NI] = {0};
    yb = tiny_forward(zero, t1, t2, t3, t4);
    double sum_ig = 0;
    for (int i = 0; i < NI; i++) {
        printf("  x%-5d %12.4g %12.4g %12.4g %14.4g %12.4g\n", i + 1, fabs((double)gx[0][i]),
               (double)(X[i] * gx[0][i]) + 0.0, (double)gx[1][i], (double)gx[2][i], (double)ig[i]);
        sum_ig += ig[i];
    }
    printf("\n  Saliency = |standard gradient|; Gradient x Input = x * standard gradient.\n"
           "  IG (zero baseline) adds up to y(x) - y(0) = %.4g - (%.4g) = %.4g (completeness): sum %.4g.\n",
           (double)y, (double)yb, (double)(y - yb), sum_ig);
    /* the standard rule is the derivative: central differences agree */
    double h = 1e-3, worst = 0;
    for (int i = 0; i < NI; i++) {
        float xp[NI], xm[NI];
        memcpy(xp, X, sizeof xp);
        memcpy(xm, X, sizeof xm);
        xp[i] += (float)h;
        xm[i] -= (float)h;
        double fd = (tiny_forward(xp, t1, t2, t3, t4) - (double)tiny_forward(xm, t1, t2, t3, t4)) / (2 * h);
        double e = fabs(fd - gx[0][i]);
        worst = e > worst ? e : worst;
    }
    printf("  Check: the standard rule's d/dx against central differences (h = 1e-3): max |diff| = %.2g\n"
           "  (deconv and guided are not derivatives of anything: no such check exists for them).\n",
           worst);
    return 0;
}

/* ------------------------------------------------------------------ ig */

static int output_of(const Model *m, const Dataset *d, int cls) {
    for (int k = 0; m->cfg.class_names && k < m->cfg.num_classes; k++)
        if (!strcmp(m->cfg.class_names[k], d->class_names[cls])) return k;
    return cls < m->cfg.num_classes ? cls : 0;
}

/* A lecture printed in order (the path, the steps, completeness): kept as one page
 * so that it reads like the text it prints. */
static int tour_ig(int argc, char **argv) {
    const char *weights = cli_bundled(BUNDLED_RESNET), *data = NULL;
    int image = -1;
    for (int i = 2; i < argc; i++) {
        if (arg_is_help(argv[i])) { help(); return 0; }
        if (arg_str(argc, argv, &i, "--weights", &weights) || arg_str(argc, argv, &i, "--data", &data) ||
            arg_int(argc, argv, &i, "--image", &image, 0, 1 << 30))
            continue;
        arg_usage_error("tour", "unknown argument '%s'", argv[i]);
    }
    Model m;
    Dataset d;
    memset(&d, 0, sizeof d);
    if (model_load(&m, weights) != 0) return cli_fail();
    int H = m.cfg.in_h > 0 ? m.cfg.in_h : 32, W = m.cfg.in_w > 0 ? m.cfg.in_w : 32, rc = 1;
    const float *mean = m.cfg.has_norm ? m.cfg.mean : NULL, *std = m.cfg.has_norm ? m.cfg.std : NULL;
    Plan *p = NULL;
    float *attr = NULL, *xs = NULL;
    if (dataset_load(&d, data ? data : cli_bundled(BUNDLED_DATA), data ? NULL : BUNDLED_CLASSES, H, W, mean, std, 0.2f) != 0)
        goto done;
    if (image < 0) {
        int *idx = NULL, n = dataset_select(&d, 1, -1, 1, &idx);
        image = n > 0 ? idx[0] : 0;
        free(idx);
    }
    if (image >= d.n) {
        err_set_usage("--image %d: the data has %d images (0..%d)", image, d.n, d.n - 1);
        goto done;
    }
    size_t isz = (size_t)3 * H * W;
    const float *x = d.x + (size_t)image * isz;
    int t = output_of(&m, &d, d.y[image]);
    if (!(p = plan_new(&m, 32, H, W))) goto done;
    printf("Integrated Gradients of %s for image %d of the data (a %s), output %d (%s);\n"
           "baseline b = the zero image (Captum's default).\n\n",
           weights, image, d.class_names[d.y[image]], t, m.cfg.class_names ? m.cfg.class_names[t] : "?");
    /* the logit along the path x(a) = b + a (x - b), b = 0 */
    enum { NP = 11 };
    xs = xmalloc(sizeof(float) * isz * NP);
    for (int k = 0; k < NP; k++)
        for (size_t e = 0; e < isz; e++) xs[k * isz + e] = (float)k / (NP - 1) * x[e];
    PassMode eval = {0, RELU_STANDARD, 0, 0};
    const float *y = model_forward(&m, p, xs, NP, eval);
    int K = m.cfg.num_classes;
    double fb = y[t], fx = y[(size_t)(NP - 1) * K + t];
    printf("1. the path: x(a) = b + a (x - b) for a from 0 to 1, and the logit F along it\n   ");
    for (int k = 0; k < NP; k++) printf("a=%.1f: %-9.4g%s", (double)k / (NP - 1), (double)y[(size_t)k * K + t],
                                        k % 4 == 3 ? "\n   " : "  ");
    printf("\n   F(x) - F(b) = %.6g - (%.6g) = %.6g: what the attributions must add up to.\n\n", fx, fb, fx - fb);

    printf("2. the quadrature: attribution = (x - b) * sum_k w_k dF/dx(x(a_k)), the integral of the\n"
           "   gradient along the path. Gauss-Legendre with 8 steps puts its points and weights at\n   ");
    double al[8], wt[8];
    attr_ig_alphas(IG_GAUSS_LEGENDRE, 8, al, wt);
    for (int k = 0; k < 8; k++) printf("(a %.4f, w %.4f)%s", al[k], wt[k], k % 4 == 3 ? "\n   " : " ");
    printf("(the weights sum to 1); riemann_trapezoid with 8 steps: evenly spaced a, the two ends\n"
           "   weighted half. Captum's default, and gad's: gausslegendre, 50 steps.\n\n");

    printf("3. completeness: sum of the attributions against F(x) - F(b) = %.6g\n", fx - fb);
    printf("   %-6s %25s %25s\n", "steps", "gausslegendre: sum, error", "trapezoid: sum, error");
    static const int steps[] = {2, 5, 10, 20, 50, 100};
    attr = xmalloc(sizeof(float) * isz);
    double at50 = NAN;
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        printf("   %-6d", steps[s]);
        for (int r = 0; r < 2; r++) {
            AttrOpts o;
            attr_opts_default(&o);
            o.method = ATTR_IG;
            o.steps = steps[s];
            o.ig_method = r ? IG_RIEMANN_TRAPEZOID : IG_GAUSS_LEGENDRE;
            float delta;
            if (attr_compute(&m, p, x, 1, &t, &o, attr, &delta) != 0) goto done;
            double sum = 0;
            for (size_t e = 0; e < isz; e++) sum += attr[e];
            printf(" %13.6g %+10.2e", sum, (double)delta);
            if (r == 0 && steps[s] == 50) at50 = delta;
        }
        printf("\n");
    }
    printf("   The error is attr_compute's delta, sum(attributions) - (F(x) - F(b)). It is large with\n"
           "   few steps and does not fall steadily: a ReLU network's logit is only piecewise smooth\n"
           "   along the path (a kink wherever a unit switches on or off), which also takes away most\n"
           "   of Gauss-Legendre's usual advantage. At the default (gausslegendre, 50 steps) the error\n"
           "   is %.1f%% of |F(x) - F(b)|: `gad explain --method ig` prints it for every image.\n",
           100 * fabs(at50) / fabs(fx - fb));
    rc = 0;
done:
    if (rc) rc = cli_fail();
    if (p) plan_free(p);
    free(attr);
    free(xs);
    dataset_free(&d);
    model_free(&m);
    return rc;
}

int cmd_tour(int argc, char **argv) {
    if (argc < 2 || arg_is_help(argv[1])) {
        help();
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "relu")) {
        for (int i = 2; i < argc; i++) {
            if (arg_is_help(argv[i])) { help(); return 0; }
            arg_usage_error("tour", "relu takes no argument, not '%s'", argv[i]);
        }
        return tour_relu();
    }
    if (!strcmp(argv[1], "ig")) return tour_ig(argc, argv);
    arg_usage_error("tour", "unknown walk '%s' (relu or ig)", argv[1]);
    return 2; /* not reached: for compilers that do not know arg_usage_error never returns (tcc) */
}
