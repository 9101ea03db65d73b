/* attr: the five gradient attribution methods and SmoothGrad, with Captum's
 * semantics (see attr/attr.h). Every method is "one backward pass of a one-hot
 * logit gradient" with a ReLU rule, followed by an element-wise finish:
 *   saliency  |g|            deconv  g with RELU_DECONV     gxi  x * g
 *   guided    g with RELU_GUIDED      ig   (x-b) * sum_k w_k g(b + a_k (x-b))
 * Images, and IG's (image, step) points, go through the network in batches of the
 * plan's max batch; the scratch buffers are allocated once per call.
 * Not for: layer/neuron attribution, softmax targets, training-mode passes. */
#include "attr/attr.h"
#include "core/err.h"
#include "core/rng.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *method_names[ATTR_NMETHODS] = {"saliency", "deconv", "gxi", "guided", "ig"};
static const char *ig_names[] = {"gausslegendre", "riemann_left", "riemann_right", "riemann_middle",
                                 "riemann_trapezoid"};
#define N_IG ((int)(sizeof ig_names / sizeof ig_names[0]))

void attr_opts_default(AttrOpts *o) {
    memset(o, 0, sizeof *o);
    o->method = ATTR_SALIENCY;
    o->steps = 50;
    o->ig_method = IG_GAUSS_LEGENDRE;
    o->baseline = NULL;
    o->smooth_n = 0;
    o->smooth_sigma = 0.0f;
    o->seed = 0;
}

int attr_parse_method(const char *s, AttrMethod *out) {
    for (int i = 0; i < ATTR_NMETHODS; i++)
        if (!strcmp(s, method_names[i])) { *out = (AttrMethod)i; return 0; }
    return err_set("unknown attribution method '%s' (saliency, deconv, gxi, guided, ig)", s);
}

int attr_parse_ig_method(const char *s, IgMethod *out) {
    for (int i = 0; i < N_IG; i++)
        if (!strcmp(s, ig_names[i])) { *out = (IgMethod)i; return 0; }
    return err_set("unknown IG method '%s' (gausslegendre, riemann_left, riemann_right, riemann_middle, "
                   "riemann_trapezoid)", s);
}

const char *attr_method_name(AttrMethod m) { return (unsigned)m < ATTR_NMETHODS ? method_names[m] : "?"; }
const char *attr_ig_method_name(IgMethod m) { return (unsigned)m < (unsigned)N_IG ? ig_names[m] : "?"; }
int attr_is_absolute(AttrMethod m) { return m == ATTR_SALIENCY; }

/* ------------------------------------------------------------------ IG quadrature */

/* Gauss-Legendre nodes x [n] (ascending, in [-1,1]) and weights w [n] (sum 2), as
 * numpy.polynomial.legendre.leggauss: each root of P_n by Newton's method from the
 * classic guess cos(pi (i + 3/4) / (n + 1/2)), P_n and P_n' by the three-term
 * recurrence, w = 2 / ((1 - x^2) P_n'(x)^2). Symmetric by construction. */
void attr_leggauss(int n, double *x, double *w) {
    const double pi = 3.14159265358979323846;
    GAD_ASSERT(n >= 1);
    for (int i = 0; i < (n + 1) / 2; i++) {
        double z = cos(pi * (i + 0.75) / (n + 0.5)), dp = 1;
        for (int it = 0; it < 100; it++) {
            double p0 = 1, p1 = z; /* P_0, P_1 */
            for (int k = 2; k <= n; k++) {
                double p2 = ((2 * k - 1) * z * p1 - (k - 1) * p0) / k;
                p0 = p1;
                p1 = p2;
            }
            if (n == 1) p0 = 1;                   /* P_{n-1} = P_0 */
            dp = n * (z * p1 - p0) / (z * z - 1); /* P_n'(z) */
            double dz = p1 / dp;
            z -= dz;
            if (fabs(dz) <= 1e-16) break;
        }
        /* one more evaluation of P_n' at the converged root for the weight */
        double p0 = 1, p1 = z;
        for (int k = 2; k <= n; k++) {
            double p2 = ((2 * k - 1) * z * p1 - (k - 1) * p0) / k;
            p0 = p1;
            p1 = p2;
        }
        dp = n * (z * p1 - p0) / (z * z - 1);
        if (2 * i + 1 == n) z = 0; /* the middle root of an odd n is exactly 0 */
        double wi = 2 / ((1 - z * z) * dp * dp);
        x[i] = -z;
        x[n - 1 - i] = z;
        w[i] = w[n - 1 - i] = wi;
    }
}

