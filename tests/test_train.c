/* test_train: losses and Adam against PyTorch fixtures (tools/fixtures/gen_fixtures_train.py),
 * hand-computed values and finite differences; 5 training steps of width-reduced
 * vgg16 and resnet18 against PyTorch; the GAD alpha = 0 property (training towards
 * the model's own logits leaves every weight bit for bit); the `gad train` command. */
#include "test.h"
#include "cli/cli.h"
#include "core/err.h"
#include "core/rng.h"
#include "core/threads.h"
#include "io/file.h"
#include "io/safetensors.h"
#include "train/train.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static const StTensor *need(const StFile *f, const char *name) {
    const StTensor *t = st_find(f, name);
    if (!t) test_fail(__FILE__, __LINE__, "fixture tensor %s missing", name);
    return t;
}

/* ---- losses ---- */

TEST(train_loss_mse_hand) {
    float y[3] = {1, 2, 3}, t[3] = {0, 2, 5}, dy[3];
    float l = loss_mse(3, y, t, dy);
    CHECK_NEAR(l, 5.0 / 3.0, 1e-6);
    float want[3] = {2.0f / 3, 0, -4.0f / 3};
    CHECK_CLOSE("mse grad (hand)", dy, want, 3, 1e-7f, 1e-6f);
    CHECK_NEAR(loss_mse(3, y, t, NULL), l, 0);
}

TEST(train_loss_xent_hand) {
    /* two rows: equal logits (loss ln 2), and a confident correct row */
    float z[4] = {0, 0, 3, -1}, d[4];
    int lab[2] = {0, 0};
    float l = loss_xent(2, 2, z, lab, d);
    double p = 1.0 / (1.0 + exp(-4.0)); /* softmax of row 2, class 0 */
    CHECK_NEAR(l, (log(2.0) - log(p)) / 2, 1e-6);
    float want[4] = {-0.25f, 0.25f, (float)((p - 1) / 2), (float)((1 - p) / 2)};
    CHECK_CLOSE("xent grad (hand)", d, want, 4, 1e-7f, 1e-6f);
}

TEST(train_loss_vs_torch) {
    StFile f;
    REQUIRE(st_read(fixture("train/loss.safetensors"), &f) == 0);
    const StTensor *y = need(&f, "mse_y"), *t = need(&f, "mse_t"), *ml = need(&f, "mse_loss"),
                   *mg = need(&f, "mse_grad"), *z = need(&f, "ce_logits"), *lab = need(&f, "ce_labels"),
                   *cl = need(&f, "ce_loss"), *cg = need(&f, "ce_grad");
    REQUIRE(y && t && ml && mg && z && lab && cl && cg);
    float *dy = xmalloc(y->numel * sizeof(float));
    float l = loss_mse(y->numel, y->f32, t->f32, dy);
    CHECK_CLOSE("mse loss vs torch", &l, ml->f32, 1, 0, 1e-6f);
    CHECK_CLOSE("mse grad vs torch", dy, mg->f32, y->numel, 0, 1e-6f);
    int N = (int)z->dim[0], K = (int)z->dim[1];
    int *labels = xmalloc(N * sizeof(int));
    for (int i = 0; i < N; i++) labels[i] = (int)lab->i64[i];
    float *dz = xmalloc(z->numel * sizeof(float));
    l = loss_xent(N, K, z->f32, labels, dz);
    CHECK(isfinite(l));
    CHECK_CLOSE("xent loss vs torch (logits up to 1000)", &l, cl->f32, 1, 0, 1e-6f);
    CHECK_CLOSE("xent grad vs torch", dz, cg->f32, z->numel, 1e-8f, 1e-5f);
    free(dy); free(labels); free(dz);
    st_free(&f);
}

