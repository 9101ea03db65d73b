/* linear_ref: a fully connected layer (ops/linear.h's) as its definition, summed in
 * double: y[n][o] = b[o] + sum over i of x[n][i] w[o][i]; dx = dy w, dw = dy^T x,
 * db = the column sums of dy.
 * Not for: speed (ops/linear.c). */
#include "ops/ref.h"
#include <stddef.h>

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
