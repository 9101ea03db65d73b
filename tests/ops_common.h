/* ops_common: what the kernel tests (test_conv.c, test_wino.c, test_bn.c, test_pool.c,
 * test_linear.c, test_act.c) share: random arrays, central differences of a loss, the
 * convolution cases, and reading the PyTorch fixtures of tests/fixtures/ops/. */
#ifndef GAD_TESTS_OPS_COMMON_H
#define GAD_TESTS_OPS_COMMON_H
#include "core/rng.h"
#include "core/ws.h"
#include "io/safetensors.h"
#include "ops/conv.h"
#include <stddef.h>

/* n normal values times scale (a new buffer), a copy of a, and sum a[i] b[i] in double. */
float *randn(Rng *r, size_t n, float scale);
float *copyf(const float *a, size_t n);
double dot(const float *a, const float *b, size_t n);
/* Central difference of loss() with respect to p[i]: the step actually taken in
 * float is used as the denominator. */
typedef double (*LossFn)(void *ctx);
double central_diff(LossFn loss, void *ctx, float *p, size_t i, float h);
/* Compare an analytic gradient g [n] with central differences at up to `count`
 * coordinates (all when n <= count, else random ones). */
void check_fd(const char *what, LossFn loss, void *ctx, float *p, const float *g, size_t n, int count, float h,
              float atol, float rtol, Rng *r);
int bitwise_equal(const float *a, const float *b, size_t n);

/* A convolution case: input [N,C,H,W], K outputs, kernel kh x kw, stride, padding, bias. */
typedef struct { int N, C, H, W, K, kh, kw, sh, sw, ph, pw, bias; } ConvCase;
/* ws initialised and reserved for s's passes. */
void conv_reserve(Workspace *ws, const ConvShape *s);

/* PyTorch fixtures (tools/fixtures/gen_fixtures_ops.py): open tests/fixtures/NAME (1, or 0 with
 * the failure recorded); the F32 tensor `name` of numel elements, or NULL (failure
 * recorded); an integer of the metadata, or -1. */
int fx_open(StFile *f, const char *name);
const float *fx_get(const StFile *f, const char *file, const char *name, size_t numel);
int fx_meta(const StFile *f, const char *key);
#define GET(var, name, n) const float *var = fx_get(&f, file, name, n); if (!var) { st_free(&f); return; }

#endif
