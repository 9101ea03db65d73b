/* bn: 2-D batch normalisation as torch.nn.BatchNorm2d (affine, track_running_stats).
 *   x, y, dy, dx [N,C,HW]; gamma, beta, running_mean, running_var [C]
 * Train mode: normalise by the batch mean and biased variance; update the running
 *   statistics with momentum (PyTorch: 0.1) using the unbiased variance
 *   (r = (1-m) r + m v * n/(n-1), n = N*HW); save_mean/save_invstd [C] are written
 *   for the backward.
 * Eval mode: normalise by the running statistics; a per-element affine map, so an
 *   image's output never depends on the rest of the batch.
 * Backward accumulates (+=) into dx, dgamma, dbeta, each skipped when NULL.
 * The naive twins: ops/ref.h.
 * Not for: 1-D/3-D batch norm, momentum = None (cumulative average). */
#ifndef GAD_OPS_BN_H
#define GAD_OPS_BN_H

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

void bn_forward_train(int N, int C, int HW, const float *x, const float *gamma, const float *beta,
                      float *running_mean, float *running_var, float momentum, float eps,
                      float *y, float *save_mean, float *save_invstd);
void bn_backward_train(int N, int C, int HW, const float *x, const float *gamma,
                       const float *save_mean, const float *save_invstd, const float *dy,
                       float *dx, float *dgamma, float *dbeta);

void bn_forward_eval(int N, int C, int HW, const float *x, const float *gamma, const float *beta,
                     const float *running_mean, const float *running_var, float eps, float *y);
void bn_backward_eval(int N, int C, int HW, const float *x, const float *gamma,
                      const float *running_mean, const float *running_var, float eps, const float *dy,
                      float *dx, float *dgamma, float *dbeta);

/* The forwards with y = max(y, 0) applied as y is written (relu != 0): the same bits
 * as the plain forward followed by relu_forward. */
void bn_forward_train_act(int N, int C, int HW, const float *x, const float *gamma, const float *beta,
                          float *running_mean, float *running_var, float momentum, float eps,
                          float *y, float *save_mean, float *save_invstd, int relu);
void bn_forward_eval_act(int N, int C, int HW, const float *x, const float *gamma, const float *beta,
                         const float *running_mean, const float *running_var, float eps, float *y, int relu);

/* Eval mode is y = x * scale[c] + shift[c] (then the ReLU): writes scale, shift [C] as
 * bn_forward_eval computes them, so a convolution can apply them to its own output
 * (conv2d_forward_affine) with the same bits. */
void bn_eval_affine(int C, const float *gamma, const float *beta, const float *running_mean,
                    const float *running_var, float eps, float *scale, float *shift);

#endif