/* Central differences of the float loss, in double around each element. */
TEST(train_loss_finite_differences) {
    enum { N = 4, K = 5 };
    Rng r;
    rng_seed(&r, 7);
    float z[N * K], t[N * K], d[N * K], fd[N * K];
    int lab[N];
    for (int i = 0; i < N * K; i++) { z[i] = 2 * rng_normal(&r); t[i] = rng_normal(&r); }
    for (int i = 0; i < N; i++) lab[i] = (int)rng_below(&r, K);
    const float h = 1e-2f;
    loss_xent(N, K, z, lab, d);
    for (int i = 0; i < N * K; i++) {
        float s = z[i];
        z[i] = s + h; double lp = loss_xent(N, K, z, lab, NULL);
        z[i] = s - h; double lm = loss_xent(N, K, z, lab, NULL);
        z[i] = s;
        fd[i] = (float)((lp - lm) / (2 * h));
    }
    CHECK_CLOSE("xent grad vs finite differences", d, fd, N * K, 2e-4f, 1e-2f);
    loss_mse(N * K, z, t, d);
    for (int i = 0; i < N * K; i++) {
        float s = z[i];
        z[i] = s + h; double lp = loss_mse(N * K, z, t, NULL);
        z[i] = s - h; double lm = loss_mse(N * K, z, t, NULL);
        z[i] = s;
        fd[i] = (float)((lp - lm) / (2 * h));
    }
    CHECK_CLOSE("mse grad vs finite differences", d, fd, N * K, 2e-4f, 1e-2f);
}

/* ---- Adam ---- */

static void adam_case(const StFile *f, const char *name, float lr, float wd) {
    const StTensor *p0 = need(f, "p0"), *g = need(f, "grads"), *want = need(f, name);
    if (!p0 || !g || !want) return;
    size_t n = p0->numel;
    float *p = xmalloc(n * sizeof(float));
    memcpy(p, p0->f32, n * sizeof(float));
    Adam a;
    adam_init(&a, n, lr, wd);
    size_t exact = 0;
    for (int s = 0; s < 5; s++) {
        adam_step(&a, p, g->f32 + s * n);
        char what[64];
        snprintf(what, sizeof what, "adam %s step %d", name, s + 1);
        CHECK_CLOSE(what, p, want->f32 + s * n, n, 0, 2.5e-7f);
        for (size_t i = 0; i < n; i++) exact += p[i] == want->f32[s * n + i];
    }
    printf("    adam %s: %zu of %zu values bit-identical to torch\n", name, exact, 5 * n);
    CHECK(a.t == 5);
    adam_free(&a);
    free(p);
}

TEST(train_adam_vs_torch) {
    StFile f;
    REQUIRE(st_read(fixture("train/adam.safetensors"), &f) == 0);
    adam_case(&f, "plain", 1e-3f, 0);
    adam_case(&f, "decay", 1e-2f, 0.1f);
    st_free(&f);
}

/* Zero gradients and no weight decay: weights keep their bits, -0.0 included. */
TEST(train_adam_zero_grad_keeps_bits) {
    float p[6] = {1.5f, -0.0f, 0.0f, -3e-38f, 1e30f, -7.25f}, before[6], g[6] = {0};
    memcpy(before, p, sizeof p);
    Adam a;
    adam_init(&a, 6, 1e-3f, 0);
    for (int s = 0; s < 4; s++) adam_step(&a, p, g);
    CHECK(memcmp(p, before, sizeof p) == 0);
    adam_free(&a);
    /* with weight decay the same weights do move, towards 0 */
    adam_init(&a, 6, 1e-3f, 0.5f);
    adam_step(&a, p, g);
    CHECK(p[0] < before[0] && p[5] > before[5]);
    adam_free(&a);
}

/* The threaded, vectorised step against the plain per-element formula of the file
 * comment of adam.c, on a vector big enough to be split (odd length: remainders),
 * for 1 and 3 threads, with and without weight decay: bit for bit. */
