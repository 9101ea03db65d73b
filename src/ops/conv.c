/* conv: 2-D convolution (ops/conv.h): the public API, and the choice of route for each
 * pass. A route is a way of computing the same convolution; each lives in its own file:
 *   point map   a 1x1 map with one live tap: a linear layer (ops/linear.c), here
 *   dense       maps with fewer positions than live taps (2x2 under a 3x3 kernel): the
 *               linear layer from an image's inputs to its outputs, one gemm (conv_dense.c);
 *               all three passes
 *   Winograd    3x3 stride-1 pad-1 layers with 64+ channels on maps of 14x14 and more:
 *               F(2x2, 3x3), forward, input and weight gradients (ops/wino.c)
 *   direct      small maps: each position's window read in place from a bordered
 *               frame, no gather (conv_direct.c); the weight gradient of a first layer
 *               with a large kernel (ResNet's 7x7) too
 *   wide        maps at least WIDE_MIN_W wide, stride 1: an implicit im2col, each
 *               block's rows copied once into a frame read in place (conv_wide.c); the
 *               weight gradient too where the gathered rows are many
 *   im2col      everything else: gathered columns, one gemm per block (conv_im2col.c,
 *               run by conv_gemm.c); the input gradient by col2im (dcols = w^T dy, then
 *               scattered back) where that is cheaper than gathering dy
 * The choice below depends on the shape, and where two routes give the same bits (the
 * direct route and the gather compute each element as the same gemm chain) on the
 * batch too; where they do not (Winograd, col2im, the weight gradient's routes), on the
 * shape alone, so that an image's output and input gradient never depend on the batch
 * it came in. The thresholds were measured (docs/perf.md); the naive definition every
 * route is tested against is ops/ref/conv_ref.c.
 * Not for: dilation, groups, other padding modes, non-float types. */
#include "ops/conv.h"
#include "ops/conv_route.h"
#include "ops/linear.h"
#include "ops/wino.h"
#include "core/err.h"
#include "core/gemm.h"
#include "core/threads.h"
#include <string.h>

ConvShape conv_shape(int N, int C, int H, int W, int K, int kh, int kw, int sh, int sw, int ph, int pw) {
    ConvShape s;
    GAD_ASSERT(N >= 0 && C > 0 && H > 0 && W > 0 && K > 0 && kh > 0 && kw > 0);
    GAD_ASSERT(sh > 0 && sw > 0 && ph >= 0 && pw >= 0);
    GAD_ASSERT(H + 2 * ph >= kh && W + 2 * pw >= kw);
    s.N = N; s.C = C; s.H = H; s.W = W;
    s.K = K; s.kh = kh; s.kw = kw;
    s.sh = sh; s.sw = sw; s.ph = ph; s.pw = pw;
    s.Ho = (H + 2 * ph - kh) / sh + 1;
    s.Wo = (W + 2 * pw - kw) / sw + 1;
    return s;
}

/* ---- the choice of route ---- */

#define PX_MIN_M 64            /* channels the direct route writes: at least two vector panels */
#define PX_MIN_POSITIONS 300   /* positions in the batch that pay for packing the weights */
#define PX_DX_MIN_POSITIONS 4  /* the input gradient's direct route by shape: 2x2 and more */
#define DW_WIDE_MIN_W 28       /* the weight gradient's wide blocks: grids this wide... */
#define DW_WIDE_MIN_ROWS 256   /* ...with this many gathered rows (27 would not pay for dy's packing) */
#define DW_PX_MAX_ROWS 255     /* the weight gradient's direct route: fewer gathered rows... */
#define DW_PX_MIN_TAPS 25      /* ...and kernels of 5x5 and more (packing dy does not pay for few taps) */

/* Wide blocks: conv_gemm.c takes them for a product with unit grid steps whose grid is
 * at least WIDE_MIN_W wide (conv_route.h), where the extra columns they compute are few
 * (at most ~3.5% for a 3x3 kernel at 28; at 14 they cost more than the gathers). */

/* A 1x1 map in and out with a single live tap (a 3x3 kernel on ResNet's last 1x1 maps
 * at 32x32 input): a linear layer over the channels whose weights are every kh*kw-th
 * float of w from the tap, read in place. Sets *tap. */