/* numpy.linspace(a, b, n)[k]: k * ((b - a) / (n - 1)) + a, the last one exactly b. */
static double linspace(double a, double b, int n, int k) {
    if (n == 1) return a;
    if (k == n - 1) return b;
    return k * ((b - a) / (n - 1)) + a;
}

void attr_ig_alphas(IgMethod m, int steps, double *alphas, double *weights) {
    int n = steps;
    GAD_ASSERT(n >= 1);
    if (m == IG_GAUSS_LEGENDRE) {
        attr_leggauss(n, alphas, weights);
        for (int k = 0; k < n; k++) {
            alphas[k] = 0.5 * (1 + alphas[k]);
            weights[k] = 0.5 * weights[k];
        }
        return;
    }
    /* Captum's riemann_builders: step sizes 1/n (trapezoid: the two ends halved, so
     * that they sum to 1 - 1/n, as Captum has it) on evenly spaced points. Captum
     * refuses n = 1; here it gives the single point of each rule. */
    for (int k = 0; k < n; k++) {
        weights[k] = 1.0 / n;
        switch (m) {
        case IG_RIEMANN_LEFT: alphas[k] = linspace(0, 1 - 1.0 / n, n, k); break;
        case IG_RIEMANN_RIGHT: alphas[k] = linspace(1.0 / n, 1, n, k); break;
        case IG_RIEMANN_MIDDLE: alphas[k] = linspace(1.0 / (2 * n), 1 - 1.0 / (2 * n), n, k); break;
        default: alphas[k] = linspace(0, 1, n, k); break;
        }
    }
    if (m == IG_RIEMANN_TRAPEZOID) {
        weights[0] /= 2;
        weights[n - 1] /= 2;
    }
}

/* ------------------------------------------------------------------ passes */

typedef struct {
    Model *m;
    Plan *p;
    int B, CHW, K;  /* max batch, values per image, classes */
    float *xb;      /* [B,CHW] IG points */
    float *gb;      /* [B,CHW] their gradients */
    float *dl;      /* [B,K] one-hot logit gradients */
    int *tb;        /* [B] the points' targets */
    const double *alpha, *weight; /* [steps] IG */
} Ctx;

/* dl[i] = one-hot(t[i]) for i < nb. */
static void onehot(const Ctx *c, int nb, const int *t) {
    memset(c->dl, 0, (size_t)nb * c->K * sizeof(float));
    for (int i = 0; i < nb; i++) c->dl[(size_t)i * c->K + t[i]] = 1.0f;
}

/* g [n,CHW] = d logit_{t[i]} / d x_i for images x [n,CHW] under the ReLU rule. */
static void gradients(Ctx *c, const float *x, int n, const int *t, ReluRule rule, float *g) {
    PassMode mode = {0, rule, 0, 0};
    for (int i0 = 0; i0 < n; i0 += c->B) {
        int nb = n - i0 < c->B ? n - i0 : c->B;
        size_t off = (size_t)i0 * c->CHW;
        model_forward(c->m, c->p, x + off, nb, mode);
        onehot(c, nb, t + i0);
        memset(g + off, 0, (size_t)nb * c->CHW * sizeof(float));
        model_backward(c->m, c->p, c->dl, g + off, 0, mode);
    }
}

/* logit_{t[i]} of images x [n,CHW] (eval mode) into f [n]. A NULL t means image 0
 * repeated: x is then one image and f[i] = its logit t0[i]. */
static void target_logits(Ctx *c, const float *x, int n, const int *t, double *f) {
    PassMode mode = {0, RELU_STANDARD, 0, 0};
    for (int i0 = 0; i0 < n; i0 += c->B) {
        int nb = n - i0 < c->B ? n - i0 : c->B;
        const float *y = model_forward(c->m, c->p, x + (size_t)i0 * c->CHW, nb, mode);
        for (int i = 0; i < nb; i++) f[i0 + i] = y[(size_t)i * c->K + t[i0 + i]];
    }
}

