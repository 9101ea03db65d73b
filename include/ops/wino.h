/* wino: 3x3 stride-1 pad-1 convolutions by Winograd's minimal filtering F(2x2, 3x3)
 * (Lavin and Gray, "Fast algorithms for convolutional neural networks", 2016): the
 * forward, input and weight gradients of conv.h's convolution, 16 multiplications per
 * 2x2 output tile and (k, c) pair instead of 36. conv.c routes a shape here when
 * wino_applies; callers use conv.h, not this header.
 *   x [N,Cin,H,W] -> y [N,Cout,H,W], w as conv.h's: [K,C,3,3]
 * Not for: other kernels, strides or paddings. */
#ifndef GAD_OPS_WINO_H
#define GAD_OPS_WINO_H
#include "core/ws.h"
#include "ops/act.h"
#include "ops/conv.h"
#include <stddef.h>

/* Whether conv.c takes this route for the shape's forward (dx = 0) or input gradient
 * (dx = 1). Depends on the shape's kernel, stride, padding, channels and map, never
 * on the batch, so an image's bits do not depend on the batch it came in. */
int wino_applies(const ConvShape *s, int dx);
/* Workspace bytes that wino_forward and wino_backward_dx may take with nth threads. */
size_t wino_scratch_bytes(const ConvShape *s, int nth);
/* Floats of the transformed, packed weights U of the forward (dx = 0) or input
 * gradient (dx = 1); 0 where the route does not apply. Independent of s->N. */
size_t wino_prep_floats(const ConvShape *s, int dx);
/* up [wino_prep_floats] = U of w, as the passes below make per call (threaded). A
 * caller keeping it while w is unchanged passes it back and skips that work, with the
 * same bits. Borrows w; writes up only. */
void wino_prep(const ConvShape *s, const float *w, int dx, float *up);
/* y = conv(x, w) + b (b may be NULL), then y * scale[k] + shift[k] (both or neither
 * NULL), then max(y, 0) if relu: the operations of conv2d_forward_affine's epilogue.
 * up: wino_prep(s, w, 0) of these w, or NULL (made per call). Borrows every array;
 * writes y only. */
void wino_forward(const ConvShape *s, const float *x, const float *w, const float *up, const float *b,
                  const float *scale, const float *shift, int relu, float *y, Workspace *ws);
/* dx += the input gradient of dy (fresh: dx = 0 + it, then with relu_y the backward of
 * the ReLU whose output relu_y was, as conv2d_backward_fresh). up: wino_prep(s, w, 1)
 * or NULL. Borrows w, up, dy, relu_y; writes dx only. */
void wino_backward_dx(const ConvShape *s, const float *w, const float *up, const float *dy, float *dx, int fresh,
                      const float *relu_y, ReluRule rule, Workspace *ws);

/* dw += the weight gradient (x the layer's input, dy its output's gradient), summed
 * over the batch in an order set by the shape and the batch, never the threads.
 * Borrows x, dy; writes dw only. */
void wino_backward_dw(const ConvShape *s, const float *x, const float *dy, float *dw, Workspace *ws);

#endif
