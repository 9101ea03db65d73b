/* test_train: losses and Adam against PyTorch fixtures (tools/gen_fixtures_train.py),
 * hand-computed values and finite differences; 5 training steps of width-reduced
 * vgg16 and resnet18 against PyTorch; the GAD alpha = 0 property (training towards
 * the model's own logits leaves every weight bit for bit); the `gad train` command. */
#include "test.h"
#include "core/err.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "train/train.h"
#include <stdlib.h>
#include <string.h>

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
