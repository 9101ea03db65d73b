/* conv_im2col: the explicit gathers of the im2col route (conv_gemm.c runs the
 * products over them), the col2im scatter of the input gradient's col2im route, and
 * the weight gradient over gathered blocks:
 *   gather   row r = (source channel, tap) of the matrix X, column = a grid point:
 *            X[r][p] = the source element that tap of that point reads (0 outside)
 *   col2im   dx += dcols scattered back: each dx element receives its terms in a fixed
 *            order (rows, then positions); threads split channels or bands of rows
 *   weights  dw [K, C*taps] += dy_block [K, cols] . X_block^T, blocks in batch order
 *            (the bits depend on the batch, as every dw does, never on the threads)
 * Taps that only ever see padding (a 3x3 kernel on a 1x1 map) are left out (live_taps).
 * Not for: wide maps' frames (conv_wide.c), the direct route (conv_direct.c). */
#include "ops/conv_route.h"
#include "core/err.h"
#include "core/gemm.h"
#include "core/threads.h"
#include <string.h>

/* v in [lo, hi) of [0, n) with 0 <= v*step + off < len. */
static void span(int n, int len, int step, int off, int *lo, int *hi) {
    int l = off >= 0 ? 0 : (-off + step - 1) / step;
    int h = len - off > 0 ? (len - off + step - 1) / step : 0;
    if (h > n) h = n;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
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
void conv_gather(const Gather *g, const float *src, int r0, int r1, int p0, int p1, float *dst, size_t ld) {
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
void conv_col2im_add(const ConvShape *s, const float *dcols, size_t ld, int p0, int p1, int c0, int c1, int h0,
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
const float *conv_live_weights(const ConvShape *s, const float *w, Workspace *ws) {
    const Taps t = live_taps(s);
    if (!pruned(s, t)) return w;
    TapJob j = {s, t, w, ws_floats(ws, (size_t)s->K * s->C * t.nti * t.ntj), NULL, NULL};
    par_run(taps_worker, &j);
    return j.wp;
}

size_t conv_live_floats(const ConvShape *s) {
    const Taps t = live_taps(s);
    return pruned(s, t) ? ws_round(size_mul(sizeof(float) * (size_t)s->K * s->C, (size_t)t.nti * t.ntj)) / sizeof(float) : 0;
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

void conv_dx_weights(const ConvShape *s, const Gather *g, const float *w, int ia, int jb, float *wt) {
    WtJob j = {s, g, w, wt, ia, jb};
    par_run(wt_worker, &j);
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
    conv_block_of(&j->bl, j->cur, &n0, &n1, &p0, &p1);
    const int P = s->Ho * s->Wo, w = p1 - p0, ld = (n1 - n0) * w, rows = g_rows(&j->g);
    const size_t xs = (size_t)s->C * s->H * s->W, ys = (size_t)s->K * P;
    long lo, hi;
    if (!(n1 - n0 == 1 && g_identity(&j->g))) {
        par_range(rows, ith, nth, &lo, &hi);
        for (int n = n0; n < n1; n++)
            conv_gather(&j->g, j->x + n * xs, (int)lo, (int)hi, p0, p1, j->cols + (size_t)(n - n0) * w, (size_t)ld);
    }
    if (n1 - n0 > 1) { /* dy of several images side by side */
        par_range(s->K, ith, nth, &lo, &hi);
        for (int n = n0; n < n1; n++)
            for (long k = lo; k < hi; k++)
                memcpy(j->dyb + (size_t)k * ld + (size_t)(n - n0) * w, j->dy + n * ys + (size_t)k * P + p0,
                       sizeof(float) * (size_t)w);
    }
}

size_t conv_dw_im2col_floats(const ConvShape *s) {
    const Taps t = live_taps(s);
    const int rows = s->C * t.nti * t.ntj + s->K; /* gathered x (live taps) and dy */
    return size_add(conv_live_floats(s), conv_slice_floats(rows, 0, conv_max_width(s->N, s->Ho * s->Wo, conv_dw_target(rows))));
}

void conv_dw_im2col(const ConvShape *s, const float *x, const float *dy, float *dw, Workspace *ws) {
    const int P = s->Ho * s->Wo;
    const size_t xs = (size_t)s->C * s->H * s->W, ys = (size_t)s->K * P;
    const Taps t = live_taps(s);
    size_t mark = ws_mark(ws);
    DwJob j;
    j.s = s;
    j.g = fwd_gather(s);
    const int CKK = g_rows(&j.g); /* live taps only */
    j.bl = conv_make_blocks(s->N, P, conv_dw_target(CKK + s->K)); /* gathered x and dy */
    j.x = x;
    j.dy = dy;
    j.cols = ws_floats(ws, (size_t)CKK * j.bl.width);
    j.dyb = ws_floats(ws, (size_t)s->K * j.bl.width);
    /* with taps left out, the blocks sum into dwp [K, CKK], added to dw's live taps at the end */
    float *dwp = pruned(s, t) ? ws_floats(ws, (size_t)s->K * CKK) : NULL;
    for (int i = 0; i < j.bl.nblocks; i++) {
        int n0, n1, p0, p1;
        conv_block_of(&j.bl, i, &n0, &n1, &p0, &p1);
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
