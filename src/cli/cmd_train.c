/* cmd_train: `gad train`: a vgg16 or resnet18 classifier trained with cross-entropy
 * and Adam on an image folder or IDX data, from scratch (torchvision's
 * initialisation) or from given weights, written atomically as safetensors whose
 * metadata says what was trained on what (see usage below).
 * Not for: the training itself (train/), data decoding (io/dataset.h). */
#include "cli/cli.h"
#include "core/err.h"
#include "io/dataset.h"
#include "nn/model.h"
#include "train/train.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f) {
    fprintf(f,
        "usage: gad train --model vgg16|resnet18 --data SPEC --out W.safetensors [flags]\n"
        "Train a classifier with softmax cross-entropy and Adam (betas 0.9/0.999,\n"
        "eps 1e-8), from torchvision's initialisation or from --init weights. Progress\n"
        "(epoch, batch, loss, images/s, ETA) and the held-out accuracy after each\n"
        "epoch go to stderr.\n\n"
        "  --model A          vgg16 or resnet18 (with --init: optional, must agree)\n"
        "  --width W          channel multiplier, channels = round(base * W) (default 1:\n"
        "                     torchvision's sizes; e.g. 0.125 for a small model)\n"
        "  --hidden H         vgg16 classifier hidden units (default round(4096 * W))\n"
        "  --init W0          start from these weights (safetensors) instead of a fresh\n"
        "                     initialisation; their outputs must match the classes\n"
        "  --data SPEC        a folder of class sub-folders (root/<class>/ with JPEG,\n"
        "                     PNG, PPM or PGM images) or an IDX images file\n"
        "                     (X-images-idx3-ubyte[.gz], its labels file beside it)\n"
        "  --strict           a file in a class folder that is not an image gad can\n"
        "                     read is an error (default: a warning naming it)\n"
        "  --classes a,b,...  classes to use, by name or index, in this order\n"
        "                     (default all)\n"
        "  --input-size S     images are resized to SxS (default 32, or W0's input\n"
        "                     size; at least 32)\n"
        CLI_PREP_HELP
        "                     (a crop sets the input size; both are written to W)\n"
        "  --mean a,b,c       normalise inputs: (pixel in [0,1] - mean) / std per\n"
        "  --std a,b,c        channel; 'imagenet' for 0.485,0.456,0.406 and\n"
        "                     0.229,0.224,0.225; 'none' for no normalisation\n"
        "                     (default: W0's, else none)\n"
        "  --epochs E         passes over the training part (default 10)\n"
        "  --batch B          images per Adam step (default 32)\n"
        "  --lr LR            learning rate (default 1e-3)\n"
        "  --cosine           cosine learning-rate decay from LR towards 0 over all steps\n"
        "  --weight-decay WD  L2 weight decay added to the gradient, as in\n"
        "                     torch.optim.Adam (default 0)\n"
        "  --val-frac F       held-out fraction of each class: the last images of each\n"
        "                     class in file order, never trained on (default 0.2;\n"
        "                     0: none)\n"
        "  --seed S           initialisation, shuffling and dropout (default 0)\n"
        "  --eval-mode        train with batch norm on running statistics and dropout off\n"
        "                     (default: train mode, batch statistics and dropout on)\n"
        "  --quiet            no progress on stderr\n"
        "  --out W            the trained weights (safetensors, written atomically)\n\n"
        "The metadata of W holds: arch, width, hidden (vgg16), input_size, mean/std (when\n"
        "set), classes (JSON array of names), data, data_classes, epochs, batch, lr,\n"
        "lr_schedule, weight_decay, seed, val_frac, train_mode, train_images,\n"
        "val_images, init, train_loss, train_seconds and val_accuracy (held-out\n"
        "accuracy after the last epoch).\n"
        "Exit status: 0 done, 1 bad data or weights, 2 usage error.\n");
}

