/* conv: 2-D convolution (PyTorch's cross-correlation), NCHW float32, groups = 1.
 *   x [N,C,H,W], w [K,C,kh,kw], b [K] or NULL, y [N,K,Ho,Wo]
 *   Ho = (H + 2*ph - kh) / sh + 1, Wo likewise (floor), zero padding.
 * Each pass takes one of several routes by the shape (src/ops/conv.c says which and
 * why: Winograd, a direct convolution, an implicit or explicit im2col with gemm,
 * col2im), all over workspace scratch (conv_scratch_bytes), none allocating. Backward
 * accumulates (+=) into dx, dw, db, each skipped when NULL (the caller zeroes them).
 * The naive definition every route is tested against: ops/ref.h.
 * Not for: dilation, groups, other padding modes. */
#ifndef GAD_OPS_CONV_H
#define GAD_OPS_CONV_H
#include "core/ws.h"
#include "ops/act.h"
#include <stddef.h>

typedef struct {
    int N, C, H, W;      /* input */
    int K, kh, kw;       /* output channels, kernel */
    int sh, sw, ph, pw;  /* stride, padding */
    int Ho, Wo;          /* output (filled by conv_shape) */
} ConvShape;

ConvShape conv_shape(int N, int C, int H, int W, int K, int kh, int kw, int sh, int sw, int ph, int pw);
/* Workspace bytes that forward and backward may take (for ws_reserve). */
size_t conv_scratch_bytes(const ConvShape *s);

/* Prepared weights: the part of a pass that depends on w alone (the Winograd route's
 * transformed kernels, ops/wino.h, 16/9 the floats of w; the input gradient's packed
 * weights on small stride-1 maps), which a caller whose w stays fixed over many
 * passes makes once and passes back: the same bits, less work per call.
 * conv_prep_floats: floats of it for the forward (dx = 0) or the input gradient
 * (dx = 1) at batches up to s->N; 0 when there is nothing to prepare, or when it would
 * save little (calls of more than 256 Winograd tiles or 1024 positions: there the
 * per-call work is a few % of the pass at most), and then the passes take NULL. */
size_t conv_prep_floats(const ConvShape *s, int dx);
/* dst [conv_prep_floats(s, dx)] = the prepared weights of w (threaded; any batch of
 * the shape may use them; ws: scratch as conv_scratch_bytes). Borrows w; writes dst. */
void conv_prep(const ConvShape *s, const float *w, int dx, float *dst, Workspace *ws);
/* 1 where the two prepared weights are the same floats (the dense route's matrix):
 * a caller may keep one copy for both passes, and preparing it pays even when w
 * changes after every forward and backward (a training step makes it once instead
 * of twice). */
int conv_prep_shared(const ConvShape *s);

void conv2d_forward(const ConvShape *s, const float *x, const float *w, const float *b, float *y, Workspace *ws);
/* The forward with y = max(y, 0) applied while the block is in cache (relu != 0):
 * the same bits as conv2d_forward followed by relu_forward. */
void conv2d_forward_act(const ConvShape *s, const float *x, const float *w, const float *b, float *y, int relu,
                        Workspace *ws);
/* And with eval-mode batch norm applied in between: y = conv * scale[k] + shift[k]
 * (after the bias), then the ReLU: the same bits as conv2d_forward, bn_forward_eval
 * (scale, shift from bn_eval_affine) and relu_forward. scale and shift both or
 * neither (NULL). prep: conv_prep(s, w, 0) of these w, or NULL. Borrows every array;
 * writes y only. */
void conv2d_forward_affine(const ConvShape *s, const float *x, const float *w, const float *prep, const float *b,
                           const float *scale, const float *shift, float *y, int relu, Workspace *ws);
void conv2d_backward(const ConvShape *s, const float *x, const float *w, const float *dy,
                     float *dx, float *dw, float *db, Workspace *ws);
/* The same, but with dx_fresh != 0 dx's old contents are ignored: it gets the input
 * gradient itself, with the bits of conv2d_backward onto a zeroed dx (for a gradient's
 * first writer: no zeroing pass). With relu_y (dx_fresh only; else NULL) the input was
 * the output relu_y of a ReLU, and dx gets the gradient of the ReLU's input instead:
 * the bits of relu_backward_set(relu_y, that input gradient, rule), in the same pass.
 * prep_dx: conv_prep(s, w, 1) of these w, or NULL. */
void conv2d_backward_fresh(const ConvShape *s, const float *x, const float *w, const float *prep_dx,
                           const float *dy, float *dx, int dx_fresh, const float *relu_y, ReluRule rule, float *dw,
                           float *db, Workspace *ws);

#endif
