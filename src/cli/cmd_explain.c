/* cmd_explain: `gad explain`: attribution maps of images under a vgg16 / resnet18
 * model with Captum's semantics (attr/attr.h), printed per image (its name, target,
 * the target's logit, IG's completeness error), written per image into a folder
 * ([heatmap | overlay] PNG and the raw [3,H,W] .npy, listed in a CSV), or for all
 * images as one [N,3,H,W] .npy and one PNG grid (attr/heatmap.h).
 * Input: as `gad predict`: images preprocessed as --resize/--crop or the model's
 * metadata say, folders, lists of paths, .npy files fed as they are; one file at a
 * time, so a folder of any size fits in memory with --out-dir.
 * Not for: layer attributions. */
#include "attr/attr.h"
#include "attr/heatmap.h"
#include "cli/cli.h"
#include "core/err.h"
#include "core/tensor.h"
#include "io/file.h"
#include "io/image.h"
#include "io/npy.h"
#include "nn/model.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf("usage: gad explain --weights W --input X [--input Y ...] --method M [flags]\n"
           "       gad explain --weights W --method M [flags] FILE|FOLDER ...\n"
           "Attribution maps with Captum's semantics: the target is a logit (no softmax), the\n"
           "model runs in eval mode, maps are per input channel.\n\n"
           "  --weights W        torchvision state_dict saved as safetensors\n"
           CLI_INPUTS_HELP
           "                     (images preprocessed as the weights' metadata says)\n"
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
           "  --out-dir D        per image: D/NNNN_NAME.png (heatmap | overlay) and\n"
           "                     D/NNNN_NAME.npy (the raw [3,H,W] map), NNNN its index,\n"
           "                     NAME its file name without extension; and D/explain.csv\n"
           "  --csv F            one row per image: index, path, target, target_name,\n"
           "                     logit, completeness_error (IG), map_png, map_npy\n"
           "  --out A.npy        the raw attributions of all images [N,3,H,W] (one size)\n"
           "  --png MAP.png      heatmap | overlay of all images in one grid (one size, at\n"
           "                     most 64 images); channel sum, Captum's 98%% cumulative-sum\n"
           "                     normalisation\n"
           "  --scale S          PNG upscale factor (default: small images to ~112 px)\n"
           "  --quiet            no per-image lines on stdout\n"
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

/* NNNN_NAME: the index, then the file name without folder and extension ("_k" for
 * image k of an .npy of several). */
static void map_stem(int index, const char *path, int n, int k, char *buf, size_t cap) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    const char *dot = strrchr(b, '.');
    int len = dot && dot != b ? (int)(dot - b) : (int)strlen(b);
    if (n > 1) snprintf(buf, cap, "%04d_%.*s_%d", index, len, b, k);
    else snprintf(buf, cap, "%04d_%.*s", index, len, b);
}

#define GRID_MAX 64

/* Kept whole: the command read top to bottom (flags, model, one input file at a
 * time and its maps, the PNG, .npy and CSV outputs) with one exit that frees whatever was
 * made and removes a half-written CSV; split, the steps would pass a dozen locals. */
