/* cmd_run: `gad run`: the whole GAD method (gad/run.h) from flags. With no flags
 * (and so `./gad` with no arguments) it runs on the bundled data and both bundled
 * models with settings small enough for a few minutes on two cores.
 * Not for: any computation (gad/), argument helpers (args.c). */
#include "cli/cli.h"
#include "core/err.h"
#include "gad/run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUNDLED_DATA "data/fashion-pc-images-idx3-ubyte.gz"
#define BUNDLED_CLASSES "2,4"
#define BUNDLED_VGG "weights/vgg16.safetensors"
#define BUNDLED_RESNET "weights/resnet18.safetensors"
#define BUNDLED_IMAGES 128  /* quick default when nothing is given (see README) */

/* Over ~80 lines because it is the help text, every flag with its default. */
static void help(const RunOpts *d) {
    printf("usage: gad run [--weights W[,W2]] [--data SPEC] [flags]\n"
           "GAD end to end (paper sections 4-6): support regression models trained on\n"
           "distanced logits (or reused from the cache), attribution maps of the original\n"
           "and support models, their intersection, convex hulls, RC and RS, Tables 1 and 2\n"
           "(terminal, OUT/table1.csv, OUT/table2.csv), OUT/results.json, figures and\n"
           "OUT/index.html.\n\n"
           "With neither --weights nor --data: the bundled data (" BUNDLED_DATA ",\n"
           "classes " BUNDLED_CLASSES "), both bundled models (" BUNDLED_VGG ", " BUNDLED_RESNET ")\n"
           "and --images %d, from the repository's root directory.\n\n"
           "  --weights W        original model(s), safetensors; repeat or separate by commas\n"
           "  --data SPEC        image folder (root/<class>/ with JPEG, PNG, PPM or PGM files)\n"
           "                     or IDX images file\n"
           "  --strict           a file in a class folder that is not an image gad can\n"
           "                     read is an error (default: a warning naming it)\n"
           "  --classes a,b      the two classes, by name or index in the data\n"
           "  --outputs i,j      the model outputs of those classes (default: by class name;\n"
           "                     a two-output model without names: 0,1)\n"
           "  --methods LIST     saliency,deconv,gxi,guided,ig (default: all five)\n"
           "  --images N         images to explain, N/2 per class from the held-out part (%d):\n"
           "                     the last --val-frac of each class's images in file order\n"
           "                     (a folder's files sorted by name, an IDX file's order),\n"
           "                     never used to train the support models\n"
           "  --images-list F    explain the images named in F instead, one per line: a\n"
           "                     path (a file of the data, FILE[i] for IDX data, or any\n"
           "                     image whose folder is named after its class), or PATH\n"
           "                     TAB CLASS; results.json and the report name each by path\n"
           "  --alphas LIST      distancing values of the support models (2,4,6,8)\n"
           "  --epochs E         support training epochs (%d)\n"
           "  --lr LR            Adam learning rate (%g)\n"
           "  --batch B          support training batch (%d)\n"
           "  --weight-decay WD  Adam L2 weight decay (0)\n"
           "  --train-mode       batch norm and dropout in train mode while fitting the\n"
           "                     supports (default: eval mode, so alpha = 0 is the original)\n"
           "  --seed S           shuffling and dropout seed (0)\n"
           "  --train-images N   at most N training images per class for the supports (all)\n"
           "  --val-frac F       held-out fraction of each class (default: the weights'\n"
           "                     metadata 'val_frac', else 0.2)\n"
           "  --size S           input side (default: the weights' input size)\n"
           "  --present F        a pixel is present in a map when its importance reaches F\n"
           "                     times the map's maximum (default 0.1)\n"
           "  --present-top F    instead: present when among the top F of the map's non-zero\n"
           "                     pixels\n"
           "  --hull-of WHAT     which pixels a hull encloses: image (default: the top\n"
           "                     --hull-keep of the image's pixels, never one of importance 0;\n"
           "                     section 6), nonzero (the top --hull-keep of the map's non-zero\n"
           "                     pixels) or present (the map's present pixels, Fig. 4)\n"
           "  --hull-keep F      the fraction kept by --hull-of image or nonzero (0.5)\n",
           BUNDLED_IMAGES, d->images, d->epochs, (double)d->lr, d->batch);
    printf("  --rc-area A        polygon (default: shoelace area through pixel centres; an\n"
           "                     original hull of area 0 leaves RC undefined, counted apart)\n"
           "                     or pixels (pixels inside or on the hull)\n"
           "  --empty-gad E      an image whose GAD map is empty (no pixel present in every\n"
           "                     map) in Table 1: apart (default: in neither column, counted\n"
           "                     apart) or gad (RC = 0 counts for GAD, the paper's rule)\n"
           "  --control-draws N  Table 2's control: regions of the GAD mask's size drawn at\n"
           "                     random inside the original's region, N per image, method and\n"
           "                     class (%d; 0: none)\n"
           "  --curves C         faithfulness curves (deletion/insertion, beyond the paper):\n"
           "                     off, deletion (default) or both\n"
           "  --curve-steps N    points per curve - 1 (%d)\n"
           "  --occlude O        zero (default: x*(1-M), eq. 2) or black (x*(1-M) + b*M with b\n"
           "                     the black image after normalisation)\n"
           "  --ig-steps N       Integrated Gradients steps (%d)\n"
           "  --out DIR          report directory (%s)\n"
           "  --support-dir D    support model cache (default DIR/support); support models\n"
           "                     are first looked up, read-only, in WEIGHTS_DIR/support\n"
           "  --fig-images N     Figure 5 images per class (%d)\n"
           "  --fig-least N      Figure 6 least activated images per class (%d)\n"
           "  --shard K/N        explain only share K of N of the images (the run's images j\n"
           "                     with j %% N == K - 1) and write OUT/shards/K-of-N/ instead of\n"
           "                     the report; `gad merge OUT` puts the N shards together.\n"
           "                     auto: K from a Slurm job array (SLURM_ARRAY_TASK_ID: submit\n"
           "                     --array=1-N; N is the array's size or --shards N), from\n"
           "                     JOB_COMPLETION_INDEX (Kubernetes, 0-based) or PARALLEL_SEQ\n"
           "                     (GNU parallel) with --shards N\n"
           "  --shards N         the number of shards for --shard auto (needed with Slurm\n"
           "                     only to rerun some tasks: sbatch --array=3)\n"
           "  --explain-images L the images (dataset indices, e.g. 2374,2375) whose every step\n"
           "                     the report shows, or none (default: the least and the most\n"
           "                     activated of each class)\n"
           "  --quiet            no progress on stderr\n"
           "  -h, --help         this text\n\n"
           "Threads: GAD_THREADS=N. Exit status: 0 success, 1 bad file or data, 2 usage error.\n",
           d->control_draws, d->curve_steps, d->ig_steps, d->out_dir, d->fig_images, d->fig_least);
}

