/* cmd_bench: `gad bench`: speed of sgemm and of full-width vgg16 / resnet18 passes,
 * as a table or one JSON object per line (tools/bench/bench_compare.sh reads those and
 * sets them beside PyTorch's figures from tools/bench/bench_torch.py).
 *
 * Cases: sgemm C = A B at 1024^3 and 4096^3; for each model at 32x32 batch 32 and
 * 224x224 batch 1 and 8: forward (eval), input_grad (eval forward + backward to
 * the input only, what attribution needs) and train_step (train-mode forward, MSE
 * backward to the parameters, one Adam step); and GAD-shaped cases (bench_gad). Every case is warmed up, then
 * repeated until it has run at least --min-time seconds and 3 times (at most
 * --repeats times); the median is reported.
 * GFLOP/s counts the multiply-adds of convolutions and linear layers (2 flops
 * each): F for forward, 2F for input_grad, 3F for train_step.
 * --layers times each layer of vgg16 / resnet18 alone instead (nn/layer_bench.h):
 * forward, backward to the input, backward to the input and the parameters.
 * Not for: correctness (the tests). */
#include "cli/cli.h"
#include "core/err.h"
#include "core/gemm.h"
#include "core/rng.h"
#include "core/threads.h"
#include "gad/run.h"
#include "nn/layer_bench.h"
#include "nn/model.h"
#include "train/train.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static void help(void) {
    printf("usage: gad bench [--model vgg16|resnet18|sgemm|gad|all] [--pass P] [--size S]\n"
           "                 [--batch B] [--threads N] [--json] [--min-time SEC] [--repeats R]\n"
           "                 [--cpu-time] [--layers]\n"
           "Times sgemm (1024^3, 4096^3) and full-width vgg16 / resnet18 (random weights,\n"
           "1000 classes) at 32x32 batch 32 and 224x224 batch 1 and 8: forward,\n"
           "input_grad (forward + gradient to the input) and train_step (forward, MSE\n"
           "backward, Adam). And the passes gad run spends its time in (model gad), at\n"
           "32x32 with two outputs: support_step (a support model's training step:\n"
           "eval-mode forward, MSE, backward to the parameters, Adam) at batch 32 and\n"
           "64, and ig_pass (Integrated Gradients' forward + gradient to the input) at\n"
           "the maps' batch of gad run (128 here), for the bundled\n"
           "models (vgg16-w0.125, resnet18-w0.125: weights/ when run from the repository,\n"
           "else the same structure) and full-width ones (vgg16-2cls, resnet18-2cls).\n"
           "Reports the median over repeats after a warm-up run.\n\n"
           "  --model M      vgg16, resnet18, sgemm, gad (or one of its four models) or all\n"
           "                 (default all)\n"
           "  --pass P       forward, input_grad, train_step, sgemm, support_step, ig_pass\n"
           "                 or all (default all)\n"
           "  --size S       only cases of this size: 32, 224, 1024 or 4096 (default all)\n"
           "  --batch B      only cases with this batch (default all)\n"
           "  --threads N    worker threads (default GAD_THREADS, else the online cores)\n"
           "  --json         one JSON object per line: model, pass, size, batch, threads,\n"
           "                 images_per_s (null for sgemm), gflops, ms, reps, max_rss_mb\n"
           "  --min-time S   seconds each case runs at least (default 1)\n"
           "  --repeats R    at most R timed runs per case (default 20), at least min(R, 3)\n"
           "  --cpu-time     time with the process's CPU clock (all threads summed) instead\n"
           "                 of the wall clock: steadier on a busy machine, with --threads 1\n"
           "  --layers       instead of whole passes, each layer of vgg16 / resnet18 alone\n"
           "                 (its plain kernel, train mode: what a pass spends its time in):\n"
           "                 median ms of its forward, its backward to the input, and its\n"
           "                 backward to the input and its parameters, one row per layer;\n"
           "                 --min-time 0 unless given (3 timed runs each)\n"
           "  -h, --help     this text\n\n"
           "GFLOP/s counts conv and linear multiply-adds as 2 flops: F forward, 2F\n"
           "input_grad and ig_pass, 3F train_step and support_step. max_rss_mb is the process's peak so far: run one\n"
           "case per process to read a case's own peak.\n");
}