TEST(train_adam_threads_vs_scalar) {
    const size_t n = 300007;
    float *p = xmalloc(n * sizeof(float)), *g = xmalloc(n * sizeof(float)), *q = xmalloc(n * sizeof(float));
    float *m = xcalloc(n, sizeof(float)), *v = xcalloc(n, sizeof(float));
    for (int wdi = 0; wdi < 2; wdi++)
        for (int th = 1; th <= 3; th += 2) {
            par_init(th);
            Rng r;
            rng_seed(&r, 7);
            for (size_t i = 0; i < n; i++) {
                p[i] = q[i] = rng_normal(&r);
                m[i] = v[i] = 0.0f;
            }
            Adam a;
            adam_init(&a, n, 1e-3f, wdi ? 0.01f : 0.0f);
            const float wd = (float)a.weight_decay;
            for (int step = 1; step <= 3; step++) {
                for (size_t i = 0; i < n; i++) g[i] = i % 5 == 0 ? 0.0f : rng_normal(&r) * 0.1f;
                adam_step(&a, p, g);
                double bc1 = 1.0 - pow(0.9, step), bc2 = 1.0 - pow(0.999, step);
                const float neg_step = (float)-(a.lr / bc1), bc2_sqrt = (float)sqrt(bc2);
                for (size_t i = 0; i < n; i++) {
                    float gi = wdi ? fmaf(q[i], wd, g[i]) : g[i];
                    m[i] = fmaf(gi, (float)(1.0 - 0.9), m[i] * 0.9f);
                    v[i] = fmaf((float)(1.0 - 0.999) * gi, gi, v[i] * 0.999f);
                    float d = (neg_step * m[i]) / (sqrtf(v[i]) / bc2_sqrt + 1e-8f);
                    if (d != 0) q[i] += d;
                }
            }
            CHECK(memcmp(p, q, n * sizeof(float)) == 0);
            CHECK(memcmp(m, a.m, n * sizeof(float)) == 0 && memcmp(v, a.v, n * sizeof(float)) == 0);
            adam_free(&a);
        }
    par_init(0);
    free(p); free(g); free(q); free(m); free(v);
}

/* ---- 5 training steps against PyTorch ---- */

typedef struct {
    StFile batch;
    float *x;            /* [N,3,32,32] */
    int *labels;         /* [N] */
    float *targets;      /* [N,K] */
    int N, H, W;
} Batch;

static int batch_load(Batch *b) {
    memset(b, 0, sizeof *b);
    if (st_read(fixture("train/batch.safetensors"), &b->batch)) return -1;
    const StTensor *x = need(&b->batch, "x"), *l = need(&b->batch, "labels"), *t = need(&b->batch, "targets");
    if (!x || !l || !t) return -1;
    b->N = (int)x->dim[0]; b->H = (int)x->dim[2]; b->W = (int)x->dim[3];
    b->x = x->f32;
    b->targets = t->f32;
    b->labels = xmalloc(b->N * sizeof(int));
    for (int i = 0; i < b->N; i++) b->labels[i] = (int)l->i64[i];
    return 0;
}

static void batch_free(Batch *b) { free(b->labels); st_free(&b->batch); }

/* Train `name`_init for 5 epochs of one batch (= 5 Adam steps on the fixed batch;
 * the seeded shuffle only reorders images inside it) and compare the 5 losses, the
 * weights and the running statistics with `final`_final. */
