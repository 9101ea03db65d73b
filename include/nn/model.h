/* model: torchvision's vgg16 (no batch norm) and resnet18 (BasicBlock), as a list of
 * layers over one block of parameter memory (llm.c style), with forward and backward
 * passes, torchvision's state_dict names and shapes, initialisation, and
 * safetensors loading (architecture, width and classes inferred from names and
 * shapes) and saving.
 *
 * Memory: params, grads and buffers are each one contiguous block; Param entries
 * point into them. Activations and scratch live in a Plan made for a maximum batch
 * and an input size, allocated once and reused for every pass.
 *
 * Width: channel counts are round(base * width) with base 64..512 (at least 1);
 * VGG's classifier hidden size is a separate number (4096 at full size).
 * Determinism: in eval mode an image's logits do not depend on the batch it is in
 * nor on the thread count (bitwise).
 * Not for: other architectures, grouped/dilated convolutions, half precision. */
#ifndef GAD_NN_MODEL_H
#define GAD_NN_MODEL_H
#include "io/safetensors.h"
#include "ops/act.h"
#include <stddef.h>
#include <stdint.h>

typedef enum { ARCH_VGG16 = 0, ARCH_RESNET18 = 1 } Arch;

typedef struct {
    char name[96];       /* torchvision state_dict key, e.g. "layer2.0.downsample.1.running_var" */
    int ndim;
    int64_t dim[4];
    size_t numel;
    float *data;         /* into Model.params (trainable) or Model.buffers (running stats) */
    float *grad;         /* into Model.grads; NULL for buffers or before model_alloc_grads */
    int is_buffer;
} Param;

typedef struct {
    Arch arch;
    int num_classes;
    float width;         /* channel multiplier, 1 = torchvision's sizes */
    int hidden;          /* VGG classifier hidden units (4096 at full size); 0 for resnet */
    int in_c, in_h, in_w;/* input the model was trained for (metadata); 0 if unknown */
    int has_norm;        /* mean/std known: inputs made from images are normalised */
    float mean[3], std[3];
    int resize_short;    /* metadata "resize" "N": torchvision's Resize(N) (shorter side) */
    int resize_h, resize_w; /* metadata "resize" "HxW": Resize((H, W)); all 0 when absent */
    int crop_h, crop_w;  /* metadata "crop" "N" or "HxW": CenterCrop; 0 when absent */
    char **class_names;  /* [num_classes] owned, or NULL when unknown */
} ModelConfig;

typedef struct Layer Layer;  /* private to nn/ */

typedef struct {
    ModelConfig cfg;
    int nparams;
    Param *params_info;  /* [nparams] every state_dict entry but num_batches_tracked */
    float *params;       /* [n_params] trainable weights, one block (owned) */
    float *grads;        /* [n_params] or NULL (owned) */
    float *buffers;      /* [n_buffers] BN running means/vars (owned) */
    size_t n_params, n_buffers;
    int64_t bn_batches;  /* num_batches_tracked, the same for every BN layer */
    uint64_t stamp;      /* names the current values of params: a new one, unique in the
                          * process, at every change made through this API (model_init,
                          * model_load, model_clone, train_*'s steps) and at
                          * model_params_changed; plans keep weights prepared for a stamp */
    Meta meta;           /* every __metadata__ entry (loaded, or set before saving) */
    int nlayers;
    Layer *layers;       /* [nlayers] private */
} Model;

/* Train mode: BN uses batch statistics and updates the running ones; dropout is on.
 * relu: the backward rule at every ReLU site (attribution methods change it). */
typedef struct {
    int train;
    ReluRule relu;
    uint64_t seed;       /* dropout masks */
    int param_grads;     /* eval mode: 1 if the backward will ask for parameter gradients;
                          * 0 (attribution, prediction) lets a BN run inside the output of
                          * the conv before it (the same bits, one pass less) */
} PassMode;

/* Build with torchvision's initialisation (kaiming normal fan_out for convs, as
 * torchvision's VGG/ResNet; BN weight 1, bias 0; linear as torchvision), seeded.
 * Returns 0 or -1 (err set, e.g. width too small). The caller frees with model_free. */