static int point_map(const ConvShape *s, size_t *tap) {
    const Taps t = live_taps(s);
    *tap = (size_t)t.ilo * s->kw + t.jlo;
    return s->H == 1 && s->W == 1 && s->Ho == 1 && s->Wo == 1 && t.nti == 1 && t.ntj == 1;
}

/* The dense route: fewer input positions than live taps (so fewer multiply-adds),
 * with the dense matrix at most DENSE_MAX_FLOATS (larger ones, built and packed per
 * call, cost what the multiply-adds save: docs/perf.md). By the shape alone. */
#define DENSE_MAX_FLOATS ((size_t)1 << 20) /* 4 MiB: ResNet's 256-channel 2x2 layers */
static int dense_map(const ConvShape *s) {
    size_t tap;
    const Taps t = live_taps(s);
    return !point_map(s, &tap) && (long long)s->H * s->W < (long long)t.nti * t.ntj &&
           s->H * s->W <= CONV_DENSE_MAX_Q && conv_dense_floats(s) <= DENSE_MAX_FLOATS;
}

/* Forward, direct route: grids narrower than wide blocks take (28-wide ones too with
 * 512 channels or more), enough channels, and a batch with enough positions to pay for
 * packing the weights. Either route gives the same bits, so the batch may choose. */
static int fwd_by_px(const ConvShape *s, int N) {
    const int W = s->Wo;
    return s->K >= PX_MIN_M && (long long)N * s->Ho * W >= PX_MIN_POSITIONS &&
           (W < WIDE_MIN_W || (W <= WIDE_MIN_W && s->K >= 512));
}

/* Does every dx position belong to an input-gradient class that some tap reaches? */
static int dx_classes_cover(const ConvShape *s) {
    for (int a = 0; a < s->sh; a++)
        for (int b = 0; b < s->sw; b++) {
            int ia, jb;
            const Gather g = dx_class(s, a, b, &ia, &jb);
            if (g.Hg > 0 && g.Wg > 0 && g_rows(&g) == 0) return 0;
        }
    return 1;
}

/* Input gradient, direct route by the shape alone: stride-1 maps narrower than wide
 * blocks take, of 2x2 and more, with fewer positions than output channels (where
 * col2im would otherwise be taken: the two give different bits, so the batch may not
 * choose). It wins at the batches gad runs (training, attribution steps; ResNet's 4x4
 * and 2x2 layers at 32x32 input: docs/perf.md); at batch 1 the per-call packing of
 * the weights costs more (prepared weights remove it). */
static int dx_by_px(const ConvShape *s) {
    size_t tap;
    const int P = s->Ho * s->Wo;
    return s->sh == 1 && s->sw == 1 && s->W < WIDE_MIN_W && s->C >= PX_MIN_M && P >= PX_DX_MIN_POSITIONS &&
           P < s->K && !point_map(s, &tap) && dx_classes_cover(s);
}

/* The gathered classes by the direct route: always where dx_by_px chose it, else on
 * stride-1 grids narrower than wide blocks with a batch of enough positions (the same
 * bits as the gather: the batch may choose). */
static int dx_px(const ConvShape *s, int N) {
    return dx_by_px(s) || (s->sh == 1 && s->sw == 1 && s->W < WIDE_MIN_W && s->C >= PX_MIN_M &&
                           (long long)N * s->H * s->W >= PX_MIN_POSITIONS);
}

/* Input gradient by col2im instead of the gather, where that is cheaper: few input
 * channels (a network's first layer: the gathered dy would hold K*taps rows for only C
 * output rows), or fewer positions per image than K (building Wt, K*C*taps floats per
 * call, would cost more than the scatter). By the shape alone. */
static int dx_by_col2im(const ConvShape *s) { return (4 * s->C <= s->K || s->Ho * s->Wo < s->K) && !dx_by_px(s); }

/* The input gradient by the direct route with one class (stride 1), by the shape
 * alone: its packed weights may be prepared. */
static int dx_prep_px(const ConvShape *s) { return s->sh == 1 && s->sw == 1 && dx_by_px(s); }

/* Weight gradient, wide blocks: wide grids, no tap left out, many gathered rows. */
static int dw_by_wide(const ConvShape *s) {
    const Gather g = fwd_gather(s);
    return conv_wide_plan(&g, WIDE_TARGET, DW_WIDE_MIN_W).on && !pruned(s, live_taps(s)) &&
           g_rows(&g) >= DW_WIDE_MIN_ROWS;
}