static void steps_case(const char *name, const char *final, int mse, int train_mode, float wd, float tol_w) {
    Batch b;
    REQUIRE(batch_load(&b) == 0);
    char path[256];
    Model m, want;
    snprintf(path, sizeof path, "train/%s_init.safetensors", name);
    REQUIRE(model_load(&m, fixture(path)) == 0);
    snprintf(path, sizeof path, "train/%s_final.safetensors", final);
    REQUIRE(model_load(&want, fixture(path)) == 0);
    REQUIRE(m.n_params == want.n_params && m.n_buffers == want.n_buffers);
    StFile steps;
    snprintf(path, sizeof path, "train/%s_steps.safetensors", final);
    REQUIRE(st_read(fixture(path), &steps) == 0);
    const StTensor *tl = need(&steps, "losses");
    REQUIRE(tl && tl->numel == 5);

    TrainOpts o;
    train_opts_default(&o);
    float losses[5];
    o.epochs = 5;
    o.batch = b.N;
    o.lr = 1e-3f;
    o.weight_decay = wd;
    o.train_mode = train_mode;
    o.seed = 3;
    o.epoch_loss = losses;
    float last = mse ? train_regression(&m, b.x, b.targets, b.N, b.H, b.W, &o)
                     : train_classifier(&m, b.x, b.labels, b.N, NULL, NULL, 0, b.H, b.W, &o, NULL);
    CHECK(last == losses[4]);
    printf("    %s: %zu weights, %zu running statistics, losses %.6f .. %.6f\n", final, m.n_params, m.n_buffers,
           (double)losses[0], (double)losses[4]);
    CHECK_CLOSE("losses of the 5 steps", losses, tl->f32, 5, 0, 2e-5f);
    /* Each step moves a weight by up to about lr = 1e-3; Adam divides by the gradient's
     * own size, so float32 rounding in small gradients shows up in the weights at a few
     * 1e-6. PyTorch's own float32 run differs from its float64 run by as much (max
     * weight difference 8.4e-6 vgg16, 2.4e-6 resnet18, 5.5e-6 resnet18 mse; running
     * statistics 6.9e-6 and 1.3e-5). Another build (the -O1 sanitizer build, other
     * FMA contraction) moved one near-zero-gradient vgg16 weight by 2.4e-5, so the
     * weight tolerance is 5e-5: 5% of one step of lr, still far below a wrong update. */
    CHECK_CLOSE("weights after 5 steps", m.params, want.params, m.n_params, tol_w, 1e-5f);
    size_t worst = 0;
    double wd_max = 0;
    for (size_t i = 0; i < m.n_params; i++) {
        double d = fabs((double)m.params[i] - want.params[i]);
        if (d > wd_max) { wd_max = d; worst = i; }
    }
    for (int i = 0; i < m.nparams; i++) {
        const Param *pi = &m.params_info[i];
        if (!pi->is_buffer && pi->data <= m.params + worst && m.params + worst < pi->data + pi->numel)
            printf("    worst weight difference in %s\n", pi->name);
    }
    if (m.n_buffers) CHECK_CLOSE("running statistics", m.buffers, want.buffers, m.n_buffers, 3e-5f, 1e-4f);
    CHECKF(m.bn_batches == want.bn_batches, "num_batches_tracked %lld, torch %lld", (long long)m.bn_batches,
           (long long)want.bn_batches);
    st_free(&steps);
    model_free(&m);
    model_free(&want);
    batch_free(&b);
}

TEST(train_steps_vgg16_xent_vs_torch) { steps_case("vgg16", "vgg16", 0, 0, 0, 5e-5f); }
TEST(train_steps_resnet18_xent_train_mode_vs_torch) { steps_case("resnet18", "resnet18", 0, 1, 0, 5e-5f); }
TEST(train_steps_resnet18_mse_decay_vs_torch) { steps_case("resnet18", "resnet18_mse", 1, 1, 0.01f, 5e-5f); }

/* ---- GAD's alpha = 0 property ---- */

/* Targets = the model's own eval-mode logits (computed in batches of 3), then
 * eval-mode MSE training in batches of 2: every gradient is exactly 0, so Adam
 * must leave every weight and running statistic bit for bit as it was. */
