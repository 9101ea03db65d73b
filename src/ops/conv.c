/* conv: 2-D convolution, NCHW float32, groups = 1 (see ops/conv.h).
 *
 * Every pass is "gather columns, one matrix product, write back", where a column is
 * one position of one image and many columns (of one image, or of several small
 * images) go through one product:
 *   forward  y  [K, cols] = w  [K, C*kh*kw] . X [C*kh*kw, cols]    X = im2col(x)
 *   input    dx [C, cols] += Wt [C, K*taps] . D [K*taps, cols]     D = gather of dy
 *   weights  dw [K, C*kh*kw] += dy [K, cols] . X^T                 (+ db = row sums)
 * On wide maps with unit grid steps the gathered matrix is never built: each row of it
 * is a window of a zero-bordered copy of the block's input rows, read in place by
 * gemm_rows_st / gemm_arows_st (see "wide blocks" below). On small maps the forward
 * and the input gradient are not gathered either: gemm_pix_st reads each position's
 * window from a bordered frame, its vectors running over the channels (see "small
 * maps"); so is the weight gradient of a first layer with a large kernel.
 * The input gradient is written as a gather too (a transposed convolution): each dx
 * element is one dot product over (k, taps) of the flipped kernel, so there is no
 * col2im scatter-add, no race between threads and no summation order that depends on
 * how columns are blocked. With stride s the dx positions fall into s*s parity
 * classes (ih mod sh, iw mod sw), each reached by its own subset of taps; each class
 * is one such product (stride 1: a single class with every tap).
 *
 * Blocks: an image with many positions is cut into pieces of about `target` columns
 * (where the cuts fall depends on the layer's shape only); small images are grouped,
 * several to a block. The gathered block lives in workspace scratch sized for its
 * cache budget. With enough blocks each thread takes whole blocks (gather, gemm_st,
 * write back: all in its own cache); with few, the threads share one block at a time
 * (rows of the gather split between them, then the threaded gemm). The weights are
 * packed for gemm once per call (gemm_pack), not once per block and thread.
 *
 * 3x3 stride-1 pad-1 layers with 64+ channels on maps of 14x14 and more take the
 * Winograd route instead, forward and input gradient (wino.c; the choice depends on
 * the shape alone, not the batch).
 * Determinism: every y and dx element is one gemm element (fixed k-order whatever M,
 * N and threads, by gemm's contract) plus at most one bias add (and a ReLU), or on the
 * Winograd route a fixed transform of gemm elements, so an image's output
 * and input gradient are bitwise independent of the batch, its place in it and the
 * thread count. dw and db are reduced over blocks in batch order: they depend on the
 * batch (its grouping into blocks) but never on threads.
 * Not for: dilation, groups, other padding modes, non-float types. */
#include "ops/conv.h"
#include "ops/act.h"
#include "ops/epi.h"
#include "ops/linear.h"
#include "ops/wino.h"
#include "core/err.h"
#include "core/gemm.h"
#include "core/threads.h"
#include <string.h>

typedef void (*GemmFn)(int, int, int, int, int, float, const float *, int, const float *, int, float,
                       float *, int);

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

/* ---- tuning: block widths (columns) and the cache budgets that set them ---- */
#define COLS_TARGET 1024         /* forward / input-gradient block: enough columns that
                                  * packing the weights once per block is cheap */
#define COLS_MIN 128
#define SLICE_BYTES (16u << 20)  /* one thread's gathered block at most: big enough that a
                                 * 28x28 map of VGG's 512-channel layers is one block */
#define DW_BYTES (16u << 20)     /* weight gradient: gathered x and dy of one block */
#define DW_MIN 256
#define DW_MAX 16384

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

/* Block width for a product whose gathered operand has `rows` rows. */
static int cols_target(int rows) {
    long t = SLICE_BYTES / (sizeof(float) * (size_t)rows);
    t = t > COLS_TARGET ? COLS_TARGET : t < COLS_MIN ? COLS_MIN : t;
    return (int)(t & ~31L);
}

static int dw_target(int rows) {
    long t = DW_BYTES / (sizeof(float) * (size_t)rows);
    t = t > DW_MAX ? DW_MAX : t < DW_MIN ? DW_MIN : t;
    return (int)(t & ~31L);
}

/* The taps that ever land inside the input: rows i in [ilo, ilo + nti), columns j in
 * [jlo, jlo + ntj). On small maps the others only ever see padding (a 3x3 kernel
 * on a 1x1 map: only the centre), so the forward, the weight gradient and the
 * col2im input gradient leave them out: their products are zeros added (they would
 * only make a difference for infinite weights). */
typedef struct { int ilo, nti, jlo, ntj; } Taps;

static Taps live_taps(const ConvShape *s) {
    const int ilo = imax(0, s->ph - (s->Ho - 1) * s->sh), ihi = imin(s->kh - 1, s->H - 1 + s->ph);
    const int jlo = imax(0, s->pw - (s->Wo - 1) * s->sw), jhi = imin(s->kw - 1, s->W - 1 + s->pw);
    Taps t = {ilo, ihi - ilo + 1, jlo, jhi - jlo + 1};
    return t;
}

static int pruned(const ConvShape *s, Taps t) { return t.nti < s->kh || t.ntj < s->kw; }

/* A 1x1 map in and out with a single live tap (a 3x3 kernel on ResNet's last 1x1
 * maps at 32x32 input): the convolution is a linear layer over the channels whose
 * weights are every kh*kw-th float of w from the tap; the linear kernels read them
 * there, with no gather and no copy of the live weights. Sets *tap. */
static int point_map(const ConvShape *s, size_t *tap) {
    const Taps t = live_taps(s);
    *tap = (size_t)t.ilo * s->kw + t.jlo;
    return s->H == 1 && s->W == 1 && s->Ho == 1 && s->Wo == 1 && t.nti == 1 && t.ntj == 1;
}

/* ---- gathers: the rows of an im2col-like matrix ----
 * Row r = (source channel cs, tap (q, t)) with cs = r / (nti*ntj); grid point (u, v)
 * (column u*Wg + v of one image) reads
 *   src[cs, u*gh + oi0 + si*q, v*gw + oj0 + sj*t]     (0 outside the source).
 * Forward/weights: source x, grid Ho x Wo with the stride, taps kh x kw at -pad + i.
 * Input gradient, class (a, b): source dy, grid of the dx positions a + sh*u, unit
 * stride, taps i = ia + sh*q at oi0 - q (see dx_class). */
typedef struct {
    int Cs, Hs, Ws;         /* source image [Cs, Hs, Ws] */
    int Hg, Wg, gh, gw;     /* grid of one image and its stride in the source */
    int nti, ntj;           /* taps */
    int oi0, si, oj0, sj;   /* tap offsets */
} Gather;

static int g_rows(const Gather *g) { return g->Cs * g->nti * g->ntj; }

/* x itself is the matrix (1x1, stride 1, no padding): no gather needed. */
static int g_identity(const Gather *g) {
    return g->nti == 1 && g->ntj == 1 && g->oi0 == 0 && g->oj0 == 0 && g->gh == 1 && g->gw == 1 &&
           g->Hg == g->Hs && g->Wg == g->Ws;
}