/* Weight gradient, direct route: few gathered rows of a large kernel (ResNet's 7x7
 * first layer: 147 rows), where an im2col of x would copy it 49 times. */
static int dw_by_px(const ConvShape *s) {
    const Gather g = fwd_gather(s);
    return !pruned(s, live_taps(s)) && g_rows(&g) <= DW_PX_MAX_ROWS && s->kh * s->kw >= DW_PX_MIN_TAPS &&
           s->K >= 32;
}

/* ---- scratch: sized for any batch up to s->N ---- */

static size_t fwd_floats(const ConvShape *s, int nth) {
    const Gather g = fwd_gather(s);
    const Wide w = conv_wide_plan(&g, WIDE_TARGET, WIDE_MIN_W);
    const int rows = g_rows(&g);
    /* the direct route's scratch grows with the batch: a smaller batch takes either */
    const size_t px = fwd_by_px(s, s->N) ? conv_px_floats(&g, s->K, s->N, nth) : 0;
    const size_t live = size_add(conv_live_floats(s), conv_packed_floats(s->K, rows));
    const size_t blocks = w.on ? conv_wide_floats(&g, &w, s->K, nth)
                               : size_mul((size_t)nth, conv_slice_floats(rows, s->K, conv_max_width(s->N, s->Ho * s->Wo,
                                                                                                  conv_cols_target(rows))));
    return size_add(live, px > blocks ? px : blocks);
}

/* The largest class: its Wt and its slices (col2im: the slices of dcols). */
static size_t dx_floats(const ConvShape *s, int nth) {
    if (dx_by_col2im(s)) {
        const Taps t = live_taps(s);
        const int M = s->C * t.nti * t.ntj;
        return size_add(size_add(conv_live_floats(s), conv_packed_floats(M, s->K)),
                        size_mul((size_t)nth, conv_slice_floats(s->K, M, conv_max_width(s->N, s->Ho * s->Wo,
                                                                                          conv_cols_target(s->K)))));
    }
    size_t most = 0;
    for (int a = 0; a < s->sh; a++)
        for (int b = 0; b < s->sw; b++) {
            int ia, jb;
            const Gather g = dx_class(s, a, b, &ia, &jb);
            const int rows = g_rows(&g);
            if (!rows) continue;
            const Wide w = conv_wide_plan(&g, WIDE_TARGET, WIDE_MIN_W);
            /* the direct route, the gather, or (dx_px: the batch chooses) either */
            const size_t px = size_add(ws_round(sizeof(ptrdiff_t) * rows) / sizeof(float), conv_px_floats(&g, s->C, s->N, nth));
            const size_t ga = size_add(
                size_add(ws_round(sizeof(float) * (size_t)s->C * rows) / sizeof(float), conv_packed_floats(s->C, rows)),
                w.on ? conv_wide_floats(&g, &w, s->C, nth)
                     : size_mul((size_t)nth, conv_slice_floats(rows, s->C, conv_max_width(s->N, g.Hg * g.Wg,
                                                                                         conv_cols_target(rows)))));
            const size_t f = dx_by_px(s) ? px : dx_px(s, s->N) && px > ga ? px : ga;
            if (f > most) most = f;
        }
    return most;
}

static size_t dw_floats(const ConvShape *s) {
    if (dense_map(s)) return conv_dense_dw_floats(s, par_nthreads());
    if (dw_by_wide(s)) return conv_dw_wide_floats(s);
    if (dw_by_px(s)) return conv_dw_px_floats(s);
    return conv_dw_im2col_floats(s);
}

size_t conv_scratch_bytes(const ConvShape *s) {
    int nth = par_nthreads();
    size_t tap;
    if (point_map(s, &tap)) {
        size_t a = linear_scratch_bytes(s->C), b = linear_scratch_bytes(s->K), c = size_mul(dw_floats(s), sizeof(float));
        return a > b ? (a > c ? a : c) : (b > c ? b : c);
    }
    if (dense_map(s)) {
        const size_t d = ws_round(size_mul(conv_dense_floats(s), sizeof(float))), w = size_mul(dw_floats(s), sizeof(float));
        return d > w ? d : w;
    }
    size_t f = fwd_floats(s, nth), x = dx_floats(s, nth), w = dw_floats(s), wi = wino_scratch_bytes(s, nth);
    if (x > f) f = x;
    if (w > f) f = w;
    f = size_mul(f, sizeof(float));
    return f > wi ? f : wi;
}