static void alpha0_case(const char *file) {
    Batch b;
    REQUIRE(batch_load(&b) == 0);
    Model m, orig;
    REQUIRE(model_load(&m, fixture(file)) == 0);
    model_clone(&orig, &m);
    int N = b.N, K = m.cfg.num_classes;
    float *t = xmalloc((size_t)N * K * sizeof(float));
    Plan *p = plan_new(&m, 3, b.H, b.W);
    REQUIRE(p);
    PassMode eval = {0, RELU_STANDARD, 0, 0};
    size_t per = (size_t)3 * b.H * b.W;
    for (int i = 0; i < N; i += 3) {
        int nb = N - i < 3 ? N - i : 3;
        memcpy(t + (size_t)i * K, model_forward(&m, p, b.x + i * per, nb, eval), (size_t)nb * K * sizeof(float));
    }
    plan_free(p);
    TrainOpts o;
    train_opts_default(&o); /* eval mode, weight decay 0 */
    o.epochs = 3;
    o.batch = 2;
    o.lr = 4e-5f;
    float losses[3];
    o.epoch_loss = losses;
    float last = train_regression(&m, b.x, t, N, b.H, b.W, &o);
    CHECKF(last == 0 && losses[0] == 0, "alpha = 0 loss %g (first epoch %g), want exactly 0", (double)last,
           (double)losses[0]);
    size_t moved = 0;
    for (size_t i = 0; i < m.n_params; i++) moved += memcmp(&m.params[i], &orig.params[i], sizeof(float)) != 0;
    CHECKF(moved == 0, "%zu of %zu weights changed", moved, m.n_params);
    CHECK(m.n_buffers == 0 || memcmp(m.buffers, orig.buffers, m.n_buffers * sizeof(float)) == 0);
    CHECK(m.bn_batches == orig.bn_batches);
    printf("    %s: %zu weights, %zu changed\n", file, m.n_params, moved);
    /* and the property is not trivial: one target off by 0.5 does move the weights
     * (those its gradient reaches through the ReLUs active on that image) */
    t[0] += 0.5f;
    train_regression(&m, b.x, t, N, b.H, b.W, &o);
    moved = 0;
    for (size_t i = 0; i < m.n_params; i++) moved += m.params[i] != orig.params[i];
    printf("    one target moved by 0.5: %zu weights changed\n", moved);
    CHECKF(moved > m.n_params / 10, "a target moved by 0.5 changed only %zu weights", moved);
    free(t);
    model_free(&m);
    model_free(&orig);
    batch_free(&b);
}

TEST(train_alpha0_leaves_resnet18_bitwise) { alpha0_case("train/resnet18_final.safetensors"); }
TEST(train_alpha0_leaves_vgg16_bitwise) { alpha0_case("train/vgg16_final.safetensors"); }

/* ---- the loop itself ---- */

/* A task a small resnet learns in a few epochs: is the left or the right half of the
 * image brighter? 48 training images, 16 held out. */
static void make_halves(float *x, int *y, int n, int H, int W, Rng *r) {
    for (int i = 0; i < n; i++) {
        y[i] = (int)rng_below(r, 2);
        for (int c = 0; c < 3; c++)
            for (int h = 0; h < H; h++)
                for (int w = 0; w < W; w++) {
                    float base = ((w < W / 2) == (y[i] == 0)) ? 0.6f : 0.3f;
                    x[(((size_t)i * 3 + c) * H + h) * W + w] = base + 0.3f * rng_uniform(r);
                }
    }
}

TEST(train_classifier_learns_and_is_deterministic) {
    enum { N = 48, NV = 16, H = 32, W = 32 };
    Rng r;
    rng_seed(&r, 5);
    float *x = xmalloc((size_t)N * 3 * H * W * sizeof(float)), *vx = xmalloc((size_t)NV * 3 * H * W * sizeof(float));
    int y[N], vy[NV];
    make_halves(x, y, N, H, W, &r);
    make_halves(vx, vy, NV, H, W, &r);
    Model m, m2;
    REQUIRE(model_init(&m, ARCH_RESNET18, 2, 1.0f / 16, 0, 1) == 0);
    model_clone(&m2, &m);
    float before = eval_accuracy(&m, vx, vy, NV, H, W, 5);
    TrainOpts o;
    train_opts_default(&o);
    float losses[6];
    o.epochs = 6;
    o.batch = 10; /* 48 = 4 x 10 + 8: a partial last batch */
    o.lr = 3e-3f;
    o.train_mode = 1;
    o.seed = 9;
    o.epoch_loss = losses;
    float acc = -1;
    float last = train_classifier(&m, x, y, N, vx, vy, NV, H, W, &o, &acc);
    printf("    losses %.4f -> %.4f, held-out accuracy %.3f -> %.3f\n", (double)losses[0], (double)last,
           (double)before, (double)acc);
    CHECK(last < losses[0]);
    CHECKF(acc >= 0.9f, "held-out accuracy %.3f after training", (double)acc);
    CHECK_NEAR(eval_accuracy(&m, vx, vy, NV, H, W, 7), acc, 0);
    CHECK(m.bn_batches == 6 * 5);
    /* the same seed gives the same weights, bit for bit */
    float acc2 = -1;
    train_classifier(&m2, x, y, N, vx, vy, NV, H, W, &o, &acc2);
    CHECK(memcmp(m.params, m2.params, m.n_params * sizeof(float)) == 0);
    CHECK(memcmp(m.buffers, m2.buffers, m.n_buffers * sizeof(float)) == 0);
    model_free(&m);
    model_free(&m2);
    free(x);
    free(vx);
}

