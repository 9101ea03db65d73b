/* pool: max pooling and adaptive average pooling, NCHW float32.
 * maxpool: x [N,C,H,W] -> y [N,C,Ho,Wo], Ho = (H + 2p - k)/s + 1 (floor, ceil_mode
 *   off); padding counts as -inf; ties go to the first maximum in row-major window
 *   order, as PyTorch. argmax [N,C,Ho,Wo] holds the winning index into H*W (int32),
 *   which the backward routes the gradient to.
 * adaptive avgpool: x [N,C,H,W] -> y [N,C,Ho,Wo], bin i covers rows
 *   [floor(i*H/Ho), ceil((i+1)*H/Ho)) as torch.nn.AdaptiveAvgPool2d (also upsampling,
 *   e.g. 1x1 -> 7x7).
 * Backward accumulates (+=) into dx (maxpool_backward_relu: writes it whole). */
#ifndef GAD_OPS_POOL_H
#define GAD_OPS_POOL_H
#include "ops/act.h"
#include <stdint.h>

int pool_out_size(int in, int k, int s, int p);

void maxpool_forward(int N, int C, int H, int W, int k, int s, int p, const float *x, float *y, int32_t *argmax);
void maxpool_backward(int N, int C, int H, int W, int k, int s, int p, const int32_t *argmax,
                      const float *dy, float *dx);
/* For a pool that alone reads a ReLU's output relu_y [N,C,H,W]: dx gets the gradient
 * of the ReLU's input, written whole (old contents ignored), with the bits of zeroing
 * dx, maxpool_backward, then relu_backward_set(relu_y, dx, dx, rule). Plane by plane
 * in cache instead of three passes. Borrows everything; writes dx only. */
void maxpool_backward_relu(int N, int C, int H, int W, int k, int s, int p, const int32_t *argmax,
                           const float *dy, const float *relu_y, ReluRule rule, float *dx);

void adaptive_avgpool_forward(int N, int C, int H, int W, int Ho, int Wo, const float *x, float *y);
void adaptive_avgpool_backward(int N, int C, int H, int W, int Ho, int Wo, const float *dy, float *dx);

#endif