/* v in [lo, hi) of [0, n) with 0 <= v*step + off < len. */
static void span(int n, int len, int step, int off, int *lo, int *hi) {
    int l = off >= 0 ? 0 : (-off + step - 1) / step;
    int h = len - off > 0 ? (len - off + step - 1) / step : 0;
    if (h > n) h = n;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

static void zero(float *d, int n) {
    for (int k = 0; k < n; k++) d[k] = 0.0f;
}

/* d[0:n] += s[0:n], vectorised. */
static void add_floats(float *d, const float *s, int n) {
    int k = 0;
    for (; k + 16 <= n; k += 16) {
        float t[16], u[16];
        for (int j = 0; j < 16; j++) { t[j] = s[k + j]; u[j] = d[k + j]; }
        for (int j = 0; j < 16; j++) d[k + j] = u[j] + t[j];
    }
    for (; k < n; k++) d[k] += s[k];
}

/* d[0:n] = s[0:n] for the short rows of small maps (memcpy's call costs more there). */
static void copy_floats(float *d, const float *s, int n) {
    int k = 0;
    for (; k + 16 <= n; k += 16) {
        float t[16];
        for (int j = 0; j < 16; j++) t[j] = s[k + j];
        for (int j = 0; j < 16; j++) d[k + j] = t[j];
    }
    for (; k < n; k++) d[k] = s[k];
}

/* d[0:n] = s[0:2n:2] (a stride-2 row), 16 at a time through a local array so that the
 * compiler sees no aliasing and a fixed trip count, and vectorises the deinterleave. */
static void copy_stride2(float *d, const float *s, int n) {
    int k = 0;
    for (; k + 16 < n; k += 16) { /* k + 16 < n: s[2k + 31] is inside the row */
        float t[32], u[16];
        memcpy(t, s + 2 * k, sizeof t);
        for (int j = 0; j < 16; j++) u[j] = t[2 * j];
        memcpy(d + k, u, sizeof u);
    }
    for (; k < n; k++) d[k] = s[2 * k];
}

/* Unit stride and the grid as wide as the source (a "same" convolution, stride 1):
 * grid point q reads source element q + oi*Ws + oj, so the live rows are one copy,
 * then the columns that fell off the row's ends are cleared. */
/* Where one image's gather starts and ends: grid columns [p0, p1), rows u0..u1
 * (computed once per call; the per-row work below divides nothing). */
typedef struct { int p0, p1, u0, v0, u1; } Span;

static void gather_row_same(const Gather *g, const float *sc, int oi, int oj, int lo, int hi, const Span *sp,
                            float *d) {
    const int Wg = g->Wg, p0 = sp->p0, p1 = sp->p1;
    const int ua = imax(sp->u0, imax(0, -oi)), ub = imin(sp->u1, imin(g->Hg, g->Hs - oi) - 1); /* live rows */
    const int qa = imax(p0, ua * Wg), qb = imin(p1, (ub + 1) * Wg);
    if (ub < ua || qb <= qa) { zero(d, p1 - p0); return; }
    zero(d, qa - p0);
    zero(d + (qb - p0), p1 - qb);
    /* copy what lies inside the plane; what does not is a cleared column below */
    const int off = oi * g->Ws + oj, ca = imax(qa, -off), cb = imin(qb, g->Hs * g->Ws - off);
    if (cb - ca >= 256) memcpy(d + (ca - p0), sc + ca + off, sizeof(float) * (size_t)(cb - ca));
    else if (cb > ca) copy_floats(d + (ca - p0), sc + ca + off, cb - ca);
    /* the cleared columns [0, lo) and [hi, Wg), column by column down the live rows */
    for (int v = 0; v < Wg; v++) {
        if (v == lo) v = imax(lo, hi);
        if (v >= Wg) break;
        for (int u = ua; u <= ub; u++) {
            const int q = u * Wg + v;
            if (q >= qa && q < qb) d[q - p0] = 0.0f;
        }
    }
}

/* Small maps, whole images: each source channel is first copied into a plane with
 * its zero border (every position any tap reads), then every tap row is a plain
 * copy out of it, with no bounds checks and no divisions per row. Worth it where the
 * rows are short (a 3x3 convolution on an 8x8 map: 576 rows of 64 floats per
 * image), and the general path below pays its bookkeeping per row. */
#define PLANE_MAX 4096 /* floats of the bordered plane (stack) */

/* The bordered plane's window: source rows [*r0, *r0 + *nr), columns [*c0, *c0 + *nc). */
static void plane_window(const Gather *g, int *r0, int *nr, int *c0, int *nc) {
    const int qa = g->si >= 0 ? 0 : g->nti - 1, qb = g->si >= 0 ? g->nti - 1 : 0; /* lowest/highest tap */
    const int ta = g->sj >= 0 ? 0 : g->ntj - 1, tb = g->sj >= 0 ? g->ntj - 1 : 0;
    *r0 = g->oi0 + g->si * qa;
    *nr = (g->Hg - 1) * g->gh + g->oi0 + g->si * qb - *r0 + 1;
    *c0 = g->oj0 + g->sj * ta;
    *nc = (g->Wg - 1) * g->gw + g->oj0 + g->sj * tb - *c0 + 1;
}

static int plane_fits(const Gather *g) {
    int r0, nr, c0, nc;
    if (g->nti < 1 || g->ntj < 1) return 0;
    plane_window(g, &r0, &nr, &c0, &nc);
    return (long)nr * nc <= PLANE_MAX;
}

static void gather_planes(const Gather *g, const float *src, int r0, int r1, float *dst, size_t ld) {
    int wr, nr, wc, nc;
    plane_window(g, &wr, &nr, &wc, &nc);
    const int taps = g->nti * g->ntj, Hg = g->Hg, Wg = g->Wg, gh = g->gh, gw = g->gw;
    const int ca = imax(0, -wc), cb = imin(nc, g->Ws - wc); /* plane columns inside the source */
    const int ia = imax(0, -wr), ib = imin(nr, g->Hs - wr); /* plane rows inside the source */
    float pl[PLANE_MAX];
    zero(pl, nr * nc); /* the border: the same positions for every channel */
    for (int cs = r0 / taps; cs * taps < r1; cs++) {
        const float *sc = src + (size_t)cs * g->Hs * g->Ws;
        if (cb > ca)
            for (int i = ia; i < ib; i++)
                copy_floats(pl + (size_t)i * nc + ca, sc + (size_t)(wr + i) * g->Ws + wc + ca, cb - ca);
        const int ra = imax(r0, cs * taps), rb = imin(r1, (cs + 1) * taps);
        int q = (ra - cs * taps) / g->ntj, t = (ra - cs * taps) % g->ntj;
        for (int r = ra; r < rb; r++) {
            const float *b = pl + (size_t)(g->oi0 + g->si * q - wr) * nc + (g->oj0 + g->sj * t - wc);
            float *d = dst + (size_t)r * ld;
            if (++t == g->ntj) { t = 0; q++; }
            const size_t step = (size_t)gh * nc;
            /* the widths of VGG's and ResNet's maps as fixed-size copies (a few moves each) */
#define TAP_ROWS(WG) for (int u = 0; u < Hg; u++, d += (WG), b += step) memcpy(d, b, sizeof(float) * (WG))
            switch (gw == 1 ? Wg : 0) {
            case 2: TAP_ROWS(2); break;
            case 4: TAP_ROWS(4); break;
            case 7: TAP_ROWS(7); break;
            case 8: TAP_ROWS(8); break;
            case 14: TAP_ROWS(14); break;
            case 16: TAP_ROWS(16); break;
            case 28: TAP_ROWS(28); break;
            case 32: TAP_ROWS(32); break;
            case 56: TAP_ROWS(56); break;
            default:
                for (int u = 0; u < Hg; u++, d += Wg, b += step) {
                    if (gw == 1) copy_floats(d, b, Wg);
                    else if (gw == 2) copy_stride2(d, b, Wg);
                    else
                        for (int v = 0; v < Wg; v++) d[v] = b[v * gw];
                }
            }
#undef TAP_ROWS
        }
    }
}

/* Rows [r0, r1), grid columns [p0, p1) of one image's gather; row r goes to
 * dst + r*ld (rows counted from 0, so threads can fill disjoint rows of one block). */
static void gather(const Gather *g, const float *src, int r0, int r1, int p0, int p1, float *dst, size_t ld) {
    if (r1 <= r0 || p1 <= p0) return;
    if (p0 == 0 && p1 == g->Hg * g->Wg && plane_fits(g)) {
        gather_planes(g, src, r0, r1, dst, ld);
        return;
    }
    const int taps = g->nti * g->ntj, plane = g->Hs * g->Ws;
    const int same = g->gh == 1 && g->gw == 1 && g->Wg == g->Ws;
    const Span sp = {p0, p1, p0 / g->Wg, p0 % g->Wg, (p1 - 1) / g->Wg};
    int cs = r0 / taps, q = r0 % taps / g->ntj, t = r0 % taps % g->ntj; /* row r0's channel and tap */
    for (int r = r0; r < r1; r++) {
        const int oi = g->oi0 + g->si * q, oj = g->oj0 + g->sj * t;
        const float *sc = src + (size_t)cs * plane;
        float *d = dst + (size_t)r * ld;
        if (++t == g->ntj) { t = 0; if (++q == g->nti) { q = 0; cs++; } } /* the next row's */
        int lo, hi;
        if (g->gw == 1) { lo = imax(0, -oj); hi = imin(g->Wg, g->Ws - oj); if (lo > hi) lo = hi; }
        else span(g->Wg, g->Ws, g->gw, oj, &lo, &hi);
        if (same) {
            gather_row_same(g, sc, oi, oj, lo, hi, &sp, d);
            continue;
        }
        int u = sp.u0, v = sp.v0;
        for (int p = p0; p < p1; u++, v = 0) {
            const int v1 = imin(g->Wg, v + (p1 - p)), n = v1 - v;
            const int ih = u * g->gh + oi;
            if (ih < 0 || ih >= g->Hs) {
                zero(d, n);
            } else {
                const int a = imin(imax(v, lo), v1), b = imax(imin(v1, hi), a);
                const float *sr = sc + (size_t)ih * g->Ws; /* row ih; column w*gw + oj */
                for (int w = v; w < a; w++) d[w - v] = 0.0f;
                if (g->gw == 1) copy_floats(d + (a - v), sr + a + oj, b - a);
                else if (g->gw == 2) copy_stride2(d + (a - v), sr + 2 * a + oj, b - a);
                else
                    for (int w = a; w < b; w++) d[w - v] = sr[w * g->gw + oj];
                for (int w = b; w < v1; w++) d[w - v] = 0.0f;
            }
            d += n;
            p += n;
        }
    }
}

/* ---- blocks of columns ---- */
typedef struct {
    int N, G;       /* images, grid columns per image */
    int cut32;      /* pieces cut at multiples of 32 columns (wide blocks: whole panels) */
    int pieces;     /* > 0: each image cut into this many column ranges (block = piece) */
    int nblocks;    /* else the images are grouped into nblocks balanced groups */
    int width;      /* most columns of any block */
} Blocks;

static Blocks make_blocks(int N, int G, int target) {
    Blocks b = {N, G, 0, 0, 0, 0};
    if (G > target) {
        b.pieces = (G + target - 1) / target;  /* depends on the shape only */
        b.nblocks = N * b.pieces;
        b.width = (G + b.pieces - 1) / b.pieces;
    } else {
        int per = target / G;                  /* images per block at most */
        b.nblocks = (N + per - 1) / per;
        b.width = (N + b.nblocks - 1) / b.nblocks * G;
    }
    return b;
}

static size_t slice_floats(int rows, int M, int width) {
    return ws_round(sizeof(float) * (size_t)(rows + M) * width) / sizeof(float);
}

/* Block i: images [n0, n1), columns [p0, p1) of each. */
static void block_of(const Blocks *b, int i, int *n0, int *n1, int *p0, int *p1) {
    long lo, hi;
    if (b->pieces) {
        *n0 = i / b->pieces;
        *n1 = *n0 + 1;
        if (b->cut32) {
            par_range((b->G + 31) / 32, i % b->pieces, b->pieces, &lo, &hi);
            lo *= 32;
            hi = hi * 32 < b->G ? hi * 32 : b->G;
        } else {
            par_range(b->G, i % b->pieces, b->pieces, &lo, &hi);
        }
        *p0 = (int)lo;
        *p1 = (int)hi;
    } else {
        par_range(b->N, i, b->nblocks, &lo, &hi);
        *n0 = (int)lo;
        *n1 = (int)hi;
        *p0 = 0;
        *p1 = b->G;
    }
}

/* Each thread taking whole blocks leaves at most a fifth of the threads idle. */
static int per_thread(int nblocks, int nth, int nslices) {
    if (nth < 2 || nslices < nth || nblocks < nth) return 0;
    return (long)((nblocks + nth - 1) / nth) * nth * 5 <= (long)nblocks * 6;
}

/* ---- wide blocks: an implicit im2col ----
 * With unit grid steps (a stride-1 forward or input gradient) and a block of whole
 * grid rows, every row (cs, q, t) of the gathered matrix is one window of a frame
 * that holds the block's source rows with their zero border, provided the block's
 * grid is laid out with the frame's row pitch Wp as well: its Wp - Wg extra columns
 * per row are computed and dropped. The border columns are shared between rows: each
 * frame row is `lead` zeros then its data, and a window that runs past a row's end
 * reads the next row's leading zeros, so Wp = data + max(left, right border) (29 for
 * a 28-wide 3x3 map, not 30). gemm_rows_st reads those windows in place, so a block
 * costs one copy of its source rows instead of a gather of kh*kw copies and the
 * packing of them (the frame stays in cache). Used where the extra columns are few
 * (wide maps); small maps keep the gathers above. */
typedef struct {
    int on;
    int Wp;         /* frame row and wide grid row, floats */
    int lead, ca, nd; /* a frame row: lead zeros, then source columns ojmin + ca ... (nd of
                       * them), then zeros to Wp */
    int pieces;     /* blocks per image: ranges of whole 32-column panels of the wide grid */
    int width;      /* most wide columns in a block */
    int rmax;       /* most grid rows a block touches */
    size_t fplane;  /* floats per source channel in the frame: (rmax + nti - 1) * Wp */
    int omin, ojmin; /* the lowest tap offsets, row and column */
} Wide;

#define WIDE_SLACK 64 /* zeros after the frame: the last row's windows reach lead + ntj - 2
                       * past it, and gemm_rows_st rounds a row up to 32 (wide_plan checks) */
#ifndef WIDE_MIN_W
#define WIDE_MIN_W 28 /* narrowest grid for wide blocks: at most ~3.5% extra columns (3x3); 14-wide
                       * maps (7%) measured slower than their gathers */
#endif

/* ---- one product over blocks: dst (=|+=) A . gather(src) ----
 * A [M, rows]; grid point (u, v) of image n lands at
 *   dst[n*dst_img + m*Hd*Wd + (a + sa*u)*Wd + b + sb*v]. */
typedef struct {
    Gather g;
    const float *src;
    size_t src_img;          /* floats per source image */
    const float *A;          /* [M, rows], or [rows, M] when tA */
    int tA;
    float *Ap;               /* A packed once for all blocks (gemm_pack; set by prod_run), or NULL */
    int M, rows;
    Blocks bl;
    float *dst;
    size_t dst_img;
    int Hd, Wd, a, b, sa, sb;
    int accumulate;          /* dst += product; else dst = product (+ bias) */
    int fresh;               /* with accumulate: dst's old contents are ignored, it gets
                              * 0 + product (the bits of adding onto zeros) */
    const float *relu_y;     /* with fresh, or NULL: dst then gets the backward of the ReLU
                              * whose output relu_y (laid out like dst) was: 0 + term(y, v) */
    ReluRule rule;
    const float *bias;       /* [M] or NULL (forward only) */
    const float *scale, *shift; /* [M] or NULL (forward only): y = y * scale + shift after the bias */
    int relu;                /* forward: y = max(y, 0) after the bias */
    const ConvShape *col2im; /* set: the result is dcols [C*kh*kw, cols] of this shape,
                              * added into dst [N,C,H,W] by col2im */
    float *scratch;          /* [nslices][slice]: cols [rows*width] (wide: the frame), then out */
    size_t slice, out_at;    /* floats per slice, where out starts in it */
    Wide wd;                 /* wide blocks (set by prod_run) */
    ptrdiff_t *off;          /* wide: [rows] where each gathered row starts in the frame */
    int nslices;
    int cur;                 /* the block being shared (shared mode) */
    int px;                  /* small maps: a direct convolution (px_run) instead of blocks; */
    const ptrdiff_t *roff;   /* then A (m, r) is A[roff[r] + m*rcs] (read in place when packed) */
    size_t rcs;
    const float *prep;       /* px: A already packed by the caller (conv_prep), or NULL */
} Prod;

#ifndef WIDE_TARGET
#define WIDE_TARGET 1024    /* wide columns per block */
#endif
#ifndef DW_WIDE_TARGET
#define DW_WIDE_TARGET 4096 /* the same for the weight gradient (a few k-blocks of gemm) */
#endif
#ifndef DW_WIDE_MIN_ROWS
#define DW_WIDE_MIN_ROWS 256
#endif
#ifndef DW_WIDE_MIN_W
#define DW_WIDE_MIN_W 28 /* measured: +4-14% at 28x28, mixed at 14x14 (the extra columns cost 14%) */
#endif

/* Wide blocks of about target columns for gather g, or .on = 0 where they do not apply. */
static Wide wide_plan(const Gather *g, int target, int min_w) {
    Wide w;
    memset(&w, 0, sizeof w);
    if (g->gh != 1 || g->gw != 1 || g->Wg < min_w || g->Hg < 1 || g->nti < 1 || g->ntj < 1) return w;
    if (g_identity(g)) return w; /* a 1x1 stride-1 map is read in place: nothing to build */
    if ((g->nti > 1 && g->si != 1 && g->si != -1) || (g->ntj > 1 && g->sj != 1 && g->sj != -1)) return w;
    w.on = 1;
    w.ojmin = g->oj0 + imin(0, g->sj * (g->ntj - 1));
    const int span = g->Wg + g->ntj - 1; /* columns the windows of a grid row cover, from ojmin */
    w.ca = imax(0, -w.ojmin);
    const int cb = imax(w.ca, imin(span, g->Ws - w.ojmin)); /* source columns: [ca, cb) of the span */
    w.nd = cb - w.ca;
    w.lead = imax(w.ca, span - cb); /* left border, and the previous row's right one */
    w.Wp = w.lead + w.nd;           /* >= Wg: neither border is wider than ntj - 1 */
    GAD_ASSERT(w.Wp >= g->Wg);
    GAD_ASSERT(w.lead + g->ntj - 2 + 32 <= WIDE_SLACK);
    const int panels = (g->Hg * w.Wp + 31) / 32;
    w.pieces = (panels * 32 + target - 1) / target;
    w.width = (panels + w.pieces - 1) / w.pieces * 32;
    w.rmax = imin(g->Hg, (w.width + w.Wp - 1) / w.Wp + 1);
    w.fplane = (size_t)(w.rmax + g->nti - 1) * w.Wp;
    w.omin = g->oi0 + imin(0, g->si * (g->nti - 1));
    return w;
}

/* Each image's wide grid [Hg, Wp] cut into w->pieces ranges of whole panels. */
static Blocks wide_blocks(const Gather *g, const Wide *w, int N) {
    Blocks b = {N, g->Hg * w->Wp, 1, w->pieces, 0, w->width};
    b.nblocks = N * b.pieces;
    return b;
}

/* Floats of a frame with its slack (rounded for the workspace). */
static size_t frame_floats(const Gather *g, const Wide *w) {
    return ws_round(sizeof(float) * ((size_t)g->Cs * w->fplane + WIDE_SLACK)) / sizeof(float);
}

/* Zero the slack after a frame (read as padding columns only). */
static void frame_slack(const Gather *g, const Wide *w, float *frame) {
    zero(frame + (size_t)g->Cs * w->fplane, WIDE_SLACK);
}

/* A slice: the frame with its slack, then out [M, width]; *out_at: where out starts. */
static size_t wide_slice(const Gather *g, const Wide *w, int M, size_t *out_at) {
    *out_at = frame_floats(g, w);
    return *out_at + ws_round(sizeof(float) * (size_t)M * w->width) / sizeof(float);
}

/* Workspace floats of the row offsets (one ptrdiff_t per gathered row). */
static size_t offsets_floats(const Gather *g) {
    return ws_round(sizeof(ptrdiff_t) * (size_t)g_rows(g)) / sizeof(float);
}

/* Scratch of a wide product: the row offsets and nth slices. */
static size_t wide_floats(const Gather *g, const Wide *w, int M, int nth) {
    size_t at;
    return offsets_floats(g) + (size_t)nth * wide_slice(g, w, M, &at);
}

/* The offsets, in ws: where row (cs, q, t) starts in the frame, at grid row 0, column 0
 * of the block. */
static ptrdiff_t *wide_offsets(const Gather *g, const Wide *w, Workspace *ws) {
    ptrdiff_t *off = (ptrdiff_t *)ws_floats(ws, offsets_floats(g));
    for (int cs = 0, r = 0; cs < g->Cs; cs++)
        for (int q = 0; q < g->nti; q++)
            for (int t = 0; t < g->ntj; t++, r++)
                off[r] = (ptrdiff_t)cs * (ptrdiff_t)w->fplane + (ptrdiff_t)(g->oi0 + g->si * q - w->omin) * w->Wp +
                         (w->lead - w->ca) + (g->oj0 + g->sj * t - w->ojmin);
    return off;
}

/* Channels [c0, c1) of the frame of grid rows [u0, u1) of one image (src): frame row
 * f of a channel is source row u0 + omin + f (lead zeros, its columns from ojmin + ca,
 * zeros to Wp); the plane's rows past those the block reads are zeroed too (all of it
 * is defined). */
static void wide_frame(const Gather *g, const Wide *w, const float *src, int u0, int u1, int c0, int c1,
                       float *fr) {
    const int nrow = u1 - u0 + g->nti - 1, Wp = w->Wp, a = w->lead, b = w->lead + w->nd;
    for (int c = c0; c < c1; c++) {
        float *d = fr + (size_t)c * w->fplane;
        const float *sc = src + (size_t)c * g->Hs * g->Ws;
        for (int f = 0; f < nrow; f++, d += Wp) {
            const int sr = u0 + w->omin + f;
            if (sr < 0 || sr >= g->Hs || b == a) { zero(d, Wp); continue; }
            zero(d, a);
            memcpy(d + a, sc + (size_t)sr * g->Ws + w->ojmin + w->ca, sizeof(float) * (size_t)(b - a));
            zero(d + b, Wp - b);
        }
        zero(d, (int)(w->fplane - (size_t)nrow * Wp));
    }
}

/* gemm writes the block's result in place: dst is laid out like the grid and the
 * block is one image. When accumulating, only for pieces of images: gemm adds each
 * k-block to dst in turn, which rounds differently from adding the finished sum, so
 * an image must take the same route in any batch (pieces are chosen by shape). */
static int block_direct(const Prod *P, int n0, int n1) {
    return !P->wd.on && !P->col2im && n1 - n0 == 1 && P->a == 0 && P->b == 0 && P->sa == 1 && P->sb == 1 && P->Wd == P->g.Wg &&
           P->Hd == P->g.Hg && (!P->accumulate || P->bl.pieces);
}

static void block_gather(const Prod *P, int i, int r0, int r1, float *cols) {
    int n0, n1, p0, p1;
    block_of(&P->bl, i, &n0, &n1, &p0, &p1);
    if (P->wd.on) { /* the frame's channels of rows [r0, r1), for the grid rows the block touches */
        const int taps = P->g.nti * P->g.ntj;
        wide_frame(&P->g, &P->wd, P->src + n0 * P->src_img, p0 / P->wd.Wp, (p1 - 1) / P->wd.Wp + 1, r0 / taps,
                   (r1 + taps - 1) / taps, cols);
        return;
    }
    if (n1 - n0 == 1 && g_identity(&P->g)) return; /* read in place */
    const int w = p1 - p0;
    for (int n = n0; n < n1; n++)
        gather(&P->g, P->src + n * P->src_img, r0, r1, p0, p1, cols + (size_t)(n - n0) * w, (size_t)(n1 - n0) * w);
}

/* Columns of block i's product. */
static int block_width(const Prod *P, int i) {
    int n0, n1, p0, p1;
    block_of(&P->bl, i, &n0, &n1, &p0, &p1);
    if (P->wd.on) return p1 - p0;
    return (n1 - n0) * (p1 - p0);
}

/* Rows [m0, m1) and columns [q0, q1) of block i's product (a thread's share, or all). */
static void block_product(const Prod *P, int i, const float *cols, float *out, GemmFn mm, int m0, int m1, int q0,
                          int q1) {
    int n0, n1, p0, p1;
    block_of(&P->bl, i, &n0, &n1, &p0, &p1);
    if (m1 <= m0 || q1 <= q0) return;
    if (P->wd.on) {
        const int w = block_width(P, i);
        gemm_rows_st(m1 - m0, q1 - q0, P->rows, P->Ap, P->M, m0, cols + p0 % P->wd.Wp + q0, P->off, 0.0f,
                     out + (size_t)m0 * w + q0, w);
        return;
    }
    const int w = (n1 - n0) * (p1 - p0), G = P->bl.G;
    const float *B = cols;
    int ldb = w;
    if (n1 - n0 == 1 && g_identity(&P->g)) { B = P->src + n0 * P->src_img + p0; ldb = G; }
    const int lda = P->tA ? P->M : P->rows;
    const float *A = P->A + (P->tA ? (size_t)m0 : (size_t)m0 * lda);
    const int direct = block_direct(P, n0, n1);
    const float beta = direct && P->accumulate && !P->fresh ? 1.0f : 0.0f;
    float *C = direct ? P->dst + n0 * P->dst_img + p0 + (size_t)m0 * G + q0 : out + (size_t)m0 * w + q0;
    const int ldc = direct ? G : w;
    if (P->Ap)
        gemm_packed_st(m1 - m0, q1 - q0, P->rows, P->Ap, P->M, m0, B + q0, ldb, beta, C, ldc);
    else
        mm(P->tA, 0, m1 - m0, q1 - q0, P->rows, 1.0f, A, lda, B + q0, ldb, beta, C, ldc);
}

/* Smallest q with q * d >= a (d > 0, a of either sign). */
static int ceil_div(int a, int d) { return a >= 0 ? (a + d - 1) / d : -(-a / d); }

/* dr[2q] += a[q], dr[2q + 1] += b[q] for q in [q0, q1): two taps j, j + 1 of a
 * stride-2 row, which land on alternate dx columns. */
static void add_pair(float *restrict dr, const float *restrict a, const float *restrict b, int q0, int q1) {
    for (int q = q0; q < q1; q++) {
        dr[2 * q] += a[q];
        dr[2 * q + 1] += b[q];
    }
}

/* dxn [C,H,W] += col2im of dcols rows of channels [c0, c1), output positions
 * [p0, p1) (row (c*nti + i - ilo)*ntj + j - jlo for the live taps, column p - p0,
 * leading dimension ld), into dx rows [h0, h1) only (the terms for other rows are
 * skipped: threads split the rows). Each dx element receives its terms in a fixed
 * order: rows, then positions, ascending; it gets at most one term per row, so with a
 * stride of 2 the taps j and j + 1 (alternate columns) go in one pass, the same bits. */
static void col2im_add(const ConvShape *s, const float *dcols, size_t ld, int p0, int p1, int c0, int c1, int h0,
                       int h1, float *dxn) {
    const int Wo = s->Wo;
    const Taps t = live_taps(s);
    for (int c = c0; c < c1; c++)
        for (int i = t.ilo; i < t.ilo + t.nti; i++) {
            /* the output rows whose tap row i lands in [h0, h1): positions [pa, pb) */
            const int pa = imax(p0, ceil_div(h0 + s->ph - i, s->sh) * Wo);
            const int pb = imin(p1, ceil_div(h1 + s->ph - i, s->sh) * Wo);
            if (pa >= pb) continue;
            for (int j = t.jlo; j < t.jlo + t.ntj; j++) {
                const float *row = dcols + ((size_t)(c * t.nti + i - t.ilo) * t.ntj + j - t.jlo) * ld;
                const int pair = s->sw == 2 && j + 1 < t.jlo + t.ntj; /* with tap j + 1 */
                const float *row2 = row + ld;
                const int off = j - s->pw;
                int lo, hi, lo2 = 0, hi2 = 0;
                span(Wo, s->W, s->sw, off, &lo, &hi);
                if (pair) span(Wo, s->W, s->sw, off + 1, &lo2, &hi2);
                int oh = pa / Wo, ow = pa % Wo;
                for (int p = pa; p < pb; oh++, ow = 0) {
                    const int ow1 = imin(Wo, ow + (pb - p)), ih = oh * s->sh - s->ph + i;
                    float *xr = dxn + ((size_t)c * s->H + ih) * s->W;
                    const int rb = p - p0 - ow; /* row[rb + q]: column of (oh, q) */
                    const int qa = imax(ow, lo), qb = imin(ow1, hi);
                    if (s->sw == 1) add_floats(xr + qa + off, row + rb + qa, qb - qa);
                    else if (!pair)
                        for (int q = qa; q < qb; q++) xr[q * s->sw + off] += row[rb + q];
                    else { /* both taps on [m0, m1), each alone on the rest of its range */
                        const int qa2 = imax(ow, lo2), qb2 = imin(ow1, hi2);
                        const int m0 = imax(qa, qa2), m1 = imax(m0, imin(qb, qb2));
                        for (int q = qa; q < imin(qb, m0); q++) xr[2 * q + off] += row[rb + q];
                        for (int q = qa2; q < imin(qb2, m0); q++) xr[2 * q + off + 1] += row2[rb + q];
                        add_pair(xr + off, row + rb, row2 + rb, m0, m1);
                        for (int q = imax(qa, m1); q < qb; q++) xr[2 * q + off] += row[rb + q];
                        for (int q = imax(qa2, m1); q < qb2; q++) xr[2 * q + off + 1] += row2[rb + q];
                    }
                    p += ow1 - ow;
                }
                j += pair;
            }
        }
}

/* The forward's epilogue for output channel m (ops/epi.h). */
static Epi epi_of(const Prod *P, int m) { return epi_for(P->bias, P->scale, P->shift, P->relu, m); }

/* A fresh write of v at dst + i: 0 + v, then through the ReLU's backward if any (the
 * ops of conv2d_backward onto zeros, then relu_backward_set). */
static float fresh_value(const Prod *P, size_t i, float v) {
    v = 0.0f + v;
    return P->relu_y ? 0.0f + relu_backward_term(P->rule, P->relu_y[i], v) : v;
}

/* fresh_value over a row: d[k*sb] for k < n from o[k] (o may be d when sb == 1). Unit
 * strides go to epi_dx_fresh (ops/epi.h: blocks that gcc vectorises, each element the
 * same operations as fresh_value): the dx epilogue of every input-gradient pass. */
static void fresh_row(const Prod *P, float *d, const float *o, int n, int sb) {
    if (sb == 1) {
        epi_dx_fresh(P->rule, P->relu_y ? P->relu_y + (d - P->dst) : NULL, d, o, n);
        return;
    }
    for (int k = 0; k < n; k++) d[k * sb] = fresh_value(P, (size_t)(d + k * sb - P->dst), o[k]);
}

/* Rows [m0, m1) of the block's result into the destination: bias and ReLU, or the
 * scatter from out to dst (col2im: dx channels [m0, m1), dx rows [h0, h1) of them;
 * else h0, h1 unused). */
static void block_finish(const Prod *P, int i, const float *out, int m0, int m1, int h0, int h1) {
    int n0, n1, p0, p1;
    block_of(&P->bl, i, &n0, &n1, &p0, &p1);
    if (P->col2im) {
        const int w = (n1 - n0) * (p1 - p0);
        for (int n = n0; n < n1; n++)
            col2im_add(P->col2im, out + (size_t)(n - n0) * (p1 - p0), (size_t)w, p0, p1, m0, m1, h0, h1,
                       P->dst + n * P->dst_img);
        return;
    }
    const int w = (n1 - n0) * (p1 - p0), Wg = P->g.Wg;
    const size_t plane = (size_t)P->Hd * P->Wd;
    if (P->wd.on) { /* wide column p is grid point (p / Wp, p % Wp) if p % Wp < Wg */
        const int Wp = P->wd.Wp, ww = p1 - p0;
        for (int m = m0; m < m1; m++) {
            const Epi e = epi_of(P, m);
            for (int u = p0 / Wp; u * Wp < p1; u++) {
                const int v0 = imax(0, p0 - u * Wp), v1 = imin(Wg, p1 - u * Wp);
                if (v1 <= v0) continue;
                const float *o = out + (size_t)m * ww + (u * Wp + v0 - p0);
                float *dr = P->dst + n0 * P->dst_img + m * plane + (size_t)(P->a + P->sa * u) * P->Wd + P->b + v0 * P->sb;
                if (!P->accumulate) epi_row(dr, o, v1 - v0, &e);
                else if (P->fresh) fresh_row(P, dr, o, v1 - v0, P->sb);
                else if (P->sb == 1) add_floats(dr, o, v1 - v0);
                else
                    for (int k = 0; k < v1 - v0; k++) dr[k * P->sb] += o[k];
            }
        }
        return;
    }
    if (block_direct(P, n0, n1)) {
        if (P->accumulate && P->relu_y) /* gemm wrote 0 + product in place (0 + that is itself) */
            for (int m = m0; m < m1; m++) {
                float *d = P->dst + n0 * P->dst_img + m * plane + p0;
                fresh_row(P, d, d, p1 - p0, 1);
            }
        if (P->accumulate || (!P->bias && !P->scale && !P->relu)) return;
        for (int m = m0; m < m1; m++) {
            float *d = P->dst + n0 * P->dst_img + m * plane + p0;
            const Epi e = epi_of(P, m);
            epi_row(d, d, p1 - p0, &e);
        }
        return;
    }
    for (int n = n0; n < n1; n++)
        for (int m = m0; m < m1; m++) {
            const float *o = out + (size_t)m * w + (size_t)(n - n0) * (p1 - p0);
            float *d = P->dst + n * P->dst_img + m * plane;
            const Epi e = epi_of(P, m);
            int u = p0 / Wg, v = p0 % Wg;
            for (int p = p0; p < p1; u++, v = 0) {
                const int v1 = imin(Wg, v + (p1 - p));
                float *dr = d + (size_t)(P->a + P->sa * u) * P->Wd + P->b;
                if (P->accumulate && P->fresh) fresh_row(P, dr + v * P->sb, o, v1 - v, P->sb);
                else if (P->accumulate)
                    for (int k = v; k < v1; k++) dr[k * P->sb] += o[k - v];
                else /* the forward: unit stride */
                    epi_row(dr + v, o, v1 - v, &e);
                o += v1 - v;
                p += v1 - v;
            }
        }
}

static float *slice_cols(const Prod *P, int ith) { return P->scratch + (size_t)ith * P->slice; }
static float *slice_out(const Prod *P, int ith) {
    return slice_cols(P, ith) + P->out_at;
}

/* What block_finish splits between threads: rows of the result, or dx channels. */
static int finish_rows(const Prod *P) { return P->col2im ? P->col2im->C : P->M; }

static void own_blocks_worker(void *arg, int ith, int nth) {
    const Prod *P = arg;
    long lo, hi;
    par_range(P->bl.nblocks, ith, nth, &lo, &hi);
    for (long i = lo; i < hi; i++) {
        block_gather(P, (int)i, 0, P->rows, slice_cols(P, ith));
        block_product(P, (int)i, slice_cols(P, ith), slice_out(P, ith), gemm_st, 0, P->M, 0, block_width(P, (int)i));
        block_finish(P, (int)i, slice_out(P, ith), 0, finish_rows(P), 0, P->col2im ? P->col2im->H : 0);
    }
}

static void shared_gather_worker(void *arg, int ith, int nth) {
    const Prod *P = arg;
    long lo, hi;
    const int unit = P->wd.on ? P->g.nti * P->g.ntj : 1; /* wide: whole channels of the frame */
    par_range(P->rows / unit, ith, nth, &lo, &hi);
    block_gather(P, P->cur, (int)lo * unit, (int)hi * unit, slice_cols(P, 0));
}

/* One block shared by the threads: each takes whole 32-column panels of the product
 * (reading all of A, the weights) when the block has more columns than rows, else
 * whole row panels of gemm's tile height (packing all of the gathered B). gemm_st
 * gives every element the same sum either way. */
static void shared_product_worker(void *arg, int ith, int nth) {
    const Prod *P = arg;
    const int w = block_width(P, P->cur);
    long lo, hi;
    if (w > P->M) {
        par_range((w + 31) / 32, ith, nth, &lo, &hi);
        block_product(P, P->cur, slice_cols(P, 0), slice_out(P, 0), gemm_st, 0, P->M, (int)lo * 32,
                      imin(w, (int)hi * 32));
    } else { /* whole panels of the packed A */
        const int mr = gemm_mr();
        par_range((P->M + mr - 1) / mr, ith, nth, &lo, &hi);
        block_product(P, P->cur, slice_cols(P, 0), slice_out(P, 0), gemm_st, (int)lo * mr, imin(P->M, (int)hi * mr),
                      0, w);
    }
}

/* Split by result rows (col2im: dx channels), or with fewer dx channels than 4 per
 * thread (a network's first layer has 3: 2 threads would split them 2:1) by the band
 * of dx rows the block reaches. */
static void shared_finish_worker(void *arg, int ith, int nth) {
    const Prod *P = arg;
    long lo, hi;
    if (P->col2im && P->col2im->C < 4 * nth) {
        const ConvShape *s = P->col2im;
        int n0, n1, p0, p1;
        block_of(&P->bl, P->cur, &n0, &n1, &p0, &p1);
        const int b0 = imax(0, p0 / s->Wo * s->sh - s->ph), b1 = imin(s->H, (p1 - 1) / s->Wo * s->sh - s->ph + s->kh);
        par_range(imax(0, b1 - b0), ith, nth, &lo, &hi);
        if (hi > lo) block_finish(P, P->cur, slice_out(P, 0), 0, s->C, b0 + (int)lo, b0 + (int)hi);
        return;
    }
    par_range(finish_rows(P), ith, nth, &lo, &hi);
    block_finish(P, P->cur, slice_out(P, 0), (int)lo, (int)hi, 0, P->col2im ? P->col2im->H : 0);
}


/* A's row panels split between the threads, packed into P->Ap. */
static void pack_worker(void *arg, int ith, int nth) {
    Prod *P = arg;
    long lo, hi;
    par_range((P->M + gemm_mr() - 1) / gemm_mr(), ith, nth, &lo, &hi);
    gemm_pack(P->tA, P->M, P->rows, P->A, P->tA ? P->M : P->rows, P->Ap, (int)lo, (int)hi);
}

/* Workspace floats of A packed (prod_run packs it when a block's product would). */
static size_t packed_floats(int M, int rows) {
    return ws_round(sizeof(float) * gemm_packed_floats(M, rows)) / sizeof(float);
}

/* ---- small maps: a direct convolution ----
 * On grids narrower than wide blocks take, gathering (or col2im), packing and short
 * tile rows cost a fifth of the time. Here nothing is gathered: a group of images
 * is copied once into a zero-bordered frame, and gemm_pix_st computes
 *   out [positions, M] = X' . A^T,   X'(p, r) = frame[at(p) + off(r)]
 * with its vectors running over M (the channels it writes; A packed by column
 * panels once per call, straight from the weights through row offsets) and each
 * position's input broadcast from where its window starts in the frame: no copy but
 * the frame, no wasted columns, the positions of all the group's images in one
 * stream. Each element is the same gemm chain as the gather route's (A . X over the
 * same k order), so the same bits. With a batch of at least one image per thread the
 * threads split the images, each with its own frame and out (nothing one writes is
 * read by another: this VM moves cache lines between its cores slowly at times);
 * else they split M by panels, then write their own channels out. Used for the
 * forward (fwd_by_px) and the input gradient (dx_by_px, dx_px). */
#ifndef PX_MIN_M
#define PX_MIN_M 64       /* rows of the product (channels): at least two vector panels */
#endif
#ifndef PX_MIN_POSITIONS
#define PX_MIN_POSITIONS 300 /* positions in the batch that pay for packing the weights */
#endif
#define PX_FIN_CH 16      /* channels px_finish transposes at once */
#define PX_FIN_RUN 256    /* and positions: a grid row, or a whole plane up to 16x16 */
#ifndef PX_POSITIONS
#define PX_POSITIONS 2048 /* positions per group of images (at least one image) */
#endif

/* The frame of gather g: source channel planes [Hf, Wf] holding source row r, column c
 * at (r + top, c + left), zeros around, sized so that every tap of every grid point
 * lands inside. */
typedef struct {
    int top, left, Hf, Wf;
    size_t plane, img;      /* floats per channel, per image */
} Frame;

static Frame px_frame(const Gather *g) {
    const int ra = g->oi0, rb = g->oi0 + g->si * (g->nti - 1), ca = g->oj0, cb = g->oj0 + g->sj * (g->ntj - 1);
    const int rlo = imin(ra, rb), rhi = (g->Hg - 1) * g->gh + imax(ra, rb);
    const int clo = imin(ca, cb), chi = (g->Wg - 1) * g->gw + imax(ca, cb);
    Frame f;
    f.top = imax(0, -rlo);
    f.left = imax(0, -clo);
    f.Hf = f.top + imax(g->Hs, rhi + 1);
    f.Wf = f.left + imax(g->Ws, chi + 1);
    f.plane = (size_t)f.Hf * f.Wf;
    f.img = (size_t)g->Cs * f.plane;
    return f;
}

/* One channel plane of the frame: source plane sc [Hs, Ws] with its zero border. */
static void frame_plane(const Gather *g, const Frame *f, const float *sc, float *d) {
    for (int r = 0; r < f->Hf; r++, d += f->Wf) {
        const int sr = r - f->top;
        if (sr < 0 || sr >= g->Hs) { zero(d, f->Wf); continue; }
        zero(d, f->left);
        memcpy(d + f->left, sc + (size_t)sr * g->Ws, sizeof(float) * (size_t)g->Ws);
        zero(d + f->left + g->Ws, f->Wf - f->left - g->Ws);
    }
}

static int px_images(const Gather *g, int N) {
    return imax(1, imin(N, PX_POSITIONS / (g->Hg * g->Wg)));
}

/* Images per group when each of nth threads takes its own images (px_run's split). */
static int px_split_images(const Gather *g, int N, int nth) { return imin(px_images(g, N), (N + nth - 1) / nth); }

/* Floats of one group's buffers: the frame, the position pointers and out. */
static size_t px_group_floats(const Gather *g, int M, int gi) {
    const size_t pos = (size_t)gi * g->Hg * g->Wg, Mp = (size_t)(M + gemm_nr() - 1) / gemm_nr() * gemm_nr();
    return (ws_round(sizeof(float) * gi * px_frame(g).img) + ws_round(sizeof(float *) * pos) +
            ws_round(sizeof(float) * pos * Mp)) / sizeof(float);
}

/* Workspace floats of px_run for batches up to N: A packed, the offsets, and one
 * group's buffers (shared by the threads), or with N >= nth one per thread. */
static size_t px_floats(const Gather *g, int M, int N, int nth) {
    const size_t shared = px_group_floats(g, M, px_images(g, N));
    const size_t split = nth > 1 && N >= nth ? (size_t)nth * px_group_floats(g, M, px_split_images(g, N, nth)) : 0;
    return (ws_round(sizeof(float) * gemm_packed_b_floats(g_rows(g), M)) + ws_round(sizeof(ptrdiff_t) * g_rows(g))) /
               sizeof(float) + (split > shared ? split : shared);
}

typedef struct {
    Prod *P;
    Frame f;
    const float *Ap;    /* A packed by column panels (gemm_pack_b of A^T): P->prep or Apw */
    float *Apw;         /* where px_pack_worker packs it (NULL: prepared) */
    ptrdiff_t *off;     /* [rows] where row (cs, q, t) is, from a window's start */
    float *frame;       /* [images of a group][Cs][Hf][Wf] */
    const float **at;   /* [positions of a group] where each window starts */
    float *out;         /* [positions of a group][Mp] */
    int Mp, n0, n1;     /* the group: images [n0, n1) */
    float *split;       /* px_split_worker: nth slices of `slice` floats (frame, at, out) */
    size_t slice;
    int gi;             /* and images per group */
} Px;

static void px_pack_worker(void *arg, int ith, int nth) {
    Px *X = arg;
    const Prod *P = X->P;
    long lo, hi;
    par_range((P->M + gemm_nr() - 1) / gemm_nr(), ith, nth, &lo, &hi);
    gemm_pack_b(P->rows, P->M, P->A, P->roff, P->rcs, X->Apw, (int)lo, (int)hi);
}

/* Planes [lo, hi) of the group's frame (of images [n0, n1)). */
static void px_frame_planes(const Px *X, long lo, long hi) {
    const Prod *P = X->P;
    const Gather *g = &P->g;
    for (long pl = lo; pl < hi; pl++)
        frame_plane(g, &X->f, P->src + (size_t)(X->n0 + pl / g->Cs) * P->src_img + (size_t)(pl % g->Cs) * g->Hs * g->Ws,
                    X->frame + (size_t)pl * X->f.plane);
}

/* Positions [lo, hi) of the group: where each window starts in the frame. */
static void px_window_starts(const Px *X, long lo, long hi) {
    const Gather *g = &X->P->g;
    const int G = g->Hg * g->Wg;
    for (long p = lo; p < hi; p++) {
        const int n = (int)(p / G), u = (int)(p % G) / g->Wg, v = (int)(p % G) % g->Wg;
        X->at[p] = X->frame + (size_t)n * X->f.img + (size_t)(u * g->gh + X->f.top) * X->f.Wf + (size_t)v * g->gw +
                   X->f.left;
    }
}

/* The group's frame (planes split between the threads) and its window starts. */
static void px_frame_worker(void *arg, int ith, int nth) {
    Px *X = arg;
    const Gather *g = &X->P->g;
    const int ni = X->n1 - X->n0, G = g->Hg * g->Wg;
    long lo, hi;
    par_range((long)ni * g->Cs, ith, nth, &lo, &hi);
    px_frame_planes(X, lo, hi);
    par_range((long)ni * G, ith, nth, &lo, &hi);
    px_window_starts(X, lo, hi);
}

/* Channels [m0, m1) of the group's out written to dst, as block_finish does: PX_FIN_CH
 * channels at a time, each position's run of them read once and transposed into rows
 * in L1 (reading one channel at a time would stride through out once per channel:
 * 15% of a 64-channel 8x8 forward). */
static void px_finish(const Px *X, int m0, int m1) {
    const Prod *P = X->P;
    const int Hg = P->g.Hg, Wg = P->g.Wg, G = Hg * Wg;
    const size_t plane = (size_t)P->Hd * P->Wd;
    /* where dst's plane is the grid itself (a forward's y, a stride-1 dx), a whole
     * plane is one contiguous run: short rows (8x8 maps) then still fill vectors */
    const int whole = P->Hd == Hg && P->Wd == Wg && P->a == 0 && P->b == 0 && P->sa == 1 && P->sb == 1 &&
                      G <= PX_FIN_RUN;
    const int run = whole ? G : Wg, nrun = whole ? 1 : Hg;
    float rows[PX_FIN_CH][PX_FIN_RUN]; /* a run of PX_FIN_CH channels, transposed */
    Epi e[PX_FIN_CH];
    GAD_ASSERT(Wg <= PX_FIN_RUN && (P->accumulate || P->sb == 1));
    for (int mb = m0; mb < m1; mb += PX_FIN_CH) {
        const int nm = imin(PX_FIN_CH, m1 - mb);
        for (int c = 0; c < nm; c++) e[c] = epi_of(P, mb + c);
        for (int n = X->n0; n < X->n1; n++)
            for (int u = 0; u < nrun; u++) {
                const float *o = X->out + ((size_t)(n - X->n0) * G + (size_t)u * run) * X->Mp + mb;
                for (int v = 0; v < run; v++, o += X->Mp) /* each position's channels: one read */
                    for (int c = 0; c < nm; c++) rows[c][v] = o[c];
                for (int c = 0; c < nm; c++) {
                    const float *row = rows[c];
                    float *dr = P->dst + n * P->dst_img + (mb + c) * plane + (size_t)(P->a + P->sa * u) * P->Wd + P->b;
                    if (!P->accumulate) epi_row(dr, row, run, &e[c]);
                    else if (P->fresh) fresh_row(P, dr, row, run, P->sb);
                    else if (P->sb == 1) add_floats(dr, row, run);
                    else
                        for (int k = 0; k < run; k++) dr[k * P->sb] += row[k];
                }
            }
    }
}

/* The group's product for the thread's panels of M, then those channels written out. */
static void px_product_worker(void *arg, int ith, int nth) {
    Px *X = arg;
    const Prod *P = X->P;
    const int nr = gemm_nr(), pos = (X->n1 - X->n0) * P->g.Hg * P->g.Wg;
    long lo, hi;
    par_range((P->M + nr - 1) / nr, ith, nth, &lo, &hi);
    const int m0 = (int)lo * nr, m1 = imin(P->M, (int)hi * nr);
    if (m1 <= m0) return;
    gemm_pix_st(pos, m1 - m0, P->rows, X->at, X->off, X->Ap, P->M, m0, 0.0f, X->out + m0, X->Mp);
    px_finish(X, m0, m1);
}

/* The split: each thread its own images, in groups of X->gi, with its own frame,
 * window starts and out (slice ith of X->split), every channel: nothing it writes is
 * read by the other threads (this VM moves cache lines between its cores slowly: the
 * shared frame cost 64ch 8x8 batch 32 more with two threads than with one). */
static void px_split_worker(void *arg, int ith, int nth) {
    const Px *S = arg;
    const Prod *P = S->P;
    const Gather *g = &P->g;
    const int G = g->Hg * g->Wg;
    long lo, hi;
    par_range(P->bl.N, ith, nth, &lo, &hi);
    Px X = *S;
    X.frame = S->split + (size_t)ith * S->slice;
    X.at = (const float **)(X.frame + ws_round(sizeof(float) * S->gi * X.f.img) / sizeof(float));
    X.out = (float *)X.at + ws_round(sizeof(float *) * (size_t)S->gi * G) / sizeof(float);
    for (X.n0 = (int)lo; X.n0 < hi; X.n0 = X.n1) {
        X.n1 = imin((int)hi, X.n0 + S->gi);
        px_frame_planes(&X, 0, (long)(X.n1 - X.n0) * g->Cs);
        px_window_starts(&X, 0, (long)(X.n1 - X.n0) * G);
        gemm_pix_st((X.n1 - X.n0) * G, P->M, P->rows, X.at, X.off, X.Ap, P->M, 0, 0.0f, X.out, X.Mp);
        px_finish(&X, 0, P->M);
    }
}

static void px_run(Prod *P, Workspace *ws) {
    const Gather *g = &P->g;
    const int nr = gemm_nr(), gi = px_images(g, P->bl.N), G = g->Hg * g->Wg, nth = par_nthreads();
    Px X;
    X.P = P;
    X.f = px_frame(g);
    X.Mp = (P->M + nr - 1) / nr * nr;
    X.Apw = P->prep ? NULL : ws_floats(ws, ws_round(sizeof(float) * gemm_packed_b_floats(P->rows, P->M)) / sizeof(float));
    X.Ap = P->prep ? P->prep : X.Apw;
    X.off = ws_alloc(ws, sizeof(ptrdiff_t) * (size_t)P->rows);
    for (int cs = 0, r = 0; cs < g->Cs; cs++)
        for (int q = 0; q < g->nti; q++)
            for (int t = 0; t < g->ntj; t++, r++)
                X.off[r] = (ptrdiff_t)cs * (ptrdiff_t)X.f.plane + (ptrdiff_t)(g->oi0 + g->si * q) * X.f.Wf +
                           (g->oj0 + g->sj * t);
    X.gi = px_split_images(g, P->bl.N, nth);
    X.slice = px_group_floats(g, P->M, X.gi);
    if (nth > 1 && P->bl.N >= nth && ws->cap - ws->used >= ws_round(sizeof(float) * (size_t)nth * X.slice)) {
        X.split = ws_floats(ws, (size_t)nth * X.slice); /* each thread its own images */
        if (X.Apw) par_run(px_pack_worker, &X);
        par_run(px_split_worker, &X);
        return;
    }
    X.frame = ws_floats(ws, ws_round(sizeof(float) * gi * X.f.img) / sizeof(float));
    X.at = ws_alloc(ws, sizeof(float *) * (size_t)gi * G);
    X.out = ws_floats(ws, ws_round(sizeof(float) * (size_t)gi * G * X.Mp) / sizeof(float));
    if (X.Apw) par_run(px_pack_worker, &X);
    for (X.n0 = 0; X.n0 < P->bl.N; X.n0 = X.n1) {
        X.n1 = imin(P->bl.N, X.n0 + gi);
        par_run(px_frame_worker, &X);
        par_run(px_product_worker, &X);
    }
}

/* Run the product with the slices available in ws (at least one). */
static void prod_run(Prod *P, Workspace *ws) {
    if (P->bl.N == 0 || P->rows == 0 || P->bl.G == 0) return;
    if (P->px) {
        size_t mark = ws_mark(ws);
        px_run(P, ws);
        ws_release(ws, mark);
        return;
    }
    const int nth = par_nthreads();
    size_t mark = ws_mark(ws);
    P->wd = P->col2im || P->tA ? P->wd : wide_plan(&P->g, WIDE_TARGET, WIDE_MIN_W);
    if (P->wd.on) {
        P->bl = wide_blocks(&P->g, &P->wd, P->bl.N);
        P->off = wide_offsets(&P->g, &P->wd, ws);
        P->slice = wide_slice(&P->g, &P->wd, P->M, &P->out_at);
    } else {
        P->slice = slice_floats(P->rows, P->M, P->bl.width);
        P->out_at = (size_t)P->rows * P->bl.width;
    }
    /* the weights packed once, not once per block (and per thread): wide blocks
     * always take them packed, other blocks when gemm would pack them itself */
    P->Ap = NULL;
    if (P->wd.on || gemm_packs_a(P->tA, P->M, P->bl.width, P->rows)) {
        P->Ap = ws_floats(ws, packed_floats(P->M, P->rows));
        par_run(pack_worker, P);
    }
    size_t avail = (ws->cap - ws->used) / (P->slice * sizeof(float));
    GAD_ASSERT(avail >= 1); /* the caller forgot ws_reserve(conv_scratch_bytes()) */
    P->nslices = (int)(avail < (size_t)nth ? avail : (size_t)nth);
    P->scratch = ws_floats(ws, (size_t)P->nslices * P->slice);
    if (P->wd.on) /* the slack after each frame, read as padding columns only */
        for (int k = 0; k < P->nslices; k++) frame_slack(&P->g, &P->wd, slice_cols(P, k));
    if (per_thread(P->bl.nblocks, nth, P->nslices) && !(P->col2im && P->bl.pieces)) {
        par_run(own_blocks_worker, P);
    } else {
        for (int i = 0; i < P->bl.nblocks; i++) {
            P->cur = i;
            par_run(shared_gather_worker, P);
            par_run(shared_product_worker, P);
            par_run(shared_finish_worker, P);
        }
    }
    ws_release(ws, mark);
}

/* The forward by the direct route: grids under wide blocks' width (and 28-wide ones
 * with 512 channels or more), enough channels, and a batch with enough positions to
 * pay for packing the transposed weights (measured, batch 8, 2 threads: 4-11% faster
 * at 7x7 to 28x28, slower at 56x56 or with 128 channels at 28x28; at batch 1 a third
 * slower at 7x7). Any batch may take either route: each output is the same gemm
 * element on both, so the same bits. */
static int fwd_by_px(const ConvShape *s, int N) {
    const int W = s->Wo;
    return s->K >= PX_MIN_M && (long)N * s->Ho * W >= PX_MIN_POSITIONS &&
           (W < WIDE_MIN_W || (W <= WIDE_MIN_W && s->K >= 512));
}

/* ---- the three gathers ---- */

static Gather fwd_gather(const ConvShape *s) {
    const Taps t = live_taps(s);
    Gather g = {s->C, s->H, s->W, s->Ho, s->Wo, s->sh, s->sw, t.nti, t.ntj, t.ilo - s->ph, 1, t.jlo - s->pw, 1};
    return g;
}

/* wp [K, C*nti*ntj] = the live taps of w [K, C, kh, kw] (k split between threads). */
typedef struct {
    const ConvShape *s;
    Taps t;
    const float *w;
    float *wp;
    const float *dwp; /* dw_worker: dw += dwp scattered back to the live taps */
    float *dw;
} TapJob;

static void taps_worker(void *arg, int ith, int nth) {
    const TapJob *j = arg;
    const ConvShape *s = j->s;
    long lo, hi;
    par_range(s->K, ith, nth, &lo, &hi);
    const int nti = j->t.nti, ntj = j->t.ntj, kk = s->kh * s->kw;
    const size_t first = (size_t)j->t.ilo * s->kw + j->t.jlo; /* the first live tap in a kernel */
    for (size_t kc = (size_t)lo * s->C; kc < (size_t)hi * s->C; kc++) { /* (k, c) pairs */
        const size_t full = kc * kk + first, part = kc * nti * ntj;
        for (int q = 0; q < nti; q++)
            for (int r = 0; r < ntj; r++) {
                if (j->dw) j->dw[full + (size_t)q * s->kw + r] += j->dwp[part + (size_t)q * ntj + r];
                else j->wp[part + (size_t)q * ntj + r] = j->w[full + (size_t)q * s->kw + r];
            }
    }
}

/* The weights of the live taps: w itself when none are dropped, else a copy in ws. */
static const float *live_weights(const ConvShape *s, const float *w, Workspace *ws) {
    const Taps t = live_taps(s);
    if (!pruned(s, t)) return w;
    TapJob j = {s, t, w, ws_floats(ws, (size_t)s->K * s->C * t.nti * t.ntj), NULL, NULL};
    par_run(taps_worker, &j);
    return j.wp;
}

static size_t live_floats(const ConvShape *s) {
    const Taps t = live_taps(s);
    return pruned(s, t) ? ws_round(sizeof(float) * (size_t)s->K * s->C * t.nti * t.ntj) / sizeof(float) : 0;
}

/* dx class (a, b): dx positions (a + sh*u, b + sw*v). Taps i = ia + sh*q with
 * ia = (a + ph) mod sh reach them from dy row u + (a + ph - i)/sh. Sets *ia, *jb;
 * the gather has no rows when the class is empty or no tap reaches it. */
static Gather dx_class(const ConvShape *s, int a, int b, int *ia, int *jb) {
    *ia = (a + s->ph) % s->sh;
    *jb = (b + s->pw) % s->sw;
    Gather g;
    g.Cs = s->K; g.Hs = s->Ho; g.Ws = s->Wo;
    g.Hg = a < s->H ? (s->H - a + s->sh - 1) / s->sh : 0;
    g.Wg = b < s->W ? (s->W - b + s->sw - 1) / s->sw : 0;
    g.gh = g.gw = 1;
    g.nti = *ia < s->kh ? (s->kh - 1 - *ia) / s->sh + 1 : 0;
    g.ntj = *jb < s->kw ? (s->kw - 1 - *jb) / s->sw + 1 : 0;
    g.oi0 = (a + s->ph - *ia) / s->sh; g.si = -1;
    g.oj0 = (b + s->pw - *jb) / s->sw; g.sj = -1;
    if (g.Hg == 0 || g.Wg == 0) g.nti = g.ntj = 0;
    return g;
}

static int dx_classes_cover(const ConvShape *s);

/* Stride-1 maps under wide blocks' width with fewer positions than output channels
 * (where col2im would be used) take the gather by the direct route instead (px_run).
 * Measured, 2 threads: 14x14 15-24% faster at batch 8 and the same at batch 1; 7x7
 * (512 channels) 15% faster at batch 8 (11.1 -> 9.4 ms) but 20% slower at batch 1
 * (1.44 -> 1.73 ms: packing the weights, a fixed cost per call, is then half the
 * work). The batches gad runs (training, attribution steps) favour the direct route;
 * maps under 7x7 keep col2im. Decided by the shape alone (it sets the bits). */
#ifndef PX_DX_MIN_POSITIONS
#define PX_DX_MIN_POSITIONS 49
#endif
static int dx_by_px(const ConvShape *s) {
    size_t tap;
    const int P = s->Ho * s->Wo;
    return s->sh == 1 && s->sw == 1 && s->W < WIDE_MIN_W && s->C >= PX_MIN_M && P >= PX_DX_MIN_POSITIONS &&
           P < s->K && !point_map(s, &tap) && dx_classes_cover(s);
}

/* The classes of the gather route (not col2im) by the direct route: always where
 * dx_by_px chose them, else on stride-1 grids under 28 wide with a batch of enough
 * positions (batch 8 or 32, 2 threads: 9-10% faster at 16x16; at 28x28 or more level
 * or slower). Both give each dx element the same gemm element, so the same bits:
 * the batch may choose. */
static int dx_px(const ConvShape *s, int N) {
    return dx_by_px(s) || (s->sh == 1 && s->sw == 1 && s->W < WIDE_MIN_W && s->C >= PX_MIN_M &&
                           (long)N * s->H * s->W >= PX_MIN_POSITIONS);
}

/* The classic way, dcols = w^T dy then col2im, instead of the gather when it is
 * cheaper: few input channels (a network's first layer: the gathered dy would hold
 * K*taps rows for only C output rows), or few positions per image (fewer than K:
 * building Wt, K*C*taps floats per call, would cost more than the scatter of
 * C*taps*P). Decided by the shape alone, never the batch. */
static int dx_by_col2im(const ConvShape *s) { return (4 * s->C <= s->K || s->Ho * s->Wo < s->K) && !dx_by_px(s); }

static Gather dy_identity(const ConvShape *s) {
    Gather g = {s->K, s->Ho, s->Wo, s->Ho, s->Wo, 1, 1, 1, 1, 0, 1, 0, 1};
    return g;
}

/* ---- scratch ----
 * Sized for any batch up to s->N: a grouped block never holds more than
 * min(N, target / G) images. */

static int max_width(int N, int G, int target) {
    if (G > target) {
        int pieces = (G + target - 1) / target;
        return (G + pieces - 1) / pieces;
    }
    return imin(N, target / G) * G;
}

static size_t fwd_floats(const ConvShape *s, int nth) {
    Gather g = fwd_gather(s);
    const Wide w = wide_plan(&g, WIDE_TARGET, WIDE_MIN_W);
    const int rows = g_rows(&g);
    /* the direct route's scratch grows with the batch: a smaller batch takes either */
    const size_t px = fwd_by_px(s, s->N) ? px_floats(&g, s->K, s->N, nth) : 0;
    const size_t live = live_floats(s) + packed_floats(s->K, rows);
    if (w.on) return live + (px > wide_floats(&g, &w, s->K, nth) ? px : wide_floats(&g, &w, s->K, nth));
    const size_t sl = (size_t)nth * slice_floats(rows, s->K, max_width(s->N, s->Ho * s->Wo, cols_target(rows)));
    return live + (px > sl ? px : sl);
}

/* The largest class: its Wt and its slices (col2im: the slices of dcols). */
static size_t dx_floats(const ConvShape *s, int nth) {
    if (dx_by_col2im(s)) {
        const Taps t = live_taps(s);
        return live_floats(s) + packed_floats(s->C * t.nti * t.ntj, s->K) +
               (size_t)nth * slice_floats(s->K, s->C * t.nti * t.ntj, max_width(s->N, s->Ho * s->Wo, cols_target(s->K)));
    }
    size_t most = 0;
    for (int a = 0; a < s->sh; a++)
        for (int b = 0; b < s->sw; b++) {
            int ia, jb;
            Gather g = dx_class(s, a, b, &ia, &jb);
            const int rows = g_rows(&g);
            if (!rows) continue;
            const Wide w = wide_plan(&g, WIDE_TARGET, WIDE_MIN_W);
            /* the direct route, the gather, or (dx_px: the batch chooses) either */
            const size_t px = ws_round(sizeof(ptrdiff_t) * rows) / sizeof(float) + px_floats(&g, s->C, s->N, nth);
            const size_t ga = ws_round(sizeof(float) * (size_t)s->C * rows) / sizeof(float) + packed_floats(s->C, rows) +
                              (w.on ? wide_floats(&g, &w, s->C, nth)
                                    : (size_t)nth * slice_floats(rows, s->C, max_width(s->N, g.Hg * g.Wg, cols_target(rows))));
            const size_t f = dx_by_px(s) ? px : dx_px(s, s->N) && px > ga ? px : ga;
            if (f > most) most = f;
        }
    return most;
}

/* Rows of the weight gradient's block: gathered x (live taps) and dy. */
static int dw_rows(const ConvShape *s) {
    const Taps t = live_taps(s);
    return s->C * t.nti * t.ntj + s->K;
}

/* The weight gradient takes wide blocks (see backward_dw_wide) and their scratch. */
static int dw_wide(const ConvShape *s, Gather *g, Wide *w) {
    *g = fwd_gather(s);
    *w = wide_plan(g, DW_WIDE_TARGET, DW_WIDE_MIN_W);
    /* few rows (a first layer: C*taps = 27) would not pay for dy's packing per thread */
    return w->on && !pruned(s, live_taps(s)) && g_rows(g) >= DW_WIDE_MIN_ROWS;
}

static size_t dw_wide_floats(const ConvShape *s, const Gather *g, const Wide *w) {
    return offsets_floats(g) + frame_floats(g, w) +
           ws_round(sizeof(float) * (size_t)s->K * w->width) / sizeof(float);
}

static size_t dw_px_floats(const ConvShape *s);
static int dw_by_px(const ConvShape *s);

static size_t dw_floats(const ConvShape *s) {
    Gather g;
    Wide w;
    if (dw_wide(s, &g, &w)) return dw_wide_floats(s, &g, &w);
    if (dw_by_px(s)) return dw_px_floats(s);
    return live_floats(s) + slice_floats(dw_rows(s), 0, max_width(s->N, s->Ho * s->Wo, dw_target(dw_rows(s))));
}

size_t conv_scratch_bytes(const ConvShape *s) {
    int nth = par_nthreads();
    size_t tap;
    if (point_map(s, &tap)) {
        size_t a = linear_scratch_bytes(s->C), b = linear_scratch_bytes(s->K), c = dw_floats(s) * sizeof(float);
        return a > b ? (a > c ? a : c) : (b > c ? b : c);
    }
    size_t f = fwd_floats(s, nth), x = dx_floats(s, nth), w = dw_floats(s), wi = wino_scratch_bytes(s, nth);
    if (x > f) f = x;
    if (w > f) f = w;
    return f * sizeof(float) > wi ? f * sizeof(float) : wi;
}

/* ---- forward ---- */

void conv2d_forward(const ConvShape *s, const float *x, const float *w, const float *b, float *y, Workspace *ws) {
    conv2d_forward_act(s, x, w, b, y, 0, ws);
}

void conv2d_forward_act(const ConvShape *s, const float *x, const float *w, const float *b, float *y, int relu,
                        Workspace *ws) {
    conv2d_forward_affine(s, x, w, NULL, b, NULL, NULL, y, relu, ws);
}

/* Prepared weights pay where a call has few positions: Winograd's transformed kernels
 * (measured with the bound at 1024 tiles, 2 threads: resnet18 224x224 batch 1 forward
 * 60.5 -> 70 images/s, input gradient 27.4 -> 31.3, with 49 to 784 tiles per call;
 * batch 8, 392 to 6272 tiles: 1%; at 256 batch 1 was the same within the noise), and the input gradient's direct route packed weights (dx_prep_px). The bounds
 * keep the memory where it pays: at 1024 tiles vgg16 224x224 batch 8 kept 96 MiB of
 * transformed 14x14 kernels (392 tiles) for about 1%, its peak RSS 1300 -> 1396 MiB. */
#define PREP_MAX_TILES 256
#define PREP_MAX_POSITIONS 1024

static int dx_by_px(const ConvShape *s);
static Gather dx_class(const ConvShape *s, int a, int b, int *ia, int *jb);

/* The input gradient by the direct route with one class (stride 1), chosen by the
 * shape alone: its weights packed for gemm_pix_st may be prepared. */
static int dx_prep_px(const ConvShape *s) { return s->sh == 1 && s->sw == 1 && dx_by_px(s); }

/* The direct route's row offsets of class (ia, jb)'s taps into w: row r = (k, q, t). */
static void dx_roff(const ConvShape *s, const Gather *g, int ia, int jb, ptrdiff_t *roff) {
    for (int k = 0, r = 0; k < s->K; k++)
        for (int q = 0; q < g->nti; q++)
            for (int t = 0; t < g->ntj; t++, r++)
                roff[r] = ((ptrdiff_t)k * s->C * s->kh + ia + s->sh * q) * s->kw + jb + s->sw * t;
}

size_t conv_prep_floats(const ConvShape *s, int dx) {
    const long tiles = (long)s->N * ((s->H + 1) / 2) * ((s->W + 1) / 2);
    if (wino_applies(s, dx)) return tiles <= PREP_MAX_TILES ? wino_prep_floats(s, dx) : 0;
    if (dx && dx_prep_px(s) && (long)s->N * s->H * s->W <= PREP_MAX_POSITIONS) {
        int ia, jb;
        const Gather g = dx_class(s, 0, 0, &ia, &jb);
        return gemm_packed_b_floats(g_rows(&g), s->C);
    }
    return 0;
}

void conv_prep(const ConvShape *s, const float *w, int dx, float *dst, Workspace *ws) {
    GAD_ASSERT(conv_prep_floats(s, dx) > 0);
    if (wino_applies(s, dx)) {
        wino_prep(s, w, dx, dst);
        return;
    }
    Prod P; /* as backward_dx sets it up for the direct route, packing into dst */
    memset(&P, 0, sizeof P);
    int ia, jb;
    const Gather g = dx_class(s, 0, 0, &ia, &jb);
    const size_t mark = ws_mark(ws);
    ptrdiff_t *roff = ws_alloc(ws, sizeof(ptrdiff_t) * (size_t)g_rows(&g));
    dx_roff(s, &g, ia, jb, roff);
    P.A = w;
    P.roff = roff;
    P.rcs = (size_t)s->kh * s->kw;
    P.M = s->C;
    P.rows = g_rows(&g);
    Px X;
    memset(&X, 0, sizeof X);
    X.P = &P;
    X.Apw = dst;
    par_run(px_pack_worker, &X);
    ws_release(ws, mark);
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
    GAD_ASSERT(!prep || wino_applies(s, 0));
    if (wino_applies(s, 0)) {
        wino_forward(s, x, w, prep, b, scale, shift, relu, y, ws);
        return;
    }
    Prod P;
    memset(&P, 0, sizeof P);
    size_t mark = ws_mark(ws);
    P.g = fwd_gather(s);
    P.src = x;
    P.src_img = (size_t)s->C * s->H * s->W;
    P.A = live_weights(s, w, ws);
    P.M = s->K;
    P.rows = g_rows(&P.g);
    P.px = fwd_by_px(s, s->N);
    P.rcs = (size_t)P.rows; /* A^T packed: column m is row m of A */
    P.bl = make_blocks(s->N, s->Ho * s->Wo, cols_target(P.rows));
    P.dst = y;
    P.dst_img = (size_t)s->K * s->Ho * s->Wo;
    P.Hd = s->Ho; P.Wd = s->Wo; P.sa = P.sb = 1;
    P.bias = b;
    P.scale = scale;
    P.shift = shift;
    P.relu = relu;
    prod_run(&P, ws);
    ws_release(ws, mark);
}

/* ---- backward ---- */

/* Wt [C, K*nti*ntj] of class taps: Wt[c][(k*nti + q)*ntj + t] = w[k][c][ia + sh*q][jb + sw*t]. */
typedef struct {
    const ConvShape *s;
    const Gather *g;
    const float *w;
    float *wt;
    int ia, jb;
} WtJob;

static void wt_worker(void *arg, int ith, int nth) {
    const WtJob *j = arg;
    const ConvShape *s = j->s;
    const int nti = j->g->nti, ntj = j->g->ntj, rows = g_rows(j->g);
    long lo, hi;
    par_range(s->K, ith, nth, &lo, &hi); /* w read in order; wt rows written a few floats at a time */
    for (long k = lo; k < hi; k++)
        for (int c = 0; c < s->C; c++) {
            const float *wk = j->w + ((size_t)k * s->C + c) * s->kh * s->kw;
            float *o = j->wt + (size_t)c * rows + (size_t)k * nti * ntj;
            for (int q = 0; q < nti; q++)
                for (int t = 0; t < ntj; t++) *o++ = wk[(j->ia + s->sh * q) * s->kw + j->jb + s->sw * t];
        }
}

/* Does every dx position belong to an input-gradient class that some tap reaches? */
static int dx_classes_cover(const ConvShape *s) {
    for (int a = 0; a < s->sh; a++)
        for (int b = 0; b < s->sw; b++) {
            int ia, jb;
            Gather g = dx_class(s, a, b, &ia, &jb);
            if (g.Hg > 0 && g.Wg > 0 && g_rows(&g) == 0) return 0;
        }
    return 1;
}

/* dx += (or, fresh, =) the input gradient; with relu_y (fresh only) through the
 * backward of the ReLU whose output relu_y was. */
static void backward_dx(const ConvShape *s, const float *w, const float *prep, const float *dy, float *dx,
                        int fresh, const float *relu_y, ReluRule rule, Workspace *ws) {
    size_t tap, T = (size_t)s->kh * s->kw;
    GAD_ASSERT(!relu_y || fresh);
    GAD_ASSERT(!prep || wino_applies(s, 1) || dx_prep_px(s));
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
    if (point_map(s, &tap)) {
        linear_backward_dx_strided(s->N, s->C, s->K, dy, w + tap, (size_t)s->C * T, T, dx, ws);
        return;
    }
    if (dx_by_col2im(s)) {
        const Taps t = live_taps(s);
        size_t mark = ws_mark(ws);
        Prod P;
        memset(&P, 0, sizeof P);
        P.g = dy_identity(s);
        P.src = dy;
        P.src_img = (size_t)s->K * s->Ho * s->Wo;
        P.A = live_weights(s, w, ws);
        P.tA = 1;
        P.M = s->C * t.nti * t.ntj;
        P.rows = s->K;
        P.bl = make_blocks(s->N, s->Ho * s->Wo, cols_target(P.rows));
        P.dst = dx;
        P.dst_img = (size_t)s->C * s->H * s->W;
        P.accumulate = 1;
        P.col2im = s;
        prod_run(&P, ws);
        ws_release(ws, mark);
        return;
    }
    size_t mark = ws_mark(ws);
    for (int a = 0; a < s->sh; a++)
        for (int b = 0; b < s->sw; b++) {
            int ia, jb;
            Gather g = dx_class(s, a, b, &ia, &jb);
            const int rows = g_rows(&g);
            if (!rows) continue; /* no tap reaches these positions: nothing to add */
            Prod P;
            memset(&P, 0, sizeof P);
            P.px = dx_px(s, s->N);
            GAD_ASSERT(!prep || P.px);
            if (P.px) { /* the class's taps read from w as they are packed: row r = (k, q, t) */
                ptrdiff_t *roff = ws_alloc(ws, sizeof(ptrdiff_t) * (size_t)rows);
                dx_roff(s, &g, ia, jb, roff);
                P.A = w;
                P.roff = roff;
                P.rcs = (size_t)s->kh * s->kw;
                P.prep = prep; /* or packed per call */
            } else {
                float *wt = ws_floats(ws, (size_t)s->C * rows);
                WtJob wj = {s, &g, w, wt, ia, jb};
                par_run(wt_worker, &wj);
                P.A = wt;
            }
            P.g = g;
            P.src = dy;
            P.src_img = (size_t)s->K * s->Ho * s->Wo;
            P.M = s->C;
            P.rows = rows;
            P.bl = make_blocks(s->N, g.Hg * g.Wg, cols_target(rows));
            P.dst = dx;
            P.dst_img = (size_t)s->C * s->H * s->W;
            P.Hd = s->H; P.Wd = s->W; P.a = a; P.b = b; P.sa = s->sh; P.sb = s->sw;
            P.accumulate = 1;
            P.fresh = fresh;
            P.relu_y = relu_y;
            P.rule = rule;
            prod_run(&P, ws);
            ws_release(ws, mark);
        }
}

/* dw += dy_block [K, cols] . X_block^T, blocks in batch order; the gathers are split
 * between threads, the product uses the threaded gemm. */
typedef struct {
    const ConvShape *s;
    Gather g;
    Blocks bl;
    const float *x, *dy;
    float *cols, *dyb;   /* [CKK, width], [K, width] */
    int cur;
} DwJob;

static void dw_gather_worker(void *arg, int ith, int nth) {
    const DwJob *j = arg;
    const ConvShape *s = j->s;
    int n0, n1, p0, p1;
    block_of(&j->bl, j->cur, &n0, &n1, &p0, &p1);
    const int P = s->Ho * s->Wo, w = p1 - p0, ld = (n1 - n0) * w, rows = g_rows(&j->g);
    const size_t xs = (size_t)s->C * s->H * s->W, ys = (size_t)s->K * P;
    long lo, hi;
    if (!(n1 - n0 == 1 && g_identity(&j->g))) {
        par_range(rows, ith, nth, &lo, &hi);
        for (int n = n0; n < n1; n++)
            gather(&j->g, j->x + n * xs, (int)lo, (int)hi, p0, p1, j->cols + (size_t)(n - n0) * w, (size_t)ld);
    }
    if (n1 - n0 > 1) { /* dy of several images side by side */
        par_range(s->K, ith, nth, &lo, &hi);
        for (int n = n0; n < n1; n++)
            for (long k = lo; k < hi; k++)
                memcpy(j->dyb + (size_t)k * ld + (size_t)(n - n0) * w, j->dy + n * ys + (size_t)k * P + p0,
                       sizeof(float) * (size_t)w);
    }
}

/* Wide blocks for the weight gradient: dw^T [CKK, K] += X . dyw^T per block, X's rows
 * windows of the block's frame of x (gemm_arows_st reads them in place: no gather)
 * and dyw the block's dy laid out on the wide grid, zero in the extra columns. The
 * threads build the frame and dyw together, then split X's rows (dw's columns). */
typedef struct {
    const ConvShape *s;
    Gather g;
    Wide w;
    Blocks bl;
    const float *x, *dy;
    float *frame, *dyw; /* [Cs*fplane + slack], [K, w.width] */
    const ptrdiff_t *off;
    float *dw;
    int cur;
} DwWide;

static void dw_wide_prep(void *arg, int ith, int nth) {
    const DwWide *j = arg;
    const ConvShape *s = j->s;
    const int Wp = j->w.Wp, Wo = s->Wo;
    int n0, n1, p0, p1;
    block_of(&j->bl, j->cur, &n0, &n1, &p0, &p1);
    long lo, hi;
    par_range(s->C, ith, nth, &lo, &hi);
    wide_frame(&j->g, &j->w, j->x + (size_t)n0 * s->C * s->H * s->W, p0 / Wp, (p1 - 1) / Wp + 1, (int)lo, (int)hi,
               j->frame);
    par_range(s->K, ith, nth, &lo, &hi);
    for (long k = lo; k < hi; k++) {
        const float *dyk = j->dy + ((size_t)n0 * s->K + k) * (size_t)s->Ho * s->Wo;
        float *d = j->dyw + (size_t)k * (p1 - p0);
        for (int u = p0 / Wp; u * Wp < p1; u++) { /* wide columns of row u: Wo from dy, then zeros */
            const int a = imax(p0, u * Wp), b = imin(p1, (u + 1) * Wp), v = imin(b, u * Wp + Wo);
            if (v > a) memcpy(d + (a - p0), dyk + (size_t)u * Wo + (a - u * Wp), sizeof(float) * (size_t)(v - a));
            if (b > v) zero(d + (imax(a, v) - p0), b - imax(a, v));
        }
    }
}

static void dw_wide_product(void *arg, int ith, int nth) {
    const DwWide *j = arg;
    const int K = j->s->K, rows = g_rows(&j->g);
    int n0, n1, p0, p1;
    block_of(&j->bl, j->cur, &n0, &n1, &p0, &p1);
    long lo, hi;
    par_range((rows + 7) / 8, ith, nth, &lo, &hi);
    const int m0 = (int)lo * 8, m1 = imin(rows, (int)hi * 8);
    if (m1 > m0)
        gemm_arows_st(m1 - m0, K, p1 - p0, j->frame + p0 % j->w.Wp, j->off + m0, j->dyw, p1 - p0, 1.0f, j->dw + m0, 1,
                      (size_t)rows);
}

static void backward_dw_wide(const ConvShape *s, const float *x, const float *dy, float *dw, Workspace *ws) {
    size_t mark = ws_mark(ws);
    DwWide j;
    memset(&j, 0, sizeof j);
    j.s = s;
    dw_wide(s, &j.g, &j.w);
    j.bl = wide_blocks(&j.g, &j.w, s->N);
    j.x = x;
    j.dy = dy;
    j.dw = dw;
    j.off = wide_offsets(&j.g, &j.w, ws);
    j.frame = ws_floats(ws, frame_floats(&j.g, &j.w));
    frame_slack(&j.g, &j.w, j.frame);
    j.dyw = ws_floats(ws, ws_round(sizeof(float) * (size_t)s->K * j.w.width) / sizeof(float));
    for (int i = 0; i < j.bl.nblocks; i++) {
        j.cur = i;
        par_run(dw_wide_prep, &j);
        par_run(dw_wide_product, &j);
    }
    ws_release(ws, mark);
}

/* The weight gradient of layers with few gathered rows and large kernels (ResNet's
 * 7x7 first layer: 147 rows) by the direct route, image by image:
 *   T [rows, K] (+)= X' . dy_n^T,   X'(r, p) = frame[at(r) + pos(p)]
 * with gemm_pix_st's rows the taps (each a pointer into the image's frame), its k
 * the positions (their offsets in the frame) and dy_n packed by panels of output
 * channels; dw += T^T at the end. No im2col of x (49 copies of it for a 7x7 kernel)
 * and no transposed packing of it. The sum over positions runs in gemm's k-blocks,
 * image after image: the bits depend on the batch (as every dw does), never on the
 * threads (they split T's columns by panels, or its rows when there is one panel). */
#ifndef DW_PX_MAX_ROWS
#define DW_PX_MAX_ROWS 255 /* gathered rows at most (wide blocks take 256 and more) */
#endif
#ifndef DW_PX_MIN_TAPS
#define DW_PX_MIN_TAPS 25  /* kernels of 5x5 and more. Measured, batch 8, 2 threads: ResNet's
                            * 7x7/2 3->64 at 224x224 17.3 -> 11.0 ms (b1 1.6 -> 1.3); VGG's 3x3
                            * 3->64 14.7 -> 18.9 and a 1x1/2 64->128 0.9 -> 1.5 (packing dy,
                            * one float per position and channel, does not pay for few taps) */
#endif

static int dw_by_px(const ConvShape *s) {
    const Taps t = live_taps(s);
    const Gather g = fwd_gather(s);
    return !pruned(s, t) && g_rows(&g) <= DW_PX_MAX_ROWS && s->kh * s->kw >= DW_PX_MIN_TAPS && s->K >= 32;
}

typedef struct {
    const ConvShape *s;
    Gather g;
    Frame f;
    const float *x, *dy;
    float *frame, *Bp, *T;  /* [Cs][Hf][Wf]; dy_n packed [P][Kp]; T [rows][Kp] */
    const float **at;       /* [rows] where tap r's window starts for position 0 */
    ptrdiff_t *pos;         /* [P] where each position is from there */
    int n, Kp;
} DwPx;

static size_t dw_px_floats(const ConvShape *s) {
    const Gather g = fwd_gather(s);
    const Frame f = px_frame(&g);
    const int rows = g_rows(&g), P = s->Ho * s->Wo, Kp = (s->K + gemm_nr() - 1) / gemm_nr() * gemm_nr();
    return (ws_round(sizeof(float) * f.img) + ws_round(sizeof(float) * gemm_packed_b_floats(P, s->K)) +
            ws_round(sizeof(float) * (size_t)rows * Kp) + ws_round(sizeof(float *) * (size_t)rows) +
            ws_round(sizeof(ptrdiff_t) * (size_t)P)) / sizeof(float);
}

/* Image n's frame (planes split) and dy_n packed (panels split). */
static void dw_px_prep(void *arg, int ith, int nth) {
    DwPx *j = arg;
    const ConvShape *s = j->s;
    const Gather *g = &j->g;
    const Frame *f = &j->f;
    const int P = s->Ho * s->Wo;
    long lo, hi;
    par_range(g->Cs, ith, nth, &lo, &hi);
    for (long c = lo; c < hi; c++)
        frame_plane(g, f, j->x + (size_t)j->n * s->C * s->H * s->W + (size_t)c * g->Hs * g->Ws,
                    j->frame + (size_t)c * f->plane);
    par_range((s->K + gemm_nr() - 1) / gemm_nr(), ith, nth, &lo, &hi);
    gemm_pack_b(P, s->K, j->dy + (size_t)j->n * s->K * P, NULL, (size_t)P, j->Bp, (int)lo, (int)hi);
}

static void dw_px_product(void *arg, int ith, int nth) {
    DwPx *j = arg;
    const ConvShape *s = j->s;
    const int P = s->Ho * s->Wo, rows = g_rows(&j->g), nr = gemm_nr(), mr = gemm_mr();
    const int panels = (s->K + nr - 1) / nr;
    const float beta = j->n ? 1.0f : 0.0f;
    long lo, hi;
    if (panels >= nth) { /* columns of T by panels */
        par_range(panels, ith, nth, &lo, &hi);
        const int c0 = (int)lo * nr, c1 = imin(s->K, (int)hi * nr);
        if (c1 > c0) gemm_pix_st(rows, c1 - c0, P, j->at, j->pos, j->Bp, s->K, c0, beta, j->T + c0, j->Kp);
    } else { /* rows of T by tiles */
        par_range((rows + mr - 1) / mr, ith, nth, &lo, &hi);
        const int r0 = (int)lo * mr, r1 = imin(rows, (int)hi * mr);
        if (r1 > r0)
            gemm_pix_st(r1 - r0, s->K, P, j->at + r0, j->pos, j->Bp, s->K, 0, beta, j->T + (size_t)r0 * j->Kp, j->Kp);
    }
}

static void backward_dw_px(const ConvShape *s, const float *x, const float *dy, float *dw, Workspace *ws) {
    const int P = s->Ho * s->Wo, nr = gemm_nr();
    size_t mark = ws_mark(ws);
    DwPx j;
    j.s = s;
    j.g = fwd_gather(s);
    j.f = px_frame(&j.g);
    j.x = x;
    j.dy = dy;
    j.Kp = (s->K + nr - 1) / nr * nr;
    const int rows = g_rows(&j.g);
    j.frame = ws_floats(ws, ws_round(sizeof(float) * j.f.img) / sizeof(float));
    j.Bp = ws_floats(ws, ws_round(sizeof(float) * gemm_packed_b_floats(P, s->K)) / sizeof(float));
    j.T = ws_floats(ws, (size_t)rows * j.Kp);
    j.at = ws_alloc(ws, sizeof(float *) * (size_t)rows);
    j.pos = ws_alloc(ws, sizeof(ptrdiff_t) * (size_t)P);
    const Gather *g = &j.g;
    for (int cs = 0, r = 0; cs < g->Cs; cs++)
        for (int q = 0; q < g->nti; q++)
            for (int t = 0; t < g->ntj; t++, r++)
                j.at[r] = j.frame + (ptrdiff_t)cs * (ptrdiff_t)j.f.plane + (ptrdiff_t)(g->oi0 + g->si * q + j.f.top) * j.f.Wf +
                          (g->oj0 + g->sj * t + j.f.left);
    for (int p = 0; p < P; p++)
        j.pos[p] = (ptrdiff_t)(p / g->Wg * g->gh) * j.f.Wf + (ptrdiff_t)(p % g->Wg) * g->gw;
    for (j.n = 0; j.n < s->N; j.n++) {
        par_run(dw_px_prep, &j);
        par_run(dw_px_product, &j);
    }
    for (int k = 0; k < s->K; k++) /* dw [K, rows] += T^T */
        for (int r = 0; r < rows; r++) dw[(size_t)k * rows + r] += j.T[(size_t)r * j.Kp + k];
    ws_release(ws, mark);
}

static void backward_dw(const ConvShape *s, const float *x, const float *dy, float *dw, Workspace *ws) {
    if (wino_applies(s, 0)) {
        wino_backward_dw(s, x, dy, dw, ws);
        return;
    }
    {
        Gather g;
        Wide w;
        if (dw_wide(s, &g, &w)) {
            backward_dw_wide(s, x, dy, dw, ws);
            return;
        }
    }
    if (dw_by_px(s)) {
        backward_dw_px(s, x, dy, dw, ws);
        return;
    }
    const int P = s->Ho * s->Wo;
    const size_t xs = (size_t)s->C * s->H * s->W, ys = (size_t)s->K * P;
    const Taps t = live_taps(s);
    size_t mark = ws_mark(ws);
    DwJob j;
    j.s = s;
    j.g = fwd_gather(s);
    const int CKK = g_rows(&j.g); /* live taps only */
    j.bl = make_blocks(s->N, P, dw_target(dw_rows(s)));
    j.x = x;
    j.dy = dy;
    j.cols = ws_floats(ws, (size_t)CKK * j.bl.width);
    j.dyb = ws_floats(ws, (size_t)s->K * j.bl.width);
    /* with taps left out, the blocks sum into dwp [K, CKK], added to dw's live taps at the end */
    float *dwp = pruned(s, t) ? ws_floats(ws, (size_t)s->K * CKK) : NULL;
    for (int i = 0; i < j.bl.nblocks; i++) {
        int n0, n1, p0, p1;
        block_of(&j.bl, i, &n0, &n1, &p0, &p1);
        j.cur = i;
        par_run(dw_gather_worker, &j);
        const int w = (n1 - n0) * (p1 - p0), one = n1 - n0 == 1;
        const float *A = one ? dy + n0 * ys + p0 : j.dyb, *B = j.cols;
        int lda = one ? P : w, ldb = w;
        if (one && g_identity(&j.g)) { B = x + n0 * xs + p0; ldb = P; }
        if (dwp) gemm(0, 1, s->K, CKK, w, 1.0f, A, lda, B, ldb, i ? 1.0f : 0.0f, dwp, CKK);
        else gemm(0, 1, s->K, CKK, w, 1.0f, A, lda, B, ldb, 1.0f, dw, CKK);
    }
    if (dwp) {
        TapJob tj = {s, t, NULL, NULL, dwp, dw};
        par_run(taps_worker, &tj);
    }
    ws_release(ws, mark);
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
