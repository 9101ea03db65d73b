/* cmd_explain: `gad explain`: attribution maps of images under a vgg16 / resnet18
 * model with Captum's semantics (attr/attr.h), printed per image (target, its
 * logit, IG's completeness error), written raw as an [N,3,H,W] .npy and as a
 * [heatmap | overlay] PNG (attr/heatmap.h).
 * Input: an .npy [N,3,H,W] or [3,H,W] float32 fed as it is, or one JPEG/PNG/PPM/PGM
 * image preprocessed as the model's metadata says (input size, mean/std).
 * Not for: layer attributions, several image files at once (use an .npy). */
#include "attr/attr.h"
#include "attr/heatmap.h"
#include "cli/cli.h"
#include "core/err.h"
#include "core/tensor.h"
#include "io/image.h"
#include "io/npy.h"
#include "nn/model.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf("usage: gad explain --weights W --input X --method M [flags]\n"
           "Attribution maps with Captum's semantics: the target is a logit (no softmax), the\n"
           "model runs in eval mode, maps are per input channel.\n\n"
           "  --weights W        torchvision state_dict saved as safetensors\n"
           "  --input X          .npy float32 [N,3,H,W] or [3,H,W] fed as it is, or one\n"
           "                     JPEG/PNG/PPM/PGM image preprocessed as the weights' metadata says\n"
           CLI_PREP_HELP
           "  --method M         saliency  |dy/dx|                      (Captum Saliency)\n"
           "                     deconv    every ReLU passes relu(g)    (Deconvolution)\n"
           "                     gxi       x * dy/dx                    (InputXGradient)\n"
           "                     guided    relu(g) where the input > 0  (GuidedBackprop)\n"
           "                     ig        integrated gradients         (IntegratedGradients)\n"
           "  --target K         class index (or name) for every image; default: each\n"
           "                     image's predicted class\n"
           "  --steps N          IG steps (default 50)\n"
           "  --ig-method M      gausslegendre (default), riemann_left, riemann_right,\n"
           "                     riemann_middle, riemann_trapezoid\n"
           "  --baseline B       IG baseline: zero (default) or black (an all-black image\n"
           "                     after the model's normalisation, (0 - mean) / std)\n"
           "  --smooth N,SIGMA   SmoothGrad: the mean over N copies with Gaussian noise of\n"
           "                     standard deviation SIGMA (input units) added\n"
           "  --seed S           SmoothGrad noise seed (default 0)\n"
           "  --batch B          images or IG points per pass (default 32)\n"
           "  --out A.npy        the raw attributions [N,3,H,W]\n"
           "  --png MAP.png      heatmap | overlay on the input (a grid for several images);\n"
           "                     channel sum, Captum's 98%% cumulative-sum normalisation\n"
           "  --scale S          PNG upscale factor (default: small images to ~112 px)\n"
           "  -h, --help         this text\n\n"
           "Exit status: 0 success, 1 bad file or input (the message names it), 2 usage error.\n");
}

/* --smooth N,SIGMA */
static void parse_smooth(const char *s, int *n, float *sigma) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != ',' || v < 1 || v > 100000)
        arg_usage_error("explain", "--smooth takes N,SIGMA with N in 1..100000 (e.g. 20,0.15), not '%s'", s);
    const char *p = end + 1;
    double sg = strtod(p, &end);
    if (end == p || *end || !isfinite(sg) || sg < 0)
        arg_usage_error("explain", "--smooth takes N,SIGMA with SIGMA >= 0 (e.g. 20,0.15), not '%s'", s);
    *n = (int)v;
    *sigma = (float)sg;
}

/* --target: an index, or a class name when the weights have names. -1 = predicted. */
static int parse_target(const char *s, const Model *m, int *t) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!errno && end != s && !*end) {
        if (v < 0 || v >= m->cfg.num_classes)
            return err_set_usage("target %s is out of range: the model has %d classes (0..%d)", s, m->cfg.num_classes,
                           m->cfg.num_classes - 1);
        *t = (int)v;
        return 0;
    }
    for (int k = 0; m->cfg.class_names && k < m->cfg.num_classes; k++)
        if (!strcmp(m->cfg.class_names[k], s)) { *t = k; return 0; }
    return err_set_usage("target '%s' is neither a class index nor a class name of the model", s);
}

