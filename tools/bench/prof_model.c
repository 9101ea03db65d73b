/* prof_model: a small timing harness for whole-model passes (the cases of issue 6),
 * for profiling the kernels above gemm. Not part of ./gad or the tests.
 *   cc -O2 -march=native -Iinclude -D_POSIX_C_SOURCE=200809L tools/bench/prof_model.c \
 *      build/libgad.a -lm -lpthread -o build/prof_model
 *   build/prof_model [-t threads] [-r reps] [-m vgg16|resnet18|all] [-s 32|224|all]
 *                    [-p forward|input_grad|train_step|all] [-b batch]
 *   -c 1: time with the process CPU clock (all threads summed; use with -t 1 when
 *         the machine is busy)
 *   -w W: channel multiplier (default 1; the bundled models use 0.125, hidden 4096*W)
 *   -l 1: instead, time each layer's kernels alone (forward, backward with dx and with
 *         parameter gradients), train-mode BN, one line per layer.
 * Prints one line per case: median seconds per pass and images/s (after a warm-up).
 * Cases (as in issue 6): 32x32 batch 32, 224x224 batch 1 and 8. -b overrides. */
#include "core/err.h"
#include "core/rng.h"
#include "core/threads.h"
#include "nn/layers.h"
#include "nn/model.h"
#include "ops/act.h"
#include "ops/bn.h"
#include "ops/conv.h"
#include "ops/linear.h"
#include "ops/pool.h"
#include "train/train.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int use_cpu_clock;
static float width = 1.0f; /* -w: channel multiplier (the bundled models use 0.125) */ /* -c 1: process CPU time (less noisy on a busy machine, -t 1) */
static double now(void) {
    struct timespec t;
    clock_gettime(use_cpu_clock ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

enum { FWD, IG, TRAIN };
static const char *pass_name[] = {"forward", "input_grad", "train_step"};

static void run_case(Arch a, int side, int batch, int pass, int reps) {
    Model m;
    if (model_init(&m, a, 1000, width, 0, 1)) { fprintf(stderr, "%s\n", err_get()); exit(1); }
    Plan *p = plan_new(&m, batch, side, side);
    if (!p) { fprintf(stderr, "%s\n", err_get()); exit(1); }
    size_t nx = (size_t)batch * 3 * side * side, ny = (size_t)batch * 1000;
    float *x = xmalloc(nx * sizeof(float)), *dx = xcalloc(nx, sizeof(float));
    float *t = xcalloc(ny, sizeof(float)), *dy = xmalloc(ny * sizeof(float));
    Rng r;
    rng_seed(&r, 5);
    for (size_t i = 0; i < nx; i++) x[i] = rng_normal(&r);
    for (size_t i = 0; i < ny; i++) dy[i] = rng_normal(&r);
    Adam opt;
    memset(&opt, 0, sizeof opt);
    if (pass == TRAIN) { model_alloc_grads(&m); adam_init(&opt, m.n_params, 1e-6f, 0); }
    PassMode mode = {pass == TRAIN, RELU_STANDARD, 1, 0};
    double *ts = xmalloc((size_t)(reps + 1) * sizeof(double));
    for (int it = 0; it <= reps; it++) { /* it == 0: warm-up */
        double t0 = now();
        const float *y = model_forward(&m, p, x, batch, mode);
        if (pass == IG) model_backward(&m, p, dy, dx, 0, mode);
        if (pass == TRAIN) {
            model_zero_grads(&m);
            loss_mse(ny, y, t, dy);
            model_backward(&m, p, dy, NULL, 1, mode);
            adam_step(&opt, m.params, m.grads);
            model_params_changed(&m);
        }
        ts[it] = now() - t0;
    }
    qsort(ts + 1, (size_t)reps, sizeof(double), cmpd);
    double med = ts[1 + reps / 2];
    printf("%-9s %-11s %3dx%-3d batch %2d threads %d: %8.4f s  %8.2f images/s  (min %.4f)\n", model_arch_name(a),
           pass_name[pass], side, side, batch, par_nthreads(), med, batch / med, ts[1]);
    fflush(stdout);
    if (pass == TRAIN) adam_free(&opt);
    free(ts); free(x); free(dx); free(t); free(dy);
    plan_free(p);
    model_free(&m);
}


/* ---- per-layer timing: each kernel alone on random data, shapes as plan.c ---- */
typedef struct { int c, h, w; } Sh;

static double med_time(double *ts, int n) {
    qsort(ts, (size_t)n, sizeof(double), cmpd);
    return ts[n / 2];
}

static void run_layers(Arch a, int side, int batch, int reps) {
    Model m;
    if (model_init(&m, a, 1000, width, 0, 1)) { fprintf(stderr, "%s\n", err_get()); exit(1); }
    model_alloc_grads(&m);
    Sh *sh = xcalloc((size_t)m.nlayers + 1, sizeof(Sh));
    sh[0] = (Sh){3, side, side};
    size_t maxper = 3 * (size_t)side * side;
    for (int l = 0; l < m.nlayers; l++) {
        const Layer *L = &m.layers[l];
        Sh o = sh[L->in];
        if (L->kind == LK_CONV) {
            o.c = L->cout; o.h = (o.h + 2 * L->pad - L->k) / L->s + 1; o.w = (o.w + 2 * L->pad - L->k) / L->s + 1;
        } else if (L->kind == LK_MAXPOOL) {
            o.h = pool_out_size(o.h, L->k, L->s, L->pad); o.w = pool_out_size(o.w, L->k, L->s, L->pad);
        } else if (L->kind == LK_AVGPOOL) { o.h = o.w = L->k; }
        else if (L->kind == LK_LINEAR) { o.c = L->cout; o.h = o.w = 1; }
        sh[l + 1] = o;
        if ((size_t)o.c * o.h * o.w > maxper) maxper = (size_t)o.c * o.h * o.w;
    }
    size_t cap = (size_t)batch * maxper;
    float *x = xmalloc(cap * sizeof(float)), *y = xmalloc(cap * sizeof(float));
    float *dy = xmalloc(cap * sizeof(float)), *dx = xcalloc(cap, sizeof(float));
    int32_t *am = xmalloc(cap * sizeof(int32_t));
    float sm[4096], si[4096];
    Rng r;
    rng_seed(&r, 3);
    for (size_t i = 0; i < cap; i++) { x[i] = rng_normal(&r); dy[i] = rng_normal(&r); }
    Workspace ws;
    ws_init(&ws);
    double tot[3] = {0, 0, 0};
    double *ts = xmalloc((size_t)(reps + 1) * sizeof(double));
    printf("%s %dx%d batch %d threads %d: per layer ms (forward | backward dx | backward dx+dw)\n",
           model_arch_name(a), side, side, batch, par_nthreads());
    for (int l = 0; l < m.nlayers; l++) {
        const Layer *L = &m.layers[l];
        Sh i = sh[L->in], o = sh[l + 1];
        int HW = i.h * i.w;
        size_t cnt = (size_t)batch * o.c * o.h * o.w;
        float *W = L->w >= 0 ? m.params_info[L->w].data : NULL, *B = L->b >= 0 ? m.params_info[L->b].data : NULL;
        float *GW = L->w >= 0 ? m.params_info[L->w].grad : NULL, *GB = L->b >= 0 ? m.params_info[L->b].grad : NULL;
        ConvShape cs;
        if (L->kind == LK_CONV) {
            cs = conv_shape(batch, i.c, i.h, i.w, L->cout, L->k, L->k, L->s, L->s, L->pad, L->pad);
            ws_reserve(&ws, conv_scratch_bytes(&cs));
        }
        double res[3];
        for (int ph = 0; ph < 3; ph++) {
            for (int it = 0; it <= reps; it++) {
                double t0 = now();
                float *gx = dx, *gw = ph == 2 ? GW : NULL, *gb = ph == 2 ? GB : NULL;
                switch (L->kind) {
                case LK_CONV:
                    if (ph == 0) conv2d_forward(&cs, x, W, B, y, &ws);
                    else conv2d_backward(&cs, x, W, dy, gx, gw, gb, &ws);
                    break;
                case LK_BN:
                    if (ph == 0) bn_forward_train(batch, i.c, HW, x, W, B, NULL, NULL, 0.1f, 1e-5f, y, sm, si);
                    else bn_backward_train(batch, i.c, HW, x, W, sm, si, dy, gx, gw, gb);
                    break;
                case LK_RELU:
                    if (ph == 0) relu_forward(cnt, x, y);
                    else relu_backward(cnt, x, dy, gx, RELU_STANDARD);
                    break;
                case LK_MAXPOOL:
                    if (ph == 0) maxpool_forward(batch, i.c, i.h, i.w, L->k, L->s, L->pad, x, y, am);
                    else maxpool_backward(batch, i.c, i.h, i.w, L->k, L->s, L->pad, am, dy, gx);
                    break;
                case LK_AVGPOOL:
                    if (ph == 0) adaptive_avgpool_forward(batch, i.c, i.h, i.w, o.h, o.w, x, y);
                    else adaptive_avgpool_backward(batch, i.c, i.h, i.w, o.h, o.w, dy, gx);
                    break;
                case LK_LINEAR:
                    if (ph == 0) linear_forward(batch, i.c * i.h * i.w, L->cout, x, W, B, y);
                    else linear_backward(batch, i.c * i.h * i.w, L->cout, x, W, dy, gx, gw, gb);
                    break;
                case LK_DROPOUT:
                    if (ph == 0) dropout_forward(cnt, L->p, 0, 1, x, y, NULL);
                    else dropout_backward(cnt, L->p, 0, NULL, dy, gx);
                    break;
                case LK_ADD:
                    if (ph == 0) add_forward(cnt, x, dy, y);
                    else add_backward(cnt, dy, gx, dx);
                    break;
                }
                ts[it] = now() - t0;
            }
            res[ph] = med_time(ts + 1, reps) * 1e3;
            tot[ph] += res[ph];
        }
        char desc[64] = "";
        if (L->kind == LK_CONV) snprintf(desc, sizeof desc, "%dx%d/%d %d->%d", L->k, L->k, L->s, i.c, L->cout);
        else if (L->kind == LK_LINEAR) snprintf(desc, sizeof desc, "%d->%d", i.c * i.h * i.w, L->cout);
        printf("  %2d %-7s %-16s %3dx%-3d %9.3f %9.3f %9.3f\n", l, layer_kind_name(L->kind), desc, i.h, i.w,
               res[0], res[1], res[2]);
    }
    printf("  total                               %9.3f %9.3f %9.3f\n", tot[0], tot[1], tot[2]);
    ws_free(&ws);
    free(sh); free(x); free(y); free(dy); free(dx); free(am); free(ts);
    model_free(&m);
}

int main(int argc, char **argv) {
    int threads = 2, reps = 5, batch = 0, layers = 0;
    const char *model = "all", *size = "all", *pass = "all";
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc || !strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fprintf(stderr, "usage: prof_model [-t threads] [-r reps] [-m vgg16|resnet18|all] [-s 32|224|all]\n"
                            "                  [-p forward|input_grad|train_step|all] [-b batch] [-c 1] [-l 1] [-w width]\n"
                            "(see the comment at the top of tools/bench/prof_model.c)\n");
            return 2;
        }
        if (!strcmp(argv[i], "-t")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-r")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-m")) model = argv[i + 1];
        else if (!strcmp(argv[i], "-s")) size = argv[i + 1];
        else if (!strcmp(argv[i], "-p")) pass = argv[i + 1];
        else if (!strcmp(argv[i], "-b")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-l")) layers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-c")) use_cpu_clock = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-w")) width = (float)atof(argv[i + 1]);
        else { fprintf(stderr, "unknown flag %s\n", argv[i]); return 1; }
    }
    par_init(threads);
    for (int a = 0; a < 2; a++) {
        if (strcmp(model, "all") && strcmp(model, model_arch_name((Arch)a))) continue;
        for (int s = 0; s < 2; s++) {
            int side = s ? 224 : 32;
            if (strcmp(size, "all") && atoi(size) != side) continue;
            for (int ps = 0; ps < 3; ps++) {
                if (strcmp(pass, "all") && strcmp(pass, pass_name[ps])) continue;
                int bs[2] = {side == 32 ? 32 : 1, side == 32 ? 0 : 8};
                if (batch) { bs[0] = batch; bs[1] = 0; }
                for (int k = 0; k < 2; k++)
                    if (bs[k] && layers && ps == 0) run_layers((Arch)a, side, bs[k], reps);
                    else if (bs[k] && !layers) run_case((Arch)a, side, bs[k], ps, reps);
            }
        }
    }
    par_shutdown();
    return 0;
}
