/* linear: fully connected layer, y = x w^T + b (see ops/linear.h).
 *   x [N,I], w [O,I], b [O] or NULL, y [N,O]; dx [N,I], dw [O,I], db [O]
 * Fast path: gemm (each y row summed the same way whatever N and the thread count);
 * references: plain loops with double accumulation.
 * Not for: inputs with more than one batch dimension (flatten first). */
#include "ops/linear.h"
#include "core/gemm.h"
#include <stddef.h>

void linear_forward(int N, int I, int O, const float *x, const float *w, const float *b, float *y) {
    if (N == 0) return;
    gemm(0, 1, N, O, I, 1.0f, x, I, w, I, 0.0f, y, O);   /* y [N,O] = x [N,I] w^T [I,O] */
    if (b)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < O; o++) y[(size_t)n * O + o] += b[o];
}

void linear_backward(int N, int I, int O, const float *x, const float *w, const float *dy,
                     float *dx, float *dw, float *db) {
    if (N == 0) return;
    if (dx) gemm(0, 0, N, I, O, 1.0f, dy, O, w, I, 1.0f, dx, I); /* dx += dy [N,O] w [O,I] */
    if (dw) gemm(1, 0, O, I, N, 1.0f, dy, O, x, I, 1.0f, dw, I); /* dw += dy^T [O,N] x [N,I] */
    if (db)
        for (int o = 0; o < O; o++) {
            double s = 0.0;
            for (int n = 0; n < N; n++) s += dy[(size_t)n * O + o];
            db[o] += (float)s;
        }
}

void linear_forward_ref(int N, int I, int O, const float *x, const float *w, const float *b, float *y) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++) {
            double s = b ? b[o] : 0.0;
            for (int i = 0; i < I; i++) s += (double)x[(size_t)n * I + i] * w[(size_t)o * I + i];
            y[(size_t)n * O + o] = (float)s;
        }
}

void linear_backward_ref(int N, int I, int O, const float *x, const float *w, const float *dy,
                         float *dx, float *dw, float *db) {
    if (dx)
        for (int n = 0; n < N; n++)
            for (int i = 0; i < I; i++) {
                double s = 0.0;
                for (int o = 0; o < O; o++) s += (double)dy[(size_t)n * O + o] * w[(size_t)o * I + i];
                dx[(size_t)n * I + i] += (float)s;
            }
    if (dw)
        for (int o = 0; o < O; o++)
            for (int i = 0; i < I; i++) {
                double s = 0.0;
                for (int n = 0; n < N; n++) s += (double)dy[(size_t)n * O + o] * x[(size_t)n * I + i];
                dw[(size_t)o * I + i] += (float)s;
            }
    if (db)
        for (int o = 0; o < O; o++) {
            double s = 0.0;
            for (int n = 0; n < N; n++) s += dy[(size_t)n * O + o];
            db[o] += (float)s;
        }
}
