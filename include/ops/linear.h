/* linear: fully connected layer as torch.nn.Linear.
 *   x [N,I], w [O,I], b [O] or NULL, y [N,O] = x w^T + b
 * Backward accumulates (+=) into dx [N,I], dw [O,I], db [O], each skipped when NULL.
 * Each output row depends only on its own input row (no cross-batch reduction). */
#ifndef GAD_OPS_LINEAR_H
#define GAD_OPS_LINEAR_H
#include "core/ws.h"
#include <stddef.h>

void linear_forward(int N, int I, int O, const float *x, const float *w, const float *b, float *y);
/* The same y through a kernel that streams w once without copying it (the fast
 * path for big layers; each row of y bitwise the same whatever N and threads, though
 * not the same bits as linear_forward). Takes linear_scratch_bytes(I) from ws. */
void linear_forward_ws(int N, int I, int O, const float *x, const float *w, const float *b, float *y,
                       Workspace *ws);
size_t linear_scratch_bytes(int I);
/* The same kernels for a weight matrix with any strides, w[o][i] at w[o*wr + i*wc]
 * (convolution uses them for 1x1 maps, where only one tap of w is alive):
 *   y[n][o] = b[o] + sum_i x[n][i] w[o][i]     scratch linear_scratch_bytes(I)
 *   dx[n][i] += sum_o dy[n][o] w[o][i]         scratch linear_scratch_bytes(O)
 * Each row of y and dx is bitwise the same whatever N and the thread count. */
void linear_forward_strided(int N, int I, int O, const float *x, const float *w, size_t wr, size_t wc,
                            const float *b, float *y, Workspace *ws);
void linear_backward_dx_strided(int N, int I, int O, const float *dy, const float *w, size_t wr, size_t wc,
                                float *dx, Workspace *ws);
/* An input that repeats each of C values B times, x_full[n][c*B + p] = x[n][c] (e.g.
 * adaptive average pooling of a 1x1 map to 7x7), needs only the folded weights:
 * x_full w^T = x wf^T with wf [O,C], wf[o][c] = sum over p of w[o][c*B + p] (float,
 * p ascending). linear_unfold_add takes a gradient with respect to wf back to w:
 * dw[o][c*B + p] += dwf[o][c] for every p. Rows of o over threads. */
void linear_fold(int O, int C, int B, const float *w, float *wf);
void linear_unfold_add(int O, int C, int B, const float *dwf, float *dw);
void linear_backward(int N, int I, int O, const float *x, const float *w, const float *dy,
                     float *dx, float *dw, float *db);

#endif
