/* conv_direct: the direct route for small maps: the forward and the input gradient
 * (a Prod marked px, from conv_gemm.c), and the weight gradient of first layers with
 * large kernels (conv_dw_px, below).
 * On grids narrower than wide blocks take, gathering (or col2im), packing and short
 * tile rows cost a fifth of the time. Here nothing is gathered: a group of images is
 * copied once into a zero-bordered frame, and gemm_pix_st computes
 *   out [positions, M] = X' . A^T,   X'(p, r) = frame[at(p) + off(r)]
 * with its vectors running over M (the channels it writes; A packed by column panels
 * once per call, straight from the weights through row offsets, or prepared by the
 * caller) and each position's input broadcast from where its window starts in the
 * frame: no copy but the frame, no wasted columns, the positions of all the group's
 * images in one stream. Each element is the same gemm chain as the gather route's (A .
 * X over the same k order), so the same bits. With a batch of at least one image per
 * thread the threads split the images, each with its own frame and out (nothing one
 * writes is read by another); else they split M by panels, then write their own
 * channels out.
 * Not for: wide maps (conv_wide.c). */
#include "ops/conv_route.h"
#include "core/err.h"
#include "core/gemm.h"
#include "core/threads.h"
#include <string.h>

#define PX_FIN_CH 16      /* channels px_finish transposes at once */
#define PX_FIN_RUN 256    /* and positions: a grid row, or a whole plane up to 16x16 */
#define PX_POSITIONS 2048 /* positions per group of images (at least one image) */

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

/* Images per group when each of nth threads takes its own images (conv_px_run's split). */
static int px_split_images(const Gather *g, int N, int nth) { return imin(px_images(g, N), (N + nth - 1) / nth); }

/* Floats of one group's buffers: the frame, the position pointers and out. */
static size_t px_group_floats(const Gather *g, int M, int gi) {
    const size_t pos = (size_t)gi * g->Hg * g->Wg, Mp = (size_t)(M + gemm_nr() - 1) / gemm_nr() * gemm_nr();
    return (size_add(size_add(ws_round(size_mul(sizeof(float) * gi, px_frame(g).img)), ws_round(sizeof(float *) * pos)),
                     ws_round(size_mul(sizeof(float) * pos, Mp)))) / sizeof(float);
}

/* Workspace floats of conv_px_run for batches up to N: A packed, the offsets, and one
 * group's buffers (shared by the threads), or with N >= nth one per thread. */
size_t conv_px_floats(const Gather *g, int M, int N, int nth) {
    const size_t shared = px_group_floats(g, M, px_images(g, N));
    const size_t split = nth > 1 && N >= nth ? size_mul((size_t)nth, px_group_floats(g, M, px_split_images(g, N, nth))) : 0;
    return size_add(size_add(ws_round(size_mul(sizeof(float), gemm_packed_b_floats(g_rows(g), M))),
                             ws_round(sizeof(ptrdiff_t) * g_rows(g))) / sizeof(float),
                    split > shared ? split : shared);
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

void conv_px_pack(const ConvShape *s, const float *w, const ptrdiff_t *roff, int rows, float *dst) {
    Prod P;
    memset(&P, 0, sizeof P);
    P.A = w;
    P.roff = roff;
    P.rcs = (size_t)s->kh * s->kw;
    P.M = s->C;
    P.rows = rows;
    Px X;
    memset(&X, 0, sizeof X);
    X.P = &P;
    X.Apw = dst;
    par_run(px_pack_worker, &X);
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
 * in L1 (reading one channel at a time would stride through out once per channel). */
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
 * read by the other threads (moving cache lines between cores is slow at times). */
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

void conv_px_run(Prod *P, Workspace *ws) {
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

/* The direct route's row offsets of class (ia, jb)'s taps into w: row r = (k, q, t). */
void conv_dx_roff(const ConvShape *s, const Gather *g, int ia, int jb, ptrdiff_t *roff) {
    for (int k = 0, r = 0; k < s->K; k++)
        for (int q = 0; q < g->nti; q++)
            for (int t = 0; t < g->ntj; t++, r++)
                roff[r] = ((ptrdiff_t)k * s->C * s->kh + ia + s->sh * q) * s->kw + jb + s->sw * t;
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

size_t conv_dw_px_floats(const ConvShape *s) {
    const Gather g = fwd_gather(s);
    const Frame f = px_frame(&g);
    const int rows = g_rows(&g), P = s->Ho * s->Wo, Kp = (s->K + gemm_nr() - 1) / gemm_nr() * gemm_nr();
    return size_add(size_add(ws_round(size_mul(sizeof(float), f.img)),
                             ws_round(size_mul(sizeof(float), gemm_packed_b_floats(P, s->K)))),
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

void conv_dw_px(const ConvShape *s, const float *x, const float *dy, float *dw, Workspace *ws) {
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

