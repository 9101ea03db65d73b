/* conv_wide: wide blocks, an implicit im2col for stride-1 products on wide maps.
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
 * (wide maps); small maps keep the gathers (conv_im2col.c) or the direct route.
 * The weight gradient takes them too (conv_dw_wide, below).
 * Not for: strides, small maps (conv_direct.c), the col2im route. */
#include "ops/conv_route.h"
#include "core/err.h"
#include "core/gemm.h"
#include "core/threads.h"
#include <string.h>

#define WIDE_SLACK 64 /* zeros after the frame: the last row's windows reach lead + ntj - 2
                       * past it, and gemm_rows_st rounds a row up to 32 (conv_wide_plan checks) */
#define DW_WIDE_TARGET 4096 /* wide columns per weight-gradient block (a few k-blocks of gemm) */

/* Wide blocks of about target columns for gather g, or .on = 0 where they do not apply. */
Wide conv_wide_plan(const Gather *g, int target, int min_w) {
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
Blocks conv_wide_blocks(const Gather *g, const Wide *w, int N) {
    Blocks b = {N, g->Hg * w->Wp, 1, w->pieces, 0, w->width};
    b.nblocks = N * b.pieces;
    return b;
}

/* Floats of a frame with its slack (rounded for the workspace). */
static size_t frame_floats(const Gather *g, const Wide *w) {
    return ws_round(size_mul(sizeof(float), size_add(size_mul((size_t)g->Cs, w->fplane), WIDE_SLACK))) / sizeof(float);
}

/* Zero the slack after a frame (read as padding columns only). */
void conv_frame_slack(const Gather *g, const Wide *w, float *frame) {
    zero(frame + (size_t)g->Cs * w->fplane, WIDE_SLACK);
}

/* A slice: the frame with its slack, then out [M, width]; *out_at: where out starts. */
size_t conv_wide_slice(const Gather *g, const Wide *w, int M, size_t *out_at) {
    *out_at = frame_floats(g, w);
    return size_add(*out_at, ws_round(size_mul(sizeof(float) * (size_t)M, (size_t)w->width)) / sizeof(float));
}

/* Workspace floats of the row offsets (one ptrdiff_t per gathered row). */
static size_t offsets_floats(const Gather *g) {
    return ws_round(sizeof(ptrdiff_t) * (size_t)g_rows(g)) / sizeof(float);
}

/* Scratch of a wide product: the row offsets and nth slices. */
size_t conv_wide_floats(const Gather *g, const Wide *w, int M, int nth) {
    size_t at;
    return size_add(offsets_floats(g), size_mul((size_t)nth, conv_wide_slice(g, w, M, &at)));
}

/* The offsets, in ws: where row (cs, q, t) starts in the frame, at grid row 0, column 0
 * of the block. */
ptrdiff_t *conv_wide_offsets(const Gather *g, const Wide *w, Workspace *ws) {
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
void conv_wide_frame(const Gather *g, const Wide *w, const float *src, int u0, int u1, int c0, int c1,
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

/* ---- the weight gradient by wide blocks ----
 * dw^T [CKK, K] += X . dyw^T per block, X's rows windows of the block's frame of x
 * (gemm_arows_st reads them in place: no gather)
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
    conv_block_of(&j->bl, j->cur, &n0, &n1, &p0, &p1);
    long lo, hi;
    par_range(s->C, ith, nth, &lo, &hi);
    conv_wide_frame(&j->g, &j->w, j->x + (size_t)n0 * s->C * s->H * s->W, p0 / Wp, (p1 - 1) / Wp + 1, (int)lo, (int)hi,
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
    conv_block_of(&j->bl, j->cur, &n0, &n1, &p0, &p1);
    long lo, hi;
    par_range((rows + 7) / 8, ith, nth, &lo, &hi);
    const int m0 = (int)lo * 8, m1 = imin(rows, (int)hi * 8);
    if (m1 > m0)
        gemm_arows_st(m1 - m0, K, p1 - p0, j->frame + p0 % j->w.Wp, j->off + m0, j->dyw, p1 - p0, 1.0f, j->dw + m0, 1,
                      (size_t)rows);
}

void conv_dw_wide(const ConvShape *s, const float *x, const float *dy, float *dw, Workspace *ws) {
    size_t mark = ws_mark(ws);
    DwWide j;
    memset(&j, 0, sizeof j);
    j.s = s;
    j.g = fwd_gather(s);
    j.w = conv_wide_plan(&j.g, DW_WIDE_TARGET, 1); /* conv.c chose the route */
    j.bl = conv_wide_blocks(&j.g, &j.w, s->N);
    j.x = x;
    j.dy = dy;
    j.dw = dw;
    j.off = conv_wide_offsets(&j.g, &j.w, ws);
    j.frame = ws_floats(ws, frame_floats(&j.g, &j.w));
    conv_frame_slack(&j.g, &j.w, j.frame);
    j.dyw = ws_floats(ws, ws_round(sizeof(float) * (size_t)s->K * j.w.width) / sizeof(float));
    for (int i = 0; i < j.bl.nblocks; i++) {
        j.cur = i;
        par_run(dw_wide_prep, &j);
        par_run(dw_wide_product, &j);
    }
    ws_release(ws, mark);
}


size_t conv_dw_wide_floats(const ConvShape *s) {
    const Gather g = fwd_gather(s);
    const Wide w = conv_wide_plan(&g, DW_WIDE_TARGET, 1);
    return size_add(offsets_floats(&g) + frame_floats(&g, &w),
                    ws_round(size_mul(sizeof(float) * (size_t)s->K, (size_t)w.width)) / sizeof(float));
}
