/* cmd_predict: `gad predict`: logits, softmax probabilities and the arg-max class of
 * each input image under a vgg16 / resnet18 safetensors model, printed per image
 * with its name, and optionally written as a CSV (one row per image) and as an
 * [N,K] .npy of logits.
 * Input: images (JPEG/PNG/PPM/PGM) preprocessed as --resize/--crop or the model's
 * metadata say, folders of them, lists of paths, or .npy [N,3,H,W] / [3,H,W] fed as
 * they are; one file at a time, so a folder of any size fits in memory.
 * Not for: top-k lists, training. */
#include "cli/cli.h"
#include "core/err.h"
#include "core/tensor.h"
#include "io/file.h"
#include "io/image.h"
#include "io/npy.h"
#include "nn/model.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void) {
    printf("usage: gad predict --weights W.safetensors --input X [--input Y ...] [flags]\n"
           "       gad predict --weights W.safetensors [flags] FILE|FOLDER ...\n"
           "Runs a vgg16 or resnet18 model (architecture, width and classes read from the\n"
           "safetensors state_dict) in eval mode and prints, per image, its name, logits,\n"
           "softmax probabilities and the arg-max class (with its name when the weights'\n"
           "metadata has one).\n\n"
           "  --weights W        torchvision state_dict saved as safetensors\n"
           "                     (tools/data/export_torchvision.py)\n"
           CLI_INPUTS_HELP
           "                     Images are made RGB, resized and cropped as --resize/--crop\n"
           "                     or the weights' metadata say (else resized to the model's\n"
           "                     input_size), scaled to [0,1] and normalised with the\n"
           "                     weights' mean/std when they give them\n"
           CLI_PREP_HELP
           "  --csv F            one row per image: index, path, class, class_name, p (its\n"
           "                     probability), p_<class> and logit_<class> for every class\n"
           "  --out F            the logits of every image as an [N,K] float32 .npy\n"
           "  --batch B          images per forward pass (default 8; memory grows with B)\n"
           "  --quiet            no per-image lines on stdout (the CSV still has them)\n"
           "  -h, --help         this text\n\n"
           "Exit status: 0 success, 1 bad file or input (the message names it), 2 usage error.\n");
}

static void print_image(const Model *m, int i, const char *name, const float *z) {
    int K = m->cfg.num_classes, best = 0;
    double mx = z[0], sum = 0;
    for (int k = 1; k < K; k++) if (z[k] > mx || (isnan(mx) && !isnan(z[k]))) { mx = z[k]; best = k; }
    for (int k = 0; k < K; k++) sum += exp((double)z[k] - mx);
    printf("image %d (%s): class %d", i, name, best);
    if (m->cfg.class_names) printf(" (%s)", m->cfg.class_names[best]);
    printf(", p = %.6f\n  logits:", exp((double)z[best] - mx) / sum);
    for (int k = 0; k < K; k++) printf(" %.6g", z[k]);
    printf("\n  probs: ");
    for (int k = 0; k < K; k++) printf(" %.6f", exp((double)z[k] - mx) / sum);
    printf("\n");
}

static void class_label(const Model *m, int k, char *buf, size_t cap) {
    if (m->cfg.class_names) snprintf(buf, cap, "%s", m->cfg.class_names[k]);
    else snprintf(buf, cap, "%d", k);
}

static void csv_header(FILE *f, const Model *m) {
    char b[300], c[320];
    fputs("index,path,class,class_name,p", f);
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < m->cfg.num_classes; k++) {
            class_label(m, k, b, sizeof b);
            snprintf(c, sizeof c, "%s%s", pass ? "logit_" : "p_", b);
            fputc(',', f);
            cli_csv_field(f, c);
        }
    fputc('\n', f);
}

static void csv_row(FILE *f, const Model *m, int i, const char *name, const float *z) {
    int K = m->cfg.num_classes, best = 0;
    double mx = z[0], sum = 0;
    for (int k = 1; k < K; k++) if (z[k] > mx || (isnan(mx) && !isnan(z[k]))) { mx = z[k]; best = k; }
    for (int k = 0; k < K; k++) sum += exp((double)z[k] - mx);
    fprintf(f, "%d,", i);
    cli_csv_field(f, name);
    fprintf(f, ",%d,", best);
    if (m->cfg.class_names) cli_csv_field(f, m->cfg.class_names[best]);
    fprintf(f, ",%.6f", exp((double)z[best] - mx) / sum);
    for (int k = 0; k < K; k++) fprintf(f, ",%.6f", exp((double)z[k] - mx) / sum);
    for (int k = 0; k < K; k++) fprintf(f, ",%.7g", z[k]);
    fputc('\n', f);
}

/* Kept whole: the command read top to bottom (flags, model, one input file at a time,
 * stdout, .npy and CSV) with one exit that frees whatever was made and removes a
 * half-written CSV. */
