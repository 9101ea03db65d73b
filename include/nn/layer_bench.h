/* layer_bench: each layer of a model run alone, on random data, so that a benchmark
 * can time it (`gad bench --layers`): which layers a pass spends its time in.
 * Each layer calls its plain kernel (conv2d_forward, bn_forward_train, relu_forward,
 * ...) in train mode, as a training step runs them (batch norm on the batch's
 * statistics, dropout drawing a mask); what the executor fuses (a ReLU into the conv
 * or pool before it) is timed apart here.
 * Not for: numbers (the outputs are not looked at), timing (the caller's clock). */
#ifndef GAD_NN_LAYER_BENCH_H
#define GAD_NN_LAYER_BENCH_H
#include "nn/model.h"
#include <stddef.h>

typedef struct LayerBench LayerBench;

enum { LB_FORWARD, LB_BACKWARD_DX, LB_BACKWARD_DW, LB_NPHASES };

/* Inputs, outputs and scratch for every layer of m on batches of n images [3,H,W],
 * filled with normal random numbers; allocates m's parameter gradients. The model
 * must outlive it. NULL with err set when m cannot take that size. */
LayerBench *layer_bench_new(Model *m, int n, int H, int W);
void layer_bench_free(LayerBench *b);
/* Layer l's kind ("conv", "bn", ...), its shape ("3x3/1 64->128" for a convolution,
 * "4096->1000" for a linear layer, else ""), and its input's height and width. */
void layer_bench_describe(const LayerBench *b, int l, const char **kind, char *shape, size_t cap, int *h, int *w);
/* Run layer l once: LB_FORWARD, LB_BACKWARD_DX (the gradient to its input only) or
 * LB_BACKWARD_DW (to its input and its parameters). A backward reads what the last
 * forward of the same layer left (batch norm's saved statistics, max pool's argmax). */
void layer_bench_run(LayerBench *b, int l, int phase);

#endif
