/* layers: the private layer list behind nn/model.h, shared by the nn/ sources and
 * by the model tests (which reach in to, e.g., switch dropout off). Nothing outside
 * nn/ and its tests should include this.
 *
 * A model is a list of layers run in order; layer l reads activation `in` (and `in2`
 * for the residual add) and writes activation l + 1. Activation 0 is the input
 * image batch, activation nlayers is the logits. Parameters are referred to by their
 * index in Model.params_info (not by pointer), so a layer list copies unchanged
 * between models of the same structure (model_clone) and a Plan works for any of
 * them.
 * Not for: general graphs (no layer has more than two inputs; no branch outlives
 * one residual block). */
#ifndef GAD_NN_LAYERS_H
#define GAD_NN_LAYERS_H
#include "nn/model.h"

typedef enum {
    LK_CONV,     /* w [cout,cin,k,k], b [cout] or -1; stride s, padding pad */
    LK_BN,       /* w = gamma, b = beta, rm/rv = running mean/var, all [C] */
    LK_RELU,     /* PassMode.relu picks its backward rule */
    LK_MAXPOOL,  /* k x k, stride s, padding pad */
    LK_AVGPOOL,  /* adaptive average pool to k x k */
    LK_LINEAR,   /* w [cout,in_features], b [cout]; flattens its input */
    LK_DROPOUT,  /* probability p */
    LK_ADD       /* in + in2 (residual) */
} LayerKind;

struct Layer {
    LayerKind kind;
    int in, in2;     /* input activation indices (in2 only for LK_ADD, else -1) */
    int w, b;        /* params_info indices, or -1 */
    int rm, rv;      /* BN running mean / var (params_info indices), or -1 */
    int cout;        /* conv output channels, linear output features */
    int k, s, pad;   /* kernel, stride, padding (conv, maxpool); output side (avgpool) */
    float p;         /* dropout probability */
};

/* The shape of one image's activation: per = c*h*w floats. */
typedef struct { int c, h, w; size_t per; } ActShape;

const char *layer_kind_name(LayerKind k);
/* shape [nlayers + 1] = every activation's shape for batches of up to max_batch images
 * of [3,H,W]. Returns 0, or -1 with err set when the model cannot take that size. */
int layer_shapes(const Model *m, int max_batch, int H, int W, ActShape *shape);
/* Layer l's dropout seed in a pass seeded by seed: the masks depend on (seed, l) only,
 * so the fast and the reference executor draw the same ones. */
uint64_t layer_seed(uint64_t seed, int l);
/* round(base * width), at least 1: the channel count of a width-scaled model. */
int model_channels(int base, float width);
/* Fill m's config, params_info (names, shapes, no data yet) and layer list; *offsets
 * [nparams] gets each entry's place in the params or buffers block (caller frees).
 * Returns 0, or -1 with err set (bad width, classes, hidden). */
int model_build_spec(Model *m, Arch arch, int num_classes, float width, int hidden, size_t **offsets);
/* Allocate the zeroed params and buffers blocks and point params_info into them. */
void model_build_alloc(Model *m, const size_t *offsets);

#endif