/* Train mode with a lone last image (7 = 2 x 3 + 1): it joins the batch before, so
 * batch norm never takes statistics of one value (which would make NaN running
 * variances at resnet18's 1x1 last stage). */
TEST(train_lone_last_image_train_mode) {
    Batch b;
    REQUIRE(batch_load(&b) == 0);
    Model m;
    REQUIRE(model_load(&m, fixture("train/resnet18_init.safetensors")) == 0);
    int n = 4; /* 4 = 1 x 3 + 1 */
    TrainOpts o;
    train_opts_default(&o);
    o.epochs = 2;
    o.batch = 3;
    o.train_mode = 1;
    float l = train_classifier(&m, b.x, b.labels, n, NULL, NULL, 0, b.H, b.W, &o, NULL);
    CHECK(isfinite(l));
    int finite = 1;
    for (size_t i = 0; i < m.n_buffers; i++) finite &= isfinite(m.buffers[i]) != 0;
    CHECK(finite);
    CHECKF(m.bn_batches == 2, "num_batches_tracked %lld, want 2 (one batch of 4 per epoch)", (long long)m.bn_batches);
    /* errors: labels out of range, zero images */
    int bad[4] = {0, 1, 5, 0};
    CHECK(train_classifier(&m, b.x, bad, 4, NULL, NULL, 0, b.H, b.W, &o, NULL) == -1.0f);
    CHECK(strstr(err_get(), "label 5") != NULL);
    CHECK(train_classifier(&m, b.x, b.labels, 0, NULL, NULL, 0, b.H, b.W, &o, NULL) == -1.0f);
    model_free(&m);
    batch_free(&b);
}

/* ---- gad train ---- */

/* Run cmd_train in a child process (usage errors exit()); returns its exit status.
 * Its stdout and stderr go to DIR/log. */
