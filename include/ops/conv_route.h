/* conv_route: what the convolution's route files share (src/ops/conv*.c), private to
 * them: callers use ops/conv.h. The shapes a route works on (Taps, Gather), the blocks
 * of columns and the product over them (Blocks, Wide, Prod: conv_gemm.c), the small
 * row helpers every route uses, and each route file's entry points.
 * Not for: anything outside src/ops/conv*.c. */
#ifndef GAD_OPS_CONV_ROUTE_H
#define GAD_OPS_CONV_ROUTE_H
#include "core/ws.h"
#include "ops/act.h"
#include "ops/conv.h"
#include "ops/epi.h"
#include <stddef.h>
#include <stdint.h>

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* The taps that ever land inside the input: rows i in [ilo, ilo + nti), columns j in
 * [jlo, jlo + ntj). On small maps the others only ever see padding (a 3x3 kernel
 * on a 1x1 map: only the centre), so the forward, the weight gradient and the
 * col2im input gradient leave them out: their products are zeros added (they would
 * only make a difference for infinite weights). */
typedef struct { int ilo, nti, jlo, ntj; } Taps;

static inline Taps live_taps(const ConvShape *s) {
    const int ilo = imax(0, s->ph - (s->Ho - 1) * s->sh), ihi = imin(s->kh - 1, s->H - 1 + s->ph);
    const int jlo = imax(0, s->pw - (s->Wo - 1) * s->sw), jhi = imin(s->kw - 1, s->W - 1 + s->pw);
    Taps t = {ilo, ihi - ilo + 1, jlo, jhi - jlo + 1};
    return t;
}

static inline int pruned(const ConvShape *s, Taps t) { return t.nti < s->kh || t.ntj < s->kw; }

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

static inline int g_rows(const Gather *g) { return g->Cs * g->nti * g->ntj; }

/* x itself is the matrix (1x1, stride 1, no padding): no gather needed. */
static inline int g_identity(const Gather *g) {
    return g->nti == 1 && g->ntj == 1 && g->oi0 == 0 && g->oj0 == 0 && g->gh == 1 && g->gw == 1 &&
           g->Hg == g->Hs && g->Wg == g->Ws;
}


/* The forward's (and the weight gradient's) gather: x over the output grid, with the
 * stride, at the live taps. */
static inline Gather fwd_gather(const ConvShape *s) {
    const Taps t = live_taps(s);
    Gather g = {s->C, s->H, s->W, s->Ho, s->Wo, s->sh, s->sw, t.nti, t.ntj, t.ilo - s->ph, 1, t.jlo - s->pw, 1};
    return g;
}

static inline void zero(float *d, int n) {
    for (int k = 0; k < n; k++) d[k] = 0.0f;
}

/* d[0:n] += s[0:n], vectorised. */
static inline void add_floats(float *d, const float *s, int n) {
    int k = 0;
    for (; k + 16 <= n; k += 16) {
        float t[16], u[16];
        for (int j = 0; j < 16; j++) { t[j] = s[k + j]; u[j] = d[k + j]; }
        for (int j = 0; j < 16; j++) d[k + j] = u[j] + t[j];
    }
    for (; k < n; k++) d[k] += s[k];
}

/* d[0:n] = s[0:n] for the short rows of small maps (memcpy's call costs more there). */
static inline void copy_floats(float *d, const float *s, int n) {
    int k = 0;
    for (; k + 16 <= n; k += 16) {
        float t[16];
        for (int j = 0; j < 16; j++) t[j] = s[k + j];
        for (int j = 0; j < 16; j++) d[k + j] = t[j];
    }
    for (; k < n; k++) d[k] = s[k];
}

/* ---- blocks of columns ---- */
typedef struct {
    int N, G;       /* images, grid columns per image */
    int cut32;      /* pieces cut at multiples of 32 columns (wide blocks: whole panels) */
    int pieces;     /* > 0: each image cut into this many column ranges (block = piece) */
    int nblocks;    /* else the images are grouped into nblocks balanced groups */
    int width;      /* most columns of any block */
} Blocks;

/* Wide blocks (conv_wide.c): an implicit im2col over a zero-bordered frame. */
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


#define WIDE_TARGET 1024 /* wide columns per block (forward, input gradient) */
#define WIDE_MIN_W 28    /* narrowest grid that takes wide blocks (conv.c says why) */

/* ---- one product over blocks: dst (=|+=) A . gather(src) ----
 * A [M, rows]; grid point (u, v) of image n lands at
 *   dst[n*dst_img + m*Hd*Wd + (a + sa*u)*Wd + b + sb*v]. */