/* Split "a,b,c" into at most max non-empty tokens (pointers into a copy kept in
 * *buf, which the caller frees). Returns the count, or -1. */
static int split(const char *s, char **buf, char **tok, int max) {
    char *p = *buf = xstrdup(s);
    int n = 0;
    for (;;) {
        char *c = strchr(p, ',');
        if (c) *c = 0;
        if (!*p || n == max) return -1;
        tok[n++] = p;
        if (!c) return n;
        p = c + 1;
    }
}

/* Flags whose value is one of a few words, stored as its index (the enums' order). */
enum { CH_HULL_OF, CH_RC_AREA, CH_EMPTY_GAD, CH_CURVES, CH_OCCLUDE, NCHOICES };
static const struct {
    const char *flag, *words[3];
    int n;
} CHOICES[NCHOICES] = {
    {"--hull-of", {"image", "nonzero", "present"}, 3}, {"--rc-area", {"polygon", "pixels"}, 2},
    {"--empty-gad", {"apart", "gad"}, 2},             {"--curves", {"off", "deletion", "both"}, 3},
    {"--occlude", {"zero", "black"}, 2},
};

/* What the flags said, before it becomes RunOpts (run_flags_finish). */
typedef struct {
    const char *methods, *alphas, *explain, *choice[NCHOICES], *shard, *alpha;
    int shards;
    char *wbuf[GAD_MAX_WEIGHTS];  /* copies behind o->weights (run_flags_free) */
    int nw, quiet, images, ptop_set, pfrac_set;
    float ptop, pfrac;
} RunFlags;

static void run_flags_free(RunFlags *f) {
    for (int k = 0; k < f->nw; k++) free(f->wbuf[k]);
}

static void add_weights(RunOpts *o, RunFlags *f, const char *w) {
    char *tok[GAD_MAX_WEIGHTS];
    if (f->nw >= GAD_MAX_WEIGHTS) arg_usage_error("run", "at most %d --weights", GAD_MAX_WEIGHTS);
    int n = split(w, &f->wbuf[f->nw], tok, GAD_MAX_WEIGHTS - o->nweights);
    if (n <= 0) arg_usage_error("run", "--weights: expected W or W1,W2 (at most %d)", GAD_MAX_WEIGHTS);
    for (int k = 0; k < n; k++) o->weights[o->nweights++] = tok[k];
    f->nw++;
}