int cmd_explain(int argc, char **argv) {
    const char *weights = NULL, *method = NULL, *target = NULL, *igm = NULL, *base = "zero";
    const char *smooth = NULL, *out = NULL, *png = NULL, *out_dir = NULL, *csv = NULL;
    int batch = 32, scale = 0, seed = 0, strict = 0, quiet = 0, nargs = 0, nlists = 0;
    const char **args = xmalloc(sizeof(char *) * (size_t)argc), **lists = xmalloc(sizeof(char *) * (size_t)argc);
    AttrOpts o;
    attr_opts_default(&o);
    PrepFlags prep = {{0, 0, 0}, {0, 0, 0}};
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (arg_is_help(argv[i])) { help(); free(args); free(lists); return 0; }
        if (arg_prep(argc, argv, &i, "explain", &prep)) continue;
        if (arg_str(argc, argv, &i, "--input", &v)) { args[nargs++] = v; continue; }
        if (arg_str(argc, argv, &i, "--input-list", &v)) { lists[nlists++] = v; continue; }
        if (arg_str(argc, argv, &i, "--weights", &weights) || arg_str(argc, argv, &i, "--method", &method) ||
            arg_str(argc, argv, &i, "--target", &target) ||
            arg_int(argc, argv, &i, "--steps", &o.steps, 1, 1000000) ||
            arg_str(argc, argv, &i, "--ig-method", &igm) || arg_str(argc, argv, &i, "--baseline", &base) ||
            arg_str(argc, argv, &i, "--smooth", &smooth) || arg_int(argc, argv, &i, "--seed", &seed, 0, 2147483647) ||
            arg_int(argc, argv, &i, "--batch", &batch, 1, 4096) || arg_str(argc, argv, &i, "--out", &out) ||
            arg_str(argc, argv, &i, "--png", &png) || arg_int(argc, argv, &i, "--scale", &scale, 1, 64) ||
            arg_str(argc, argv, &i, "--out-dir", &out_dir) || arg_str(argc, argv, &i, "--csv", &csv) ||
            arg_flag(argv, &i, "--strict", &strict) || arg_flag(argv, &i, "--quiet", &quiet))
            continue;
        if (argv[i][0] != '-' && file_exists(argv[i])) { args[nargs++] = argv[i]; continue; } /* a file or folder */
        if (argv[i][0] != '-')
            arg_usage_error("explain", "unknown argument '%s' (not a flag, and no such file or folder)", argv[i]);
        arg_usage_error("explain", "unknown argument '%s'", argv[i]);
    }
    if (!weights) arg_usage_error("explain", "--weights is required");
    if (!nargs && !nlists) arg_usage_error("explain", "--input (or --input-list, or file names) is required");
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
    InputList in = {0, 0, NULL, NULL};
    AtomicFile af = {NULL, NULL, NULL};
    Plan *p = NULL;
    int rc = 1, have_model = 0, fixed = -1, done_n = 0, skipped = 0, warned = 0, ph = 0, pw = 0, K = 0, cap = 0;
    float *all_attr = NULL, *all_x = NULL, *b = NULL;
    char csv_path[1024] = "";
    for (int i = 0; i < nargs; i++)
        if (cli_inputs_add(&in, args[i])) goto done;
    for (int i = 0; i < nlists; i++)
        if (cli_inputs_add_list(&in, lists[i])) goto done;
    if (model_load(&m, weights)) goto done;
    have_model = 1;
    K = m.cfg.num_classes;
    if (target && parse_target(target, &m, &fixed)) goto done;
    if (out_dir && file_mkdirs(out_dir)) goto done;
    if (csv) snprintf(csv_path, sizeof csv_path, "%s", csv);
    else if (out_dir) snprintf(csv_path, sizeof csv_path, "%s/explain.csv", out_dir);
    if (csv_path[0]) {
        if (afile_open(&af, csv_path)) goto done;
        fprintf(af.f, "index,path,target,target_name,logit,completeness_error,map_png,map_npy\n");
    }
    printf("%s: %s, %d classes, method %s", weights, model_arch_name(m.cfg.arch), K, attr_method_name(o.method));
    if (o.method == ATTR_IG) printf(" (%s, %d steps, %s baseline)", attr_ig_method_name(o.ig_method), o.steps, base);
    if (o.smooth_n) printf(", SmoothGrad %d x sigma %g", o.smooth_n, (double)o.smooth_sigma);
    printf("\n");
    for (int it = 0; it < in.n; it++) {
        Tensor x;
        int r = cli_load_item(&in, it, &m, &prep, strict, &x);
        if (r < 0) goto done;
        if (r > 0) { skipped++; continue; }
        if (!warned && !cli_is_npy(in.path[it])) { model_warn_norm(&m, weights); warned = 1; }
        int n = (int)x.dim[0], H = (int)x.dim[2], W = (int)x.dim[3];
        size_t per = (size_t)3 * H * W;
        if ((out || png) && done_n && (H != ph || W != pw)) {
            err_set("%s: %dx%d, the images before are %dx%d: --out and --png need one size (use --out-dir)",
                    in.path[it], W, H, pw, ph);
            tensor_free(&x);
            goto done;
        }
        if (png && done_n + n > GRID_MAX) {
            err_set("--png draws at most %d images in one grid, and there are more: use --out-dir", GRID_MAX);
            tensor_free(&x);
            goto done;
        }
        if (!p || H != ph || W != pw) { /* a plan (and IG's black baseline) per input size */
            if (p) plan_free(p);
            if (!(p = plan_new(&m, batch, H, W))) { err_prefix(in.path[it]); tensor_free(&x); goto done; }
            free(b);
            b = NULL;
            o.baseline = NULL;
            if (o.method == ATTR_IG && !strcmp(base, "black")) { /* all black after normalisation: (0 - mean) / std */
                b = xmalloc(per * sizeof(float));
                for (int c = 0; c < 3; c++)
                    for (size_t e = 0; e < (size_t)H * W; e++)
                        b[c * (size_t)H * W + e] = m.cfg.has_norm ? (0 - m.cfg.mean[c]) / m.cfg.std[c] : 0.0f;
                o.baseline = b;
            }
            ph = H;
            pw = W;
        }
        float *logits = xmalloc((size_t)n * K * sizeof(float)), *attr = xmalloc((size_t)n * per * sizeof(float));
        float *delta = xmalloc((size_t)n * sizeof(float));
        int *targets = xmalloc((size_t)n * sizeof(int));
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
        int bad = attr_compute(&m, p, x.data, n, targets, &o, attr, delta);
        const float *mean = m.cfg.has_norm ? m.cfg.mean : NULL, *std = m.cfg.has_norm ? m.cfg.std : NULL;
        int s = scale ? scale : heatmap_auto_scale(H > W ? H : W);
        for (int i = 0; i < n && !bad; i++) {
            char name[1100], stem[600], fpng[1800] = "", fnpy[1800] = "";
            int t = targets[i], idx = done_n + i;
            cli_image_name(in.path[it], n, i, name, sizeof name);
            if (out_dir) {
                map_stem(idx, in.path[it], n, i, stem, sizeof stem);
                snprintf(fpng, sizeof fpng, "%s/%s.png", out_dir, stem);
                snprintf(fnpy, sizeof fnpy, "%s/%s.npy", out_dir, stem);
                int64_t d3[3] = {3, H, W};
                if (heatmap_write_png(fpng, attr + i * per, x.data + i * per, 1, H, W, attr_is_absolute(o.method),
                                      mean, std, s) ||
                    npy_write_data(fnpy, attr + i * per, 3, d3)) {
                    bad = 1;
                    break;
                }
            }
            if (!quiet) {
                printf("image %d (%s): target %d", idx, name, t);
                if (m.cfg.class_names) printf(" (%s)", m.cfg.class_names[t]);
                printf(", logit %.6g", (double)logits[(size_t)i * K + t]);
                if (o.method == ATTR_IG) printf(", completeness error %.3g", (double)delta[i]);
                if (out_dir) printf(", map %s", fpng);
                printf("\n");
            }
            if (af.f) {
                fprintf(af.f, "%d,", idx);
                cli_csv_field(af.f, name);
                fprintf(af.f, ",%d,", t);
                if (m.cfg.class_names) cli_csv_field(af.f, m.cfg.class_names[t]);
                fprintf(af.f, ",%.7g,", (double)logits[(size_t)i * K + t]);
                if (o.method == ATTR_IG) fprintf(af.f, "%.4g", (double)delta[i]);
                fputc(',', af.f);
                cli_csv_field(af.f, fpng);
                fputc(',', af.f);
                cli_csv_field(af.f, fnpy);
                fputc('\n', af.f);
            }
        }
        if (!bad && (out || png)) { /* kept for the one-file outputs */
            if (done_n + n > cap) {
                while (done_n + n > cap) cap = cap ? 2 * cap : 16;
                all_attr = xrealloc(all_attr, sizeof(float) * (size_t)cap * per);
                all_x = xrealloc(all_x, sizeof(float) * (size_t)cap * per);
            }
            memcpy(all_attr + (size_t)done_n * per, attr, (size_t)n * per * sizeof(float));
            memcpy(all_x + (size_t)done_n * per, x.data, (size_t)n * per * sizeof(float));
        }
        done_n += n;
        free(logits);
        free(attr);
        free(delta);
        free(targets);
        tensor_free(&x);
        if (bad) goto done;
    }
    if (!done_n) { err_set("no image to explain (%d files skipped)", skipped); goto done; }
    if (skipped) err_warn("%d of %d files skipped (not images gad can read); --strict makes them errors", skipped, in.n);
    if (out) {
        int64_t d[4] = {done_n, 3, ph, pw};
        if (npy_write_data(out, all_attr, 4, d)) goto done;
    }
    if (png) {
        const float *mean = m.cfg.has_norm ? m.cfg.mean : NULL, *std = m.cfg.has_norm ? m.cfg.std : NULL;
        int s = scale ? scale : heatmap_auto_scale(ph > pw ? ph : pw);
        if (heatmap_write_png(png, all_attr, all_x, done_n, ph, pw, attr_is_absolute(o.method), mean, std, s))
            goto done;
    }
    if (af.f) {
        int cr = afile_commit(&af); /* releases af either way */
        af.f = NULL;
        if (cr) goto done;
    }
    rc = 0;
done:
    if (af.f) afile_abort(&af);
    if (rc) rc = cli_fail();
    if (p) plan_free(p);
    free(all_attr);
    free(all_x);
    free(b);
    if (have_model) model_free(&m);
    cli_inputs_free(&in);
    free(args);
    free(lists);
    return rc;
}