typedef struct {
    Gather g;
    const float *src;
    size_t src_img;          /* floats per source image */
    const float *A;          /* [M, rows], or [rows, M] when tA */
    int tA;
    float *Ap;               /* A packed once for all blocks (gemm_pack; set by conv_prod_run), or NULL */
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
    Wide wd;                 /* wide blocks (set by conv_prod_run) */
    ptrdiff_t *off;          /* wide: [rows] where each gathered row starts in the frame */
    int nslices;
    int cur;                 /* the block being shared (shared mode) */
    int px;                  /* small maps: a direct convolution (conv_px_run) instead of blocks; */
    const ptrdiff_t *roff;   /* then A (m, r) is A[roff[r] + m*rcs] (read in place when packed) */
    size_t rcs;
    const float *prep;       /* px: A already packed by the caller (conv_prep), or NULL */
} Prod;

/* The epilogues of a product's rows, for conv_gemm.c's blocks and conv_direct.c's
 * positions alike. The forward's for output channel m (ops/epi.h): */
static inline Epi epi_of(const Prod *P, int m) { return epi_for(P->bias, P->scale, P->shift, P->relu, m); }

/* A fresh write of v at dst + i: 0 + v, then through the ReLU's backward if any (the
 * ops of conv2d_backward onto zeros, then relu_backward_set). */
static inline float fresh_value(const Prod *P, size_t i, float v) {
    v = 0.0f + v;
    return P->relu_y ? 0.0f + relu_backward_term(P->rule, P->relu_y[i], v) : v;
}

/* fresh_value over a row: d[k*sb] for k < n from o[k] (o may be d when sb == 1). Unit
 * strides go to epi_dx_fresh (ops/epi.h: blocks that gcc vectorises, each element the
 * same operations as fresh_value): the dx epilogue of every input-gradient pass. */
static inline void fresh_row(const Prod *P, float *d, const float *o, int n, int sb) {
    if (sb == 1) {
        epi_dx_fresh(P->rule, P->relu_y ? P->relu_y + (d - P->dst) : NULL, d, o, n);
        return;
    }
    for (int k = 0; k < n; k++) d[k * sb] = fresh_value(P, (size_t)(d + k * sb - P->dst), o[k]);
}


/* dx class (a, b): dx positions (a + sh*u, b + sw*v). Taps i = ia + sh*q with
 * ia = (a + ph) mod sh reach them from dy row u + (a + ph - i)/sh. Sets *ia, *jb;
 * the gather has no rows when the class is empty or no tap reaches it. */
