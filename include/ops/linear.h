/* linear: fully connected layer as torch.nn.Linear.
 *   x [N,I], w [O,I], b [O] or NULL, y [N,O] = x w^T + b
 * Backward accumulates (+=) into dx [N,I], dw [O,I], db [O], each skipped when NULL.
 * Each output row depends only on its own input row (no cross-batch reduction). */
#ifndef GAD_OPS_LINEAR_H
#define GAD_OPS_LINEAR_H

void linear_forward(int N, int I, int O, const float *x, const float *w, const float *b, float *y);
void linear_backward(int N, int I, int O, const float *x, const float *w, const float *dy,
                     float *dx, float *dw, float *db);
void linear_forward_ref(int N, int I, int O, const float *x, const float *w, const float *b, float *y);
void linear_backward_ref(int N, int I, int O, const float *x, const float *w, const float *dy,
                         float *dx, float *dw, float *db);

#endif
