/* attr: gradient-based attribution methods with Captum's semantics and defaults:
 * the target is a logit (no softmax), the model runs in eval mode, attributions are
 * per input channel [n,3,H,W] and signed unless the method says otherwise.
 *   saliency  |dy_t/dx|                       (Captum Saliency, abs=True)
 *   deconv    backward with relu(g) at every ReLU         (Deconvolution)
 *   gxi       x * dy_t/dx                                 (InputXGradient)
 *   guided    backward with relu(g)*1[x>0] at every ReLU  (GuidedBackprop)
 *   ig        (x-b) * sum_i w_i dy_t/dx at b + a_i (x-b)  (IntegratedGradients)
 * plus SmoothGrad (NoiseTunnel "smoothgrad": the mean over N noisy copies) over any.
 * Not for: layer or neuron attribution, other baselines than a given image. */
#ifndef GAD_ATTR_ATTR_H
#define GAD_ATTR_ATTR_H
#include "nn/model.h"
#include <stdint.h>

typedef enum { ATTR_SALIENCY = 0, ATTR_DECONV, ATTR_GXI, ATTR_GUIDED, ATTR_IG, ATTR_NMETHODS } AttrMethod;
typedef enum { IG_GAUSS_LEGENDRE = 0, IG_RIEMANN_LEFT, IG_RIEMANN_RIGHT, IG_RIEMANN_MIDDLE, IG_RIEMANN_TRAPEZOID } IgMethod;

typedef struct {
    AttrMethod method;
    int steps;               /* IG steps (Captum default 50) */
    IgMethod ig_method;      /* default gausslegendre */
    const float *baseline;   /* [3,H,W] for IG, NULL = zeros (Captum's default) */
    int smooth_n;            /* 0: no SmoothGrad */
    float smooth_sigma;      /* noise std in input units */
    uint64_t seed;           /* SmoothGrad noise */
} AttrOpts;

/* Defaults: saliency, 50 steps, gausslegendre, zero baseline, no smoothing. */
void attr_opts_default(AttrOpts *o);
/* Parse "saliency|deconv|gxi|guided|ig" / "gausslegendre|riemann_left|...".
 * Return 0, or -1 with err set naming the bad value and the valid ones. */
int attr_parse_method(const char *s, AttrMethod *out);
int attr_parse_ig_method(const char *s, IgMethod *out);
const char *attr_method_name(AttrMethod m);
const char *attr_ig_method_name(IgMethod m);
/* 1 for methods whose maps are absolute (saliency), 0 for signed. */
int attr_is_absolute(AttrMethod m);
/* IG's points and weights on [0,1] (Captum's spacing). alphas, weights: [steps]. */
void attr_ig_alphas(IgMethod m, int steps, double *alphas, double *weights);
/* Gauss-Legendre nodes x [n] (ascending, in [-1,1]) and weights w [n] on [-1,1], as
 * numpy.polynomial.legendre.leggauss(n) (Newton's method in double). n >= 1. */
void attr_leggauss(int n, double *x, double *w);

/* Attributions of x [n,3,H,W] for output targets[i] of image i, written to out
 * [n,3,H,W]. The plan's max batch bounds how many images (or IG points) go through
 * the network at once; any n and any number of steps work. delta [n] (may be NULL)
 * receives IG's completeness error sum(attr) - (F(x) - F(b)) (0 for other methods).
 * Returns 0, or -1 with err set (target out of range, riemann IG with steps < 2, a
 * negative SmoothGrad count or sigma).
 * SmoothGrad noise: one stream rng_seed(o->seed), drawn sample by sample, image by
 * image, element by element (rng_normal() * sigma added to x), so a result does not
 * depend on the batch size; delta is then the mean of the samples' deltas. */
int attr_compute(Model *m, Plan *p, const float *x, int n, const int *targets, const AttrOpts *o,
                 float *out, float *delta);

#endif
