/* ref: the naive kernels, one for each kernel of ops/, in src/ops/ref/: straight loops
 * over the textbook formula, no threads, no workspace, no fusion, nothing clever. They
 * are where a student starts reading, what the tests hold every fast kernel against,
 * and what the reference executor runs (plan_new_reference, nn/model.h).
 * Shapes and conventions are those of the fast kernel's header (ops/conv.h, bn.h,
 * linear.h, pool.h, act.h). Every backward accumulates (+=) into the gradients, which
 * the caller zeroes, and skips those that are NULL.
 * Bits: the element-wise kernels (ReLU, add, max and average pooling) do the fast
 * kernels' operations in the same order, so they give the same bits; convolution,
 * linear and batch norm sum in double, so they differ from the fast kernels (float
 * sums in blocks) by rounding.
 * Not here: dropout, whose kernel (ops/act.c) is already one plain loop. */
#ifndef GAD_OPS_REF_H
#define GAD_OPS_REF_H
#include "ops/act.h"
#include "ops/conv.h"
#include <stddef.h>
#include <stdint.h>

/* conv_ref.c */
void conv2d_forward_ref(const ConvShape *s, const float *x, const float *w, const float *b, float *y);
void conv2d_backward_ref(const ConvShape *s, const float *x, const float *w, const float *dy,
                         float *dx, float *dw, float *db);

/* bn_ref.c: train mode normalises by the batch's statistics (and updates the running
 * ones, each skipped when NULL), eval mode by the running ones. */
void bn_forward_train_ref(int N, int C, int HW, const float *x, const float *gamma, const float *beta,
                          float *running_mean, float *running_var, float momentum, float eps,
                          float *y, float *save_mean, float *save_invstd);
void bn_backward_train_ref(int N, int C, int HW, const float *x, const float *gamma,
                           const float *save_mean, const float *save_invstd, const float *dy,
                           float *dx, float *dgamma, float *dbeta);
void bn_forward_eval_ref(int N, int C, int HW, const float *x, const float *gamma, const float *beta,
                         const float *running_mean, const float *running_var, float eps, float *y);
void bn_backward_eval_ref(int N, int C, int HW, const float *x, const float *gamma,
                          const float *running_mean, const float *running_var, float eps, const float *dy,
                          float *dx, float *dgamma, float *dbeta);

/* linear_ref.c */
void linear_forward_ref(int N, int I, int O, const float *x, const float *w, const float *b, float *y);
void linear_backward_ref(int N, int I, int O, const float *x, const float *w, const float *dy,
                         float *dx, float *dw, float *db);

/* pool_ref.c */
void maxpool_forward_ref(int N, int C, int H, int W, int k, int s, int p, const float *x, float *y,
                         int32_t *argmax);
void maxpool_backward_ref(int N, int C, int H, int W, int k, int s, int p, const int32_t *argmax,
                          const float *dy, float *dx);
void adaptive_avgpool_forward_ref(int N, int C, int H, int W, int Ho, int Wo, const float *x, float *y);
void adaptive_avgpool_backward_ref(int N, int C, int H, int W, int Ho, int Wo, const float *dy, float *dx);

/* act_ref.c: the backward applies the ReLU rule (relu_backward_term, ops/act.h). */
void relu_forward_ref(size_t n, const float *x, float *y);
void relu_backward_ref(size_t n, const float *y, const float *dy, float *dx, ReluRule rule);
void add_forward_ref(size_t n, const float *a, const float *b, float *y);
void add_backward_ref(size_t n, const float *dy, float *da, float *db);

#endif