/* Integrated gradients of images x [n,CHW] from baseline b [CHW] into out [n,CHW];
 * delta [n] the completeness error. Points (image i, step k) are enumerated image by
 * image and packed B at a time into one pass; each gradient is added, times its step
 * size, to its image's sum (in step order, as Captum's sum over steps). */
static void integrated_gradients(Ctx *c, const float *x, int n, const int *t, const float *b, int steps,
                                 float *out, double *delta) {
    PassMode mode = {0, RELU_STANDARD, 0, 0};
    size_t CHW = (size_t)c->CHW;
    long total = (long)n * steps;
    memset(out, 0, (size_t)n * CHW * sizeof(float));
    for (long q0 = 0; q0 < total; q0 += c->B) {
        int nb = total - q0 < c->B ? (int)(total - q0) : c->B;
        for (int j = 0; j < nb; j++) {
            long q = q0 + j;
            int i = (int)(q / steps), k = (int)(q % steps);
            float a = (float)c->alpha[k];
            const float *xi = x + i * CHW;
            float *xj = c->xb + j * CHW;
            for (size_t e = 0; e < CHW; e++) xj[e] = b[e] + a * (xi[e] - b[e]);
            c->tb[j] = t[i];
        }
        model_forward(c->m, c->p, c->xb, nb, mode);
        onehot(c, nb, c->tb);
        memset(c->gb, 0, (size_t)nb * CHW * sizeof(float));
        model_backward(c->m, c->p, c->dl, c->gb, 0, mode);
        for (int j = 0; j < nb; j++) {
            long q = q0 + j;
            int i = (int)(q / steps), k = (int)(q % steps);
            float w = (float)c->weight[k];
            float *o = out + i * CHW;
            const float *g = c->gb + j * CHW;
            for (size_t e = 0; e < CHW; e++) o[e] += g[e] * w;
        }
    }
    for (int i = 0; i < n; i++) {
        float *o = out + i * CHW;
        const float *xi = x + i * CHW;
        for (size_t e = 0; e < CHW; e++) o[e] *= xi[e] - b[e];
    }
    if (!delta) return;
    /* F(x_i) and F(b) at each image's target: F(b) from one pass of the baseline */
    double *fx = xmalloc((size_t)n * sizeof(double));
    target_logits(c, x, n, t, fx);
    const float *yb = model_forward(c->m, c->p, b, 1, mode);
    for (int i = 0; i < n; i++) {
        double s = 0;
        const float *o = out + i * CHW;
        for (size_t e = 0; e < CHW; e++) s += o[e];
        delta[i] = s - (fx[i] - (double)yb[t[i]]);
    }
    free(fx);
}

/* One attribution of images x [n,CHW] (no smoothing) into out; delta may be NULL. */
static void attribute_once(Ctx *c, const AttrOpts *o, const float *x, int n, const int *t, const float *b,
                           float *out, double *delta) {
    size_t N = (size_t)n * c->CHW;
    switch (o->method) {
    case ATTR_SALIENCY:
        gradients(c, x, n, t, RELU_STANDARD, out);
        for (size_t e = 0; e < N; e++) out[e] = fabsf(out[e]);
        break;
    case ATTR_GXI:
        gradients(c, x, n, t, RELU_STANDARD, out);
        for (size_t e = 0; e < N; e++) out[e] *= x[e];
        break;
    case ATTR_DECONV: gradients(c, x, n, t, RELU_DECONV, out); break;
    case ATTR_GUIDED: gradients(c, x, n, t, RELU_GUIDED, out); break;
    case ATTR_IG: integrated_gradients(c, x, n, t, b, o->steps, out, delta); return;
    default: GAD_ASSERT(0);
    }
    if (delta)
        for (int i = 0; i < n; i++) delta[i] = 0;
}

/* The checks of every option, the scratch made once for the call, then one
 * attribution or SmoothGrad's mean of several (kept here, around attribute_once, so
 * that the scratch and its freeing stay in one place). */