static int run_train(const char *dir, const char **args) {
    char *argv[40];
    int argc = 0;
    argv[argc++] = "train";
    for (; *args; args++) argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char log[512];
        snprintf(log, sizeof log, "%s/log", dir);
        if (!freopen(log, "a", stdout) || !freopen(log, "a", stderr)) _exit(99);
        int rc = cmd_train(argc, argv);
        fflush(NULL);
        _exit(rc);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* An image folder: DIR/data/{left,right}/NN.ppm, 32x32, the brighter half says the class. */
static void write_folder(const char *dir, int per_class) {
    Rng r;
    rng_seed(&r, 11);
    const char *cls[2] = {"left", "right"};
    char path[512];
    snprintf(path, sizeof path, "%s/data", dir);
    mkdir(path, 0777);
    for (int c = 0; c < 2; c++) {
        snprintf(path, sizeof path, "%s/data/%s", dir, cls[c]);
        mkdir(path, 0777);
        for (int i = 0; i < per_class; i++) {
            snprintf(path, sizeof path, "%s/data/%s/%02d.ppm", dir, cls[c], i);
            FILE *f = fopen(path, "wb");
            if (!f) { test_fail(__FILE__, __LINE__, "cannot write %s", path); return; }
            fprintf(f, "P6\n32 32\n255\n");
            for (int h = 0; h < 32; h++)
                for (int w = 0; w < 32; w++) {
                    int v = ((w < 16) == (c == 0) ? 150 : 70) + (int)rng_below(&r, 80);
                    for (int k = 0; k < 3; k++) fputc(v, f);
                }
            fclose(f);
        }
    }
}

TEST(train_cli_trains_and_writes_metadata) {
    const char *dir = test_tmpdir();
    write_folder(dir, 16);
    char data[512], out[512], init[512];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(out, sizeof out, "%s/w.safetensors", dir);
    const char *args[] = {"--model", "resnet18", "--width", "0.0625", "--data", data, "--epochs", "4", "--batch", "8",
                          "--lr", "3e-3", "--val-frac", "0.25", "--seed", "2", "--quiet", "--out", out, NULL};
    REQUIRE(run_train(dir, args) == 0);
    Model m;
    REQUIRE(model_load(&m, out) == 0);
    CHECK(m.cfg.arch == ARCH_RESNET18 && m.cfg.num_classes == 2 && m.cfg.in_h == 32 && m.cfg.in_w == 32);
    CHECK(m.cfg.class_names && !strcmp(m.cfg.class_names[0], "left") && !strcmp(m.cfg.class_names[1], "right"));
    CHECK(!m.cfg.has_norm && !meta_get(&m.meta, "mean"));
    const char *v;
    CHECK((v = meta_get(&m.meta, "data")) && !strcmp(v, data));
    CHECK((v = meta_get(&m.meta, "data_classes")) && !strcmp(v, "all"));
    CHECK((v = meta_get(&m.meta, "epochs")) && !strcmp(v, "4"));
    CHECK((v = meta_get(&m.meta, "lr")) && !strcmp(v, "0.003"));
    CHECK((v = meta_get(&m.meta, "batch")) && !strcmp(v, "8"));
    CHECK((v = meta_get(&m.meta, "val_images")) && !strcmp(v, "8"));
    v = meta_get(&m.meta, "val_accuracy");
    REQUIRE(v);
    printf("    val_accuracy %s\n", v);
    CHECKF(atof(v) >= 0.75, "val_accuracy %s on an easy task", v);
    /* fine-tune from those weights with classes picked by name, in reverse order */
    snprintf(init, sizeof init, "%s/w2.safetensors", dir);
    const char *args2[] = {"--init", out, "--data", data, "--classes", "right,left", "--epochs", "1", "--quiet",
                           "--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25", "--out", init, NULL};
    CHECK(run_train(dir, args2) == 0);
    Model m2;
    if (model_load(&m2, init) == 0) {
        CHECK(m2.cfg.class_names && !strcmp(m2.cfg.class_names[0], "right"));
        CHECK(m2.cfg.has_norm && m2.cfg.mean[1] == 0.5f && m2.cfg.std[2] == 0.25f);
        CHECK((v = meta_get(&m2.meta, "init")) && !strcmp(v, out));
        model_free(&m2);
    } else {
        test_fail(__FILE__, __LINE__, "%s", err_get());
    }
    model_free(&m);
}

TEST(train_cli_errors) {
    const char *dir = test_tmpdir();
    write_folder(dir, 3);
    char data[512], out[512], three[512];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(out, sizeof out, "%s/w.safetensors", dir);
    snprintf(three, sizeof three, "%s/three.safetensors", dir);
    const char *help[] = {"--help", NULL};
    CHECK(run_train(dir, help) == 0);
    /* usage errors: 2 */
    const char *no_out[] = {"--model", "vgg16", "--data", data, NULL};
    const char *bad_model[] = {"--model", "vgg19", "--data", data, "--out", out, NULL};
    const char *bad_lr[] = {"--model", "vgg16", "--data", data, "--lr", "fast", "--out", out, NULL};
    const char *small[] = {"--model", "vgg16", "--data", data, "--input-size", "28", "--out", out, NULL};
    const char *unknown[] = {"--model", "vgg16", "--data", data, "--colour", "--out", out, NULL};
    const char *mean_only[] = {"--model", "vgg16", "--data", data, "--mean", "0,0,0", "--out", out, NULL};
    CHECK(run_train(dir, no_out) == 2);
    CHECK(run_train(dir, bad_model) == 2);
    CHECK(run_train(dir, bad_lr) == 2);
    CHECK(run_train(dir, small) == 2);
    CHECK(run_train(dir, unknown) == 2);
    CHECK(run_train(dir, mean_only) == 2);
    /* bad data or weights: 1, and no output file */
    char missing[512];
    snprintf(missing, sizeof missing, "%s/nothing", dir);
    const char *no_data[] = {"--model", "vgg16", "--data", missing, "--out", out, NULL};
    const char *no_class[] = {"--model", "vgg16", "--data", data, "--classes", "left,up", "--out", out, NULL};
    CHECK(run_train(dir, no_data) == 1);
    CHECK(run_train(dir, no_class) == 2); /* a class the data lacks is a usage error (issue 7) */
    Model m;
    REQUIRE(model_init(&m, ARCH_RESNET18, 3, 1.0f / 16, 0, 1) == 0);
    REQUIRE(model_save(&m, three) == 0);
    model_free(&m);
    const char *wrong_k[] = {"--init", three, "--data", data, "--epochs", "1", "--quiet", "--out", out, NULL};
    const char *wrong_arch[] = {"--init", three, "--model", "vgg16", "--data", data, "--out", out, NULL};
    CHECK(run_train(dir, wrong_k) == 1);
    CHECK(run_train(dir, wrong_arch) == 1);
    CHECK(!file_exists(out));
    /* the log names the problems */
    char log[512];
    snprintf(log, sizeof log, "%s/log", dir);
    FILE *f = fopen(log, "r");
    REQUIRE(f);
    char text[8192];
    size_t len = fread(text, 1, sizeof text - 1, f);
    text[len] = 0;
    fclose(f);
    CHECK(strstr(text, "has 3 outputs but the data has 2 classes") != NULL);
    CHECK(strstr(text, "up") != NULL);
}

/* Cosine decay: 2 steps (2 epochs of one batch) use lr and lr / 2. Eval mode, so the
 * shuffled order inside the batch changes nothing but summation order. */
TEST(train_cosine_schedule) {
    Batch b;
    REQUIRE(batch_load(&b) == 0);
    Model m, ref;
    REQUIRE(model_load(&m, fixture("train/resnet18_final.safetensors")) == 0);
    model_clone(&ref, &m);
    TrainOpts o;
    train_opts_default(&o);
    o.epochs = 2;
    o.batch = b.N;
    o.lr = 1e-3f;
    o.cosine = 1;
    train_regression(&m, b.x, b.targets, b.N, b.H, b.W, &o);
    /* the same by hand */
    Plan *p = plan_new(&ref, b.N, b.H, b.W);
    REQUIRE(p);
    model_alloc_grads(&ref);
    Adam a;
    adam_init(&a, ref.n_params, 1e-3f, 0);
    int K = ref.cfg.num_classes;
    float *dl = xmalloc((size_t)b.N * K * sizeof(float));
    PassMode eval = {0, RELU_STANDARD, 0, 1}; /* eval mode, parameter gradients wanted */
    for (int s = 0; s < 2; s++) {
        model_zero_grads(&ref);
        const float *z = model_forward(&ref, p, b.x, b.N, eval);
        loss_mse((size_t)b.N * K, z, b.targets, dl);
        model_backward(&ref, p, dl, NULL, 1, eval);
        a.lr = s == 0 ? 1e-3f : 0.5e-3f;
        adam_step(&a, ref.params, ref.grads);
        model_params_changed(&ref);
    }
    CHECK_CLOSE("cosine: weights vs lr, lr/2 by hand", m.params, ref.params, m.n_params, 1e-6f, 1e-5f);
    /* and a constant rate differs */
    Model c;
    REQUIRE(model_load(&c, fixture("train/resnet18_final.safetensors")) == 0);
    o.cosine = 0;
    train_regression(&c, b.x, b.targets, b.N, b.H, b.W, &o);
    double dmax = 0;
    for (size_t i = 0; i < c.n_params; i++) dmax = fmax(dmax, fabs((double)c.params[i] - m.params[i]));
    CHECKF(dmax > 1e-4, "constant and cosine rates differ by only %g", dmax);
    free(dl);
    adam_free(&a);
    plan_free(p);
    model_free(&m);
    model_free(&ref);
    model_free(&c);
    batch_free(&b);
}