/* "a,b,c" / "imagenet" / "none" -> has (0/1) and v[3]. */
static void parse_norm(const char *flag, const char *s, int *has, float *v, int is_std) {
    static const float in_mean[3] = {0.485f, 0.456f, 0.406f}, in_std[3] = {0.229f, 0.224f, 0.225f};
    if (!strcmp(s, "none")) { *has = 0; return; }
    if (!strcmp(s, "imagenet")) { *has = 1; memcpy(v, is_std ? in_std : in_mean, sizeof in_mean); return; }
    const char *p = s;
    for (int i = 0; i < 3; i++) {
        char *end;
        double x = strtod(p, &end);
        if (end == p || !isfinite(x) || (is_std && !(x > 0)))
            arg_usage_error("train", "%s takes 3 %snumbers a,b,c, 'imagenet' or 'none', not '%s'", flag,
                            is_std ? "positive " : "", s);
        v[i] = (float)x;
        p = end;
        if (i < 2) {
            if (*p != ',') arg_usage_error("train", "%s takes 3 numbers a,b,c, not '%s'", flag, s);
            p++;
        }
    }
    if (*p) arg_usage_error("train", "%s takes 3 numbers a,b,c, not '%s'", flag, s);
    *has = 1;
}

/* float values with float precision ("0.001", not "0.00100000005") */
static void meta_num(Meta *m, const char *key, double v) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.7g", v);
    meta_set(m, key, buf);
}

static void meta_int(Meta *m, const char *key, long v) {
    char buf[64];
    snprintf(buf, sizeof buf, "%ld", v);
    meta_set(m, key, buf);
}

/* Remove `key` from m (a stale value from --init that this run decides anew). */
static void meta_drop(Meta *m, const char *key) {
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->key[i], key)) {
            free(m->key[i]);
            free(m->val[i]);
            for (int j = i + 1; j < m->n; j++) { m->key[j - 1] = m->key[j]; m->val[j - 1] = m->val[j]; }
            m->n--;
            return;
        }
}