/* One flag of `gad run` at argv[*i]: stored into o or f, *i moved past its value.
 * Returns 1, or 0 when argv[*i] is no flag of run's. One line per flag, so long. */
static int run_flag(int argc, char **argv, int *i, RunOpts *o, RunFlags *f) {
    const char *w;
    for (int c = 0; c < NCHOICES; c++)
        if (arg_str(argc, argv, i, CHOICES[c].flag, &f->choice[c])) return 1;
    if (arg_str(argc, argv, i, "--weights", &w)) add_weights(o, f, w);
    else if (arg_str(argc, argv, i, "--seed", &w)) {
        char *e;
        o->seed = strtoull(w, &e, 10);
        if (e == w || *e) arg_usage_error("run", "--seed takes a whole number, not '%s'", w);
    } else if (arg_float(argc, argv, i, "--present", &f->pfrac, 0, 1)) f->pfrac_set = 1;
    else if (arg_str(argc, argv, i, "--shard", &f->shard) || arg_int(argc, argv, i, "--shards", &f->shards, 1, 100000))
        return 1;
    else if (arg_float(argc, argv, i, "--present-top", &f->ptop, 1e-6f, 1)) f->ptop_set = 1;
    else if (!(arg_str(argc, argv, i, "--data", &o->data) || arg_str(argc, argv, i, "--classes", &o->classes) ||
               arg_str(argc, argv, i, "--outputs", &o->outputs) || arg_str(argc, argv, i, "--methods", &f->methods) ||
               arg_str(argc, argv, i, "--images-list", &o->images_list) ||
               arg_int(argc, argv, i, "--images", &f->images, 2, 1 << 24) ||
               arg_str(argc, argv, i, "--alphas", &f->alphas) ||
               arg_str(argc, argv, i, "--explain-images", &f->explain) ||
               arg_int(argc, argv, i, "--epochs", &o->epochs, 1, 100000) ||
               arg_float(argc, argv, i, "--lr", &o->lr, 0, 10) ||
               arg_int(argc, argv, i, "--batch", &o->batch, 1, 4096) ||
               arg_float(argc, argv, i, "--weight-decay", &o->weight_decay, 0, 10) ||
               arg_flag(argv, i, "--train-mode", &o->train_mode) ||
               arg_int(argc, argv, i, "--train-images", &o->train_images, 0, 1 << 30) ||
               arg_float(argc, argv, i, "--val-frac", &o->val_frac, 0, 0.99f) ||
               arg_int(argc, argv, i, "--size", &o->size, 1, 4096) || arg_flag(argv, i, "--strict", &o->strict) ||
               arg_float(argc, argv, i, "--hull-keep", &o->hull_keep, 1e-6f, 1) ||
               arg_int(argc, argv, i, "--control-draws", &o->control_draws, 0, 1000) ||
               arg_int(argc, argv, i, "--curve-steps", &o->curve_steps, 1, 100000) ||
               arg_int(argc, argv, i, "--ig-steps", &o->ig_steps, 1, 100000) ||
               arg_str(argc, argv, i, "--out", &o->out_dir) ||
               arg_str(argc, argv, i, "--support-dir", &o->support_dir) ||
               arg_int(argc, argv, i, "--fig-images", &o->fig_images, 0, 16) ||
               arg_int(argc, argv, i, "--fig-least", &o->fig_least, 0, 16) || arg_flag(argv, i, "--quiet", &f->quiet)))
        return 0;
    return 1;
}

static void parse_methods(RunOpts *o, const char *methods) {
    char *buf, *tok[16];
    int n = split(methods, &buf, tok, 16);
    if (n <= 0) arg_usage_error("run", "--methods: expected a list such as saliency,ig");
    o->nmethods = 0;
    for (int k = 0; k < n; k++) {
        AttrMethod m;
        if (attr_parse_method(tok[k], &m) != 0) arg_usage_error("run", "--methods: %s", err_get());
        for (int j = 0; j < o->nmethods; j++)
            if (o->methods[j] == m) arg_usage_error("run", "--methods: '%s' given twice", tok[k]);
        o->methods[o->nmethods++] = m;
    }
    free(buf);
}