static double now(int cpu) {
    struct timespec t;
    clock_gettime(cpu ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double max_rss_mb(void) {
    struct rusage u;
    if (getrusage(RUSAGE_SELF, &u)) return 0.0;
    return (double)u.ru_maxrss / 1024.0; /* Linux: KiB */
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---- options, timing and output ------------------------------------------------ */

typedef struct {
    const char *model, *pass;
    int size, batch, json;
    double min_time;
    int repeats;
    int cpu;      /* --cpu-time */
} Opts;

typedef void (*RunFn)(void *ctx);

/* Median seconds of fn(ctx) after one warm-up; *reps gets the timed count. */
static double time_case(const Opts *o, RunFn fn, void *ctx, int *reps) {
    double t[256], total = 0.0;
    int n = 0, most = o->repeats < 256 ? o->repeats : 256;
    fn(ctx);
    while (n < most && (n < 3 || total < o->min_time)) {
        double t0 = now(o->cpu);
        fn(ctx);
        t[n] = now(o->cpu) - t0;
        total += t[n++];
    }
    qsort(t, (size_t)n, sizeof t[0], cmp_double);
    *reps = n;
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static void report(const Opts *o, const char *model, const char *pass, const char *size, int batch,
                   double sec, double flops, int reps) {
    double ips = batch / sec, gf = flops / sec / 1e9;
    int is_gemm = !strcmp(model, "sgemm");
    if (o->json) {
        char ipsbuf[32];
        if (is_gemm) snprintf(ipsbuf, sizeof ipsbuf, "null");
        else snprintf(ipsbuf, sizeof ipsbuf, "%.3f", ips);
        printf("{\"model\": \"%s\", \"pass\": \"%s\", \"size\": \"%s\", \"batch\": %d, \"threads\": %d, "
               "\"images_per_s\": %s, \"gflops\": %.2f, \"ms\": %.3f, \"reps\": %d, \"max_rss_mb\": %.1f}\n",
               model, pass, size, batch, par_nthreads(), ipsbuf, gf, sec * 1e3, reps, max_rss_mb());
    } else {
        if (is_gemm) printf("%-9s %-11s %-8s %5d %7d %12s %9.1f %10.2f\n", model, pass, size, batch,
                            par_nthreads(), "-", gf, sec * 1e3);
        else printf("%-9s %-11s %-8s %5d %7d %12.2f %9.1f %10.2f\n", model, pass, size, batch, par_nthreads(),
                    ips, gf, sec * 1e3);
    }
    fflush(stdout);
}

static int want_str(const char *filter, const char *v) { return !strcmp(filter, "all") || !strcmp(filter, v); }

/* ---- sgemm ------------------------------------------------------------------------ */

typedef struct {
    int n;
    float *A, *B, *C;
} GemmCase;

static void run_gemm(void *p) {
    GemmCase *g = p;
    gemm(0, 0, g->n, g->n, g->n, 1.0f, g->A, g->n, g->B, g->n, 0.0f, g->C, g->n);
}

/* sgemm's cases: n x n x n, batch 1 */
static const int sgemm_sizes[] = {1024, 4096};

static void bench_sgemm(const Opts *o) {
    Rng r;
    rng_seed(&r, 1);
    for (size_t s = 0; s < sizeof sgemm_sizes / sizeof sgemm_sizes[0]; s++) {
        int n = sgemm_sizes[s];
        if (o->size && o->size != n) continue;
        if (o->batch && o->batch != 1) continue;
        GemmCase g = {n, NULL, NULL, NULL};
        size_t nn = (size_t)n * n;
        g.A = xmalloc(nn * sizeof(float));
        g.B = xmalloc(nn * sizeof(float));
        g.C = xcalloc(nn, sizeof(float));
        for (size_t i = 0; i < nn; i++) g.A[i] = rng_normal(&r), g.B[i] = rng_normal(&r);
        int reps;
        double sec = time_case(o, run_gemm, &g, &reps);
        char size[16];
        snprintf(size, sizeof size, "%d", n);
        report(o, "sgemm", "sgemm", size, 1, sec, 2.0 * n * (double)n * n, reps);
        free(g.A); free(g.B); free(g.C);
    }
}

/* ---- models ---------------------------------------------------------------------- */

typedef struct {
    Model *m;
    Plan *plan;
    Adam *adam;
    int n, K;
    const float *x, *target;
    float *dlogits, *dx;
    size_t xsize;
} ModelCase;

static void run_forward(void *p) {
    ModelCase *c = p;
    PassMode mode = {0, RELU_STANDARD, 0, 0};
    model_forward(c->m, c->plan, c->x, c->n, mode);
}

/* The gradient of each image's logit (i mod K) with respect to the input. */
static void run_input_grad(void *p) {
    ModelCase *c = p;
    PassMode mode = {0, RELU_STANDARD, 0, 0};
    model_forward(c->m, c->plan, c->x, c->n, mode);
    memset(c->dlogits, 0, sizeof(float) * (size_t)c->n * c->K);
    for (int i = 0; i < c->n; i++) c->dlogits[(size_t)i * c->K + i % c->K] = 1.0f;
    memset(c->dx, 0, sizeof(float) * c->xsize);
    model_backward(c->m, c->plan, c->dlogits, c->dx, 0, mode);
}

/* Forward, MSE to the targets, backward to the parameters, one Adam step. */
static void train_step(ModelCase *c, PassMode mode) {
    const float *y = model_forward(c->m, c->plan, c->x, c->n, mode);
    loss_mse((size_t)c->n * c->K, y, c->target, c->dlogits);
    model_zero_grads(c->m);
    model_backward(c->m, c->plan, c->dlogits, NULL, 1, mode);
    adam_step(c->adam, c->m->params, c->m->grads);
    model_params_changed(c->m);
}

/* A classifier's training step: train-mode forward (batch statistics, dropout). */
static void run_train_step(void *p) {
    PassMode mode = {1, RELU_STANDARD, 12345, 0};
    train_step(p, mode);
}

/* A support model's training step as gad run takes it (train/trainer.c's regression:
 * eval-mode forward, MSE to the distanced targets, backward to the parameters, Adam). */
static void run_support_step(void *p) {
    PassMode mode = {0, RELU_STANDARD, 12345, 1};
    train_step(p, mode);
}

/* The models' cases: input side and batch. */
static const struct { int hw, batch; } shapes[] = {{32, 32}, {224, 1}, {224, 8}};

/* The GAD-shaped cases (bench_gad), at 32x32 with two outputs and the batches gad run
 * takes: support training at its default --batch (32) and at 64, IG's pass at the
 * maps' batch (gad_maps_batch: 128 for the four models here). */
enum { GAD_HW = 32, GAD_IG_BATCH = 128 };
static const struct { const char *name; RunFn fn; double mult; int batch; } gad_cases[] = {
    {"support_step", run_support_step, 3.0, 32},
    {"support_step", run_support_step, 3.0, 64},
    {"ig_pass", run_input_grad, 2.0, GAD_IG_BATCH}};
enum { GAD_NCASES = sizeof gad_cases / sizeof gad_cases[0] };

/* Whether --model, --pass, --size and --batch leave any case to run: sgemm at 1024
 * and 4096 (batch 1), vgg16 and resnet18 at the shapes above, the GAD-shaped cases. */
static int any_case(const Opts *o) {
    const int sz = o->size, b = o->batch, gemm = want_str(o->model, "sgemm") && want_str(o->pass, "sgemm");
    for (size_t s = 0; gemm && s < sizeof sgemm_sizes / sizeof sgemm_sizes[0]; s++)
        if ((!sz || sz == sgemm_sizes[s]) && (!b || b == 1)) return 1;
    const int model = want_str(o->model, "vgg16") || want_str(o->model, "resnet18");
    const int pass = want_str(o->pass, "forward") || want_str(o->pass, "input_grad") || want_str(o->pass, "train_step");
    for (size_t s = 0; model && pass && s < sizeof shapes / sizeof shapes[0]; s++)
        if ((!sz || sz == shapes[s].hw) && (!b || b == shapes[s].batch)) return 1;
    const int gad = want_str(o->model, "gad") || strchr(o->model, '-'); /* the four models' names */
    for (int q = 0; gad && q < GAD_NCASES; q++)
        if (want_str(o->pass, gad_cases[q].name) && (!sz || sz == GAD_HW) && (!b || b == gad_cases[q].batch)) return 1;
    return 0;
}

static int bench_model(const Opts *o, Arch arch) {
    static const struct { const char *name; RunFn fn; double mult; } passes[] = {
        {"forward", run_forward, 1.0}, {"input_grad", run_input_grad, 2.0}, {"train_step", run_train_step, 3.0}};
    const char *name = arch == ARCH_VGG16 ? "vgg16" : "resnet18";
    int any = 0, train = 0;
    for (int s = 0; s < 3; s++)
        for (int q = 0; q < 3; q++)
            if ((!o->size || o->size == shapes[s].hw) && (!o->batch || o->batch == shapes[s].batch) &&
                want_str(o->pass, passes[q].name)) {
                any = 1;
                train |= q == 2;
            }
    if (!any) return 0;

    const int K = 1000;
    Model m;
    if (model_init(&m, arch, K, 1.0f, arch == ARCH_VGG16 ? 4096 : 0, 1)) return -1;
    Adam adam;
    if (train) {
        model_alloc_grads(&m);
        adam_init(&adam, m.n_params, 1e-5f, 0.0f);
    }
    Rng r;
    rng_seed(&r, 2);
    int rc = 0;
    for (int s = 0; s < 3 && rc == 0; s++) {
        int hw = shapes[s].hw, n = shapes[s].batch;
        if ((o->size && o->size != hw) || (o->batch && o->batch != n)) continue;
        int todo = 0;
        for (int q = 0; q < 3; q++) todo |= want_str(o->pass, passes[q].name);
        if (!todo) continue;
        Plan *plan = plan_new(&m, n, hw, hw);
        if (!plan) { rc = -1; break; }
        size_t xsize = (size_t)n * 3 * hw * hw;
        float *x = xmalloc(xsize * sizeof(float)), *dx = xcalloc(xsize, sizeof(float));
        float *target = xmalloc(sizeof(float) * (size_t)n * K), *dlogits = xcalloc((size_t)n * K, sizeof(float));
        for (size_t i = 0; i < xsize; i++) x[i] = rng_normal(&r);
        for (size_t i = 0; i < (size_t)n * K; i++) target[i] = 0.1f * rng_normal(&r);
        ModelCase c = {&m, plan, train ? &adam : NULL, n, K, x, target, dlogits, dx, xsize};
        double macs = model_forward_macs(&m, hw, hw);
        char size[16];
        snprintf(size, sizeof size, "%dx%d", hw, hw);
        for (int q = 0; q < 3; q++) {
            if (!want_str(o->pass, passes[q].name)) continue;
            int reps;
            double sec = time_case(o, passes[q].fn, &c, &reps);
            report(o, name, passes[q].name, size, n, sec, 2.0 * macs * n * passes[q].mult, reps);
        }
        free(x); free(dx); free(target); free(dlogits);
        plan_free(plan);
    }
    if (train) adam_free(&adam);
    model_free(&m);
    return rc;
}

/* ---- one layer at a time (--layers) ------------------------------------------------ */

typedef struct {
    LayerBench *b;
    int l, phase;
} LayerCase;

static void run_layer(void *p) {
    LayerCase *c = p;
    layer_bench_run(c->b, c->l, c->phase);
}

static void report_layer(const Opts *o, const char *model, const char *size, int batch, int l, const char *kind,
                         const char *shape, int h, int w, const double ms[LB_NPHASES], int reps) {
    if (o->json)
        printf("{\"model\": \"%s\", \"pass\": \"layer\", \"size\": \"%s\", \"batch\": %d, \"threads\": %d, "
               "\"layer\": %d, \"kind\": \"%s\", \"shape\": \"%s\", \"input\": \"%dx%d\", \"forward_ms\": %.4f, "
               "\"backward_dx_ms\": %.4f, \"backward_dw_ms\": %.4f, \"reps\": %d}\n",
               model, size, batch, par_nthreads(), l, kind, shape, h, w, ms[0], ms[1], ms[2], reps);
    else if (l >= 0)
        printf("  %3d %-8s %-16s %4dx%-4d %10.3f %10.3f %10.3f\n", l, kind, shape, h, w, ms[0], ms[1], ms[2]);
    else
        printf("      %-8s %-16s %9s %10.3f %10.3f %10.3f\n", "total", "", "", ms[0], ms[1], ms[2]);
    fflush(stdout);
}

static int bench_layers(const Opts *o, Arch arch) {
    const char *name = arch == ARCH_VGG16 ? "vgg16" : "resnet18";
    Model m;
    if (model_init(&m, arch, 1000, 1.0f, arch == ARCH_VGG16 ? 4096 : 0, 1)) return -1;
    int rc = 0;
    for (int s = 0; s < 3 && rc == 0; s++) {
        int hw = shapes[s].hw, n = shapes[s].batch;
        if ((o->size && o->size != hw) || (o->batch && o->batch != n)) continue;
        LayerBench *b = layer_bench_new(&m, n, hw, hw);
        if (!b) { rc = -1; break; }
        char size[16];
        snprintf(size, sizeof size, "%dx%d", hw, hw);
        if (!o->json)
            printf("%s %s batch %d, %d threads: median ms per layer\n  %3s %-8s %-16s %9s %10s %10s %10s\n", name,
                   size, n, par_nthreads(), "#", "layer", "shape", "input", "forward", "back dx", "back dx+dw");
        double total[LB_NPHASES] = {0};
        for (int l = 0; l < m.nlayers; l++) {
            double ms[LB_NPHASES];
            int reps = 0;
            for (int ph = 0; ph < LB_NPHASES; ph++) {
                LayerCase c = {b, l, ph};
                int r;
                ms[ph] = 1e3 * time_case(o, run_layer, &c, &r);
                total[ph] += ms[ph];
                reps = ph == 0 || r < reps ? r : reps;
            }
            const char *kind;
            char shape[48];
            int h, w;
            layer_bench_describe(b, l, &kind, shape, sizeof shape, &h, &w);
            report_layer(o, name, size, n, l, kind, shape, h, w, ms, reps);
        }
        if (!o->json) report_layer(o, name, size, n, -1, "", "", 0, 0, total, 0);
        layer_bench_free(b);
    }
    model_free(&m);
    return rc;
}

/* ---- GAD-shaped cases ---------------------------------------------------------------
 * The passes gad run spends its time in (gad_cases): a support model's training step
 * and Integrated Gradients' input-gradient pass, for the bundled models
 * (weights/vgg16.safetensors and weights/resnet18.safetensors when run from the
 * repository's root, else models of the same structure: width 0.125, vgg16's hidden
 * 128) and full-width ones. A model whose maps' batch is not GAD_IG_BATCH (less
 * memory per pass allowed, a larger model) reports its IG pass at its own. */
static int gad_case_wanted(const Opts *o, int q, int n) {
    return want_str(o->pass, gad_cases[q].name) && (!o->batch || o->batch == n);
}

static int bench_gad(const Opts *o) {
    static const struct { const char *name, *file; Arch arch; float width; int hidden; } models[] = {
        {"vgg16-w0.125", "weights/vgg16.safetensors", ARCH_VGG16, 0.125f, 128},
        {"resnet18-w0.125", "weights/resnet18.safetensors", ARCH_RESNET18, 0.125f, 0},
        {"vgg16-2cls", NULL, ARCH_VGG16, 1.0f, 4096},
        {"resnet18-2cls", NULL, ARCH_RESNET18, 1.0f, 0}};
    const int hw = GAD_HW, K = 2;
    if (o->size && o->size != hw) return 0;
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        if (!want_str(o->model, "gad") && strcmp(o->model, models[i].name)) continue;
        Model m;
        FILE *f = models[i].file ? fopen(models[i].file, "rb") : NULL;
        if (f) fclose(f);
        if (f ? model_load(&m, models[i].file)
              : model_init(&m, models[i].arch, K, models[i].width, models[i].hidden, 1))
            return -1;
        if (m.cfg.num_classes != K) { model_free(&m); return err_set("%s: not a two-output model", models[i].file); }
        const int ig_batch = gad_maps_batch(&m, hw, hw);
        if (ig_batch < 0) { model_free(&m); return -1; }
        int batch[GAD_NCASES], nmax = 0, train = 0;
        for (int q = 0; q < GAD_NCASES; q++) {
            batch[q] = gad_cases[q].fn == run_input_grad ? ig_batch : gad_cases[q].batch;
            if (!gad_case_wanted(o, q, batch[q])) continue;
            if (batch[q] > nmax) nmax = batch[q];
            train |= gad_cases[q].fn == run_support_step;
        }
        if (!nmax) { model_free(&m); continue; }
        Adam adam;
        if (train) {
            model_alloc_grads(&m);
            adam_init(&adam, m.n_params, 4e-5f, 0.0f);
        }
        Plan *plan = plan_new(&m, nmax, hw, hw); /* a plan serves any batch up to its own */
        if (!plan) { model_free(&m); return -1; }
        Rng r;
        rng_seed(&r, 3);
        size_t xsize = (size_t)nmax * 3 * hw * hw;
        float *x = xmalloc(xsize * sizeof(float)), *dx = xcalloc(xsize, sizeof(float));
        float *target = xmalloc(sizeof(float) * (size_t)nmax * K), *dlogits = xcalloc((size_t)nmax * K, sizeof(float));
        for (size_t e = 0; e < xsize; e++) x[e] = rng_uniform(&r); /* pixels in [0, 1), as the bundled data */
        for (size_t e = 0; e < (size_t)nmax * K; e++) target[e] = 2.0f * rng_normal(&r);
        double macs = model_forward_macs(&m, hw, hw);
        for (int q = 0; q < GAD_NCASES; q++) {
            const int n = batch[q];
            if (!gad_case_wanted(o, q, n)) continue;
            ModelCase c = {&m, plan, train ? &adam : NULL, n, K, x, target, dlogits, dx, (size_t)n * 3 * hw * hw};
            int reps;
            double sec = time_case(o, gad_cases[q].fn, &c, &reps);
            report(o, models[i].name, gad_cases[q].name, "32x32", n, sec, 2.0 * macs * n * gad_cases[q].mult, reps);
        }
        free(x); free(dx); free(target); free(dlogits);
        plan_free(plan);
        if (train) adam_free(&adam);
        model_free(&m);
    }
    return 0;
}

int cmd_bench(int argc, char **argv) {
    Opts o = {"all", "all", 0, 0, 0, 1.0, 20, 0};
    int threads = 0, layers = 0, min_time_set = 0;
    float min_time = 1.0f;
    for (int i = 1; i < argc; i++) {
        if (arg_is_help(argv[i])) { help(); return 0; }
        if (arg_str(argc, argv, &i, "--model", &o.model)) {
            if (!want_str(o.model, "vgg16") && !want_str(o.model, "resnet18") && !want_str(o.model, "sgemm") &&
                !want_str(o.model, "gad") && strcmp(o.model, "vgg16-w0.125") && strcmp(o.model, "resnet18-w0.125") &&
                strcmp(o.model, "vgg16-2cls") && strcmp(o.model, "resnet18-2cls"))
                arg_usage_error("bench", "--model takes vgg16, resnet18, sgemm, gad (or one of its models) or all, "
                                "not '%s'", o.model);
        } else if (arg_str(argc, argv, &i, "--pass", &o.pass)) {
            if (!want_str(o.pass, "forward") && !want_str(o.pass, "input_grad") && !want_str(o.pass, "train_step") &&
                !want_str(o.pass, "sgemm") && !want_str(o.pass, "support_step") && !want_str(o.pass, "ig_pass"))
                arg_usage_error("bench", "--pass takes forward, input_grad, train_step, sgemm, support_step, ig_pass "
                                "or all, not '%s'", o.pass);
        } else if (arg_int(argc, argv, &i, "--size", &o.size, 1, 1 << 16)) {
        } else if (arg_int(argc, argv, &i, "--batch", &o.batch, 1, 1 << 16)) {
        } else if (arg_int(argc, argv, &i, "--threads", &threads, 1, 256)) {
        } else if (arg_float(argc, argv, &i, "--min-time", &min_time, 0.0f, 3600.0f)) {
            min_time_set = 1;
        } else if (arg_int(argc, argv, &i, "--repeats", &o.repeats, 1, 256)) {
        } else if (arg_flag(argv, &i, "--json", &o.json)) {
        } else if (arg_flag(argv, &i, "--cpu-time", &o.cpu)) {
        } else if (arg_flag(argv, &i, "--layers", &layers)) {
        } else {
            arg_usage_error("bench", "unknown argument '%s'", argv[i]);
        }
    }
    o.min_time = min_time;
    if (threads > 0) par_init(threads);
    if (layers) {
        if (!want_str(o.model, "vgg16") && !want_str(o.model, "resnet18"))
            arg_usage_error("bench", "--layers times vgg16 or resnet18 (or all), not '%s'", o.model);
        if (strcmp(o.pass, "all")) arg_usage_error("bench", "--layers times every pass of a layer: no --pass");
        if (!min_time_set) o.min_time = 0.0;
        if (want_str(o.model, "vgg16") && bench_layers(&o, ARCH_VGG16)) return cli_fail();
        if (want_str(o.model, "resnet18") && bench_layers(&o, ARCH_RESNET18)) return cli_fail();
        return 0;
    }
    if (!any_case(&o))
        arg_usage_error("bench", "no case of --model %s --pass %s%s (sgemm: 1024 and 4096 at batch 1; vgg16, "
                        "resnet18: forward, input_grad, train_step at 32 batch 32 and 224 batch 1 and 8; the gad "
                        "models: support_step at 32 batch 32 and 64, ig_pass at 32 batch 128)",
                        o.model, o.pass, o.size || o.batch ? " at that --size and --batch" : "");
    if (!o.json)
        printf("%-9s %-11s %-8s %5s %7s %12s %9s %10s\n", "model", "pass", "size", "batch", "threads", "images/s",
               "GFLOP/s", "ms");
    if (want_str(o.model, "sgemm") && (want_str(o.pass, "sgemm"))) bench_sgemm(&o);
    if (want_str(o.model, "vgg16") && bench_model(&o, ARCH_VGG16)) return cli_fail();
    if (want_str(o.model, "resnet18") && bench_model(&o, ARCH_RESNET18)) return cli_fail();
    if (bench_gad(&o)) return cli_fail();
    return 0;
}