/* ---- prepared weights ----
 * They pay where a call has few positions, and the bounds keep the memory where it
 * pays (docs/perf.md has the figures): Winograd's transformed kernels for calls of up
 * to PREP_MAX_TILES tiles, the direct input gradient's packed weights for calls of up
 * to PREP_MAX_POSITIONS positions. */
#define PREP_MAX_TILES 256
#define PREP_MAX_POSITIONS 1024

size_t conv_prep_floats(const ConvShape *s, int dx) {
    const long long tiles = (long long)s->N * ((s->H + 1) / 2) * ((s->W + 1) / 2);
    if (wino_applies(s, dx)) return tiles <= PREP_MAX_TILES ? wino_prep_floats(s, dx) : 0;
    if (dense_map(s)) return conv_dense_floats(s); /* Wd, for either pass */
    if (dx && dx_prep_px(s) && (long long)s->N * s->H * s->W <= PREP_MAX_POSITIONS) {
        int ia, jb;
        const Gather g = dx_class(s, 0, 0, &ia, &jb);
        return gemm_packed_b_floats(g_rows(&g), s->C);
    }
    return 0;
}

int conv_prep_shared(const ConvShape *s) { return dense_map(s); }

void conv_prep(const ConvShape *s, const float *w, int dx, float *dst, Workspace *ws) {
    GAD_ASSERT(conv_prep_floats(s, dx) > 0);
    if (wino_applies(s, dx)) {
        wino_prep(s, w, dx, dst);
        return;
    }
    if (dense_map(s)) {
        conv_dense_weights(s, w, dst);
        return;
    }
    int ia, jb; /* as backward_dx packs them for the direct route, into dst */
    const Gather g = dx_class(s, 0, 0, &ia, &jb);
    const size_t mark = ws_mark(ws);
    ptrdiff_t *roff = ws_alloc(ws, sizeof(ptrdiff_t) * (size_t)g_rows(&g));
    conv_dx_roff(s, &g, ia, jb, roff);
    conv_px_pack(s, w, roff, g_rows(&g), dst);
    ws_release(ws, mark);
}

/* ---- forward ---- */

void conv2d_forward(const ConvShape *s, const float *x, const float *w, const float *b, float *y, Workspace *ws) {
    conv2d_forward_act(s, x, w, b, y, 0, ws);
}

void conv2d_forward_act(const ConvShape *s, const float *x, const float *w, const float *b, float *y, int relu,
                        Workspace *ws) {
    conv2d_forward_affine(s, x, w, NULL, b, NULL, NULL, y, relu, ws);
}

void conv2d_forward_affine(const ConvShape *s, const float *x, const float *w, const float *prep, const float *b,
                           const float *scale, const float *shift, float *y, int relu, Workspace *ws) {
    if (s->N == 0) return;
    GAD_ASSERT(!scale == !shift);
    size_t tap, T = (size_t)s->kh * s->kw;
    if (point_map(s, &tap)) {
        linear_forward_strided(s->N, s->C, s->K, x, w + tap, (size_t)s->C * T, T, b, y, ws);
        if (scale) /* y [N, K]: as bn_forward_eval on 1x1 maps */
            for (size_t i = 0; i < (size_t)s->N * s->K; i++) y[i] = y[i] * scale[i % s->K] + shift[i % s->K];
        if (relu) relu_forward((size_t)s->N * s->K, y, y);
        return;
    }
    GAD_ASSERT(!prep || wino_applies(s, 0) || dense_map(s));
    if (dense_map(s)) {
        conv_dense_forward(s, x, w, prep, b, scale, shift, relu, y, ws);
        return;
    }
    if (wino_applies(s, 0)) {
        wino_forward(s, x, w, prep, b, scale, shift, relu, y, ws);
        return;
    }
    conv_forward_gemm(s, x, w, b, scale, shift, relu, fwd_by_px(s, s->N), y, ws); /* direct, wide or im2col */
}