int attr_compute(Model *m, Plan *p, const float *x, int n, const int *targets, const AttrOpts *o, float *out,
                 float *delta) {
    Ctx c;
    int H, W;
    memset(&c, 0, sizeof c);
    plan_size(p, &c.B, &H, &W);
    c.m = m;
    c.p = p;
    c.K = m->cfg.num_classes;
    c.CHW = 3 * H * W;
    GAD_ASSERT(c.B >= 1 && n >= 0);
    if ((unsigned)o->method >= ATTR_NMETHODS) return err_set("unknown attribution method %d", (int)o->method);
    if (o->method == ATTR_IG) {
        if ((unsigned)o->ig_method >= (unsigned)N_IG) return err_set("unknown IG method %d", (int)o->ig_method);
        if (o->steps < 1 || (o->ig_method != IG_GAUSS_LEGENDRE && o->steps < 2))
            return err_set("IG with %s needs at least %d steps, not %d", ig_names[o->ig_method],
                           o->ig_method == IG_GAUSS_LEGENDRE ? 1 : 2, o->steps);
    }
    if (o->smooth_n < 0 || !(o->smooth_sigma >= 0) || !isfinite(o->smooth_sigma))
        return err_set("SmoothGrad needs samples >= 0 and a finite sigma >= 0 (got %d, %g)", o->smooth_n,
                       (double)o->smooth_sigma);
    for (int i = 0; i < n; i++)
        if (targets[i] < 0 || targets[i] >= c.K)
            return err_set("target %d of image %d is out of range: the model has %d classes (0..%d)",
                           targets[i], i, c.K, c.K - 1);
    if (n == 0) return 0;

    /* scratch, once for the whole call */
    size_t CHW = (size_t)c.CHW, N = (size_t)n * CHW;
    int smooth = o->smooth_n > 0;
    double *alpha = NULL, *d1 = NULL, *dsum = NULL;
    float *zb = NULL, *xs = NULL, *tmp = NULL;
    const float *b = o->baseline;
    if (o->method == ATTR_IG) {
        alpha = xmalloc(2 * (size_t)o->steps * sizeof(double));
        attr_ig_alphas(o->ig_method, o->steps, alpha, alpha + o->steps);
        c.alpha = alpha;
        c.weight = alpha + o->steps;
        c.xb = xmalloc((size_t)c.B * CHW * sizeof(float));
        c.gb = xmalloc((size_t)c.B * CHW * sizeof(float));
        c.tb = xmalloc((size_t)c.B * sizeof(int));
        if (!b) b = zb = xcalloc(CHW, sizeof(float));
    }
    c.dl = xmalloc((size_t)c.B * c.K * sizeof(float));
    d1 = xcalloc((size_t)n, sizeof(double));

    if (!smooth) {
        attribute_once(&c, o, x, n, targets, b, out, d1);
    } else {
        /* SmoothGrad: the mean over smooth_n samples of the attribution of
         * x + N(0, sigma^2); noise drawn from one stream seeded with o->seed, sample
         * by sample, image by image, element by element (batching does not matter). */
        Rng r;
        rng_seed(&r, o->seed);
        xs = xmalloc(N * sizeof(float));
        tmp = xmalloc(N * sizeof(float));
        dsum = xcalloc((size_t)n, sizeof(double));
        memset(out, 0, N * sizeof(float));
        for (int s = 0; s < o->smooth_n; s++) {
            for (size_t e = 0; e < N; e++) xs[e] = x[e] + o->smooth_sigma * rng_normal(&r);
            attribute_once(&c, o, xs, n, targets, b, tmp, d1);
            for (size_t e = 0; e < N; e++) out[e] += tmp[e];
            for (int i = 0; i < n; i++) dsum[i] += d1[i];
        }
        for (size_t e = 0; e < N; e++) out[e] /= (float)o->smooth_n;
        for (int i = 0; i < n; i++) d1[i] = dsum[i] / o->smooth_n;
    }
    if (delta)
        for (int i = 0; i < n; i++) delta[i] = (float)d1[i];

    free(alpha);
    free(zb);
    free(xs);
    free(tmp);
    free(dsum);
    free(d1);
    free(c.xb);
    free(c.gb);
    free(c.tb);
    free(c.dl);
    return 0;
}
