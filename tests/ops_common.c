/* ops_common: the kernel tests' shared helpers (see ops_common.h). */
#include "ops_common.h"
#include "test.h"
#include "core/err.h"
#include <stdlib.h>
#include <string.h>

float *randn(Rng *r, size_t n, float scale) {
    float *a = xmalloc(n * sizeof(float) + 1);
    for (size_t i = 0; i < n; i++) a[i] = scale * rng_normal(r);
    return a;
}

float *copyf(const float *a, size_t n) {
    float *b = xmalloc(n * sizeof(float) + 1);
    if (n) memcpy(b, a, n * sizeof(float));
    return b;
}

double dot(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

double central_diff(LossFn loss, void *ctx, float *p, size_t i, float h) {
    float x0 = p[i], xp = x0 + h, xm = x0 - h;
    p[i] = xp;
    double lp = loss(ctx);
    p[i] = xm;
    double lm = loss(ctx);
    p[i] = x0;
    return (lp - lm) / ((double)xp - (double)xm);
}

/* Compare an analytic gradient g [n] with central differences at up to `count`
 * coordinates (all when n <= count, else random ones). */
void check_fd(const char *what, LossFn loss, void *ctx, float *p, const float *g, size_t n, int count,
                     float h, float atol, float rtol, Rng *r) {
    size_t m = n < (size_t)count ? n : (size_t)count;
    float *fd = xmalloc(m * sizeof(float) + 1), *an = xmalloc(m * sizeof(float) + 1);
    for (size_t k = 0; k < m; k++) {
        size_t i = n <= (size_t)count ? k : rng_below(r, (uint32_t)n);
        fd[k] = (float)central_diff(loss, ctx, p, i, h);
        an[k] = g[i];
    }
    CHECK_CLOSE(what, an, fd, m, atol, rtol);
    free(fd);
    free(an);
}

int bitwise_equal(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

void conv_reserve(Workspace *ws, const ConvShape *s) {
    ws_init(ws);
    ws_reserve(ws, conv_scratch_bytes(s) + 64);
}

int fx_open(StFile *f, const char *name) {
    if (st_read(fixture(name), f) == 0) return 1;
    test_fail(__FILE__, __LINE__, "%s", err_get());
    return 0;
}

/* The F32 tensor `name` with `numel` elements, or NULL (failure recorded). */
const float *fx_get(const StFile *f, const char *file, const char *name, size_t numel) {
    const StTensor *t = st_find(f, name);
    if (!t || t->dtype != ST_F32 || t->numel != numel) {
        test_fail(__FILE__, __LINE__, "%s: tensor %s missing, not F32 or not %zu elements", file, name, numel);
        return NULL;
    }
    return t->f32;
}

int fx_meta(const StFile *f, const char *key) {
    const char *v = meta_get(&f->meta, key);
    return v ? atoi(v) : -1;
}