/* --explain-images LIST of dataset indices, or none. */
static void parse_explain(RunOpts *o, const char *list) {
    o->explain_n = 0;
    if (!strcmp(list, "none")) return;
    char *buf, *tok[GAD_MAX_EXPLAIN];
    int n = split(list, &buf, tok, GAD_MAX_EXPLAIN);
    if (n <= 0) arg_usage_error("run", "--explain-images: expected none or at most %d image indices such as 12,40",
                                GAD_MAX_EXPLAIN);
    for (int k = 0; k < n; k++) {
        char *e;
        long v = strtol(tok[k], &e, 10);
        if (e == tok[k] || *e || v < 0 || v > (1L << 30))
            arg_usage_error("run", "--explain-images: '%s' is not an image index", tok[k]);
        o->explain_images[k] = (int)v;
    }
    o->explain_n = n;
    free(buf);
}

static void parse_alphas(RunOpts *o, const char *alphas) {
    char *buf, *tok[GAD_MAX_ALPHAS];
    int n = split(alphas, &buf, tok, GAD_MAX_ALPHAS);
    if (n <= 0) arg_usage_error("run", "--alphas: expected a list of at most %d numbers such as 2,4,6,8", GAD_MAX_ALPHAS);
    for (int k = 0; k < n; k++) {
        char *e;
        o->alphas[k] = strtof(tok[k], &e);
        if (e == tok[k] || *e || !(o->alphas[k] >= 0 && o->alphas[k] <= 1e6f))
            arg_usage_error("run", "--alphas: '%s' is not a number >= 0", tok[k]);
    }
    o->nalphas = n;
    free(buf);
}

/* The index of a choice's word; a usage error names the words. */
static int choice_index(int c, const char *v) {
    for (int k = 0; k < CHOICES[c].n; k++)
        if (!strcmp(v, CHOICES[c].words[k])) return k;
    char words[96] = "";
    for (int k = 0; k < CHOICES[c].n; k++)
        snprintf(words + strlen(words), sizeof words - strlen(words), "%s%s", k == 0 ? "" : k + 1 < CHOICES[c].n ? ", " : " or ",
                 CHOICES[c].words[k]);
    arg_usage_error("run", "%s: %s, not '%s'", CHOICES[c].flag, words, v);
    return -1;  /* not reached */
}

/* The flags into o: presence, methods, alphas, choices, and the bundled data and
 * models when neither --weights nor --data was given. Returns 1 when bundled. */
static int run_flags_finish(RunOpts *o, const RunFlags *f) {
    if (f->ptop_set && f->pfrac_set) arg_usage_error("run", "--present and --present-top exclude each other");
    if (f->ptop_set) {
        o->present.rule = PRESENT_TOP;
        o->present.value = f->ptop;
    } else if (f->pfrac_set) {
        o->present.value = f->pfrac;
    }
    if (f->methods) parse_methods(o, f->methods);
    if (f->alphas) parse_alphas(o, f->alphas);
    if (f->explain) parse_explain(o, f->explain);
    const char *const *ch = f->choice;
    if (ch[CH_HULL_OF]) o->hull_of = (HullOf)choice_index(CH_HULL_OF, ch[CH_HULL_OF]);
    if (ch[CH_RC_AREA]) o->rc_area = (RcArea)choice_index(CH_RC_AREA, ch[CH_RC_AREA]);
    if (ch[CH_EMPTY_GAD]) o->count_empty = choice_index(CH_EMPTY_GAD, ch[CH_EMPTY_GAD]);
    if (ch[CH_CURVES]) o->curves = choice_index(CH_CURVES, ch[CH_CURVES]);
    if (ch[CH_OCCLUDE]) o->occlude_black = choice_index(CH_OCCLUDE, ch[CH_OCCLUDE]);
    int bundled = o->nweights == 0 && !o->data;
    if (o->nweights == 0) {
        o->weights[0] = cli_bundled(BUNDLED_VGG);
        o->weights[1] = cli_bundled(BUNDLED_RESNET);
        o->nweights = 2;
    }
    if (!o->data) {
        o->data = cli_bundled(BUNDLED_DATA);
        if (!o->classes) o->classes = BUNDLED_CLASSES;
    }
    o->images = f->images > 0 ? f->images : bundled ? BUNDLED_IMAGES : o->images;
    o->verbose = !f->quiet;
    if (f->shard && gad_shard_parse(f->shard, f->shards, &o->shard_k, &o->shard_n) != 0)
        arg_usage_error("run", "%s", err_get());
    if (!f->shard && f->shards) arg_usage_error("run", "--shards goes with --shard auto");
    return bundled;
}