int model_init(Model *m, Arch arch, int num_classes, float width, int hidden, uint64_t seed);
/* Load a safetensors state_dict: arch, width, hidden and classes from names and
 * shapes; metadata from __metadata__ (input size, mean, std, class names, ...).
 * Every parameter and buffer must be present with the right shape; extra tensors
 * are refused. Returns 0 or -1 with "PATH: reason". */
int model_load(Model *m, const char *path);
/* 1 when the weights say how inputs are normalised: mean/std, "normalize": "none",
 * or trained by `gad train` (which records its choice). */
int model_norm_stated(const Model *m);
/* When they do not: a one-line warning (err_warn) that pixels are fed as 0..1,
 * naming path. For every command that feeds m images. */
void model_warn_norm(const Model *m, const char *path);
/* Save atomically with the config written into the metadata. Returns 0 or -1. */
int model_save(const Model *m, const char *path);
void model_free(Model *m);
/* dst gets a deep copy of src (weights, buffers, config, metadata; no grads). */
void model_clone(Model *dst, const Model *src);
/* Contract: after writing m->params other than through this API (an optimizer step of
 * your own, a perturbation), call this before the next pass; plans otherwise go on
 * using the weights they prepared from the old values (conv_prep). Not thread-safe
 * with itself or the functions above (one process-wide counter). */
void model_params_changed(Model *m);
/* Parameter by state_dict name, NULL when absent. */
Param *model_find(Model *m, const char *name);
const char *model_arch_name(Arch a);     /* "vgg16" / "resnet18" */
/* Allocate (once) and zero the gradient block. */
void model_alloc_grads(Model *m);
void model_zero_grads(Model *m);
/* Smallest input side the architecture takes (32). */
int model_min_input(const Model *m);
/* Multiply-adds of one image's forward pass through m's convolutions and linear
 * layers at input [3,H,W], counted from its layer list as PyTorch computes them (a
 * linear layer after a replicating average pool counts its full input): what GFLOP/s
 * figures count, 2 flops each. Returns -1 with err set when m cannot take that size. */
double model_forward_macs(const Model *m, int H, int W);

typedef struct Plan Plan;    /* activations, saved tensors, workspace: private */
/* Make a plan for batches of up to max_batch images of [3,H,W]. Returns NULL with
 * err set if the model cannot take that size. The caller frees with plan_free. */
Plan *plan_new(const Model *m, int max_batch, int H, int W);
/* The same, for the reference path: its passes run every layer's forward and backward
 * in order through the naive kernels (ops/ref.h), each activation and gradient in its
 * own buffer, the ReLU rule applied at every ReLU (nn/reference.c), with nothing fused.
 * Much slower; the same results but for rounding (tests/test_reference.c). With
 * `make REFERENCE=1`, plan_new makes these too, so every command runs on that path. */
Plan *plan_new_reference(const Model *m, int max_batch, int H, int W);
void plan_free(Plan *p);
/* The sizes p was made for: batches of up to *max_batch images of [3,*h,*w]
 * (each pointer may be NULL). Added for attr_compute, which takes a plan only. */
void plan_size(const Plan *p, int *max_batch, int *h, int *w);
/* Bytes of p that grow with its max batch (activations, saved tensors, gradient
 * buffers, convolution workspace; not the prepared weights): to size a batch by
 * memory. 0 for a reference plan. */
size_t plan_batch_bytes(const Plan *p);
/* Forward n <= max_batch images x [n,3,H,W]; returns logits [n,num_classes], owned by
 * the plan and valid until the next pass. Keeps what the backward needs. */
const float *model_forward(Model *m, Plan *p, const float *x, int n, PassMode mode);
/* Backward of the last forward (same n and mode): dlogits [n,K]. Accumulates the input
 * gradient into dx [n,3,H,W] when dx != NULL, and the parameter gradients into
 * m->grads when param_grads (needs model_alloc_grads). */
void model_backward(Model *m, Plan *p, const float *dlogits, float *dx, int param_grads, PassMode mode);

#endif