/* ---- backward ---- */

/* dx += (or, fresh, =) the input gradient; with relu_y (fresh only) through the
 * backward of the ReLU whose output relu_y was. */
static void backward_dx(const ConvShape *s, const float *w, const float *prep, const float *dy, float *dx,
                        int fresh, const float *relu_y, ReluRule rule, Workspace *ws) {
    size_t tap, T = (size_t)s->kh * s->kw;
    GAD_ASSERT(!relu_y || fresh);
    GAD_ASSERT(!prep || wino_applies(s, 1) || dx_prep_px(s) || dense_map(s));
    if (dense_map(s)) {
        conv_dense_dx(s, w, prep, dy, dx, fresh, relu_y, rule, ws);
        return;
    }
    if (wino_applies(s, 1)) {
        wino_backward_dx(s, w, prep, dy, dx, fresh, relu_y, rule, ws);
        return;
    }
    if (fresh && (point_map(s, &tap) || dx_by_col2im(s) || !dx_classes_cover(s))) {
        /* routes that add onto dx in pieces (scatter, strided linear, uncovered classes):
         * onto zeros, then the ReLU's backward in place */
        const size_t n = (size_t)s->N * s->C * s->H * s->W;
        memset(dx, 0, sizeof(float) * n);
        backward_dx(s, w, NULL, dy, dx, 0, NULL, rule, ws);
        if (relu_y) relu_backward_set(n, relu_y, dx, dx, rule);
        return;
    }
    if (point_map(s, &tap)) linear_backward_dx_strided(s->N, s->C, s->K, dy, w + tap, (size_t)s->C * T, T, dx, ws);
    else if (dx_by_col2im(s)) conv_dx_col2im(s, w, dy, dx, ws);
    else conv_dx_gather(s, w, prep, dy, dx, fresh, relu_y, rule, dx_px(s, s->N), ws); /* direct, wide or im2col */
}

static void backward_dw(const ConvShape *s, const float *x, const float *dy, float *dw, Workspace *ws) {
    if (dense_map(s)) conv_dense_dw(s, x, dy, dw, ws);
    else if (wino_applies(s, 0)) wino_backward_dw(s, x, dy, dw, ws);
    else if (dw_by_wide(s)) conv_dw_wide(s, x, dy, dw, ws);
    else if (dw_by_px(s)) conv_dw_px(s, x, dy, dw, ws);
    else conv_dw_im2col(s, x, dy, dw, ws);
}

/* db[k] += sum of dy[:, k, :] in double, in a fixed order (8 interleaved partial sums
 * per row keep the adds from waiting on each other); channels over threads. */
typedef struct {
    const ConvShape *s;
    const float *dy;
    float *db;
} DbJob;

static void db_worker(void *arg, int ith, int nth) {
    const DbJob *j = arg;
    const int P = j->s->Ho * j->s->Wo, K = j->s->K;
    long lo, hi;
    par_range(K, ith, nth, &lo, &hi);
    for (long k = lo; k < hi; k++) {
        double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int n = 0; n < j->s->N; n++) {
            const float *r = j->dy + ((size_t)n * K + k) * P;
            int p = 0;
            for (; p + 8 <= P; p += 8)
                for (int l = 0; l < 8; l++) acc[l] += r[p + l];
            for (; p < P; p++) acc[p & 7] += r[p];
        }
        j->db[k] += (float)(((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])));
    }
}

void conv2d_backward(const ConvShape *s, const float *x, const float *w, const float *dy,
                     float *dx, float *dw, float *db, Workspace *ws) {
    conv2d_backward_fresh(s, x, w, NULL, dy, dx, 0, NULL, RELU_STANDARD, dw, db, ws);
}

void conv2d_backward_fresh(const ConvShape *s, const float *x, const float *w, const float *prep_dx,
                           const float *dy, float *dx, int dx_fresh, const float *relu_y, ReluRule rule, float *dw,
                           float *db, Workspace *ws) {
    if (s->N == 0) return;
    if (dx) backward_dx(s, w, prep_dx, dy, dx, dx_fresh, relu_y, rule, ws);
    if (dw) backward_dw(s, x, dy, dw, ws);
    if (db) {
        DbJob j = {s, dy, db};
        par_run(db_worker, &j);
    }
}
