/* train: losses, the Adam optimiser and the training loops: classifier training
 * (cross-entropy) and the regression fine-tuning of GAD's support models (MSE on
 * given target logits). PyTorch semantics throughout: mean reductions, Adam as
 * torch.optim.Adam (bias correction, L2 weight decay added to the gradient).
 * Not for: data loading (io/dataset.h) or model definitions (nn/model.h). */
#ifndef GAD_TRAIN_TRAIN_H
#define GAD_TRAIN_TRAIN_H
#include "nn/model.h"
#include <stddef.h>
#include <stdint.h>

/* Mean squared error over all n elements of y and t. dy [n] (may be NULL) is
 * overwritten with d loss / dy = 2 (y - t) / n. Returns the loss. */
float loss_mse(size_t n, const float *y, const float *t, float *dy);
/* Softmax cross-entropy, mean over N rows of logits [N,K]; dlogits [N,K] (may be
 * NULL) overwritten with (softmax - onehot) / N. Returns the loss. */
float loss_xent(int N, int K, const float *logits, const int *labels, float *dlogits);

/* Hyper-parameters are doubles, as Python floats are in torch.optim.Adam: the
 * scalar arithmetic (1 - beta1, bias corrections, step size) is then done exactly as
 * PyTorch does it, and float results match it bit for bit (a fixture test pins it). */
typedef struct {
    size_t n;            /* parameters */
    double lr, beta1, beta2, eps, weight_decay;
    long t;              /* steps taken */
    float *m, *v;        /* [n] moments (owned) */
} Adam;

/* betas 0.9/0.999, eps 1e-8, moments zeroed. The caller frees with adam_free. */
void adam_init(Adam *a, size_t n, float lr, float weight_decay);
/* One step of torch.optim.Adam (amsgrad off, maximize off) over params [n] with
 * grads [n]. A zero gradient with zero moments leaves a weight bit for bit as it
 * was (weight decay 0): GAD's alpha = 0 support model is the original model. */
void adam_step(Adam *a, float *params, const float *grads);
void adam_free(Adam *a);

typedef struct {
    int epochs;
    int batch;
    float lr;
    float weight_decay;
    int train_mode;      /* 1: BN batch statistics + dropout during training */
    uint64_t seed;       /* shuffling, dropout */
    int verbose;         /* progress lines on stderr (epoch, batch, loss, images/s, ETA) */
    const char *label;   /* prefix of progress lines, may be NULL */
    float *epoch_loss;   /* [epochs] each epoch's mean loss is stored here; may be NULL */
    int cosine;          /* 1: cosine learning-rate decay over all steps, step k of K uses
                          * lr * (1 + cos(pi k / K)) / 2; 0: constant lr */
} TrainOpts;

/* epochs 10, batch 32, lr 1e-3, weight decay 0, eval mode (train_mode 0), seed 0,
 * quiet, no label, no epoch_loss, constant lr. Always start from this, then set fields. */
void train_opts_default(TrainOpts *o);

/* Both loops: each epoch visits the n images in a new seeded random order (o->seed),
 * in mini-batches of o->batch, the last partial batch included (in train mode a last
 * batch of a single image joins the one before: batch norm needs two values). One
 * Adam step per batch on m->params (grads allocated once with model_alloc_grads);
 * PassMode.train = o->train_mode. No allocation per batch. Progress on stderr when
 * o->verbose. The result is deterministic for a given seed and thread count.
 * Training with eval mode, weight decay 0 and targets equal to m's own eval-mode
 * logits leaves every weight bit for bit unchanged (GAD's alpha = 0; a test pins it). */

/* Fit m to targets [n,K] from inputs x [n,3,H,W] with MSE and Adam (the support
 * models of GAD). Returns the final epoch's mean loss, or -1 on error (err set). */
float train_regression(Model *m, const float *x, const float *targets, int n, int H, int W,
                       const TrainOpts *o);
/* Train a classifier with cross-entropy: x [n,3,H,W], labels [n] in [0,K).
 * val_x/val_y (may be NULL, nval 0) are scored after each epoch (eval mode); *val_acc
 * gets the last score (may be NULL). Returns the last epoch's mean loss, or -1 on
 * error (err set: bad labels, no images, input too small, the loss not finite). */
float train_classifier(Model *m, const float *x, const int *labels, int n, const float *val_x,
                       const int *val_y, int nval, int H, int W, const TrainOpts *o, float *val_acc);
/* Accuracy in [0,1] of m on x [n,3,H,W] with labels (argmax of the logits, eval
 * mode), in batches of `batch` (<= 0: 32). Returns -1 when no plan can be made. */
float eval_accuracy(Model *m, const float *x, const int *labels, int n, int H, int W, int batch);

#endif