int cmd_explain(int argc, char **argv) {
    const char *weights = NULL, *input = NULL, *method = NULL, *target = NULL, *igm = NULL, *base = "zero";
    const char *smooth = NULL, *out = NULL, *png = NULL;
    int batch = 32, scale = 0, seed = 0;
    AttrOpts o;
    attr_opts_default(&o);
    PrepFlags prep = {{0, 0, 0}, {0, 0, 0}};
    for (int i = 1; i < argc; i++) {
        if (arg_is_help(argv[i])) { help(); return 0; }
        if (arg_prep(argc, argv, &i, "explain", &prep)) continue;
        if (arg_str(argc, argv, &i, "--weights", &weights) || arg_str(argc, argv, &i, "--input", &input) ||
            arg_str(argc, argv, &i, "--method", &method) || arg_str(argc, argv, &i, "--target", &target) ||
            arg_int(argc, argv, &i, "--steps", &o.steps, 1, 1000000) ||
            arg_str(argc, argv, &i, "--ig-method", &igm) || arg_str(argc, argv, &i, "--baseline", &base) ||
            arg_str(argc, argv, &i, "--smooth", &smooth) || arg_int(argc, argv, &i, "--seed", &seed, 0, 2147483647) ||
            arg_int(argc, argv, &i, "--batch", &batch, 1, 4096) || arg_str(argc, argv, &i, "--out", &out) ||
            arg_str(argc, argv, &i, "--png", &png) || arg_int(argc, argv, &i, "--scale", &scale, 1, 64))
            continue;
        arg_usage_error("explain", "unknown argument '%s'", argv[i]);
    }
    if (!weights) arg_usage_error("explain", "--weights is required");
    if (!input) arg_usage_error("explain", "--input is required");
    if (!method) arg_usage_error("explain", "--method is required (saliency, deconv, gxi, guided, ig)");
    if (attr_parse_method(method, &o.method)) arg_usage_error("explain", "%s", err_get());
    if (igm && attr_parse_ig_method(igm, &o.ig_method)) arg_usage_error("explain", "%s", err_get());
    if (o.ig_method != IG_GAUSS_LEGENDRE && o.steps < 2)
        arg_usage_error("explain", "--ig-method %s needs --steps of at least 2", attr_ig_method_name(o.ig_method));
    if (strcmp(base, "zero") && strcmp(base, "black"))
        arg_usage_error("explain", "--baseline is zero or black, not '%s'", base);
    if (smooth) parse_smooth(smooth, &o.smooth_n, &o.smooth_sigma);
    o.seed = (uint64_t)seed;

    Model m;
    Tensor x;
    if (model_load(&m, weights)) return cli_fail();
    if (cli_load_input(input, &m, &prep, &x)) { model_free(&m); return cli_fail(); }
    if (!cli_is_npy(input)) model_warn_norm(&m, weights);
    int n = (int)x.dim[0], H = (int)x.dim[2], W = (int)x.dim[3], K = m.cfg.num_classes, rc = 1;
    size_t per = (size_t)3 * H * W;
    int fixed = -1, *targets = xmalloc((size_t)n * sizeof(int));
    float *logits = xmalloc((size_t)n * K * sizeof(float)), *attr = NULL, *delta = NULL, *b = NULL;
    Plan *p = plan_new(&m, batch, H, W);
    if (!p) { err_prefix(input); goto done; }
    if (target && parse_target(target, &m, &fixed)) goto done;

    /* logits (for the default target and the report) */
    PassMode mode = {0, RELU_STANDARD, 0, 0};
    for (int i = 0; i < n; i += batch) {
        int nb = n - i < batch ? n - i : batch;
        memcpy(logits + (size_t)i * K, model_forward(&m, p, x.data + (size_t)i * per, nb, mode),
               (size_t)nb * K * sizeof(float));
    }
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * K;
        int best = 0;
        for (int k = 1; k < K; k++) if (z[k] > z[best]) best = k;
        targets[i] = fixed >= 0 ? fixed : best;
    }
    if (o.method == ATTR_IG && !strcmp(base, "black")) {
        /* an all-black image after normalisation: (0 - mean) / std, or zeros */
        b = xmalloc(per * sizeof(float));
        for (int c = 0; c < 3; c++)
            for (size_t e = 0; e < (size_t)H * W; e++)
                b[c * (size_t)H * W + e] = m.cfg.has_norm ? (0 - m.cfg.mean[c]) / m.cfg.std[c] : 0.0f;
        o.baseline = b;
    }
    attr = xmalloc((size_t)n * per * sizeof(float));
    delta = xmalloc((size_t)n * sizeof(float));
    if (attr_compute(&m, p, x.data, n, targets, &o, attr, delta)) goto done;

    printf("%s: %s, %d classes, input [%d,3,%d,%d], method %s", weights, model_arch_name(m.cfg.arch), K, n, H, W,
           attr_method_name(o.method));
    if (o.method == ATTR_IG)
        printf(" (%s, %d steps, %s baseline)", attr_ig_method_name(o.ig_method), o.steps, base);
    if (o.smooth_n) printf(", SmoothGrad %d x sigma %g", o.smooth_n, (double)o.smooth_sigma);
    printf("\n");
    for (int i = 0; i < n; i++) {
        int t = targets[i];
        printf("image %d: target %d", i, t);
        if (m.cfg.class_names) printf(" (%s)", m.cfg.class_names[t]);
        printf(", logit %.6g", (double)logits[(size_t)i * K + t]);
        if (o.method == ATTR_IG) printf(", completeness error %.3g", (double)delta[i]);
        printf("\n");
    }
    if (out) {
        int64_t d[4] = {n, 3, H, W};
        if (npy_write_data(out, attr, 4, d)) goto done;
    }
    if (png) {
        const float *mean = m.cfg.has_norm ? m.cfg.mean : NULL, *std = m.cfg.has_norm ? m.cfg.std : NULL;
        int s = scale ? scale : heatmap_auto_scale(H > W ? H : W);
        if (heatmap_write_png(png, attr, x.data, n, H, W, attr_is_absolute(o.method), mean, std, s)) goto done;
    }
    rc = 0;
done:
    if (rc) rc = cli_fail();
    if (p) plan_free(p);
    free(targets);
    free(logits);
    free(attr);
    free(delta);
    free(b);
    tensor_free(&x);
    model_free(&m);
    return rc;
}
