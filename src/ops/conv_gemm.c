/* conv_gemm: the convolution as one matrix product over gathered columns, the engine
 * of the im2col, wide and direct routes (conv.c chooses; Winograd, wino.c, is apart):
 *   forward  y  [K, cols] = w  [K, C*kh*kw] . X [C*kh*kw, cols]    X = im2col(x)
 *   input    dx [C, cols] += Wt [C, K*taps] . D [K*taps, cols]     D = gather of dy
 *            (or, col2im: dcols [C*taps, cols] = w^T . dy, scattered back onto dx)
 * where a column is one position of one image. A Prod describes one such product;
 * conv_prod_run cuts its columns into blocks (pieces of a large image, or several
 * small images; where the cuts fall depends on the shape only), and per block gathers
 * the columns (conv_im2col.c, or the frame of wide blocks, conv_wide.c), multiplies
 * (gemm_st, the weights packed once per call) and writes the result back through the
 * epilogue (bias, eval-mode batch norm, ReLU; or the input gradient's fresh write, with
 * the backward of the ReLU before the conv). With enough blocks each thread takes
 * whole blocks (all in its own cache); with few, the threads share one block at a time.
 * A Prod marked px goes to the direct route instead (conv_direct.c).
 * Determinism: every y and dx element is one gemm element (gemm's k order is fixed
 * whatever M, N and the threads) plus the epilogue's operations, so an image's output
 * and input gradient do not depend on the batch, its place in it or the threads; the
 * col2im scatter adds each element's terms in a fixed order.
 * Not for: the weight gradient (conv_im2col.c, conv_wide.c, conv_direct.c). */
#include "ops/conv_route.h"
#include "core/err.h"
#include "core/gemm.h"
#include "core/threads.h"
#include <string.h>

typedef void (*GemmFn)(int, int, int, int, int, float, const float *, int, const float *, int, float,
                       float *, int);


/* Each thread taking whole blocks leaves at most a fifth of the threads idle. */
static int per_thread(int nblocks, int nth, int nslices) {
    if (nth < 2 || nslices < nth || nblocks < nth) return 0;
    return (long)((nblocks + nth - 1) / nth) * nth * 5 <= (long)nblocks * 6;
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
    conv_block_of(&P->bl, i, &n0, &n1, &p0, &p1);
    if (P->wd.on) { /* the frame's channels of rows [r0, r1), for the grid rows the block touches */
        const int taps = P->g.nti * P->g.ntj;
        conv_wide_frame(&P->g, &P->wd, P->src + n0 * P->src_img, p0 / P->wd.Wp, (p1 - 1) / P->wd.Wp + 1, r0 / taps,
                   (r1 + taps - 1) / taps, cols);
        return;
    }
    if (n1 - n0 == 1 && g_identity(&P->g)) return; /* read in place */
    const int w = p1 - p0;
    for (int n = n0; n < n1; n++)
        conv_gather(&P->g, P->src + n * P->src_img, r0, r1, p0, p1, cols + (size_t)(n - n0) * w, (size_t)(n1 - n0) * w);
}

/* Columns of block i's product. */
static int block_width(const Prod *P, int i) {
    int n0, n1, p0, p1;
    conv_block_of(&P->bl, i, &n0, &n1, &p0, &p1);
    if (P->wd.on) return p1 - p0;
    return (n1 - n0) * (p1 - p0);
}

