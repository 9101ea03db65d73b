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
void linear_backward(int N, int I, int O, const float *x, const float *w, const float *dy,
                     float *dx, float *dw, float *db);
void linear_forward_ref(int N, int I, int O, const float *x, const float *w, const float *b, float *y);
void linear_backward_ref(int N, int I, int O, const float *x, const float *w, const float *dy,
                         float *dx, float *dw, float *db);

#endif