int cmd_run(int argc, char **argv) {
    RunOpts o;
    run_opts_default(&o);
    RunFlags f;
    memset(&f, 0, sizeof f);
    f.images = -1;
    for (int i = 1; i < argc; i++) {
        if (arg_is_help(argv[i])) {
            help(&o);
            return 0;
        }
        if (!run_flag(argc, argv, &i, &o, &f)) arg_usage_error("run", "unknown flag '%s'", argv[i]);
    }
    int bundled = run_flags_finish(&o, &f);
    if (bundled && !f.quiet)
        fprintf(stderr, "gad: running GAD on the bundled data (%s, classes %s) and models (%s, %s), %d images; "
                        "`gad run --help` for the flags\n",
                o.data, o.classes, o.weights[0], o.weights[1], o.images);
    int rc = gad_run(&o);
    run_flags_free(&f);
    if (rc != 0) return cli_fail();
    if (o.shard_n > 0) {
        printf("shard %d of %d: %s/shards/%d-of-%d/ (when all %d are done: gad merge %s)\n", o.shard_k, o.shard_n,
               o.out_dir, o.shard_k, o.shard_n, o.shard_n, o.out_dir);
        return 0;
    }
    printf("\nreport: %s/index.html (tables: %s/table1.csv, %s/table2.csv%s%s%s; per image: %s/results.json)\n",
           o.out_dir, o.out_dir, o.out_dir, o.curves ? ", " : "", o.curves ? o.out_dir : "",
           o.curves ? "/curves.csv" : "", o.out_dir);
    return 0;
}

/* ---- the steps of a run as commands of their own (for schedulers) ---- */

int cmd_support(int argc, char **argv) {
    RunOpts o;
    run_opts_default(&o);
    RunFlags f;
    memset(&f, 0, sizeof f);
    f.images = -1;
    for (int i = 1; i < argc; i++) {
        if (arg_is_help(argv[i])) {
            printf("usage: gad support [gad run's flags] [--alpha A] [--shard K/N|auto [--shards N]]\n"
                   "Train the support models that `gad run` with the same flags needs, into its\n"
                   "cache (--support-dir, default OUT/support), and nothing else: one per model and\n"
                   "alpha, or only alpha A (--alpha), or share K of N of the (model, alpha) pairs\n"
                   "(--shard; auto: from SLURM_ARRAY_TASK_ID, or JOB_COMPLETION_INDEX or PARALLEL_SEQ\n"
                   "with --shards N). A model already in the cache is left as it is; two processes\n"
                   "training the same model write the same bits, each file atomically.\n\n"
                   "Exit status: 0 success, 1 bad file or data, 2 usage error.\n");
            return 0;
        }
        if (arg_str(argc, argv, &i, "--alpha", &f.alpha)) continue;
        if (!run_flag(argc, argv, &i, &o, &f)) arg_usage_error("support", "unknown flag '%s'", argv[i]);
    }
    run_flags_finish(&o, &f);
    if (f.alpha) {
        char *e;
        float a = strtof(f.alpha, &e);
        if (e == f.alpha || *e || !(a >= 0 && a <= 1e6f))
            arg_usage_error("support", "--alpha: '%s' is not a number >= 0", f.alpha);
        o.alphas[0] = a;
        o.nalphas = 1;
    }
    int rc = gad_supports(&o);
    run_flags_free(&f);
    return rc != 0 ? cli_fail() : 0;
}

int cmd_merge(int argc, char **argv) {
    const char *out = NULL;
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        if (arg_is_help(argv[i])) {
            printf("usage: gad merge [--quiet] OUT\n"
                   "Put together the shards of a run (`gad run ... --shard K/N --out OUT`): check\n"
                   "that every shard under OUT/shards/ is there and that all were made with the same\n"
                   "settings, weights and data, then print Tables 1 and 2 and write what `gad run`\n"
                   "writes into OUT (tables, results.json, figures, index.html): the same bytes as\n"
                   "the run in one process (timings aside).\n\n"
                   "Exit status: 0 success, 1 a missing or unfinished shard, or shards of different\n"
                   "runs (the message names them), 2 usage error.\n");
            return 0;
        }
        if (arg_flag(argv, &i, "--quiet", &quiet)) continue;
        if (argv[i][0] == '-') arg_usage_error("merge", "unknown flag '%s'", argv[i]);
        if (out) arg_usage_error("merge", "one OUT directory, not '%s' and '%s'", out, argv[i]);
        out = argv[i];
    }
    if (!out) arg_usage_error("merge", "give the run's OUT directory");
    if (gad_merge(out, !quiet) != 0) return cli_fail();
    printf("\nreport: %s/index.html\n", out);
    return 0;
}