/* Rows [m0, m1) and columns [q0, q1) of block i's product (a thread's share, or all). */
static void block_product(const Prod *P, int i, const float *cols, float *out, GemmFn mm, int m0, int m1, int q0,
                          int q1) {
    int n0, n1, p0, p1;
    conv_block_of(&P->bl, i, &n0, &n1, &p0, &p1);
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


/* Rows [m0, m1) of the block's result into the destination: bias and ReLU, or the
 * scatter from out to dst (col2im: dx channels [m0, m1), dx rows [h0, h1) of them;
 * else h0, h1 unused). */
static void block_finish(const Prod *P, int i, const float *out, int m0, int m1, int h0, int h1) {
    int n0, n1, p0, p1;
    conv_block_of(&P->bl, i, &n0, &n1, &p0, &p1);
    if (P->col2im) {
        const int w = (n1 - n0) * (p1 - p0);
        for (int n = n0; n < n1; n++)
            conv_col2im_add(P->col2im, out + (size_t)(n - n0) * (p1 - p0), (size_t)w, p0, p1, m0, m1, h0, h1,
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
        conv_block_of(&P->bl, P->cur, &n0, &n1, &p0, &p1);
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

/* Workspace floats of A packed (conv_prod_run packs it when a block's product would). */
size_t conv_packed_floats(int M, int rows) {
    return ws_round(size_mul(sizeof(float), gemm_packed_floats(M, rows))) / sizeof(float);
}

/* Run the product with the slices available in ws (at least one). */
void conv_prod_run(Prod *P, Workspace *ws) {
    if (P->bl.N == 0 || P->rows == 0 || P->bl.G == 0) return;
    if (P->px) {
        size_t mark = ws_mark(ws);
        conv_px_run(P, ws);
        ws_release(ws, mark);
        return;
    }
    const int nth = par_nthreads();
    size_t mark = ws_mark(ws);
    P->wd = P->col2im || P->tA ? P->wd : conv_wide_plan(&P->g, WIDE_TARGET, WIDE_MIN_W);
    if (P->wd.on) {
        P->bl = conv_wide_blocks(&P->g, &P->wd, P->bl.N);
        P->off = conv_wide_offsets(&P->g, &P->wd, ws);
        P->slice = conv_wide_slice(&P->g, &P->wd, P->M, &P->out_at);
    } else {
        P->slice = conv_slice_floats(P->rows, P->M, P->bl.width);
        P->out_at = (size_t)P->rows * P->bl.width;
    }
    /* the weights packed once, not once per block (and per thread): wide blocks
     * always take them packed, other blocks when gemm would pack them itself */
    P->Ap = NULL;
    if (P->wd.on || gemm_packs_a(P->tA, P->M, P->bl.width, P->rows)) {
        P->Ap = ws_floats(ws, conv_packed_floats(P->M, P->rows));
        par_run(pack_worker, P);
    }
    size_t avail = (ws->cap - ws->used) / (P->slice * sizeof(float));
    GAD_ASSERT(avail >= 1); /* the caller forgot ws_reserve(conv_scratch_bytes()) */
    P->nslices = (int)(avail < (size_t)nth ? avail : (size_t)nth);
    P->scratch = ws_floats(ws, (size_t)P->nslices * P->slice);
    if (P->wd.on) /* the slack after each frame, read as padding columns only */
        for (int k = 0; k < P->nslices; k++) conv_frame_slack(&P->g, &P->wd, slice_cols(P, k));
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

/* ---- the passes as products ---- */

void conv_forward_gemm(const ConvShape *s, const float *x, const float *w, const float *b, const float *scale,
                       const float *shift, int relu, int px, float *y, Workspace *ws) {
    Prod P;
    memset(&P, 0, sizeof P);
    size_t mark = ws_mark(ws);
    P.g = fwd_gather(s);
    P.src = x;
    P.src_img = (size_t)s->C * s->H * s->W;
    P.A = conv_live_weights(s, w, ws);
    P.M = s->K;
    P.rows = g_rows(&P.g);
    P.px = px;
    P.rcs = (size_t)P.rows; /* A^T packed: column m is row m of A */
    P.bl = conv_make_blocks(s->N, s->Ho * s->Wo, conv_cols_target(P.rows));
    P.dst = y;
    P.dst_img = (size_t)s->K * s->Ho * s->Wo;
    P.Hd = s->Ho; P.Wd = s->Wo; P.sa = P.sb = 1;
    P.bias = b;
    P.scale = scale;
    P.shift = shift;
    P.relu = relu;
    conv_prod_run(&P, ws);
    ws_release(ws, mark);
}

/* dcols [C*taps, cols] = w^T . dy per block (dy itself is the matrix), scattered back. */
void conv_dx_col2im(const ConvShape *s, const float *w, const float *dy, float *dx, Workspace *ws) {
    const Taps t = live_taps(s);
    const Gather dy_itself = {s->K, s->Ho, s->Wo, s->Ho, s->Wo, 1, 1, 1, 1, 0, 1, 0, 1};
    size_t mark = ws_mark(ws);
    Prod P;
    memset(&P, 0, sizeof P);
    P.g = dy_itself;
    P.src = dy;
    P.src_img = (size_t)s->K * s->Ho * s->Wo;
    P.A = conv_live_weights(s, w, ws);
    P.tA = 1;
    P.M = s->C * t.nti * t.ntj;
    P.rows = s->K;
    P.bl = conv_make_blocks(s->N, s->Ho * s->Wo, conv_cols_target(P.rows));
    P.dst = dx;
    P.dst_img = (size_t)s->C * s->H * s->W;
    P.accumulate = 1;
    P.col2im = s;
    conv_prod_run(&P, ws);
    ws_release(ws, mark);
}

/* The input gradient written as a gather (a transposed convolution): each dx element
 * is one dot product over (k, taps) of the flipped kernel, no scatter. With stride s
 * the dx positions fall into s*s classes (ih mod sh, iw mod sw), each reached by its
 * own subset of taps; each class is one product (stride 1: one class). */
void conv_dx_gather(const ConvShape *s, const float *w, const float *prep, const float *dy, float *dx, int fresh,
                    const float *relu_y, ReluRule rule, int px, Workspace *ws) {
    size_t mark = ws_mark(ws);
    for (int a = 0; a < s->sh; a++)
        for (int b = 0; b < s->sw; b++) {
            int ia, jb;
            Gather g = dx_class(s, a, b, &ia, &jb);
            const int rows = g_rows(&g);
            if (!rows) continue; /* no tap reaches these positions: nothing to add */
            Prod P;
            memset(&P, 0, sizeof P);
            P.px = px;
            GAD_ASSERT(!prep || P.px);
            if (P.px) { /* the class's taps read from w as they are packed: row r = (k, q, t) */
                ptrdiff_t *roff = ws_alloc(ws, sizeof(ptrdiff_t) * (size_t)rows);
                conv_dx_roff(s, &g, ia, jb, roff);
                P.A = w;
                P.roff = roff;
                P.rcs = (size_t)s->kh * s->kw;
                P.prep = prep; /* or packed per call */
            } else {
                float *wt = ws_floats(ws, (size_t)s->C * rows);
                conv_dx_weights(s, &g, w, ia, jb, wt);
                P.A = wt;
            }
            P.g = g;
            P.src = dy;
            P.src_img = (size_t)s->K * s->Ho * s->Wo;
            P.M = s->C;
            P.rows = rows;
            P.bl = conv_make_blocks(s->N, g.Hg * g.Wg, conv_cols_target(rows));
            P.dst = dx;
            P.dst_img = (size_t)s->C * s->H * s->W;
            P.Hd = s->H; P.Wd = s->W; P.a = a; P.b = b; P.sa = s->sh; P.sb = s->sw;
            P.accumulate = 1;
            P.fresh = fresh;
            P.relu_y = relu_y;
            P.rule = rule;
            conv_prod_run(&P, ws);
            ws_release(ws, mark);
        }
}