static inline Gather dx_class(const ConvShape *s, int a, int b, int *ia, int *jb) {
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

/* ---- conv_blocks.c: cutting a product's columns into blocks ---- */
/* Block width for a product whose gathered operand has `rows` rows (forward, input
 * gradient), and for the weight gradient's. */
int conv_cols_target(int rows);
int conv_dw_target(int rows);
Blocks conv_make_blocks(int N, int G, int target);
/* Block i: images [n0, n1), columns [p0, p1) of each. */
void conv_block_of(const Blocks *b, int i, int *n0, int *n1, int *p0, int *p1);
/* Floats of one thread's slice (gathered rows, then out [M, width]), and the most
 * columns of a block for batches up to N. */
size_t conv_slice_floats(int rows, int M, int width);
int conv_max_width(int N, int G, int target);

/* ---- conv_gemm.c: the product over blocks ---- */
/* The passes as products (conv.c chooses px: the direct route; else wide blocks where
 * the grid is at least WIDE_MIN_W wide, else im2col): y = conv(x, w) through the
 * forward's epilogue (conv2d_forward_affine's); dx += the input gradient by gathered
 * classes of dy (fresh and relu_y as conv2d_backward_fresh), or by col2im. */
void conv_forward_gemm(const ConvShape *s, const float *x, const float *w, const float *b, const float *scale,
                       const float *shift, int relu, int px, float *y, Workspace *ws);
void conv_dx_gather(const ConvShape *s, const float *w, const float *prep, const float *dy, float *dx, int fresh,
                    const float *relu_y, ReluRule rule, int px, Workspace *ws);
void conv_dx_col2im(const ConvShape *s, const float *w, const float *dy, float *dx, Workspace *ws);
/* Floats of A packed for gemm. */
size_t conv_packed_floats(int M, int rows);
/* Run the product P describes with the scratch left in ws (px: by conv_direct.c). */
void conv_prod_run(Prod *P, Workspace *ws);

/* ---- conv_im2col.c: the explicit gathers, col2im, the weight gradient over them ---- */
/* Rows [r0, r1), grid columns [p0, p1) of one image's gather, row r to dst + r*ld. */
void conv_gather(const Gather *g, const float *src, int r0, int r1, int p0, int p1, float *dst, size_t ld);
/* dxn [C,H,W] += col2im of dcols: channels [c0, c1), positions [p0, p1), dx rows [h0, h1). */
void conv_col2im_add(const ConvShape *s, const float *dcols, size_t ld, int p0, int p1, int c0, int c1, int h0,
                     int h1, float *dxn);
/* The weights of the live taps (w itself when none is dropped, else a copy in ws), and
 * the workspace floats of that copy. */
const float *conv_live_weights(const ConvShape *s, const float *w, Workspace *ws);
size_t conv_live_floats(const ConvShape *s);
/* wt [C, K*nti*ntj] = the taps of input-gradient class (ia, jb) of w (threaded). */
void conv_dx_weights(const ConvShape *s, const Gather *g, const float *w, int ia, int jb, float *wt);
/* dw += the weight gradient by gathered blocks and gemm; its scratch. */
void conv_dw_im2col(const ConvShape *s, const float *x, const float *dy, float *dw, Workspace *ws);
size_t conv_dw_im2col_floats(const ConvShape *s);

/* ---- conv_wide.c: wide blocks ---- */
/* Wide blocks of about target columns for gather g, or .on = 0 where they do not apply. */
Wide conv_wide_plan(const Gather *g, int target, int min_w);
Blocks conv_wide_blocks(const Gather *g, const Wide *w, int N);
/* A slice (the frame with its slack, then out [M, width]); *out_at: where out starts. */
size_t conv_wide_slice(const Gather *g, const Wide *w, int M, size_t *out_at);
/* Scratch of a wide product: the row offsets and nth slices. */
size_t conv_wide_floats(const Gather *g, const Wide *w, int M, int nth);
/* The row offsets in the frame (in ws); the zeros after a frame; the frame itself. */
ptrdiff_t *conv_wide_offsets(const Gather *g, const Wide *w, Workspace *ws);
void conv_frame_slack(const Gather *g, const Wide *w, float *frame);
void conv_wide_frame(const Gather *g, const Wide *w, const float *src, int u0, int u1, int c0, int c1, float *fr);
/* The weight gradient by wide blocks (conv.c: dw_by_wide), and its scratch. */
void conv_dw_wide(const ConvShape *s, const float *x, const float *dy, float *dw, Workspace *ws);
size_t conv_dw_wide_floats(const ConvShape *s);

/* ---- conv_dense.c: maps with fewer positions than taps, as a linear layer ---- */
/* Input positions per image the route takes at most; the floats of the dense matrix
 * Wd; Wd itself from w (threaded). */
enum { CONV_DENSE_MAX_Q = 64 };
size_t conv_dense_floats(const ConvShape *s);
void conv_dense_weights(const ConvShape *s, const float *w, float *wd);
/* y = conv(x, w) through the forward's epilogue (conv2d_forward_affine's); dx (+)= the
 * input gradient (fresh and relu_y as conv2d_backward_fresh). prep: Wd, or NULL to
 * build it in ws. */
void conv_dense_forward(const ConvShape *s, const float *x, const float *w, const float *prep, const float *b,
                        const float *scale, const float *shift, int relu, float *y, Workspace *ws);
void conv_dense_dx(const ConvShape *s, const float *w, const float *prep, const float *dy, float *dx, int fresh,
                   const float *relu_y, ReluRule rule, Workspace *ws);
/* dw += the weight gradient, and its workspace floats for batches up to s->N and nth
 * threads. */
void conv_dense_dw(const ConvShape *s, const float *x, const float *dy, float *dw, Workspace *ws);
size_t conv_dense_dw_floats(const ConvShape *s, int nth);

/* ---- conv_direct.c: the direct route (small maps) ---- */
/* The product of P by positions (P->px), and its scratch for batches up to N. */
void conv_px_run(Prod *P, Workspace *ws);
size_t conv_px_floats(const Gather *g, int M, int N, int nth);
/* The input gradient's class (ia, jb) read in place from w: row offsets [g_rows] of
 * its taps, and its weights packed for gemm_pix_st into dst (threaded). */
void conv_dx_roff(const ConvShape *s, const Gather *g, int ia, int jb, ptrdiff_t *roff);
void conv_px_pack(const ConvShape *s, const float *w, const ptrdiff_t *roff, int rows, float *dst);
/* The weight gradient by the direct route (conv.c: dw_by_px), and its scratch. */
void conv_dw_px(const ConvShape *s, const float *x, const float *dy, float *dw, Workspace *ws);
size_t conv_dw_px_floats(const ConvShape *s);

#endif