int cmd_predict(int argc, char **argv) {
    const char *weights = NULL, *out = NULL, *csv = NULL;
    int batch = 8, strict = 0, quiet = 0, nargs = 0, nlists = 0;
    const char **args = xmalloc(sizeof(char *) * (size_t)argc), **lists = xmalloc(sizeof(char *) * (size_t)argc);
    PrepFlags prep = {{0, 0, 0}, {0, 0, 0}};
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (arg_is_help(argv[i])) { help(); free(args); free(lists); return 0; }
        if (arg_prep(argc, argv, &i, "predict", &prep)) continue;
        if (arg_str(argc, argv, &i, "--input", &v)) { args[nargs++] = v; continue; }
        if (arg_str(argc, argv, &i, "--input-list", &v)) { lists[nlists++] = v; continue; }
        if (arg_str(argc, argv, &i, "--weights", &weights) || arg_str(argc, argv, &i, "--out", &out) ||
            arg_str(argc, argv, &i, "--csv", &csv) || arg_int(argc, argv, &i, "--batch", &batch, 1, 4096) ||
            arg_flag(argv, &i, "--strict", &strict) || arg_flag(argv, &i, "--quiet", &quiet))
            continue;
        if (argv[i][0] != '-' && file_exists(argv[i])) { args[nargs++] = argv[i]; continue; } /* a file or folder */
        if (argv[i][0] != '-')
            arg_usage_error("predict", "unknown argument '%s' (not a flag, and no such file or folder)", argv[i]);
        arg_usage_error("predict", "unknown argument '%s'", argv[i]);
    }
    if (!weights) arg_usage_error("predict", "--weights is required");
    if (!nargs && !nlists) arg_usage_error("predict", "--input (or --input-list, or file names) is required");

    Model m;
    InputList in = {0, 0, NULL, NULL};
    int rc = 1, have_model = 0, done_n = 0, cap_logits = 0, ph = 0, pw = 0, warned = 0, skipped = 0;
    float *all = NULL;
    Plan *p = NULL;
    AtomicFile af = {NULL, NULL, NULL};
    for (int i = 0; i < nargs; i++)
        if (cli_inputs_add(&in, args[i])) goto fail;
    for (int i = 0; i < nlists; i++)
        if (cli_inputs_add_list(&in, lists[i])) goto fail;
    if (model_load(&m, weights)) goto fail;
    have_model = 1;
    int K = m.cfg.num_classes;
    if (csv) {
        if (afile_open(&af, csv)) goto fail;
        csv_header(af.f, &m);
    }
    printf("%s: %s, %d classes\n", weights, model_arch_name(m.cfg.arch), K);
    for (int it = 0; it < in.n; it++) {
        Tensor x;
        int r = cli_load_item(&in, it, &m, &prep, strict, &x);
        if (r < 0) goto fail;
        if (r > 0) { skipped++; continue; }
        if (!warned && !cli_is_npy(in.path[it])) { model_warn_norm(&m, weights); warned = 1; }
        int n = (int)x.dim[0], H = (int)x.dim[2], W = (int)x.dim[3];
        if (!p || H != ph || W != pw) { /* a plan per input size */
            if (p) plan_free(p);
            if (!(p = plan_new(&m, batch, H, W))) { err_prefix(in.path[it]); tensor_free(&x); goto fail; }
            ph = H;
            pw = W;
        }
        if (done_n + n > cap_logits) {
            while (done_n + n > cap_logits) cap_logits = cap_logits ? 2 * cap_logits : 64;
            all = xrealloc(all, sizeof(float) * (size_t)cap_logits * K);
        }
        PassMode mode = {0, RELU_STANDARD, 0, 0};
        size_t per = (size_t)3 * H * W;
        for (int i = 0; i < n; i += batch) {
            int nb = n - i < batch ? n - i : batch;
            const float *z = model_forward(&m, p, x.data + (size_t)i * per, nb, mode);
            memcpy(all + (size_t)(done_n + i) * K, z, (size_t)nb * K * sizeof(float));
        }
        for (int i = 0; i < n; i++) {
            char name[1100];
            cli_image_name(in.path[it], n, i, name, sizeof name);
            const float *z = all + (size_t)(done_n + i) * K;
            if (!quiet) print_image(&m, done_n + i, name, z);
            if (csv) csv_row(af.f, &m, done_n + i, name, z);
        }
        done_n += n;
        tensor_free(&x);
    }
    if (!done_n) { err_set("no image to predict (%d files skipped)", skipped); goto fail; }
    if (skipped) err_warn("%d of %d files skipped (not images gad can read); --strict makes them errors", skipped, in.n);
    if (out) {
        int64_t d[2] = {done_n, K};
        if (npy_write_data(out, all, 2, d)) goto fail;
    }
    if (csv) {
        int cr = afile_commit(&af); /* releases af either way */
        af.f = NULL;
        if (cr) goto fail;
    }
    rc = 0;
fail:
    if (af.f) afile_abort(&af);
    if (rc) rc = cli_fail();
    if (p) plan_free(p);
    free(all);
    if (have_model) model_free(&m);
    cli_inputs_free(&in);
    free(args);
    free(lists);
    return rc;
}