/* The images of one part (held_out 0/1) as contiguous blocks. Returns the count. */
static int gather(const Dataset *d, int held_out, float **x, int **y) {
    int *idx = NULL;
    int n = dataset_select(d, held_out, -1, 0, &idx);
    size_t per = (size_t)3 * d->h * d->w;
    *x = xmalloc_aligned((n ? (size_t)n : 1) * per * sizeof(float));
    *y = xmalloc((n ? (size_t)n : 1) * sizeof(int));
    for (int i = 0; i < n; i++) {
        memcpy(*x + (size_t)i * per, d->x + (size_t)idx[i] * per, per * sizeof(float));
        (*y)[i] = d->y[idx[i]];
    }
    free(idx);
    return n;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Kept whole: the command read top to bottom (flags, the starting model, the data
 * as it will be fed, training, the result's metadata, saving) with one exit that
 * frees whatever was made; split, the steps would pass a dozen locals. */
int cmd_train(int argc, char **argv) {
    const char *arch_s = NULL, *data = NULL, *classes = NULL, *init = NULL, *out = NULL, *mean_s = NULL,
               *std_s = NULL;
    float width = 1.0f, val_frac = 0.2f;
    int hidden = 0, input = 0, eval_mode = 0, quiet = 0, width_set = 0, hidden_set = 0, seed = 0, strict = 0;
    TrainOpts o;
    train_opts_default(&o);
    o.train_mode = 1;
    PrepFlags pf = {{0, 0, 0}, {0, 0, 0}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (arg_is_help(a)) { usage(stdout); return 0; }
        if (arg_prep(argc, argv, &i, "train", &pf)) continue;
        if (arg_str(argc, argv, &i, "--model", &arch_s) || arg_str(argc, argv, &i, "--data", &data) ||
            arg_str(argc, argv, &i, "--classes", &classes) || arg_str(argc, argv, &i, "--init", &init) ||
            arg_str(argc, argv, &i, "--out", &out) || arg_str(argc, argv, &i, "--mean", &mean_s) ||
            arg_str(argc, argv, &i, "--std", &std_s) ||
            arg_int(argc, argv, &i, "--input-size", &input, 1, 16384) ||
            arg_int(argc, argv, &i, "--epochs", &o.epochs, 1, 1000000) ||
            arg_int(argc, argv, &i, "--batch", &o.batch, 1, 65536) ||
            arg_float(argc, argv, &i, "--lr", &o.lr, 0, 10) ||
            arg_float(argc, argv, &i, "--weight-decay", &o.weight_decay, 0, 10) ||
            arg_int(argc, argv, &i, "--seed", &seed, 0, 2147483647) ||
            arg_flag(argv, &i, "--eval-mode", &eval_mode) || arg_flag(argv, &i, "--cosine", &o.cosine) || arg_flag(argv, &i, "--quiet", &quiet) ||
            arg_flag(argv, &i, "--strict", &strict))
            continue;
        if (arg_float(argc, argv, &i, "--width", &width, 1e-4f, 16)) { width_set = 1; continue; }
        if (arg_int(argc, argv, &i, "--hidden", &hidden, 1, 1 << 20)) { hidden_set = 1; continue; }
        if (arg_float(argc, argv, &i, "--val-frac", &val_frac, 0, 0.99f)) continue;
        arg_usage_error("train", "unknown argument '%s'", a);
    }
    if (!data) arg_usage_error("train", "--data SPEC is required");
    if (!out) arg_usage_error("train", "--out W.safetensors is required");
    if (!arch_s && !init) arg_usage_error("train", "--model vgg16|resnet18 is required (or --init W0)");
    Arch arch = ARCH_VGG16;
    if (arch_s) {
        if (!strcmp(arch_s, "vgg16")) arch = ARCH_VGG16;
        else if (!strcmp(arch_s, "resnet18")) arch = ARCH_RESNET18;
        else arg_usage_error("train", "--model must be vgg16 or resnet18, not '%s'", arch_s);
    }
    if (init && (width_set || hidden_set)) arg_usage_error("train", "--width and --hidden come from --init's weights");
    if (hidden_set && arch_s && arch != ARCH_VGG16) arg_usage_error("train", "--hidden is for vgg16 only");
    if (input && input < 32) arg_usage_error("train", "--input-size must be at least 32 (vgg16 and resnet18 need it)");
    if (!!mean_s != !!std_s) arg_usage_error("train", "--mean and --std go together");
    o.train_mode = !eval_mode;
    o.verbose = !quiet;
    o.seed = (uint64_t)seed;

    /* the model first (cheap), so that a bad --init fails before the data is decoded */
    Model m;
    int have_model = 0, rc = 1;
    Dataset d;
    int have_data = 0;
    float *xt = NULL, *xv = NULL;
    int *yt = NULL, *yv = NULL;
    if (init) {
        if (model_load(&m, init)) return cli_fail();
        have_model = 1;
        if (arch_s && m.cfg.arch != arch) {
            err_set("%s: is a %s, not a %s", init, model_arch_name(m.cfg.arch), arch_s);
            goto fail;
        }
    }
    int has_norm = have_model ? m.cfg.has_norm : 0;
    float mean[3] = {0, 0, 0}, stdv[3] = {1, 1, 1};
    if (have_model && has_norm) { memcpy(mean, m.cfg.mean, sizeof mean); memcpy(stdv, m.cfg.std, sizeof stdv); }
    if (mean_s) {
        int hm, hs;
        parse_norm("--mean", mean_s, &hm, mean, 0);
        parse_norm("--std", std_s, &hs, stdv, 1);
        if (hm != hs) arg_usage_error("train", "--mean and --std must both be 'none' or both be numbers");
        has_norm = hm;
    }
    if (!input) input = have_model && m.cfg.in_h >= 32 && m.cfg.in_h == m.cfg.in_w ? m.cfg.in_h : 32;
    /* resize and crop: the flags, else W0's metadata; a crop (or a resize to HxW) sets the size */
    ImagePrep prep;
    int ih = input, iw = input;
    {
        Model none;
        memset(&none, 0, sizeof none);
        int ph, pw;
        cli_prep(have_model ? &m : &none, &pf, &prep, &ph, &pw);
        if (image_prep_torchvision(&prep) && (prep.crop_h > 0 || prep.resize_h > 0)) { ih = ph; iw = pw; }
        if (ih < 32 || iw < 32) arg_usage_error("train", "the crop (or resize) must be at least 32x32, not %dx%d", ih, iw);
    }
    prep.mean = has_norm ? mean : NULL;
    prep.std = has_norm ? stdv : NULL;

    if (have_model && !mean_s) model_warn_norm(&m, init); /* fed as W0 says, which may be nothing */
    DatasetOpts dopt = {0};
    dopt.classes = classes;
    dopt.h = ih;
    dopt.w = iw;
    dopt.prep = prep;
    dopt.val_frac = val_frac;
    dopt.strict = strict;
    if (dataset_load_opts(&d, data, &dopt)) goto fail;
    have_data = 1;
    if (d.nclasses < 2) { err_set("%s: %d class: a classifier needs at least 2", data, d.nclasses); goto fail; }
    if (have_model && m.cfg.num_classes != d.nclasses) {
        err_set("%s: has %d outputs but the data has %d classes", init, m.cfg.num_classes, d.nclasses);
        goto fail;
    }
    if (!have_model) {
        if (model_init(&m, arch, d.nclasses, width, hidden, (uint64_t)seed)) goto fail;
        have_model = 1;
    }
    int nt = gather(&d, 0, &xt, &yt), nv = gather(&d, 1, &xv, &yv);
    if (nt < 1) { err_set("%s: no training images (all held out)", data); goto fail; }
    if (!quiet)
        fprintf(stderr, "train: %s width %g%s, %d classes, %d training and %d held-out images of %dx%d, %s mode\n",
                model_arch_name(m.cfg.arch), (double)m.cfg.width, init ? " (from --init)" : "", d.nclasses, nt, nv,
                iw, ih, o.train_mode ? "train" : "eval");
    char label[64];
    snprintf(label, sizeof label, "train %s", model_arch_name(m.cfg.arch));
    o.label = label;
    float acc = -1;
    double t0 = now_s();
    float loss = train_classifier(&m, xt, yt, nt, xv, yv, nv, ih, iw, &o, &acc);
    double secs = now_s() - t0;
    if (loss < 0) goto fail;

    /* config and metadata of the result */
    ModelConfig *c = &m.cfg;
    c->in_c = 3; c->in_h = ih; c->in_w = iw;
    c->resize_short = prep.resize_short;
    c->resize_h = prep.resize_h;
    c->resize_w = prep.resize_w;
    c->crop_h = prep.crop_h;
    c->crop_w = prep.crop_w;
    c->has_norm = has_norm;
    memcpy(c->mean, mean, sizeof mean);
    memcpy(c->std, stdv, sizeof stdv);
    if (c->class_names) {
        for (int i = 0; i < c->num_classes; i++) free(c->class_names[i]);
        free(c->class_names);
    }
    c->class_names = xmalloc((size_t)d.nclasses * sizeof(char *));
    for (int i = 0; i < d.nclasses; i++) c->class_names[i] = xstrdup(d.class_names[i]);
    static const char *stale[] = {"mean", "std", "normalize", "resize", "crop", "val_accuracy", "train_loss"};
    for (size_t k = 0; k < sizeof stale / sizeof stale[0]; k++) meta_drop(&m.meta, stale[k]);
    if (!has_norm) meta_set(&m.meta, "normalize", "none");
    meta_set(&m.meta, "trained_by", "gad train");
    meta_set(&m.meta, "data", data);
    meta_set(&m.meta, "data_classes", classes ? classes : "all");
    meta_int(&m.meta, "epochs", o.epochs);
    meta_int(&m.meta, "batch", o.batch);
    meta_num(&m.meta, "lr", o.lr);
    meta_set(&m.meta, "lr_schedule", o.cosine ? "cosine" : "constant");
    meta_num(&m.meta, "weight_decay", o.weight_decay);
    meta_int(&m.meta, "seed", seed);
    meta_num(&m.meta, "val_frac", val_frac);
    meta_set(&m.meta, "train_mode", o.train_mode ? "train" : "eval");
    meta_int(&m.meta, "train_images", nt);
    meta_int(&m.meta, "val_images", nv);
    meta_set(&m.meta, "init", init ? init : "torchvision initialisation (seeded)");
    meta_num(&m.meta, "train_loss", loss);
    meta_int(&m.meta, "train_seconds", (long)(secs + 0.5));
    if (nv > 0) meta_num(&m.meta, "val_accuracy", acc);
    if (model_save(&m, out)) goto fail;
    printf("wrote %s: %s width %g, classes", out, model_arch_name(c->arch), (double)c->width);
    for (int i = 0; i < c->num_classes; i++) printf("%s%s", i ? ", " : " ", c->class_names[i]);
    if (nv > 0) printf("; held-out accuracy %.2f%% (%d images)", 100.0 * acc, nv);
    printf("; %.0f s\n", secs);
    rc = 0;
fail:
    if (rc) rc = cli_fail();
    xfree_aligned(xt); xfree_aligned(xv);
    free(yt); free(yv);
    if (have_data) dataset_free(&d);
    if (have_model) model_free(&m);
    return rc;
}
